"""Probe the MAE/MLM pretraining runs of `experiments/mae_vs_mlm.sh` and summarise them (issue 5).

    python experiments/probe_runs.py --data_file DATA --runs_dir outputs/mae_vs_mlm --seeds 0 1 --part all

Parts (each writes `runs_dir/probes/<part>/results.json`; `summary` only reads them). Learned models are embedded
with bf16 autocast (`--precision`; 3.5x faster on this CPU, embeddings within cosine 0.99999 of fp32, see
BENCHMARKS.md): the parts take about 80 core-minutes on the 2-core CPU.
- `main`: the table: kmer:4, the non-learned rows (`NON_LEARNED_ROWS`: kmer:6, aa:3, kmer:6+aa:3), an untrained
  encoder of the same size, and every final run.
- `curves`: the same protocol on the intermediate checkpoints (`checkpoints/step_N`) of the seed-0 runs.
- `layers`: every layer of the seed-0 runs (0 = embedding output).
- `frames`: the seed-0 runs with embeddings averaged over the k reading frames.
- `summary`: `runs_dir/summary.md` (mean ± spread over seeds) and the learning-curve PNGs.
(The released checkpoint is written by experiments/release_checkpoint.py.)
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from configuration_barcodemae import BarcodeMAEConfig  # noqa: E402
from barcodemae.data import load_splits  # noqa: E402
from barcodemae.feature_probes import participation_ratio  # noqa: E402
from barcodemae.neighbours import nearest_neighbour  # noqa: E402
from barcodemae.protocol import NON_LEARNED_ROWS, TABLE_COLUMNS, evaluate  # noqa: E402
from modeling_barcodemae import BarcodeMAEForPreTraining, BarcodeMAEModel  # noqa: E402
from tokenization_barcodemae import BarcodeMAETokenizer  # noqa: E402

OBJECTIVES = ("mae", "mlm")
SUMMARY_COLUMNS = ("species LP acc", "species 1-NN acc", "genus 1-NN acc", "BIN AMI", "harmonic mean")


def run_dirs(runs_dir: Path, seeds: list[int]) -> dict[str, Path]:
    return {f"{objective}-seed{seed}": runs_dir / f"{objective}-seed{seed}" for seed in seeds for objective in OBJECTIVES}


def final_step(run: Path) -> int:
    """The last optimizer step of a run (its final model is the one exported to the run folder)."""
    return json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"]


def untrained_encoder(runs_dir: Path, seeds: list[int]) -> tuple:
    """An encoder of the runs' size with the same random initialisation scheme, never trained (the floor)."""
    config = BarcodeMAEConfig.from_pretrained(runs_dir / f"mae-seed{seeds[0]}")
    torch.manual_seed(seeds[0])
    return ("untrained", BarcodeMAEModel(config).eval(), BarcodeMAETokenizer(k_mer=config.k_mer))


def checkpoint_encoder(run: Path, checkpoint: Path) -> BarcodeMAEModel:
    """The encoder of a training checkpoint (accelerate's `model.safetensors` of BarcodeMAEForPreTraining)."""
    model = BarcodeMAEForPreTraining(BarcodeMAEConfig.from_pretrained(run))
    model.load_state_dict(load_file(checkpoint / "model.safetensors"))
    return model.barcodemae.eval()


def probe(part: str, models: list, args: argparse.Namespace, **options) -> None:
    output_dir = args.runs_dir / "probes" / part
    report = evaluate(models, data_file=args.data_file, output_dir=output_dir, cache_dir=args.runs_dir / "probes" / "cache",
                      seed=0, precision=args.precision, progress=False, **options)
    print(f"\n## {part}\n\n{report['table']}", flush=True)


