"""`barcodemae embed` on large files: peak memory against input size, and throughput on 1 vs 2 processes.

    python benchmarks/bench_embed_scale.py [--source ../shared/data/bold_insecta_coi.csv.gz] [--rows 100000 500000]
        [--model kmer:6] [--processes 1 2]

Builds CSVs of synthetic barcodes in /tmp (real barcodes of --source, each base substituted with a probability drawn
from 1-12% per barcode, as within-genus differences go), written a chunk at a time. Then, per size and process count,
the whole command under `/usr/bin/time -v` (start-up, reading, embedding, assembling the one output file), 2
processes through `torchrun --standalone`, one OpenMP thread per process. Peak RSS is that of the largest process.
Outputs are deleted after each run. First, parquet settings side by side: writing and reading back 4,000 kmer:6
vectors of the synthetic barcodes and 4,000 dense 768-dim ones, pyarrow's default vs `PARQUET_OPTIONS`.
"""

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from machine import cpu_description  # the benchmarks folder is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[1]
BASES = np.frombuffer(b"ACGT", dtype=np.uint8)


def synthetic_file(source: Path, rows: int, folder: Path, seed: int = 0) -> Path:
    """`rows` mutated copies of real barcodes of `source` (processid, dna_barcode), as CSV."""
    path = folder / f"synthetic_{rows}.csv"
    if path.exists():
        return path
    real = pd.read_csv(source, usecols=["dna_barcode"], dtype=str, keep_default_na=False).dna_barcode
    real = real[real.str.fullmatch(r"[ACGT]{400,}")].to_numpy()
    generator = np.random.default_rng(seed)
    with open(path, "w") as handle:
        handle.write("processid,dna_barcode\n")
        for start in range(0, rows, 50_000):
            count = min(50_000, rows - start)
            lines = []
            for index, template in enumerate(generator.choice(real, count)):
                codes = np.frombuffer(template.encode(), dtype=np.uint8).copy()
                mutated = generator.random(len(codes)) < generator.uniform(0.01, 0.12)
                codes[mutated] = generator.choice(BASES, mutated.sum())
                lines.append(f"SYN{start + index:08d},{codes.tobytes().decode()}\n")
            handle.write("".join(lines))
    return path


def parquet_settings(path: Path, folder: Path) -> None:
    """Best-of-3 seconds to write and read back 4,000 vectors, per parquet setting, and the file size."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sys.path.insert(0, str(REPO))
    from barcodemae.encoders import kmer_embeddings
    from barcodemae.files import PARQUET_OPTIONS, embedding_array

    sequences = pd.read_csv(path, nrows=4000).dna_barcode.tolist()
    dense = np.random.default_rng(0).standard_normal((4000, 768)).astype(np.float32)
    print("| vectors | parquet settings | write | read | size |\n|---|---|---:|---:|---:|")
    for name, vectors in (("kmer:6", kmer_embeddings(sequences, 6)), ("dense 768", dense)):
        table = pa.table({"id": [str(index) for index in range(4000)], "embedding": embedding_array(vectors)})
        for setting, options in (("pyarrow default", {}), (str(PARQUET_OPTIONS), PARQUET_OPTIONS)):
            times = []
            for _ in range(3):
                started = time.perf_counter()
                pq.write_table(table, folder / "settings.parquet", **options)
                written = time.perf_counter()
                pq.read_table(folder / "settings.parquet")
                times.append((written - started, time.perf_counter() - written))
            size = (folder / "settings.parquet").stat().st_size / 2**20
            print(f"| {name} | {setting} | {min(times)[0]:.3f} s | {min(t[1] for t in times):.3f} s | {size:.1f} MiB |")


def timed_embed(path: Path, model: str, processes: int, folder: Path) -> dict:
    output = folder / "vectors.parquet"
    launcher = [sys.executable, "-m", "barcodemae.cli"]
    if processes > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
                    "-m", "barcodemae.cli"]  # fmt: skip
    command = ["/usr/bin/time", "-v", *launcher, "embed", str(path), "--model", model, "--output", str(output),
               "--no_progress"]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO,
                            env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})  # fmt: skip
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    peak_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    output_mib = output.stat().st_size / 2**20
    output.unlink()
    return {"seconds": seconds, "peak_mib": peak_kib / 1024, "output_mib": output_mib, "summary": result.stdout.strip()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=str(REPO.parent / "shared" / "data" / "bold_insecta_coi.csv.gz"))
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 500_000])
    parser.add_argument("--model", default="kmer:6")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print(f"# {cpu_description()}; model {args.model}; one OpenMP thread per process")
    with tempfile.TemporaryDirectory() as scratch:
        parquet_settings(synthetic_file(Path(args.source), min(args.rows), Path(tempfile.gettempdir())), Path(scratch))
    print("| rows | input | processes | seconds | barcodes/s | peak RSS (largest process) | output |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as scratch:
        for rows in args.rows:
            path = synthetic_file(Path(args.source), rows, Path(tempfile.gettempdir()))
            for processes in args.processes:
                run = timed_embed(path, args.model, processes, Path(scratch))
                print(f"| {rows:,} | {path.stat().st_size / 2**20:,.0f} MiB | {processes} | {run['seconds']:.0f} | "
                      f"{rows / run['seconds']:,.0f} | {run['peak_mib']:,.0f} MiB | {run['output_mib']:,.0f} MiB |",
                      flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
