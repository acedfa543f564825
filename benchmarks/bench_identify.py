"""`barcodemae identify` and `cluster` beside BLAST top hit and VSEARCH, on the same barcodes, one thread each.

    OMP_NUM_THREADS=1 python benchmarks/bench_identify.py --data_file ../shared/data/bold_insecta_coi.csv.gz
    python benchmarks/bench_identify.py                          # the bundled fixture
    python benchmarks/bench_identify.py --sections cluster --thresholds 0.08 0.1 0.12

identify: reference = `train`, queries = `test` (seen species) and `test_unseen` (unseen species, seen genera), all
prepared as everywhere (clean, deduplicate). Per rank: accuracy of the best guess on every query with a known label
(BLAST: the top hit by bit score; a query without a hit counts as wrong); with abstention: how often a call is made
and how often a made call is right; species abstention on `test_unseen` is the correct answer. Wall time from the
prepared sequences to the calls (embedding the reference included; BLAST: makeblastdb + blastn -task megablast).
cluster: `val` + `val_unseen` choose the settings, `test` + `test_unseen` report them (barcodes with a `dna_bin`);
AMI against `dna_bin` of ours (single linkage on alignment identity over the cosine-nearest candidates, and on cosine
distance), VSEARCH --cluster_fast at the same identities beside it (no cluster count given to any).
BLAST (blastn, makeblastdb) and VSEARCH are optional: each is skipped, saying so, when not on PATH.
"""

import argparse
import itertools
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_description  # the benchmarks folder is on sys.path when run as a script

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from barcodemae.clustering import identity_clusters, threshold_clusters  # noqa: E402
from barcodemae.data import load_splits  # noqa: E402
from barcodemae.encoders import load_encoder  # noqa: E402
from barcodemae.identify import DEFAULT_CANDIDATES, RANKS, identify  # noqa: E402
from barcodemae.protocol import FIXTURE  # noqa: E402
from barcodemae.search.references import Reference  # noqa: E402


def write_fasta(path: Path, sequences: list[str]) -> None:
    path.write_text("".join(f">{index}\n{sequence}\n" for index, sequence in enumerate(sequences)))


def score(split, best: dict, calls: dict | None = None) -> str:
    """Markdown cells: per rank accuracy of the best guess; with calls, called % and accuracy of the calls."""
    cells = []
    for rank in RANKS:
        known = split.labels[rank] != ""
        right = best[rank] == split.labels[rank]
        cell = f"{100 * right[known].mean():.1f}"
        if calls is not None:
            made = calls[rank] != ""
            cell += f" ({100 * made[known].mean():.0f}% called, {100 * right[known & made].mean():.1f} right)"
        cells.append(cell)
    return " | ".join(cells)


def run_ours(model: str, reference_split, query_splits, neighbours: int, quantile: float, candidates: int) -> None:
    started = time.perf_counter()
    encoder = load_encoder(model)
    reference_vectors = encoder.embed(reference_split.sequences)
    sequences = reference_split.sequences if candidates else None
    reference = Reference.calibrated(reference_vectors, reference_split.labels, sequences, quantile)
    setup = time.perf_counter() - started
    ranking = f"{candidates} candidates by identity" if candidates else "cosine"
    for split in query_splits:
        started = time.perf_counter()
        table = identify(reference, encoder.embed(split.sequences), neighbours, split.sequences, candidates)
        elapsed = setup + time.perf_counter() - started
        best = {rank: table[f"{rank}_best_hit"].to_numpy() for rank in RANKS}
        calls = {rank: table[rank].to_numpy() for rank in RANKS}
        print(f"| {model}, {ranking} (k={neighbours}, q={quantile}) | {split.name} | {len(split)} | {elapsed:.1f} | "
              f"{score(split, best, calls)} |", flush=True)  # fmt: skip


def have(*tools: str) -> bool:
    return all(shutil.which(tool) for tool in tools)


