"""Tokenizer throughput, 10k real barcodes to padded tensors: ours (numpy path), ours forced onto the Rust pipeline,
and the original Python loop, side by side in one run.

    python benchmarks/bench_tokenizer.py [--data_file ../shared/data/bold_insecta_coi.csv.gz] [--num_sequences 10000]
                                         [--batch_size 16]

The call timed is `tokenizer(sequences, padding=True, truncation=True, return_tensors="pt")`, on all barcodes at once
or in batches of `--batch_size`. The original BarcodeMAE/BarcodeBERT tokenizer pads each barcode with N to 660 nt and
looks up its k-mers one by one in a Python dict. Each is timed on its first pass over the barcodes (a fresh
tokenizer) and as the best of `--repeats` passes, taken in turns; the ratios are what to compare across machines.
The numpy path's ids are checked against the Rust pipeline's and the original's.
"""

import argparse
import sys
import time
from pathlib import Path

from machine import cpu_description  # the benchmarks folder is on sys.path when run as a script

import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from barcodemae.data import FIXTURE  # noqa: E402
from convert_original_checkpoint import original_token_ids  # noqa: E402
from tokenization_barcodemae import BarcodeMAETokenizer  # noqa: E402


class RustPipelineTokenizer(BarcodeMAETokenizer):
    """BarcodeMAETokenizer with its numpy path turned off: every call runs the Rust pipeline."""

    def _encode_in_numpy(self, *args, **kwargs):
        return None


def original_tokenize(sequences: list[str], k: int = 6, max_length: int = 660) -> dict[str, torch.Tensor]:
    """The original pipeline (pad/truncate with N to max_length, k-mers looked up in a Python dict), to tensors."""
    ids, masks = zip(*(original_token_ids(sequence, k, max_length) for sequence in sequences))
    return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(masks)}


def timings(runs: dict, repeats: int) -> dict[str, tuple[float, float, dict]]:
    """Each run's seconds on its first and best pass, and its last result; the runs take turns, so that load from
    other jobs falls on all of them alike."""
    seconds, results = {name: [] for name in runs}, {}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            results[name] = run()
            seconds[name].append(time.perf_counter() - start)
    return {name: (seconds[name][0], min(seconds[name]), results[name]) for name in runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_file", default=str(REPO.parent / "shared" / "data" / "bold_insecta_coi.csv.gz"),
                        help="real barcodes (column dna_barcode); the bundled fixture where this file is missing")
    parser.add_argument("--num_sequences", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch_size", type=int, help="sequences per call (default: all in one call)")
    args = parser.parse_args()

    data_file = Path(args.data_file) if Path(args.data_file).exists() else FIXTURE
    sequences = list(pd.read_csv(data_file, usecols=["dna_barcode"], dtype=str).dna_barcode)
    sequences = (sequences * (args.num_sequences // len(sequences) + 1))[: args.num_sequences]
    batch_size = args.batch_size or len(sequences)
    batches = [sequences[start : start + batch_size] for start in range(0, len(sequences), batch_size)]

    def encode(tokenizer: BarcodeMAETokenizer):
        return lambda: [tokenizer(batch, padding=True, truncation=True, return_tensors="pt") for batch in batches]

    runs = {
        "original (pad with N to 660 nt, Python dict lookup per k-mer)": lambda: list(map(original_tokenize, batches)),
        "`BarcodeMAETokenizer`, Rust pipeline (numpy path off)": encode(RustPipelineTokenizer()),
        "**`BarcodeMAETokenizer`** (numpy path)": encode(BarcodeMAETokenizer()),
    }
    results = timings(runs, args.repeats)

    for original, rust, ours in zip(*(result[2] for result in results.values())):
        width = ours["input_ids"].shape[1]  # the batch's longest row: 110 tokens where a barcode has >= 660 nt
        mask = ours["attention_mask"].bool()
        assert all(torch.equal(ours[key], rust[key]) for key in ("input_ids", "attention_mask"))
        assert torch.equal(ours["attention_mask"], original["attention_mask"][:, :width])
        assert torch.equal(ours["input_ids"][mask], original["input_ids"][:, :width][mask])

    print(f"{len(sequences)} barcodes from {data_file} in batches of {batch_size}; {cpu_description()}, "
          f"{torch.get_num_threads()} torch threads; first pass and best of {args.repeats}")
    (_, original_best, _), (_, rust_best, _) = list(results.values())[:2]
    print("| tokenizer | first pass: sequences/s | best: seconds | best: sequences/s | vs original | vs Rust |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (first, best, _) in results.items():
        print(f"| {name} | {len(sequences) / first:,.0f} | {best:.3f} | {len(sequences) / best:,.0f} "
              f"| {original_best / best:.2f}× | {rust_best / best:.2f}× |")

if __name__ == "__main__":
    main()
