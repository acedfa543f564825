"""Alignment identity throughput on the pairs `cluster` aligns: the two measures, and the overlap measure of another
revision side by side in one run, its values checked against ours.

    OMP_NUM_THREADS=1 python benchmarks/bench_alignment.py --data_file ../shared/data/bold_insecta_coi.csv.gz \\
        --splits test test_unseen --against 7345197
    python benchmarks/bench_alignment.py                              # the bundled fixture, in seconds

Pairs: each barcode with its `--candidates` cosine-nearest (6-mers), as `cluster` proposes them. Each measure is timed
`--repeats` times in turns, one thread, and reported as its best pass; `--against REV` reads that revision's
barcodemae/alignment.py from git and times its `overlap_identity` too (the values must be equal). Then the overlap
measure through `identities` (what `cluster` and `identify` call) on each of `--threads` thread counts, ours and
REV's.
"""

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_description  # the benchmarks folder is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from barcodemae import alignment  # noqa: E402
from barcodemae.clustering import DEFAULT_CLUSTER_CANDIDATES, candidate_pairs  # noqa: E402
from barcodemae.data import FIXTURE, load_splits  # noqa: E402
from barcodemae.encoders import kmer_embeddings  # noqa: E402


def revision_module(revision: str, folder: Path):
    """barcodemae/alignment.py at git `revision`, imported."""
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{revision}:barcodemae/alignment.py"], check=True,
                            capture_output=True, text=True).stdout  # fmt: skip
    path = folder / "alignment_at_revision.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("alignment_at_revision", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_file", default=str(FIXTURE))
    parser.add_argument("--splits", nargs="+", default=["test", "test_unseen"])
    parser.add_argument("--candidates", type=int, default=DEFAULT_CLUSTER_CANDIDATES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--against", default=None, help="a git revision whose overlap measure to time beside")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts for `identities`")
    args = parser.parse_args()

    splits = load_splits(args.data_file, args.splits)
    sequences = [sequence for name in args.splits for sequence in splits[name].sequences]
    pairs = [(sequences[a], sequences[b]) for a, b in candidate_pairs(kmer_embeddings(sequences, 6), args.candidates)]
    print(f"data {args.data_file} ({' + '.join(args.splits)}): {len(sequences)} barcodes, {len(pairs)} candidate "
          f"pairs; CPU {cpu_description()}; one thread where a row names none", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory() as temporary:
        modules = {"": alignment} | ({f" at {args.against}": revision_module(args.against, Path(temporary))}
                                    if args.against else {})  # fmt: skip
        measures = {"overlap (the default)": alignment.overlap_identity, "infix": alignment.alignment_identity}
        measures |= {f"overlap{at}": module.overlap_identity for at, module in modules.items() if at}
        for threads in args.threads:
            measures |= {f"overlap{at}, `identities` on {threads} thread{'s' if threads > 1 else ''}": (module, threads)
                         for at, module in modules.items()}  # fmt: skip
        best, values = dict.fromkeys(measures, float("inf")), {}
        for _ in range(args.repeats):
            for name, measure in measures.items():
                started = time.perf_counter()
                values[name] = time_measure(measure, pairs)
                best[name] = min(best[name], time.perf_counter() - started)
    if args.against:
        same = values["overlap (the default)"] == values[f"overlap at {args.against}"]
        print(f"overlap identities equal to {args.against}'s on all {len(pairs)} pairs: {same}")
    base = best["overlap (the default)"]
    print("\n| measure | seconds (best pass) | pairs / s | time against the default |\n|---|---:|---:|---:|")
    for name, seconds in best.items():
        print(f"| {name} | {seconds:.2f} | {len(pairs) / seconds:,.0f} | {seconds / base:.2f}x |")


def time_measure(measure, pairs: list[tuple[str, str]]) -> list[float]:
    """The identity of each pair: `measure` called pair by pair, or (module, threads): that module's `identities` on
    so many threads (`OMP_NUM_THREADS`, which `alignment_threads` reads)."""
    if callable(measure):
        return [measure(a, b) for a, b in pairs]
    module, threads = measure
    os.environ["OMP_NUM_THREADS"] = str(threads)
    return module.identities(pairs, "overlap")


if __name__ == "__main__":
    main()
