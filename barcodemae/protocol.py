"""The BIOSCAN-5M frozen-feature protocol, for BarcodeMAE and any baseline, several models side by side.

    barcodemae evaluate --models kmer:4 kmer:6 outputs/barcodemae-small \
        --data_file barcodemae/bioscan_fixture.csv.gz --output_dir outputs/probes

Models: a local folder or Hub id (BarcodeMAE through this package's classes, others through `AutoModel`, their own
code run only with `--trust_remote_code`), or the non-learned baselines: `kmer:K` (overlapping K-mer counts,
normalised to frequencies), `aa:K` (amino-acid K-mer frequencies of the translation) and specs joined by `+`
(`kmer:6+aa:3`: each a unit vector, concatenated). `MODEL@L` pools layer L (0 = embedding output) instead of the
last; `--all_layers` probes every layer from one forward pass; `--reading_frames` averages the embeddings of the
sequence read from start offsets 0..k-1.

Embedding of a barcode: mean over its tokens (padding excluded) of the chosen hidden state. Every split is prepared
by `barcodemae.data.prepare_barcodes`, as for training: barcodes cleaned (trailing Ns stripped, cut to their first
`--max_length` nt: 660 by default, BIOSCAN-5M's input, the same for every encoder and command; 0 keeps all), then
one row kept per unique cleaned barcode (BIOSCAN-5M deduplicates by barcode). A barcode
with a character that is not a nucleotide code, or too short or ambiguous for a model to embed
(`barcodemae.data.check_embeddable`), stops the run; `--on_bad_sequence skip` drops such rows instead.

Tasks (all seeded, all on frozen embeddings):
1. Closed-world species (`train` -> `test`): the test species are all seen in training.
   a) linear probe: multinomial logistic regression (L2, C=`--probe_c`, L-BFGS) on embeddings standardised with the
      train mean/std; b) 1-NN, cosine, keys = `train`. Accuracy and macro-F1.
2. Open-world genus (`train` keys -> `test_unseen` queries): the query species never occur in `train`, their genera
   do, so a good embedding places a new species next to its congeners. 1-NN, cosine. Accuracy, balanced accuracy,
   macro-F1; the same for family and order (as in the BIOSCAN-5M notebook).
3. BIN reconstruction (`test` + `test_unseen` pooled, i.e. every held-out labelled barcode): UMAP to 50 dims (cosine),
   agglomerative Ward clustering into as many clusters as there are distinct `dna_bin`, AMI against `dna_bin`.
4. Harmonic mean of (1a) species accuracy, (2) genus accuracy, (3) BIN AMI.
A row whose label is unknown (empty) at the rank a task scores is left out of that task (as a query and as a key).

Outputs in `--output_dir`: `results.md` (the table, also printed), `results.json` (every number and the settings),
`umap_<model>.png` (2-D UMAP of the pooled held-out barcodes coloured by order), and `cache/` (embeddings per model,
options and split, keyed by a hash of the model weights, tokenizer, options and sequences).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from barcodemae.cache import EmbeddingCache
from barcodemae.data import FIXTURE, MAX_NUCLEOTIDES, SplitData, load_splits
from barcodemae.encoders import Encoder, from_model, load_encoder
from barcodemae.errors import UserError
from barcodemae.neighbours import nearest_neighbour


# The non-learned rows every results table keeps beside the learned encoders: 6-mer frequencies, amino-acid 3-mers of
# the translation, and the two side by side (each a unit vector), the best non-learned features measured (issue 30).
NON_LEARNED_ROWS = ("kmer:6", "aa:3", "kmer:6+aa:3")


@dataclass
class ProtocolSettings:
    """Every option of the protocol; saved with the results."""

    train_split: str = "train"
    test_split: str = "test"
    unseen_split: str = "test_unseen"
    max_length: int = MAX_NUCLEOTIDES  # nucleotides kept per barcode (0: all), as in every command
    batch_size: int = 64
    precision: str = "fp32"  # fp32, bf16 (autocast; CPU with AMX or GPU) or int8 (dynamic, CPU)
    reading_frames: bool = False
    layer: int | None = None  # None: the last layer
    all_layers: bool = False
    probe_c: float = 1.0
    probe_max_iter: int = 100  # L-BFGS iterations (sklearn's default); 50 already gives the same accuracy at 16k x 768
    umap_n_neighbors: int = 15
    umap_min_dist: float = 0.0
    umap_components: int = 50
    bin_max_points: int | None = None  # subsample the BIN task (seeded) above this many points; None = all
    plots: bool = True
    seed: int = 0
    device: str = "auto"
    on_bad_sequence: str = "error"  # or "skip": drop barcodes with a bad character or too short to embed
    trust_remote_code: bool = False  # run a non-BarcodeMAE model's own code (`encoders.load_model`)




def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    import warnings

    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    with warnings.catch_warnings():  # open-world 1-NN may predict classes absent from the queries: expected
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        balanced = balanced_accuracy_score(y_true, y_pred)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "n_queries": int(len(y_true)),
        "n_classes": int(len(np.unique(y_true))),
    }


def linear_probe(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, c: float = 1.0, max_iter: int = 100
) -> np.ndarray:
    """Multinomial logistic regression on standardised features; returns predicted labels for `test_x`.

    Objective (sklearn's `LogisticRegression(C=c)`, divided by c*n): mean cross-entropy + ||W||^2 / (2 c n),
    minimised by full-batch L-BFGS (strong Wolfe) from zero weights, in float32 torch: deterministic, and several
    times faster than sklearn's float64 L-BFGS at 16k x 768 x 700 classes.
    """
    classes, targets = np.unique(train_y, return_inverse=True)
    x = torch.from_numpy(np.ascontiguousarray(train_x, dtype=np.float32))
    mean, std = x.mean(0), x.std(0)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    x = (x - mean) / std
    targets_t = torch.from_numpy(targets)
    weight = torch.zeros(x.shape[1], len(classes), requires_grad=True)
    bias = torch.zeros(len(classes), requires_grad=True)
    if len(classes) > 1:
        penalty = 1.0 / (2.0 * c * len(x))
        optimizer = torch.optim.LBFGS(
            [weight, bias], lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe",
            tolerance_grad=1e-5, tolerance_change=1e-9,
        )

        def closure():
            optimizer.zero_grad()
            loss = F.cross_entropy(x @ weight + bias, targets_t) + penalty * weight.pow(2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
    with torch.inference_mode():
        test = (torch.from_numpy(np.ascontiguousarray(test_x, dtype=np.float32)) - mean) / std
        predicted = (test @ weight + bias).argmax(1).numpy()
    return classes[predicted]


def reduce_umap(x: np.ndarray, n_components: int, n_neighbors: int, min_dist: float, seed: int) -> np.ndarray:
    import umap

    n_neighbors = min(n_neighbors, len(x) - 1)
    n_components = min(n_components, len(x) - 2)
    reducer = umap.UMAP(
        n_components=n_components, n_neighbors=n_neighbors, min_dist=min_dist, metric="cosine",
        random_state=seed, n_jobs=1, init="spectral" if len(x) > n_components + 1 else "random",
    )
    return reducer.fit_transform(x).astype(np.float32)


def cluster_ami(reduced: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
    """Ward agglomerative clustering into as many clusters as distinct `labels`; AMI against `labels`."""
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics import adjusted_mutual_info_score

    n_clusters = len(np.unique(labels))
    predicted = AgglomerativeClustering(n_clusters=n_clusters, linkage="ward").fit_predict(reduced)
    return float(adjusted_mutual_info_score(labels, predicted)), n_clusters


def harmonic_mean(values: Sequence[float]) -> float:
    values = [float(value) for value in values]
    if any(value <= 0 for value in values):
        return 0.0
    return len(values) / sum(1.0 / value for value in values)


def _known(split: SplitData, column: str) -> np.ndarray:
    return np.flatnonzero(split.labels[column] != "")


def _require(split: SplitData, column: str, role: str) -> np.ndarray:
    rows = _known(split, column)
    if len(rows) == 0:
        raise UserError(
            f"{role}: split {split.name!r} has no row with a known {column!r} label "
            f"({len(split)} unique barcodes in it); choose another split"
        )
    return rows


def _bin_subsample(rows: np.ndarray, settings: ProtocolSettings) -> np.ndarray:
    """`settings.bin_max_points` of `rows` (seeded, in order), or all of them."""
    if settings.bin_max_points is None or len(rows) <= settings.bin_max_points:
        return rows
    return np.sort(np.random.default_rng(settings.seed).choice(rows, settings.bin_max_points, replace=False))


def run_probes(
    embeddings: dict[str, np.ndarray], splits: dict[str, SplitData], settings: ProtocolSettings
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """All tasks on precomputed embeddings (`embeddings[split_name]` aligned with `splits[split_name]`).

    Returns the metrics and, for plotting, the pooled held-out embeddings and their orders.
    """
    train, test, unseen = (splits[settings.train_split], splits[settings.test_split], splits[settings.unseen_split])
    results: dict[str, Any] = {}
    timings: dict[str, float] = {}

    # 1. closed-world species
    train_rows = _require(train, "species", "closed-world species (keys/training)")
    test_rows = _require(test, "species", "closed-world species (queries)")
    train_x, test_x = embeddings[train.name][train_rows], embeddings[test.name][test_rows]
    train_y, test_y = train.labels["species"][train_rows], test.labels["species"][test_rows]
    started = time.perf_counter()
    predicted = linear_probe(train_x, train_y, test_x, c=settings.probe_c, max_iter=settings.probe_max_iter)
    timings["linear_probe_s"] = time.perf_counter() - started
    results["species_linear_probe"] = classification_metrics(test_y, predicted)
    started = time.perf_counter()
    predicted = train_y[nearest_neighbour(train_x, test_x)]
    timings["species_1nn_s"] = time.perf_counter() - started
    results["species_1nn"] = classification_metrics(test_y, predicted)

    # 2. open-world genus (and family, order): 1-NN of unseen-species queries against the seen-species keys
    started = time.perf_counter()
    for rank in ("genus", "family", "order"):
        key_rows = _require(train, rank, f"open-world {rank} (keys)")
        query_rows = _require(unseen, rank, f"open-world {rank} (queries)")
        neighbours = nearest_neighbour(embeddings[train.name][key_rows], embeddings[unseen.name][query_rows])
        predicted = train.labels[rank][key_rows][neighbours]
        results[f"{rank}_1nn_unseen"] = classification_metrics(unseen.labels[rank][query_rows], predicted)
    timings["open_world_1nn_s"] = time.perf_counter() - started

    # 3. BIN reconstruction on test + test_unseen
    pooled_x = np.concatenate([embeddings[test.name], embeddings[unseen.name]])
    pooled_bin = np.concatenate([test.labels["dna_bin"], unseen.labels["dna_bin"]])
    pooled_order = np.concatenate([test.labels["order"], unseen.labels["order"]])
    rows = np.flatnonzero(pooled_bin != "")
    if len(rows) < 3:
        raise UserError(f"BIN reconstruction: only {len(rows)} barcodes of {test.name!r} + {unseen.name!r} have a dna_bin")
    rows = _bin_subsample(rows, settings)
    started = time.perf_counter()
    reduced = reduce_umap(
        pooled_x[rows], settings.umap_components, settings.umap_n_neighbors, settings.umap_min_dist, settings.seed
    )
    timings["bin_umap_s"] = time.perf_counter() - started
    started = time.perf_counter()
    ami, n_clusters = cluster_ami(reduced, pooled_bin[rows])
    timings["bin_ward_s"] = time.perf_counter() - started
    results["bin_reconstruction"] = {"ami": ami, "n_points": int(len(rows)), "n_bins": n_clusters}

    results["harmonic_mean"] = harmonic_mean(
        [results["species_linear_probe"]["accuracy"], results["genus_1nn_unseen"]["accuracy"], ami]
    )
    results["timings"] = timings
    return results, {"x": pooled_x, "order": pooled_order}


# --------------------------------------------------------------------------------------------------------------------
# The whole protocol
# --------------------------------------------------------------------------------------------------------------------


def _encoder(spec: str | tuple, settings: ProtocolSettings) -> Encoder:
    """The encoder of a model spec (`load_encoder`: "kmer:K", "aa:K", a folder / Hub id, "@L": layer L, specs joined
    by "+") or of (name, model, tokenizer)."""
    options = dict(batch_size=settings.batch_size, precision=settings.precision, reading_frames=settings.reading_frames)
    if isinstance(spec, tuple):
        name, model, tokenizer = spec
        return from_model(name, model, tokenizer, settings.layer, settings.all_layers, **options)
    return load_encoder(str(spec), settings.layer, settings.all_layers, settings.device, settings.trust_remote_code,
                        **options)  # fmt: skip


def _embed_splits(encoder: Encoder, splits: dict[str, SplitData], cache: EmbeddingCache, progress: bool) -> list:
    """One entry per probed layer: (row name, {split: embeddings}, info)."""
    per_split = {name: cache.embed_layers(encoder, split.sequences, name, progress) for name, split in splits.items()}
    key = encoder.cache_key()
    info = {"type": key["kind"], "dims": int(next(iter(per_split.values())).shape[-1])}
    if key["kind"] != "model":  # kmer:K, aa:K, specs joined by +: one row, described by its cache key
        settings = {name: value for name, value in key.items() if name != "kind"}
        return [(encoder.name, {name: array[0] for name, array in per_split.items()}, {**info, **settings})]
    info.update(fingerprint=key["fingerprint"][:16], device=str(next(encoder.model.parameters()).device))
    rows = []
    for index, layer in enumerate(encoder.layers):
        default_layer = len(encoder.layers) == 1 and layer == -1
        rows.append((encoder.name if default_layer else f"{encoder.name}@{layer}",
                     {name: array[index] for name, array in per_split.items()}, {**info, "layer": layer}))  # fmt: skip
    return rows


def _plot_umap(name: str, x: np.ndarray, orders: np.ndarray, path: Path, settings: ProtocolSettings) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _bin_subsample(np.arange(len(x)), settings)
    points = reduce_umap(x[rows], 2, settings.umap_n_neighbors, 0.1, settings.seed)
    labels = np.where(orders[rows] == "", "(unknown)", orders[rows])
    figure, axis = plt.subplots(figsize=(7, 6), dpi=120)
    for label in sorted(set(labels)):
        selected = labels == label
        axis.scatter(points[selected, 0], points[selected, 1], s=3, alpha=0.7, label=f"{label} ({selected.sum()})")
    axis.set_title(f"{name}: UMAP of {settings.test_split} + {settings.unseen_split}, by order")
    axis.set_xticks([])
    axis.set_yticks([])
    axis.legend(markerscale=4, fontsize=8, loc="best")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


TABLE_COLUMNS = (
    ("species LP acc", lambda r: r["species_linear_probe"]["accuracy"]),
    ("species LP F1", lambda r: r["species_linear_probe"]["macro_f1"]),
    ("species 1-NN acc", lambda r: r["species_1nn"]["accuracy"]),
    ("species 1-NN F1", lambda r: r["species_1nn"]["macro_f1"]),
    ("genus 1-NN acc", lambda r: r["genus_1nn_unseen"]["accuracy"]),
    ("genus 1-NN bal acc", lambda r: r["genus_1nn_unseen"]["balanced_accuracy"]),
    ("genus 1-NN F1", lambda r: r["genus_1nn_unseen"]["macro_f1"]),
    ("family 1-NN acc", lambda r: r["family_1nn_unseen"]["accuracy"]),
    ("order 1-NN acc", lambda r: r["order_1nn_unseen"]["accuracy"]),
    ("BIN AMI", lambda r: r["bin_reconstruction"]["ami"]),
    ("harmonic mean", lambda r: r["harmonic_mean"]),
)


def markdown_table(results: dict[str, dict]) -> str:
    header = "| model | " + " | ".join(name for name, _ in TABLE_COLUMNS) + " |"
    lines = [header, "|---|" + "---:|" * len(TABLE_COLUMNS)]
    for model, metrics in results.items():
        lines.append(f"| {model} | " + " | ".join(f"{100 * get(metrics):.1f}" for _, get in TABLE_COLUMNS) + " |")
    return "\n".join(lines)


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", name).strip("_") or "model"


def evaluate(
    models: Sequence[str | tuple],
    data_file: str | os.PathLike = FIXTURE,
    output_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    **options: Any,
) -> dict[str, Any]:
    """Run the whole protocol for several models; returns {"settings", "data", "results": {model: metrics}, "table"}.

    Args:
        models: "kmer:K", "aa:K", a folder / Hub id (optionally "@L" for layer L), such specs joined by "+"
            ("kmer:6+aa:3"), or (name, model, tokenizer) for an in-memory model (e.g. a checkpoint during training).
        data_file: a BIOSCAN-5M-layout metadata file (default: the bundled fixture).
        output_dir: where results.md / results.json / umap_*.png go (None: nothing written).
        cache_dir: embedding cache (default: `output_dir/cache`; None and no output_dir: no cache).
        options: any field of `ProtocolSettings` (e.g. layer=3, all_layers=True, reading_frames=True,
            precision="bf16", umap_n_neighbors=5, plots=False).
    """
    settings = ProtocolSettings(**options)
    if not models:
        raise UserError("no model given: name at least one (a folder, a Hub id, or kmer:K)")
    torch.manual_seed(settings.seed)
    np.random.seed(settings.seed)
    encoders = [_encoder(spec, settings) for spec in models]  # every model is checked before anything is written
    started = time.perf_counter()
    split_names = list(dict.fromkeys([settings.train_split, settings.test_split, settings.unseen_split]))
    min_run = max(encoder.min_run for encoder in encoders)
    splits = load_splits(data_file, split_names, settings.max_length, settings.on_bad_sequence, min_run)
    data_info = {
        "data_file": str(data_file),
        "splits": {name: {"rows": split.rows_before_dedup, "unique_barcodes": len(split)} for name, split in splits.items()},
        "load_s": time.perf_counter() - started,
    }
    output = Path(output_dir) if output_dir is not None else None
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
    cache = EmbeddingCache(cache_dir if cache_dir is not None or output is None else output / "cache")
    results: dict[str, dict] = {}
    infos: dict[str, dict] = {}
    for encoder in encoders:
        started = time.perf_counter()
        rows = _embed_splits(encoder, splits, cache, progress)
        embed_s = time.perf_counter() - started
        for row_name, embeddings, info in rows:
            if row_name in results:
                raise UserError(f"model {row_name!r} is listed twice")
            metrics, pooled = run_probes(embeddings, splits, settings)
            metrics["timings"]["embed_s"] = embed_s
            if output is not None and settings.plots:
                plot_path = output / f"umap_{_safe_name(row_name)}.png"
                _plot_umap(row_name, pooled["x"], pooled["order"], plot_path, settings)
                info["umap_plot"] = plot_path.name
            results[row_name] = metrics
            infos[row_name] = info
    table = markdown_table(results)
    report = {
        "settings": asdict(settings),
        "data": data_info,
        "models": infos,
        "results": results,
        "table": table,
        "environment": {"torch": torch.__version__, "threads": torch.get_num_threads()},
    }
    if output is not None:
        (output / "results.md").write_text(_markdown_report(report))
        (output / "results.json").write_text(json.dumps(report, indent=1, default=str))
    return report


def _markdown_report(report: dict) -> str:
    settings, data = report["settings"], report["data"]
    split_text = ", ".join(
        f"{name} {info['unique_barcodes']} unique of {info['rows']} rows" for name, info in data["splits"].items()
    )
    return (
        f"# Frozen-feature probes (BIOSCAN-5M protocol)\n\nData: `{data['data_file']}` ({split_text}).\n\n"
        f"{report['table']}\n\nAll numbers in %. LP = linear probe ({settings['train_split']} -> {settings['test_split']}); "
        f"1-NN = cosine nearest neighbour; species: {settings['train_split']} -> {settings['test_split']}; "
        f"genus/family/order: {settings['train_split']} keys -> {settings['unseen_split']} queries; "
        f"BIN AMI: UMAP({settings['umap_components']}, cosine, n_neighbors={settings['umap_n_neighbors']}) + Ward on "
        f"{settings['test_split']} + {settings['unseen_split']}; harmonic mean of species LP acc, genus 1-NN acc, BIN AMI.\n"
    )
