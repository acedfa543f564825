"""The BIOSCAN-5M frozen-feature protocol, for BarcodeMAE and any baseline, several models side by side.

    python evaluate_probes.py --models kmer:4 kmer:6 outputs/barcodemae-small \
        --data_file data/bioscan_fixture.csv.gz --output_dir outputs/probes

Models: a local folder or Hub id loadable with `AutoModel` (BarcodeMAE through `trust_remote_code`), or `kmer:K`,
the non-learned baseline (overlapping K-mer counts, normalised to frequencies). `MODEL@L` pools layer L
(0 = embedding output) instead of the last; `--all_layers` probes every layer from one forward pass;
`--reading_frames` averages the embeddings of the sequence read from start offsets 0..k-1.

Embedding of a barcode: mean over its tokens (padding excluded) of the chosen hidden state. Every split is first
deduplicated by barcode (one row per unique sequence, as BIOSCAN-5M's data preparation does), then the barcode is
cleaned (trailing Ns stripped, truncated to `--max_length` nt) the same way for every model.

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

import argparse
import hashlib
import json
import math
import os
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script from anywhere
from barcode_data import clean_barcode, deduplicate, load_barcodes  # noqa: E402
from modeling_barcodemae import masked_mean  # noqa: E402

FIXTURE = Path(__file__).resolve().parent / "data" / "bioscan_fixture.csv.gz"
EMBEDDING_VERSION = "1"  # bump when the embedding code changes what it computes: invalidates every cache entry
LABEL_COLUMNS = ("order", "family", "genus", "species", "dna_bin")

NUCLEOTIDE_CODE = np.full(256, 4, dtype=np.int64)
for _index, _base in enumerate("ACGT"):
    NUCLEOTIDE_CODE[ord(_base)] = NUCLEOTIDE_CODE[ord(_base.lower())] = _index
NUCLEOTIDE_CODE[ord("U")] = NUCLEOTIDE_CODE[ord("u")] = 3


@dataclass
class ProtocolSettings:
    """Every option of the protocol; saved with the results."""

    train_split: str = "train"
    test_split: str = "test"
    unseen_split: str = "test_unseen"
    max_length: int = 660
    batch_size: int = 64
    precision: str = "fp32"  # fp32 or bf16 (bf16 autocast; CPU with AMX or GPU)
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


# --------------------------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class SplitData:
    """One split, deduplicated by barcode: cleaned sequences and their labels (empty string = unknown)."""

    name: str
    sequences: list[str]
    labels: dict[str, np.ndarray]
    rows_before_dedup: int

    def __len__(self) -> int:
        return len(self.sequences)


def load_splits(data_file: str | os.PathLike, split_names: Sequence[str], max_length: int = 660) -> dict[str, SplitData]:
    """Read the splits (one pass over the file), keep the first row of each unique barcode per split, clean them.

    Deduplication is by the barcode as stored (BIOSCAN-5M's unit), before cleaning; cleaning (`clean_barcode`:
    upper case, gaps removed, trailing N stripped, first `max_length` nt) is the same for every model.
    """
    dataset = load_barcodes(data_file, splits=list(split_names), columns=(*LABEL_COLUMNS, "split"))
    split_column = np.asarray(dataset["split"])
    out = {}
    for name in split_names:
        subset = dataset.select(np.flatnonzero(split_column == name))
        unique = deduplicate(subset)
        columns = unique.to_dict()
        sequences = [clean_barcode(sequence, max_length=max_length) for sequence in columns["sequence"]]
        labels = {column: np.asarray(columns[column], dtype=object).astype(str) for column in LABEL_COLUMNS}
        out[name] = SplitData(name, sequences, labels, len(subset))
    return out


# --------------------------------------------------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------------------------------------------------


def kmer_embeddings(sequences: Sequence[str], k: int) -> np.ndarray:
    """Overlapping k-mer frequencies (counts / number of k-mers), 4^k columns in ACGT-product order.

    k-mers holding anything other than A, C, G, T (U read as T) are skipped; a sequence without one gives zeros.
    """
    if not 1 <= k <= 8:
        raise ValueError(f"kmer:K needs 1 <= K <= 8, got {k}")
    powers = 4 ** np.arange(k - 1, -1, -1, dtype=np.int64)
    out = np.zeros((len(sequences), 4**k), dtype=np.float32)
    for row, sequence in enumerate(sequences):
        codes = NUCLEOTIDE_CODE[np.frombuffer(sequence.encode("ascii", "replace"), dtype=np.uint8)]
        if len(codes) < k:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(codes, k)
        valid = (windows < 4).all(1)
        counts = np.bincount(windows[valid] @ powers, minlength=4**k)
        total = counts.sum()
        if total:
            out[row] = counts / total
    return out


def _autocast(precision: str, device: torch.device):
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")


def _num_layers(model) -> int:
    config = model.config
    return getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", None) or 0


def embed_sequences(
    model,
    tokenizer,
    sequences: Sequence[str],
    batch_size: int = 64,
    layers: int | Sequence[int] | None = None,
    reading_frames: bool = False,
    precision: str = "fp32",
    progress: bool | str = True,
) -> np.ndarray:
    """Mean-pooled (padding excluded) hidden states of `model` for each sequence, as float32 numpy.

    Args:
        layers: None = the last hidden state, `(N, D)`; an int L = hidden state L (0 = embedding output), `(N, D)`;
            a list of ints = those hidden states from one forward pass, `(len(layers), N, D)`.
        reading_frames: average over the start offsets 0..k-1 (the sequence minus its first i nt), k being
            `tokenizer.k_mer`: non-overlapping k-mers see one reading frame, this sees all k.
        precision: "fp32" or "bf16" (autocast; pooling is always done in float32).
        progress: show a tqdm bar (a string is used as its description).
    Batches are formed from sequences sorted by length (less padding); the output is in the input order.
    """
    single = layers is None or isinstance(layers, int)
    layer_list = [-1 if layers is None else layers] if single else list(layers)
    if reading_frames:
        k = getattr(tokenizer, "k_mer", None)
        if not k:
            raise ValueError(f"reading_frames needs a k-mer tokenizer (with a k_mer attribute); got {type(tokenizer).__name__}")
        frames = [[sequence[offset:] for sequence in sequences] for offset in range(k)]
    else:
        frames = [list(sequences)]
    device = next(model.parameters()).device
    max_tokens = tokenizer.model_max_length
    if not max_tokens or max_tokens > 100_000:  # tokenizers without a limit: the model's position table
        max_tokens = getattr(model.config, "max_position_embeddings", None)
    was_training = model.training
    model.eval()
    total = None
    steps = sum(math.ceil(len(frame) / batch_size) for frame in frames)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=progress if isinstance(progress, str) else "embedding", unit="batch", leave=False)
    try:
        for frame in frames:
            order = sorted(range(len(frame)), key=lambda index: len(frame[index]))
            pooled = None
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                encoded = tokenizer(
                    [frame[index] for index in chunk], padding=True, truncation=True, max_length=max_tokens,
                    return_tensors="pt",
                )
                encoded = {key: value.to(device) for key, value in encoded.items() if key in ("input_ids", "attention_mask")}
                mask = encoded.get("attention_mask")
                if mask is None:
                    mask = torch.ones_like(encoded["input_ids"])
                with torch.inference_mode(), _autocast(precision, device):
                    output = model(**encoded, output_hidden_states=True, return_dict=True)
                hidden_states = output.hidden_states if output.hidden_states is not None else (output.last_hidden_state,)
                vectors = torch.stack([masked_mean(hidden_states[layer], mask) for layer in layer_list])
                if pooled is None:
                    pooled = torch.zeros(len(layer_list), len(frame), vectors.shape[-1])
                pooled[:, chunk] = vectors.cpu()
                if bar is not None:
                    bar.update(1)
            total = pooled if total is None else total + pooled
    finally:
        if bar is not None:
            bar.close()
        model.train(was_training)
    result = (total / len(frames)).numpy()
    return result[0] if single else result


def _hash_update_tensors(digest, state_dict: dict[str, torch.Tensor]) -> None:
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")


def model_fingerprint(model, tokenizer) -> str:
    """Hash of the weights, the config and the tokenizer: changes whenever any of them does."""
    digest = hashlib.sha256()
    _hash_update_tensors(digest, model.state_dict())
    digest.update(model.config.to_json_string(use_diff=False).encode())
    try:
        digest.update(tokenizer.backend_tokenizer.to_str().encode())
    except AttributeError:
        digest.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    digest.update(type(tokenizer).__name__.encode())
    digest.update(str(getattr(tokenizer, "model_max_length", "")).encode())
    return digest.hexdigest()


def _sequences_hash(sequences: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for sequence in sequences:
        digest.update(sequence.encode())
        digest.update(b"\n")
    return digest.hexdigest()


class EmbeddingCache:
    """`.npy` arrays + `.json` metadata, one pair per (model fingerprint, options, split, sequences)."""

    def __init__(self, directory: str | os.PathLike | None):
        self.directory = Path(directory) if directory is not None else None

    def key(self, **parts: Any) -> str:
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]

    def load(self, key: str) -> np.ndarray | None:
        if self.directory is None:
            return None
        path = self.directory / f"{key}.npy"
        if not path.exists():
            return None
        try:
            return np.load(path)
        except (OSError, ValueError):
            return None

    def save(self, key: str, array: np.ndarray, metadata: dict) -> None:
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.directory / f"{key}.tmp.npy"
        np.save(temporary, array)
        os.replace(temporary, self.directory / f"{key}.npy")
        (self.directory / f"{key}.json").write_text(json.dumps(metadata, indent=1, default=str))


DNA_PROBE = "AACATTATATTTTATTTTTGGAATTTGAGCAGGAATAGTAGGAACTTCTTTAAGATTATTAATTCGAGCAGAATTAGGAAATCCTGGATCTTTAATTGGAGATGATCAAATTTATAAT"


def check_tokenizer_reads_dna(name: str, tokenizer) -> None:
    """Raise if the tokenizer cannot turn a real barcode into known tokens."""
    try:
        ids = tokenizer(DNA_PROBE)["input_ids"]
    except Exception as error:  # noqa: BLE001 - any failure means it cannot read DNA
        raise ValueError(f"model {name!r}: its tokenizer ({type(tokenizer).__name__}) cannot read DNA: {error}") from error
    special = set(tokenizer.all_special_ids)
    content = [token for token in ids if token not in special or token == tokenizer.unk_token_id]
    unknown = sum(token == tokenizer.unk_token_id for token in content) if tokenizer.unk_token_id is not None else 0
    if not content or unknown > len(content) / 2:
        raise ValueError(
            f"model {name!r}: its tokenizer ({type(tokenizer).__name__}) cannot read DNA: a 120-nt barcode gives "
            f"{len(content)} tokens of which {unknown} are unknown; use a DNA model or kmer:K"
        )


def parse_model_spec(spec: str) -> tuple[str, int | None]:
    """`path@L` -> (path, L); `path` -> (path, None)."""
    match = re.fullmatch(r"(.+)@(-?\d+)", spec)
    return (match.group(1), int(match.group(2))) if match else (spec, None)


def load_model(name: str, device: str = "cpu"):
    """AutoModel + AutoTokenizer from a local folder or the Hub (trust_remote_code), with clear errors."""
    from transformers import AutoModel, AutoTokenizer

    local = Path(name).expanduser()
    looks_local = local.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1
    if looks_local and not (local / "config.json").is_file():
        if not local.exists():
            raise FileNotFoundError(
                f"model {name!r}: no such folder (models are a folder with config.json, a Hub id, or kmer:K)"
            )
        available = sorted(path.name for path in local.iterdir())[:20]
        raise FileNotFoundError(f"model {name!r}: the folder has no config.json; it holds {available}")
    try:
        model = AutoModel.from_pretrained(str(local) if looks_local else name, trust_remote_code=True)
        tokenizer = AutoTokenizer.from_pretrained(str(local) if looks_local else name, trust_remote_code=True)
    except OSError as error:
        raise FileNotFoundError(
            f"model {name!r}: could not load it as a local folder or Hub model ({error}); "
            "models are a folder with config.json, a Hub id, or kmer:K"
        ) from error
    check_tokenizer_reads_dna(name, tokenizer)
    return model.to(device).eval(), tokenizer


# --------------------------------------------------------------------------------------------------------------------
# Probes
# --------------------------------------------------------------------------------------------------------------------


def nearest_neighbour(keys: np.ndarray, queries: np.ndarray, chunk_size: int = 2048) -> np.ndarray:
    """Index of the cosine-nearest key of each query (exact; chunked matmul; ties go to the lowest key index)."""
    if len(keys) == 0 or len(queries) == 0:
        raise ValueError(f"nearest_neighbour needs keys and queries; got {len(keys)} keys and {len(queries)} queries")
    key_matrix = F.normalize(torch.from_numpy(np.ascontiguousarray(keys, dtype=np.float32)), dim=1)
    query_matrix = F.normalize(torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32)), dim=1)
    result = torch.empty(len(queries), dtype=torch.long)
    with torch.inference_mode():
        for start in range(0, len(queries), chunk_size):
            similarity = query_matrix[start : start + chunk_size] @ key_matrix.T
            result[start : start + chunk_size] = similarity.argmax(1)
    return result.numpy()


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
        raise ValueError(
            f"{role}: split {split.name!r} has no row with a known {column!r} label "
            f"({len(split)} unique barcodes in it); choose another split"
        )
    return rows


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
        raise ValueError(f"BIN reconstruction: only {len(rows)} barcodes of {test.name!r} + {unseen.name!r} have a dna_bin")
    if settings.bin_max_points is not None and len(rows) > settings.bin_max_points:
        rows = np.sort(np.random.default_rng(settings.seed).choice(rows, settings.bin_max_points, replace=False))
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


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _embed_model(
    spec: Any, splits: dict[str, SplitData], settings: ProtocolSettings, cache: EmbeddingCache, progress: bool
) -> list[tuple[str, dict[str, np.ndarray], dict]]:
    """Embeddings of every split for one model spec; one entry per probed layer: (row name, {split: array}, info)."""
    if isinstance(spec, tuple):  # (name, model, tokenizer): an in-memory model, e.g. a training checkpoint
        name, model, tokenizer = spec
        layer = settings.layer
        check_tokenizer_reads_dna(name, tokenizer)
    else:
        name, layer = parse_model_spec(str(spec))
        layer = settings.layer if layer is None else layer
        kmer = re.fullmatch(r"kmer:(\d+)", name)
        if kmer:
            k = int(kmer.group(1))
            out = {}
            for split_name, split in splits.items():
                key = cache.key(kind="kmer", k=k, sequences=_sequences_hash(split.sequences), version=EMBEDDING_VERSION)
                array = cache.load(key)
                if array is None:
                    array = kmer_embeddings(split.sequences, k)
                    cache.save(key, array, {"model": name, "split": split_name, "n": len(split)})
                out[split_name] = array
            return [(name, out, {"type": "kmer", "k": k, "dims": 4**k})]
        model, tokenizer = load_model(name, device=str(_resolve_device(settings.device)))
    device = next(model.parameters()).device
    n_layers = _num_layers(model)
    if settings.all_layers:
        layers = list(range(n_layers + 1))
    else:
        layers = [-1 if layer is None else layer]
        if n_layers and not -1 <= layers[0] <= n_layers:
            raise ValueError(f"model {name!r}: layer {layers[0]} does not exist (it has layers 0..{n_layers})")
    fingerprint = model_fingerprint(model, tokenizer)
    per_split = {}
    for split_name, split in splits.items():
        key = cache.key(
            kind="model", fingerprint=fingerprint, layers=layers, reading_frames=settings.reading_frames,
            precision=settings.precision, sequences=_sequences_hash(split.sequences), version=EMBEDDING_VERSION,
        )
        array = cache.load(key)
        if array is None:
            array = embed_sequences(
                model, tokenizer, split.sequences, batch_size=settings.batch_size, layers=layers,
                reading_frames=settings.reading_frames, precision=settings.precision,
                progress=f"{name} {split_name}" if progress else False,
            )
            cache.save(key, array, {"model": name, "split": split_name, "layers": layers, "n": len(split),
                                    "reading_frames": settings.reading_frames, "precision": settings.precision,
                                    "fingerprint": fingerprint})
        per_split[split_name] = array
    info = {"type": "transformers", "fingerprint": fingerprint[:16], "device": str(device),
            "dims": int(per_split[settings.train_split].shape[-1])}
    rows = []
    for index, layer_index in enumerate(layers):
        row_name = name if (layer is None and not settings.all_layers) else f"{name}@{layer_index}"
        rows.append((row_name, {split: array[index] for split, array in per_split.items()}, {**info, "layer": layer_index}))
    return rows


def _plot_umap(name: str, x: np.ndarray, orders: np.ndarray, path: Path, settings: ProtocolSettings) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = np.arange(len(x))
    if settings.bin_max_points is not None and len(rows) > settings.bin_max_points:
        rows = np.sort(np.random.default_rng(settings.seed).choice(rows, settings.bin_max_points, replace=False))
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
        models: "kmer:K", a folder / Hub id (optionally "@L" for layer L), or (name, model, tokenizer) for an
            in-memory model (e.g. a checkpoint during training).
        data_file: a BIOSCAN-5M-layout metadata file (default: the bundled fixture).
        output_dir: where results.md / results.json / umap_*.png go (None: nothing written).
        cache_dir: embedding cache (default: `output_dir/cache`; None and no output_dir: no cache).
        options: any field of `ProtocolSettings` (e.g. layer=3, all_layers=True, reading_frames=True,
            precision="bf16", umap_n_neighbors=5, plots=False).
    """
    settings = ProtocolSettings(**options)
    if not models:
        raise ValueError("no model given: name at least one (a folder, a Hub id, or kmer:K)")
    torch.manual_seed(settings.seed)
    np.random.seed(settings.seed)
    output = Path(output_dir) if output_dir is not None else None
    if cache_dir is None and output is not None:
        cache_dir = output / "cache"
    cache = EmbeddingCache(cache_dir)

    started = time.perf_counter()
    split_names = list(dict.fromkeys([settings.train_split, settings.test_split, settings.unseen_split]))
    splits = load_splits(data_file, split_names, settings.max_length)
    for name, split in splits.items():
        if len(split) == 0:
            raise ValueError(f"split {name!r} of {data_file} is empty: the protocol needs train, test and query rows")
    data_info = {
        "data_file": str(data_file),
        "splits": {name: {"rows": split.rows_before_dedup, "unique_barcodes": len(split)} for name, split in splits.items()},
        "load_s": time.perf_counter() - started,
    }

    results: dict[str, dict] = {}
    infos: dict[str, dict] = {}
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
    for spec in models:
        started = time.perf_counter()
        rows = _embed_model(spec, splits, settings, cache, progress)
        embed_s = time.perf_counter() - started
        for row_name, embeddings, info in rows:
            if row_name in results:
                raise ValueError(f"model {row_name!r} is listed twice")
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


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True, help="kmer:K, a model folder or Hub id, optionally @LAYER")
    parser.add_argument("--data_file", default=str(FIXTURE), help="BIOSCAN-5M-layout metadata (default: the fixture)")
    parser.add_argument("--output_dir", default="outputs/probes")
    parser.add_argument("--cache_dir", default=None, help="embedding cache (default: OUTPUT_DIR/cache)")
    parser.add_argument("--layer", type=int, default=None, help="pool hidden state L (0 = embeddings) instead of the last")
    parser.add_argument("--all_layers", action="store_true", help="probe every layer (one forward pass per batch)")
    parser.add_argument("--reading_frames", action="store_true", help="average the embeddings over start offsets 0..k-1")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="bf16 = autocast (fast on AMX CPUs)")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--max_length", type=int, default=660, help="nucleotides kept per barcode")
    parser.add_argument("--train_split", default="train")
    parser.add_argument("--test_split", default="test")
    parser.add_argument("--unseen_split", default="test_unseen")
    parser.add_argument("--probe_c", type=float, default=1.0, help="inverse L2 strength of the linear probe")
    parser.add_argument("--probe_max_iter", type=int, default=100)
    parser.add_argument("--umap_n_neighbors", type=int, default=15)
    parser.add_argument("--umap_min_dist", type=float, default=0.0)
    parser.add_argument("--umap_components", type=int, default=50)
    parser.add_argument("--bin_max_points", type=int, default=None, help="subsample the BIN task (seeded)")
    parser.add_argument("--no_plots", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no_progress", action="store_true")
    args = parser.parse_args(argv)
    options = {
        name: getattr(args, name)
        for name in ("layer", "all_layers", "reading_frames", "precision", "batch_size", "max_length", "train_split",
                     "test_split", "unseen_split", "probe_c", "probe_max_iter", "umap_n_neighbors", "umap_min_dist",
                     "umap_components", "bin_max_points", "seed", "device")
    }
    if args.no_progress:
        import datasets

        datasets.disable_progress_bars()
    try:
        report = evaluate(
            args.models, args.data_file, args.output_dir, cache_dir=args.cache_dir, progress=not args.no_progress,
            plots=not args.no_plots, **options,
        )
    except (ValueError, FileNotFoundError, KeyError) as error:
        parser.exit(2, f"error: {error}\n")
    print(report["table"])
    print(f"\nwritten: {Path(args.output_dir) / 'results.md'}, results.json, umap_*.png")
    return report


if __name__ == "__main__":
    main()
