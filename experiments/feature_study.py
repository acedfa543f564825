"""The pretraining-recipe study (issue 11): which objective, optimiser, mask ratio, size and length give frozen
features that beat an untrained encoder? Every run is `train.py` with probes (`--probe_file`), so each one logs genus
1-NN on unseen species, species 1-NN and the participation ratio along training; the summary adds the untrained
encoder (each run's step-0 probe) and the non-learned rows (kmer:6, aa:3, kmer:6+aa:3) on the same probe subsample.

    python experiments/feature_study.py --data_file ../shared/data/bold_insecta_coi.csv.gz \\
        --output_dir outputs/feature_study --recipes paper visible contrastive --sizes 2x128 --max_steps 500
    python experiments/feature_study.py --output_dir outputs/feature_study --summary_only

Runs go `--parallel` at a time (one CPU thread each on a CPU; on a GPU they share the card); `--time_budget_s` stops
the ones still running when it is spent (their probes so far stay in their metrics.jsonl).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from barcodemae.data import FIXTURE  # noqa: E402
from barcodemae.feature_probes import FeatureProbe  # noqa: E402
from barcodemae.recipes import RECIPES  # noqa: E402
from barcodemae.encoders import load_encoder  # noqa: E402
from barcodemae.protocol import NON_LEARNED_ROWS  # noqa: E402

SIZES = {"2x128": "tiny", "4x256": "small", "paper": "paper"}  # run-name prefix -> train.py --model_size
PROBE_METRICS = ("probe_genus_1nn_unseen", "probe_species_1nn", "probe_participation_ratio")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_file", default=str(FIXTURE))
    parser.add_argument("--output_dir", default="outputs/feature_study")
    parser.add_argument("--recipes", nargs="+", choices=sorted(RECIPES), default=["paper", "visible", "contrastive"])
    parser.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["2x128"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--max_steps", type=int, default=500)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--probe_steps", type=int, default=100)
    parser.add_argument("--probe_keys", type=int, default=4000, help="train barcodes in the probe subsample")
    parser.add_argument("--probe_queries", type=int, default=1000, help="test and test_unseen barcodes, each")
    parser.add_argument("--parallel", type=int, default=2, help="runs at a time")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per run")
    parser.add_argument("--time_budget_s", type=float, default=None, help="stop runs still going after this long")
    parser.add_argument("--summary_only", action="store_true")
    parser.add_argument("train_flags", nargs=argparse.REMAINDER, help="after --: more train.py flags for every run")
    return parser.parse_args()


def run_name(size: str, recipe: str, seed: int) -> str:
    return f"{size}-{recipe}-s{seed}"


def train_command(args: argparse.Namespace, size: str, recipe: str, seed: int) -> list[str]:
    extra = [flag for flag in args.train_flags if flag != "--"]
    return [sys.executable, str(ROOT / "train.py"), "--data_file", args.data_file,
            "--output_dir", str(Path(args.output_dir) / run_name(size, recipe, seed)), "--seed", str(seed),
            "--max_steps", str(args.max_steps), "--per_device_train_batch_size", str(args.batch_size),
            "--probe_file", args.data_file, "--probe_steps", str(args.probe_steps), "--checkpointing_steps", "0",
            "--probe_keys", str(args.probe_keys), "--probe_queries", str(args.probe_queries),
            "--logging_steps", "50", "--report_to", "none", "--recipe", recipe, "--model_size", SIZES[size], *extra]  # fmt: skip


def run_all(args: argparse.Namespace) -> None:
    """Start the runs `--parallel` at a time; record each one's command, wall time and exit status in runs.json."""
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    pending = [(size, recipe, seed) for seed in args.seeds for size in args.sizes for recipe in args.recipes]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false"}
    running, records, started = {}, {}, time.time()
    while pending or running:
        while pending and len(running) < args.parallel:
            key = pending.pop(0)
            name = run_name(*key)
            log = open(output_dir / f"{name}.log", "w")
            command = train_command(args, *key)
            running[name] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env), time.time())
            records[name] = {"command": " ".join(command[1:])}
        time.sleep(2)
        out_of_time = args.time_budget_s is not None and time.time() - started > args.time_budget_s
        for name, (process, start) in list(running.items()):
            if out_of_time and process.poll() is None:
                process.terminate()
                process.wait()
            if process.poll() is not None:
                records[name].update(returncode=process.returncode, wall_s=round(time.time() - start, 1))
                print(f"{name}: exit {process.returncode} after {records[name]['wall_s']} s", flush=True)
                del running[name]
        if out_of_time:
            pending.clear()
    runs_file = output_dir / "runs.json"
    previous = json.loads(runs_file.read_text()) if runs_file.exists() else {}
    runs_file.write_text(json.dumps({**previous, **records}, indent=1))


