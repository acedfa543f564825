"""Tokenizer throughput: 10k real barcodes to padded tensors, ours (Rust pipeline) vs the original Python loop.

    python benchmarks/bench_tokenizer.py [--data_file ../shared/data/bold_insecta_coi.csv.gz] [--num_sequences 10000]

The original BarcodeMAE/BarcodeBERT tokenizer pads each barcode with N to 660 nt and looks up its k-mers one by one
in a Python dict. Both are timed in the same run (best of `--repeats`); the ratio is what to compare across machines.
"""

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from convert_original_checkpoint import original_token_ids  # noqa: E402
from tokenization_barcodemae import BarcodeMAETokenizer  # noqa: E402


def original_tokenize(sequences: list[str], k: int = 6, max_length: int = 660) -> torch.Tensor:
    """The original pipeline (pad/truncate with N to max_length, k-mers looked up in a Python dict), to a tensor."""
    return torch.tensor([original_token_ids(sequence, k, max_length)[0] for sequence in sequences])


def best_time(function, repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = Path(__file__).resolve().parents[1] / "data" / "bioscan_fixture.csv.gz"
    parser.add_argument("--data_file", default=str(default_data))
    parser.add_argument("--num_sequences", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    sequences = list(pd.read_csv(args.data_file, usecols=["dna_barcode"], dtype=str).dna_barcode)
    sequences = (sequences * (args.num_sequences // len(sequences) + 1))[: args.num_sequences]
    tokenizer = BarcodeMAETokenizer()

    def ours():
        return tokenizer(sequences, padding="max_length", truncation=True, return_tensors="pt")

    ours_time = best_time(ours, args.repeats)
    original_time = best_time(lambda: original_tokenize(sequences), args.repeats)
    print(f"{len(sequences)} barcodes from {args.data_file}, torch threads {torch.get_num_threads()}")
    print("| tokenizer | seconds | sequences/s | speed-up |")
    print("|---|---|---|---|")
    print(f"| original (Python loop over k-mers) | {original_time:.3f} | {len(sequences) / original_time:,.0f} | 1.0x |")
    print(f"| BarcodeMAETokenizer (Rust, strict checks on) | {ours_time:.3f} | {len(sequences) / ours_time:,.0f} "
          f"| {original_time / ours_time:.1f}x |")


if __name__ == "__main__":
    main()
