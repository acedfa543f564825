"""Cost of the pieces of the probe protocol (barcodemae.protocol, evaluate_probes.py) at BIOSCAN-5M scale, and whether bf16 autocast changes the probes.

    python benchmarks/bench_probes.py --data_file /work/shared/data/bold_insecta_coi.csv.gz            # everything
    python benchmarks/bench_probes.py --sections knn bin --bin_points 22000

Sections:
  knn    exact cosine 1-NN, 118k keys x 3.4k queries x 768 dims (BIOSCAN-5M's train x test_unseen sizes).
  probe  the linear probe on the real `train` split (16k unique barcodes, ~700 species) at 768 dims (a fixed random
         projection of 6-mer frequencies) for several max_iter, plus the time of the real kmer:4 / kmer:6 probes.
  bin    UMAP(50, cosine) + Ward + AMI on N real barcodes with a BIN (default 22,000: BIOSCAN-5M's test +
         test_unseen size), 768-dim inputs as above.
  bf16   a randomly initialised paper-size BarcodeMAE (768 wide, 6 layers): embedding time fp32 vs bf16 autocast on
         the fixture splits, the cosine between the two embeddings and the probe metrics of both.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from barcodemae import protocol as probes  # noqa: E402
from barcodemae.data import load_splits  # noqa: E402
from barcodemae.encoders import embed_sequences, kmer_embeddings  # noqa: E402
from barcodemae.neighbours import nearest_neighbour  # noqa: E402


def projected(x: np.ndarray, dims: int = 768, seed: int = 0) -> np.ndarray:
    """A fixed random projection: features of a model's width with the structure of real barcodes."""
    matrix = np.random.default_rng(seed).normal(size=(x.shape[1], dims)).astype(np.float32) / np.sqrt(dims)
    return x @ matrix


def bench_knn(args) -> None:
    rng = np.random.default_rng(0)
    keys = rng.normal(size=(118_000, 768)).astype(np.float32)
    source = rng.choice(len(keys), 3_400, replace=False)
    queries = keys[source] + 0.01 * rng.normal(size=(3_400, 768)).astype(np.float32)
    nearest_neighbour(keys[:1000], queries[:10])
    started = time.perf_counter()
    found = nearest_neighbour(keys, queries)
    elapsed = time.perf_counter() - started
    print(f"knn: 118,000 keys x 3,400 queries x 768 dims: {elapsed:.2f} s (torch chunked matmul, "
          f"{torch.get_num_threads()} threads); found the source key for {np.mean(found == source):.1%} of queries")


def bench_probe(args) -> None:
    splits = load_splits(args.data_file, ["train", "test"])
    train, test = splits["train"], splits["test"]
    train_rows, test_rows = np.flatnonzero(train.labels["species"] != ""), np.flatnonzero(test.labels["species"] != "")
    y_train, y_test = train.labels["species"][train_rows], test.labels["species"][test_rows]
    print(f"probe: train {len(train_rows)} unique barcodes, {len(set(y_train))} species; test {len(test_rows)}")
    six_train = kmer_embeddings([train.sequences[i] for i in train_rows], 6)
    six_test = kmer_embeddings([test.sequences[i] for i in test_rows], 6)
    x_train, x_test = projected(six_train), projected(six_test)
    for max_iter in args.max_iters:
        started = time.perf_counter()
        predicted = probes.linear_probe(x_train, y_train, x_test, max_iter=max_iter)
        elapsed = time.perf_counter() - started
        print(f"probe: 768 dims, max_iter={max_iter}: {elapsed:.1f} s, accuracy {np.mean(predicted == y_test):.4f}")
    for k in (4, 6):
        a = kmer_embeddings([train.sequences[i] for i in train_rows], k)
        b = kmer_embeddings([test.sequences[i] for i in test_rows], k)
        started = time.perf_counter()
        predicted = probes.linear_probe(a, y_train, b, max_iter=200)
        print(f"probe: kmer:{k} ({a.shape[1]} dims), max_iter=200: {time.perf_counter() - started:.1f} s, "
              f"accuracy {np.mean(predicted == y_test):.4f}")


def bench_bin(args) -> None:
    splits = load_splits(args.data_file, ["test", "test_unseen", "key_unseen", "train"])
    sequences, bins = [], []
    for split in splits.values():
        rows = np.flatnonzero(split.labels["dna_bin"] != "")
        sequences += [split.sequences[i] for i in rows]
        bins += list(split.labels["dna_bin"][rows])
    chosen = np.sort(np.random.default_rng(0).choice(len(sequences), min(args.bin_points, len(sequences)), replace=False))
    x = projected(kmer_embeddings([sequences[i] for i in chosen], 6))
    labels = np.asarray(bins)[chosen]
    probes.reduce_umap(x[:200], 5, 5, 0.0, 0)  # numba compilation, not counted
    started = time.perf_counter()
    reduced = probes.reduce_umap(x, 50, 15, 0.0, 0)
    umap_s = time.perf_counter() - started
    started = time.perf_counter()
    ami, n_bins = probes.cluster_ami(reduced, labels)
    ward_s = time.perf_counter() - started
    print(f"bin: {len(x)} points x {x.shape[1]} dims, {n_bins} BINs: UMAP(50, cosine, n_neighbors=15) {umap_s:.1f} s, "
          f"Ward + AMI {ward_s:.1f} s (AMI {ami:.3f})")


def bench_bf16(args) -> None:
    from configuration_barcodemae import BarcodeMAEConfig
    from modeling_barcodemae import BarcodeMAEModel
    from tokenization_barcodemae import BarcodeMAETokenizer

    torch.manual_seed(0)
    model = BarcodeMAEModel(BarcodeMAEConfig()).eval()
    tokenizer = BarcodeMAETokenizer()
    results = {}
    for precision in ("fp32", "bf16"):
        started = time.perf_counter()
        report = probes.evaluate([("random-768", model, tokenizer)], args.fixture, None, progress=False,
                                 precision=precision, plots=False)
        metrics = report["results"]["random-768"]
        results[precision] = metrics
        print(f"bf16: {precision}: embed {metrics['timings']['embed_s']:.1f} s (total {time.perf_counter() - started:.1f} s); "
              + ", ".join(f"{name} {100 * get(metrics):.1f}" for name, get in probes.TABLE_COLUMNS))
    splits = load_splits(args.fixture, ["test"])
    a = embed_sequences(model, tokenizer, splits["test"].sequences, progress=False)
    b = embed_sequences(model, tokenizer, splits["test"].sequences, precision="bf16", progress=False)
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    print(f"bf16: cosine(fp32, bf16) per barcode: min {cosine.min():.5f}, mean {cosine.mean():.5f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_file", default="/work/shared/data/bold_insecta_coi.csv.gz")
    parser.add_argument("--fixture", default=str(probes.FIXTURE))
    parser.add_argument("--sections", nargs="+", default=["knn", "probe", "bin", "bf16"])
    parser.add_argument("--max_iters", nargs="+", type=int, default=[50, 100, 200])
    parser.add_argument("--bin_points", type=int, default=22_000)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}")
    for section in args.sections:
        {"knn": bench_knn, "probe": bench_probe, "bin": bench_bin, "bf16": bench_bf16}[section](args)


if __name__ == "__main__":
    main()