def run_part(part: str, args: argparse.Namespace) -> None:
    runs = run_dirs(args.runs_dir, args.seeds)
    seed0 = [str(path) for name, path in runs.items() if name.endswith(f"seed{args.seeds[0]}")]
    if part == "main":
        models = ["kmer:4", *NON_LEARNED_ROWS, untrained_encoder(args.runs_dir, args.seeds), *map(str, runs.values())]
        probe(part, models, args)
    elif part == "curves":
        tokenizer = BarcodeMAETokenizer()
        models = []
        for name, run in runs.items():
            if not name.endswith(f"seed{args.seeds[0]}"):
                continue
            last = final_step(run)  # its model is the main table's row
            for checkpoint in sorted((run / "checkpoints").glob("step_*"), key=lambda p: int(p.name.split("_")[1])):
                if int(checkpoint.name.split("_")[1]) != last:
                    models.append((f"{name}@{checkpoint.name}", checkpoint_encoder(run, checkpoint), tokenizer))
        probe(part, models, args, plots=False)
    elif part == "layers":
        probe(part, seed0, args, all_layers=True, plots=False)
    elif part == "frames":
        probe(part, seed0, args, reading_frames=True, plots=False)


def load_results(runs_dir: Path, part: str) -> dict:
    path = runs_dir / "probes" / part / "results.json"
    return json.loads(path.read_text())["results"] if path.exists() else {}


def table_row(metrics: dict) -> dict[str, float]:
    getters = dict(TABLE_COLUMNS)
    return {column: 100 * getters[column](metrics) for column in SUMMARY_COLUMNS}


def cached_embeddings(runs_dir: Path) -> dict[tuple[str, str], np.ndarray]:
    """{(model, split): last-layer embedding} from the probes' cache (single frame, bf16 or k-mer)."""
    found = {}
    for meta_path in (runs_dir / "probes" / "cache").glob("*.json"):
        meta = json.loads(meta_path.read_text())
        if meta.get("layers", [-1]) == [-1] and not meta.get("reading_frames", False):
            array = np.load(meta_path.with_suffix(".npy"))
            found[(meta["model"], meta["split"])] = array[0] if array.ndim == 3 else array
    return found


def diagnostics(args: argparse.Namespace, names: list[str]) -> list[str]:
    """Participation ratio of the train embeddings, and genus 1-NN (unseen) with raw, centred and standardised cosine.

    Centring (subtracting the mean train embedding) and standardising (also dividing each dimension by its train
    standard deviation, as the linear probe's input is) are not part of the protocol: they show how much a shared
    direction or a few high-variance ("rogue") dimensions dominate the cosine similarity of an embedding.
    """
    splits = load_splits(args.data_file, ["train", "test_unseen"])
    embeddings = cached_embeddings(args.runs_dir)
    train, unseen = splits["train"], splits["test_unseen"]
    keys, queries = train.labels["genus"] != "", unseen.labels["genus"] != ""
    lines = ["| model | participation ratio (train) | genus 1-NN, cosine | centred | standardised |", "|---|---:|---:|---:|---:|"]
    for name in names:
        if (name, "train") not in embeddings:
            continue
        x_train, x_unseen = embeddings[(name, "train")], embeddings[(name, "test_unseen")]
        mean, scale = x_train.mean(0), x_train.std(0) + 1e-6
        accuracies = []
        for shift, divide in ((0.0, 1.0), (mean, 1.0), (mean, scale)):
            neighbours = nearest_neighbour(((x_train - shift) / divide)[keys], ((x_unseen - shift) / divide)[queries])
            accuracies.append(100 * np.mean(train.labels["genus"][keys][neighbours] == unseen.labels["genus"][queries]))
        lines.append(f"| {Path(name).name} | {participation_ratio(x_train):.1f} | "
                     + " | ".join(f"{accuracy:.1f}" for accuracy in accuracies) + " |")
    return lines


