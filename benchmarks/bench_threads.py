"""train.py's CPU step speed under thread settings, with and without another process busy on one core.

    python benchmarks/bench_threads.py [--steps 12] [--batch_size 32]

Each setting runs in a fresh process (OpenMP reads its environment once, at start-up): 2 threads (torch's default
on 2 cores), 1 thread, and 2 threads with OMP_WAIT_POLICY=PASSIVE (idle OpenMP threads sleep instead of spinning).
Each is timed alone and beside a pure-Python busy loop (what "another job on the machine" looks like to OpenMP).
Small model (4+4 x 256) as `python train.py` trains it, fp32 or bf16 as train.py picks, forward + backward + AdamW.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from machine import cpu_description  # the benchmarks folder is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {
    "2 threads (default)": {"OMP_NUM_THREADS": "2"},
    "1 thread": {"OMP_NUM_THREADS": "1"},
    "2 threads, OMP_WAIT_POLICY=PASSIVE": {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"},
}
STEP_TIMER = """
import json, sys, time, torch
sys.path.insert(0, {root!r})
from barcodemae import training
from barcodemae.data import FIXTURE, clean_barcode, load_barcodes
from modeling_barcodemae import BarcodeMAEForPreTraining
from tokenization_barcodemae import BarcodeMAETokenizer
config = training.recipe_config()
model = BarcodeMAEForPreTraining(config).train()
model.set_attn_implementation("eager")
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
sequences = [clean_barcode(s) for s in load_barcodes(FIXTURE, splits=["pretrain"])["sequence"][:{batch}]]
batch = dict(BarcodeMAETokenizer()(sequences, padding=True, truncation=True, return_tensors="pt"))
precision = training.resolve_mixed_precision("auto")
times = []
for step in range({steps} + 2):
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    times.append(time.perf_counter() - start)
times = sorted(times[2:])
print(json.dumps({{"seq_per_s": {batch} / times[len(times) // 2], "threads": torch.get_num_threads()}}))
"""


def time_setting(env: dict, steps: int, batch: int) -> float:
    code = STEP_TIMER.format(root=str(ROOT), steps=steps, batch=batch)
    result = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True,
                            check=True)  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])["seq_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12, help="timed steps per setting (median reported)")
    parser.add_argument("--batch_size", type=int, default=32)
    args = parser.parse_args()
    print(f"CPU: {cpu_description()}; median of {args.steps} steps")
    rows = {}
    for loaded in (False, True):
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if loaded else None
        try:
            time.sleep(1.0 if loaded else 0.0)
            for name, env in SETTINGS.items():
                rows.setdefault(name, []).append(time_setting(env, args.steps, args.batch_size))
        finally:
            if busy:
                busy.kill()
    print("| setting | idle: sequences/s | one core busy: sequences/s | busy / idle |\n|---|---:|---:|---:|")
    for name, (idle, loaded) in rows.items():
        print(f"| {name} | {idle:.1f} | {loaded:.1f} | {loaded / idle:.2f} |")


if __name__ == "__main__":
    main()