def read_metrics(run_dir: Path) -> tuple[list[dict], list[dict]]:
    """(probe rows, training-log rows) of a run's metrics.jsonl."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [row for row in rows if "probe_species_1nn" in row], [row for row in rows if "loss" in row]


def table_row(label: str, row: dict, probes: list[dict], log: dict, wall) -> str:
    best = max(probes, key=lambda r: r["probe_genus_1nn_unseen"])
    return (f"| {label} | {row['step']} | {row['probe_genus_1nn_unseen']:.1f} / {row['probe_genus_1nn_unseen_layer0']:.1f} | "
            f"{row['probe_species_1nn']:.1f} | {row['probe_participation_ratio']:.1f} | "
            f"{best['probe_genus_1nn_unseen']:.1f} ({best['step']}) | {log.get('masked_accuracy', float('nan')):.3f} | "
            f"{log.get('seq_per_s', float('nan')):.0f} | {wall} |")  # fmt: skip


def summarise(args: argparse.Namespace) -> str:
    """A markdown table: the non-learned rows and each run's untrained (step 0), last and best probes; written to
    summary.md."""
    output_dir = Path(args.output_dir)
    records = json.loads((output_dir / "runs.json").read_text()) if (output_dir / "runs.json").exists() else {}
    probe = FeatureProbe(args.data_file, args.probe_keys, args.probe_queries)
    header = ("| run | steps | genus 1-NN unseen (last layer / layer 0) | species 1-NN | participation ratio | "
              "best genus 1-NN (step) | masked acc | seq/s | wall s |")  # fmt: skip
    lines, summary = [header, "|" + "---|" * 9], {}
    for spec in NON_LEARNED_ROWS:
        summary[spec] = row = probe.score(load_encoder(spec).embed(probe.sequences))
        lines.append(f"| {spec} | - | {row['probe_genus_1nn_unseen']:.1f} | {row['probe_species_1nn']:.1f} | "
                     f"{row['probe_participation_ratio']:.1f} | - | - | - | - |")  # fmt: skip
    for run_dir in sorted(path for path in output_dir.iterdir() if (path / "metrics.jsonl").exists()):
        probes, logs = read_metrics(run_dir)
        if not probes:
            continue
        size, *_, seed = run_dir.name.split("-")
        if probes[0]["step"] == 0 and f"untrained {size} {seed}" not in summary:  # same encoder for every recipe
            summary[f"untrained {size} {seed}"] = probes[0]
            lines.append(table_row(f"untrained {size} ({seed})", probes[0], probes[:1], {}, "-"))
        lines.append(table_row(run_dir.name, probes[-1], probes, logs[-1] if logs else {},
                               records.get(run_dir.name, {}).get("wall_s", "-")))  # fmt: skip
        summary[run_dir.name] = {"last": probes[-1], "curve": probes, "log": logs[-1] if logs else {}}
    text = "\n".join(lines) + "\n"
    (output_dir / "summary.md").write_text(text)
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return text


def main() -> None:
    args = parse_args()
    if not args.summary_only:
        run_all(args)
    print(summarise(args))


if __name__ == "__main__":
    main()
