"""The fixed cost of `barcodemae identify --index`: wall time of the whole command at 1 and 2 threads, code states
side by side, and where its imports go.

    python benchmarks/bench_startup.py QUERIES INDEX [CODE_DIR ...] [--runs 3]

QUERIES and INDEX: e.g. 300 `test_unseen` queries and an `index build` of `bench_index_scale.py`'s 15,821-barcode
`reference_frame`. Each CODE_DIR (default: this checkout; others e.g. `git worktree add --detach DIR COMMIT`) runs
`python -m barcodemae.cli` from that folder, so its own package and Hub files are the ones imported. Runs are
interleaved (round robin over code states and thread counts) so that other jobs on the machine spread over all of
them. Prints the median wall time, the ratio to the first CODE_DIR, whether the outputs are the same bytes, and
`python -X importtime` (self time summed per top-level package) of one run per state.
"""

import argparse
import collections
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_description  # the benchmarks folder is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
THREADS = ("1", "2")


def identify(code_dir: Path, queries: Path, index: Path, output: Path, threads: str, *python_options: str) -> str:
    """Run the command once from `code_dir`; its stderr."""
    command = [sys.executable, *python_options, "-m", "barcodemae.cli", "identify", str(queries), "--index", str(index),
               "--output", str(output), "--no_progress"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": threads, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(command, cwd=code_dir, env=env, capture_output=True, text=True, check=True).stderr


def import_times(stderr: str) -> collections.Counter:
    """Seconds of `-X importtime` self time per top-level package."""
    seconds = collections.Counter()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            own, _, name = line.removeprefix("import time:").split("|")
            seconds[name.strip().split(".")[0]] += int(own) / 1e6
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("queries", type=Path)
    parser.add_argument("index", type=Path)
    parser.add_argument("code_dirs", type=Path, nargs="*", default=[ROOT])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    queries, index = args.queries.resolve(), args.index.resolve()
    print(f"{cpu_description()}; load average {os.getloadavg()[0]:.2f} at the start")
    walls = collections.defaultdict(list)
    with tempfile.TemporaryDirectory() as folder:
        outputs = {}
        for _ in range(args.runs):
            for threads in THREADS:
                for code_dir in args.code_dirs:
                    outputs[code_dir, threads] = Path(folder) / f"{len(outputs)}.tsv"
                    started = time.perf_counter()
                    identify(code_dir, queries, index, outputs[code_dir, threads], threads)
                    walls[code_dir, threads].append(time.perf_counter() - started)
        first = outputs[args.code_dirs[0], THREADS[0]].read_bytes()
        same = all(path.read_bytes() == first for path in outputs.values())
        for code_dir in args.code_dirs:
            imports = import_times(identify(code_dir, queries, index, Path(folder) / "imports.tsv", "1", "-X",
                                            "importtime"))  # fmt: skip
            top = ", ".join(f"{name} {seconds:.2f}" for name, seconds in imports.most_common(5))
            print(f"{code_dir}: imports {sum(imports.values()):.2f} s under -X importtime ({top})")
    print(f"load average {os.getloadavg()[0]:.2f} at the end; every output the same bytes: {same}")
    for threads in THREADS:
        baseline = statistics.median(walls[args.code_dirs[0], threads])
        for code_dir in args.code_dirs:
            median = statistics.median(walls[code_dir, threads])
            runs = ", ".join(f"{wall:.2f}" for wall in walls[code_dir, threads])
            print(f"OMP_NUM_THREADS={threads} {code_dir}: median {median:.2f} s ({runs}); {baseline / median:.2f}x")


if __name__ == "__main__":
    main()