def blast_top_hits(reference_sequences: list[str], query_sequences: list[str], folder: Path):
    """(index of each query's top BLAST megablast hit by bit score, -1 = none; seconds: makeblastdb + blastn). One
    thread."""
    started = time.perf_counter()
    database = folder / "reference"
    write_fasta(folder / "reference.fa", reference_sequences)
    subprocess.run(["makeblastdb", "-in", str(folder / "reference.fa"), "-dbtype", "nucl", "-out", str(database)],
                   check=True, capture_output=True)  # fmt: skip
    write_fasta(folder / "queries.fa", query_sequences)
    result = subprocess.run(
        ["blastn", "-task", "megablast", "-query", str(folder / "queries.fa"), "-db", str(database),
         "-outfmt", "6 qseqid sseqid bitscore", "-max_target_seqs", "5", "-num_threads", "1"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    top = np.full(len(query_sequences), -1)
    bits = np.full(len(query_sequences), -np.inf)
    for line in result.stdout.splitlines():
        query, subject, score = line.split("\t")
        if float(score) > bits[int(query)]:
            top[int(query)], bits[int(query)] = int(subject), float(score)
    return top, time.perf_counter() - started


def vsearch_top_hits(reference_sequences: list[str], query_sequences: list[str], folder: Path):
    """(index of each query's top VSEARCH `--usearch_global` hit by identity, -1 = none; seconds). One thread; the
    10 first accepted of up to 100 candidates by shared k-mers, the most alike reported."""
    started = time.perf_counter()
    write_fasta(folder / "reference.fa", reference_sequences)
    write_fasta(folder / "queries.fa", query_sequences)
    subprocess.run(["vsearch", "--usearch_global", str(folder / "queries.fa"), "--db", str(folder / "reference.fa"),
                    "--id", "0.5", "--maxaccepts", "10", "--maxrejects", "100", "--top_hits_only", "--threads", "1",
                    "--blast6out", str(folder / "hits.tsv"), "--quiet"], check=True, capture_output=True)  # fmt: skip
    top = np.full(len(query_sequences), -1)
    for line in (folder / "hits.tsv").read_text().splitlines():
        query, subject = line.split("\t")[:2]
        if top[int(query)] < 0:
            top[int(query)] = int(subject)
    return top, time.perf_counter() - started


def vsearch_clusters(sequences: list[str], identity: float, folder: Path, command: str = "--cluster_fast",
                     abundances=None):  # fmt: skip
    """(cluster of each barcode, seconds) by VSEARCH `command` (`--cluster_fast`: longest first; `--cluster_size`:
    most abundant first, `abundances` written as ;size=N) at `identity`, one thread."""
    started = time.perf_counter()
    sizes = [""] * len(sequences) if abundances is None else [f";size={int(size)}" for size in abundances]
    (folder / "pooled.fa").write_text("".join(f">{index}{size}\n{sequence}\n"
                                              for index, (sequence, size) in enumerate(zip(sequences, sizes))))  # fmt: skip
    subprocess.run(["vsearch", command, str(folder / "pooled.fa"), "--id", str(identity), "--threads", "1",
                    "--uc", str(folder / "clusters.uc"), "--quiet"], check=True, capture_output=True)  # fmt: skip
    clusters = np.empty(len(sequences), dtype=np.int64)
    for line in (folder / "clusters.uc").read_text().splitlines():
        fields = line.split("\t")
        if fields[0] in ("S", "H"):
            clusters[int(fields[8].split(";")[0])] = int(fields[1])
    return clusters, time.perf_counter() - started


def run_blast(reference_split, query_splits, folder: Path) -> None:
    if not have("blastn", "makeblastdb"):
        print("| BLAST | skipped: blastn / makeblastdb not on PATH (apt-get install ncbi-blast+) |")
        return
    for split in query_splits:
        top, elapsed = blast_top_hits(reference_split.sequences, split.sequences, folder)
        best = {rank: np.where(top >= 0, reference_split.labels[rank][top], "") for rank in RANKS}
        print(f"| BLAST megablast top hit | {split.name} | {len(split)} | {elapsed:.1f} | {score(split, best)} |",
              flush=True)  # fmt: skip


def with_bins(splits, names):
    sequences, bins = [], []
    for name in names:
        known = splits[name].labels["dna_bin"] != ""
        sequences += [sequence for sequence, keep in zip(splits[name].sequences, known) if keep]
        bins += list(splits[name].labels["dna_bin"][known])
    return sequences, np.asarray(bins)


def run_clusters(model: str, splits, thresholds, linkages, identities, candidates) -> None:
    from sklearn.metrics import adjusted_mutual_info_score

    encoder = load_encoder(model)
    for names in (["val", "val_unseen"], ["test", "test_unseen"]):
        sequences, bins = with_bins(splits, names)
        vectors = encoder.embed(sequences)
        for identity, count in itertools.product(identities, candidates):
            started = time.perf_counter()
            clusters = identity_clusters(vectors, sequences, identity, count, average_up_to=0)
            elapsed = time.perf_counter() - started
            print(f"| {model}, single linkage at {identity} identity, {count} candidates | {' + '.join(names)} | "
                  f"{len(bins)} | {len(set(bins))} | {clusters.max() + 1} | "
                  f"{100 * adjusted_mutual_info_score(bins, clusters):.1f} | {elapsed:.1f} (clustering only) |", flush=True)  # fmt: skip
        for linkage in linkages:
            for threshold in thresholds:
                started = time.perf_counter()
                clusters = threshold_clusters(vectors, threshold, linkage)
                elapsed = time.perf_counter() - started
                print(f"| {model} {linkage} linkage, cosine distance {threshold} | {' + '.join(names)} | {len(bins)} | "
                      f"{len(set(bins))} | {clusters.max() + 1} | {100 * adjusted_mutual_info_score(bins, clusters):.1f} | "
                      f"{elapsed:.1f} (clustering only) |", flush=True)  # fmt: skip


def run_vsearch(splits, identities, folder: Path) -> None:
    from sklearn.metrics import adjusted_mutual_info_score

    if not have("vsearch"):
        print("| VSEARCH | skipped: vsearch not on PATH (apt-get install vsearch) |")
        return
    sequences, bins = with_bins(splits, ["test", "test_unseen"])
    for identity in identities:
        clusters, elapsed = vsearch_clusters(sequences, identity, folder)
        print(f"| VSEARCH --cluster_fast --id {identity} | test + test_unseen | {len(bins)} | {len(set(bins))} | "
              f"{clusters.max() + 1} | {100 * adjusted_mutual_info_score(bins, clusters):.1f} | {elapsed:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_file", default=str(FIXTURE))
    parser.add_argument("--models", nargs="+", default=["kmer:6"])
    parser.add_argument("--sections", nargs="+", default=["identify", "blast", "cluster", "vsearch"])
    parser.add_argument("--neighbours", type=int, nargs="+", default=[5])
    parser.add_argument("--quantiles", type=float, nargs="+", default=[0.05])
    parser.add_argument("--candidates", type=int, nargs="+", default=[DEFAULT_CANDIDATES],
                        help="nearest by embedding re-ranked by alignment identity; 0 = cosine only")
    parser.add_argument("--query_splits", nargs="+", default=["test", "test_unseen"],
                        help="val val_unseen to choose settings, test test_unseen to report them")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.06, 0.08, 0.1, 0.12, 0.15, 0.2])
    parser.add_argument("--linkages", nargs="+", default=["single", "average"])
    parser.add_argument("--identities", type=float, nargs="+", default=[0.97, 0.98, 0.99], help="ours and VSEARCH's")
    parser.add_argument("--cluster_candidates", type=int, nargs="+", default=[20])
    args = parser.parse_args()
    torch.set_num_threads(1)
    import datasets

    datasets.disable_progress_bars()
    print(f"data {args.data_file}; CPU {cpu_description()}, 1 thread; torch {torch.__version__}")
    splits = load_splits(args.data_file, ["train", "test", "test_unseen", "val", "val_unseen"])
    queries = [splits[name] for name in args.query_splits]
    header = " | ".join(RANKS)
    with tempfile.TemporaryDirectory() as folder:
        if {"identify", "blast"} & set(args.sections):
            print(f"\n| method | queries | n | seconds | {header} |\n|---|---|---:|---:|" + "---|" * len(RANKS))
        for model in args.models if "identify" in args.sections else []:
            for neighbours, quantile, candidates in itertools.product(args.neighbours, args.quantiles, args.candidates):
                run_ours(model, splits["train"], queries, neighbours, quantile, candidates)
        if "blast" in args.sections:
            run_blast(splits["train"], queries, Path(folder))
        if {"cluster", "vsearch"} & set(args.sections):
            print("\n| method | barcodes | n | BINs | clusters | AMI | seconds |\n|---|---|---:|---:|---:|---:|---:|")
        for model in args.models if "cluster" in args.sections else []:
            run_clusters(model, splits, args.thresholds, args.linkages, args.identities, args.cluster_candidates)
        if "vsearch" in args.sections:
            run_vsearch(splits, args.identities, Path(folder))


if __name__ == "__main__":
    main()
