"""Peak memory (RSS) of train.py's data pipeline at 100k vs 1M rows: it should stay flat.

    python benchmarks/bench_data_memory.py [--source ../shared/data/bold_insecta_coi.csv.gz] [--rows 100000 1000000]

Builds CSVs of the BIOSCAN-5M layout in /tmp by repeating the source file (each repeat's barcodes get a distinct
first 6-mer, so unique barcodes grow with the rows too), then, in a fresh process per size and with an empty
`datasets` cache, runs the pipeline of train.py: read, select the pretraining splits, validate, clean, deduplicate,
hold out validation, and one pass of `--batches` training batches through the DataLoader (offsets, tokenizer).

Peak RSS counts the pages of the memory-mapped Arrow files that were read (file-backed, page cache: the kernel drops
them under memory pressure); the anonymous part (Python objects, buffers) is what must stay flat, and does.
"""

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import json, resource, sys, threading, time
sys.path.insert(0, {repo!r})
peak = {{"RssAnon": 0, "RssFile": 0}}

def poll():  # peak anonymous (heap) and file-backed (memory-mapped Arrow files, page cache) resident memory
    while True:
        for line in open("/proc/self/status"):
            key = line.split(":")[0]
            if key in peak:
                peak[key] = max(peak[key], int(line.split()[1]) // 1024)
        time.sleep(0.01)

threading.Thread(target=poll, daemon=True).start()
import datasets, torch
datasets.disable_progress_bars()
from argparse import Namespace
from barcodemae import training
from tokenization_barcodemae import BarcodeMAETokenizer
start = time.perf_counter()
args = Namespace(data_file={path!r}, splits=["pretrain", "other_heldout"], sequence_column=None, on_bad_sequence="error",
                 validation_size=0.02, max_validation_sequences=2000, seed=42)  # train.py's data flags, as it runs
config = training.recipe_config()
tokenizer = BarcodeMAETokenizer()
train_data, validation_data = training.load_pretraining_data(args, config, lambda message: None)
loader = torch.utils.data.DataLoader(training.OffsetBarcodes(train_data, 6, 0), batch_size=32,
    sampler=training.EpochSampler(len(train_data), 0), collate_fn=training.make_collate(tokenizer, config.max_tokens))
for index, batch in enumerate(loader):
    if index + 1 == {batches}:
        break
print(json.dumps({{"train": len(train_data), "validation": len(validation_data), "seconds": time.perf_counter() - start,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "peak_anon_mib": peak["RssAnon"], "peak_file_mib": peak["RssFile"]}}))
"""


def make_file(source: Path, rows: int, folder: Path) -> Path:
    import pandas as pd

    path = folder / f"barcodes_{rows}.csv"
    if path.exists():
        return path
    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    prefixes = ("".join(kmer) for kmer in itertools.product("ACGT", repeat=6))
    written, header = 0, True
    while written < rows:
        chunk = frame.head(rows - written).copy()
        prefix = next(prefixes)
        chunk["dna_barcode"] = prefix + chunk["dna_barcode"].str.slice(6)
        chunk.to_csv(path, mode="a", header=header, index=False)
        written, header = written + len(chunk), False
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="/work/shared/data/bold_insecta_coi.csv.gz")
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--folder", default="/tmp/barcodemae_bench_data")
    args = parser.parse_args()
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    print("| rows | file MiB | training / validation barcodes | seconds (cold cache) | peak RSS MiB | "
          "peak anonymous RSS MiB | peak file-backed RSS MiB |\n|---|---|---|---|---|---|---|")
    for rows in args.rows:
        path = make_file(Path(args.source), rows, folder)
        with tempfile.TemporaryDirectory(dir=folder) as cache:
            env = {"HF_DATASETS_CACHE": cache, "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
            code = CHILD.format(repo=str(REPO), path=str(path), batches=args.batches)
            result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
            if result.returncode:
                sys.exit(result.stderr)
            stats = json.loads(result.stdout.strip().splitlines()[-1])
        size = path.stat().st_size / 2**20
        print(f"| {rows:,} | {size:.0f} | {stats['train']:,} / {stats['validation']:,} | {stats['seconds']:.0f} | "
              f"{stats['peak_rss_mib']:.0f} | {stats['peak_anon_mib']} | {stats['peak_file_mib']} |", flush=True)


if __name__ == "__main__":
    main()