def summarise(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = run_dirs(args.runs_dir, args.seeds)
    main = load_results(args.runs_dir, "main")
    lines = ["| model | " + " | ".join(SUMMARY_COLUMNS) + " |", "|---|" + "---:|" * len(SUMMARY_COLUMNS)]
    for name in ("kmer:4", *NON_LEARNED_ROWS, "untrained"):
        row = table_row(main[name])
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:.1f}" for c in SUMMARY_COLUMNS) + " |")
    for objective in OBJECTIVES:
        rows = [table_row(main[str(path)]) for name, path in runs.items() if name.startswith(objective)]
        cells = []
        for column in SUMMARY_COLUMNS:
            values = np.array([row[column] for row in rows])
            cells.append(f"{values.mean():.1f} ± {values.std():.1f} ({', '.join(f'{v:.1f}' for v in values)})")
        lines.append(f"| {objective} (mean ± sd over seeds {', '.join(map(str, args.seeds))}) | " + " | ".join(cells) + " |")
    sections = ["## Final models\n", *lines]
    for part, title in (("layers", "Per layer (seed 0)"), ("frames", "Reading-frame averaging (seed 0)")):
        results = load_results(args.runs_dir, part)
        if results:
            sections += [f"\n## {title}\n", "| model | " + " | ".join(SUMMARY_COLUMNS) + " |",
                         "|---|" + "---:|" * len(SUMMARY_COLUMNS)]
            for name, metrics in results.items():
                row = table_row(metrics)
                sections.append(f"| {Path(name).name} | " + " | ".join(f"{row[c]:.1f}" for c in SUMMARY_COLUMNS) + " |")
    curve_names = sorted(load_results(args.runs_dir, "curves"), key=lambda n: (n.split("@")[0], int(n.split("_")[-1])))
    sections += ["\n## Diagnostics\n", *diagnostics(args, [*main, *curve_names])]
    (args.runs_dir / "summary.md").write_text("\n".join(sections) + "\n")
    print("\n".join(sections))

    # Learning curves: validation masked-token loss/accuracy, and probe metrics along training.
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, run in runs.items():
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        evals = [r for r in records if "val_loss" in r]
        style = dict(color="tab:blue" if name.startswith("mae") else "tab:red", alpha=0.8, label=name)
        axes[0].plot([r["step"] for r in evals], [r["val_loss"] for r in evals], **style)
        axes[1].plot([r["step"] for r in evals], [r["val_masked_accuracy"] for r in evals], **style)
    axes[0].set(xlabel="step", ylabel="validation masked-token loss")
    axes[1].set(xlabel="step", ylabel="validation masked-token accuracy")
    axes[1].legend()
    figure.tight_layout()
    figure.savefig(args.figures_dir / "learning_curves.png", dpi=110)

    curves = load_results(args.runs_dir, "curves")
    untrained = table_row(main["untrained"])
    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name, run in runs.items():
        points = {0: untrained}
        for row_name, metrics in curves.items():
            if row_name.startswith(f"{name}@step_"):
                points[int(row_name.split("@step_")[1])] = table_row(metrics)
        points[final_step(run)] = table_row(main[str(run)])
        steps = sorted(points)
        style = dict(color="tab:blue" if name.startswith("mae") else "tab:red", alpha=0.8, marker="o", label=name)
        for axis, column in zip(axes, ("genus 1-NN acc", "species LP acc", "BIN AMI")):
            axis.plot(steps, [points[step][column] for step in steps], **style)
    for axis, column in zip(axes, ("genus 1-NN acc", "species LP acc", "BIN AMI")):
        axis.axhline(table_row(main["kmer:6"])[column], color="black", linestyle="--", label="kmer:6")
        axis.set(xlabel="pretraining step (0 = untrained)", ylabel=f"{column} (%)")
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(args.figures_dir / "probe_curves.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_file", required=True)
    parser.add_argument("--runs_dir", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--part", choices=("main", "curves", "layers", "frames", "summary"), required=True)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    parser.add_argument("--figures_dir", type=Path, default=Path(__file__).resolve().parents[1] / "results")
    args = parser.parse_args()
    args.figures_dir.mkdir(parents=True, exist_ok=True)
    if args.part == "summary":
        summarise(args)
    else:
        run_part(args.part, args)


if __name__ == "__main__":
    main()
