"""Alignment identity throughput on the pairs `cluster` aligns: the two measures, and the overlap measure of another
revision side by side in one run, its values checked against ours.

    OMP_NUM_THREADS=1 python benchmarks/bench_alignment.py --data_file ../shared/data/bold_insecta_coi.csv.gz \\
        --splits test test_unseen --against 7345197
    python benchmarks/bench_alignment.py                              # the bundled fixture, in seconds

Pairs: each barcode with its `--candidates` cosine-nearest (6-mers), as `cluster` proposes them. Each measure is timed
`--repeats` times in turns, one thread, and reported as its best pass; `--against REV` reads that revision's
barcodemae/alignment.py from git and times its `overlap_identity` too (the values must be equal).
"""

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_description  # the benchmarks folder is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from barcodemae.alignment import alignment_identity, overlap_identity  # noqa: E402
from barcodemae.clustering import DEFAULT_CLUSTER_CANDIDATES, candidate_pairs  # noqa: E402
from barcodemae.data import FIXTURE, load_splits  # noqa: E402
from barcodemae.encoders import kmer_embeddings  # noqa: E402


def revision_measure(revision: str, folder: Path):
    """`overlap_identity` of barcodemae/alignment.py at git `revision`."""
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{revision}:barcodemae/alignment.py"], check=True,
                            capture_output=True, text=True).stdout  # fmt: skip
    path = folder / "alignment_at_revision.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("alignment_at_revision", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.overlap_identity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_file", default=str(FIXTURE))
    parser.add_argument("--splits", nargs="+", default=["test", "test_unseen"])
    parser.add_argument("--candidates", type=int, default=DEFAULT_CLUSTER_CANDIDATES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--against", default=None, help="a git revision whose overlap measure to time beside")
    args = parser.parse_args()

    splits = load_splits(args.data_file, args.splits)
    sequences = [sequence for name in args.splits for sequence in splits[name].sequences]
    pairs = [(sequences[a], sequences[b]) for a, b in candidate_pairs(kmer_embeddings(sequences, 6), args.candidates)]
    print(f"data {args.data_file} ({' + '.join(args.splits)}): {len(sequences)} barcodes, {len(pairs)} candidate "
          f"pairs; CPU {cpu_description()}, 1 thread", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory() as temporary:
        measures = {"overlap (the default)": overlap_identity, "infix": alignment_identity}
        if args.against:
            measures[f"overlap at {args.against}"] = revision_measure(args.against, Path(temporary))
        best, values = dict.fromkeys(measures, float("inf")), {}
        for _ in range(args.repeats):
            for name, measure in measures.items():
                started = time.perf_counter()
                values[name] = [measure(a, b) for a, b in pairs]
                best[name] = min(best[name], time.perf_counter() - started)
    if args.against:
        same = values["overlap (the default)"] == values[f"overlap at {args.against}"]
        print(f"overlap identities equal to {args.against}'s on all {len(pairs)} pairs: {same}")
    base = best["overlap (the default)"]
    print("\n| measure | seconds (best pass) | pairs / s | time against the default |\n|---|---:|---:|---:|")
    for name, seconds in best.items():
        print(f"| {name} | {seconds:.2f} | {len(pairs) / seconds:,.0f} | {seconds / base:.2f}x |")


if __name__ == "__main__":
    main()
