"""Encoders: one interface for every way of turning barcodes into vectors.

    encoder = load_encoder("checkpoints/barcodemae-4x256-bold")   # a model folder or Hub id, `path@LAYER`
    encoder = load_encoder("kmer:6")                               # overlapping 6-mer frequencies
    encoder = load_encoder("aa:3")                                 # amino-acid 3-mer frequencies of the translation
    encoder = load_encoder("kmer:6+aa:3")                          # both, each a unit vector, side by side
    vectors = encoder.embed(sequences)                             # (N, D) float32, in the input order

A transformers encoder pools the chosen hidden state by its mean over the k-mer tokens (padding excluded), batches
sequences sorted by length, runs under `torch.inference_mode` and, with `precision="bf16"`, bf16 autocast
(`"int8"`: a copy with int8 dynamically quantized linear layers, CPU only). BarcodeMAE models run only the layers
up to the deepest one pooled (`up_to_layer`): the shipped checkpoint pools layer 0, the embedding output. Loading
runs no code of a model's folder: BarcodeMAE models load through this package's own classes, other models' own
code (auto_map) runs only with `trust_remote_code` (`load_model`).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import re
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from alphabet_barcodemae import BASE_CODES, FRAME_FIRST_CODON, FrameLocator

from barcodemae.errors import UserError, UserFileNotFoundError
from barcodemae.neighbours import unit_rows

PRECISIONS = ("fp32", "bf16", "int8")
KMER_SPEC = re.compile(r"kmer:(\d+)")
AMINO_ACID_SPEC = re.compile(r"aa:(\d+)")
BUNDLED_MODEL = Path(__file__).resolve().parents[1] / "checkpoints" / "barcodemae-4x256-bold"  # in a clone of the repo
FINGERPRINT_VERSION = 2  # 2: the config as it states itself (`_stated_config`); 1 hashed where it was loaded from

NUCLEOTIDE_CODE = np.frombuffer(BASE_CODES, np.uint8).astype(np.int64)  # byte -> 0..3 (A C G T, U as T), 4 = other

DNA_PROBE = "AACATTATATTTTATTTTTGGAATTTGAGCAGGAATAGTAGGAACTTCTTTAAGATTATTAATTCGAGCAGAATTAGGAAATCCTGGATCTTTAATTGGAGATGATCAAATTTATAAT"


def kmer_embeddings(sequences: Sequence[str], k: int, chunk_cells: int = 1 << 23) -> np.ndarray:
    """Overlapping k-mer frequencies (counts / number of k-mers), 4^k columns in the tokenizer's k-mer order.

    k-mers holding anything other than A, C, G, T (U read as T) are skipped; a sequence without one gives zeros.
    Counted in one `bincount` per chunk of sequences (`chunk_cells` = rows x 4^k counters at most).
    """
    if not 1 <= k <= 8:
        raise UserError(f"kmer:K needs 1 <= K <= 8, got {k}")
    out = np.zeros((len(sequences), 4**k), dtype=np.float32)
    rows_per_chunk = max(1, chunk_cells // 4**k)
    for start in range(0, len(sequences), rows_per_chunk):
        chunk = sequences[start : start + rows_per_chunk]
        _fill_frequencies(out[start : start + len(chunk)], _kmer_cells(chunk, k))
    return out


def _kmer_cells(sequences: Sequence[str], k: int) -> np.ndarray:
    """Each k-mer's flat cell (row * 4^k + k-mer): the sequences joined, windows crossing a boundary left out."""
    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    codes = NUCLEOTIDE_CODE[np.frombuffer("".join(sequences).encode("ascii", "replace"), dtype=np.uint8)]
    if len(codes) < k:
        return np.zeros(0, dtype=np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(codes, k)
    row = np.repeat(np.arange(len(sequences)), lengths)[: len(windows)]
    ends = np.cumsum(lengths)[row]
    keep = (windows < 4).all(1) & (np.arange(len(windows)) + k <= ends)
    return row[keep] * 4**k + windows[keep] @ (4 ** np.arange(k - 1, -1, -1, dtype=np.int64))


def _fill_frequencies(block: np.ndarray, cells: np.ndarray) -> None:
    """`block` (rows x columns) set to each row's frequencies of `cells` (flat: row * columns + column)."""
    block[:] = np.bincount(cells, minlength=block.size).reshape(block.shape)
    block /= np.maximum(block.sum(1, keepdims=True), 1)


# The invertebrate mitochondrial code (NCBI table 5), codons in ACGT order (AAA, AAC, ..., TTT); "*" a stop. The
# vertebrate one (table 2) differs only at AGA and AGG, stops there; AGA/AGG are rare inside vertebrate barcodes.
MITOCHONDRIAL_CODE = "KNKNTTTTSSSSIMIMQHQHPPPPRRRRLLLLEDEDAAAAGGGGVVVV*Y*YSSSSWCWCLFLF"
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
_STOP, _UNKNOWN = len(AMINO_ACIDS), len(AMINO_ACIDS) + 1
_CODON_AMINO_ACID = np.array([AMINO_ACIDS.find(a) if a != "*" else _STOP for a in MITOCHONDRIAL_CODE] + [_UNKNOWN])


@functools.cache
def _frame_locator() -> FrameLocator:
    return FrameLocator()


def translations(sequences: Sequence[str]) -> np.ndarray:
    """(N, L) amino-acid codes (`AMINO_ACIDS` index, 20 a stop, 21 unknown or past the end) of each barcode, read
    from its first complete codon: the frame where it lies on the bundled COI-5P reference (`FrameLocator`), else
    (not placed) the frame with the fewest stop codons."""
    codes = [sequence.encode("ascii", "replace").translate(BASE_CODES) for sequence in sequences]
    width = max(map(len, codes), default=0) + 2
    bases = np.frombuffer(b"".join(code.ljust(width, b"\4") for code in codes), np.uint8).reshape(len(codes), width)
    codons = (width - 2) // 3
    frames = []
    for shift in range(3):
        triplets = bases[:, shift : shift + 3 * codons].reshape(len(codes), codons, 3).astype(np.int64)
        index = np.where((triplets < 4).all(2), triplets @ np.array([16, 4, 1]), 64)
        frames.append(_CODON_AMINO_ACID[index])
    frames = np.stack(frames)  # (3, N, L)
    start, placed = _frame_locator().locate(codes)
    fewest_stops = (frames == _STOP).sum(2).argmin(0)
    shift = np.where(placed, (FRAME_FIRST_CODON - start) % 3, fewest_stops)
    return frames[shift, np.arange(len(codes))]


def amino_acid_embeddings(sequences: Sequence[str], k: int, chunk_size: int = 2048) -> np.ndarray:
    """Overlapping amino-acid k-mer frequencies of each barcode's translation (`translations`), 20^k columns; k-mers
    holding a stop or an unknown codon are skipped; a barcode without one gives zeros."""
    if not 1 <= k <= 3:
        raise UserError(f"aa:K needs 1 <= K <= 3, got {k}")
    out = np.zeros((len(sequences), len(AMINO_ACIDS) ** k), dtype=np.float32)
    powers = len(AMINO_ACIDS) ** np.arange(k - 1, -1, -1)
    for start in range(0, len(sequences), chunk_size):
        residues = translations(sequences[start : start + chunk_size])
        if residues.shape[1] < k:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(residues, k, axis=1)
        keep = (windows < len(AMINO_ACIDS)).all(2)
        rows = np.broadcast_to(np.arange(len(residues))[:, None], keep.shape)[keep]
        _fill_frequencies(out[start : start + len(residues)], rows * out.shape[1] + windows[keep] @ powers)
    return out


def quantize_int8(model):
    """A copy of `model` whose `nn.Linear` layers compute in int8 (weights quantized per output channel, activations
    per batch: `torch.ao.quantization.quantize_dynamic`, which torch marks deprecated but still ships). CPU only."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    if next(model.parameters()).device.type != "cpu":
        raise UserError("precision int8 runs on the CPU only; use fp32 or bf16 on a GPU")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (DeprecationWarning, UserWarning))
        return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)


def _autocast(precision: str, device: torch.device):
    if precision in ("fp32", "int8"):
        return torch.autocast(device.type, enabled=False)
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    raise UserError(f"precision must be one of {PRECISIONS}, got {precision!r}")


def _progress_bar(total: int, progress: bool | str):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=progress if isinstance(progress, str) else "embedding", unit="seq", leave=False)


def _max_tokens(model, tokenizer) -> int | None:
    max_tokens = tokenizer.model_max_length
    if not max_tokens or max_tokens > 100_000:  # tokenizers without a limit: the model's position table
        max_tokens = getattr(model.config, "max_position_embeddings", None)
    return max_tokens


def _pool_frame(model, tokenizer, frame, layer_list, batch_size, precision, bar) -> torch.Tensor:
    """(len(layer_list), N, D) pooled hidden states of one list of sequences, batched by sorted length."""
    from modeling_barcodemae import masked_mean  # here: kmer:K never needs transformers' modelling stack

    device = next(model.parameters()).device
    max_tokens = _max_tokens(model, tokenizer)
    order = sorted(range(len(frame)), key=lambda index: len(frame[index]))
    extra = {}
    if "up_to_layer" in inspect.signature(model.forward).parameters:  # BarcodeMAE: stop at the deepest pooled layer
        layer_list = [layer % (num_layers(model) + 1) for layer in layer_list]
        extra = {"up_to_layer": max(layer_list)}
    pooled = None
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        encoded = tokenizer([frame[index] for index in chunk], padding=True, truncation=True, max_length=max_tokens,
                            return_tensors="pt")  # fmt: skip
        encoded = {key: value.to(device) for key, value in encoded.items() if key in ("input_ids", "attention_mask")}
        mask = encoded.get("attention_mask", torch.ones_like(encoded["input_ids"]))
        with torch.inference_mode(), _autocast(precision, device):
            output = model(**encoded, output_hidden_states=True, return_dict=True, **extra)
        hidden_states = output.hidden_states if output.hidden_states is not None else (output.last_hidden_state,)
        vectors = torch.stack([masked_mean(hidden_states[layer], mask) for layer in layer_list])
        if pooled is None:
            pooled = torch.zeros(len(layer_list), len(frame), vectors.shape[-1])
        pooled[:, chunk] = vectors.float().cpu()
        if bar is not None:
            bar.update(len(chunk))
    return pooled


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
        precision: "fp32", "bf16" (autocast) or "int8" (`quantize_int8`, CPU); pooling is always done in float32.
        progress: show a tqdm bar (a string is used as its description).
    Batches are formed from sequences sorted by length (less padding); the output is in the input order.
    """
    single = layers is None or isinstance(layers, int)
    layer_list = [-1 if layers is None else layers] if single else list(layers)
    if reading_frames:
        k = getattr(tokenizer, "k_mer", None)
        if not k:
            raise UserError(f"reading_frames needs a k-mer tokenizer (with a k_mer attribute); got {type(tokenizer).__name__}")
        frames = [[sequence[offset:] for sequence in sequences] for offset in range(k)]
    else:
        frames = [list(sequences)]
    if precision == "int8":
        model = quantize_int8(model)
    was_training = model.training
    model.eval()
    bar = _progress_bar(sum(len(frame) for frame in frames), progress)
    try:
        total = sum(_pool_frame(model, tokenizer, frame, layer_list, batch_size, precision, bar) for frame in frames)
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


def _stated_config(config) -> str:
    """The config's values that differ from its class's defaults, as sorted JSON: what a model's config.json states,
    the same whatever path it was loaded from (`_name_or_path`) and whether a newer config class adds fields."""
    values = json.loads(config.to_json_string(use_diff=False))
    try:
        defaults = json.loads(type(config)().to_json_string(use_diff=False))
    except Exception:  # noqa: BLE001 - a config class that needs arguments: every value counts
        defaults = {}
    stated = {key: value for key, value in values.items()
              if key != "_name_or_path" and (key not in defaults or defaults[key] != value)}  # fmt: skip
    return json.dumps(stated, sort_keys=True)


def model_fingerprint(model, tokenizer) -> str:
    """Hash of the weights, the config (`_stated_config`) and the tokenizer: changes whenever any of them does."""
    digest = hashlib.sha256()
    _hash_update_tensors(digest, model.state_dict())
    digest.update(_stated_config(model.config).encode())
    try:
        digest.update(tokenizer.backend_tokenizer.to_str().encode())
    except AttributeError:
        digest.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    digest.update(type(tokenizer).__name__.encode())
    digest.update(str(getattr(tokenizer, "model_max_length", "")).encode())
    return digest.hexdigest()


def check_tokenizer_reads_dna(name: str, tokenizer) -> None:
    """Raise if the tokenizer cannot turn a real barcode into known tokens."""
    try:
        ids = tokenizer(DNA_PROBE)["input_ids"]
    except Exception as error:  # noqa: BLE001 - any failure means it cannot read DNA
        raise UserError(f"model {name!r}: its tokenizer ({type(tokenizer).__name__}) cannot read DNA: {error}") from error
    special = set(tokenizer.all_special_ids)
    content = [token for token in ids if token not in special or token == tokenizer.unk_token_id]
    unknown = sum(token == tokenizer.unk_token_id for token in content) if tokenizer.unk_token_id is not None else 0
    if not content or unknown > len(content) / 2:
        raise UserError(
            f"model {name!r}: its tokenizer ({type(tokenizer).__name__}) cannot read DNA: a 120-nt barcode gives "
            f"{len(content)} tokens of which {unknown} are unknown; use a DNA model or kmer:K"
        )


def parse_model_spec(spec: str) -> tuple[str, int | None]:
    """`path@L` -> (path, L); `path` -> (path, None)."""
    match = re.fullmatch(r"(.+)@(-?\d+)", spec)
    return (match.group(1), int(match.group(2))) if match else (spec, None)


def resolve_device(device: str) -> torch.device:
    """"auto" = the GPU when there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _not_on_hub(name: str) -> str | None:
    """Why `name`, which is no local folder, is no loadable Hub model either (None: it may be one). Asked once, without
    the retries of `from_pretrained`: a folder name given from the wrong directory fails at once, not after 25 s."""
    from huggingface_hub import constants, model_info, try_to_load_from_cache
    from huggingface_hub.errors import GatedRepoError, HFValidationError, HfHubHTTPError, RepositoryNotFoundError

    try:
        if isinstance(try_to_load_from_cache(name, "config.json"), str):
            return None  # in the local Hub cache
        if constants.HF_HUB_OFFLINE:
            return "nor a Hub model in the local cache (HF_HUB_OFFLINE is set)"
        model_info(name, timeout=10)
    except GatedRepoError:
        return None  # from_pretrained says what access it needs
    except RepositoryNotFoundError:
        return "nor a Hub model"
    except HFValidationError:
        return "nor a Hub id (owner/name)"
    except HfHubHTTPError.__bases__ as error:  # the Hub client's HTTP errors: no connection, a timeout, a status
        return f"and the Hub could not be asked for it ({type(error).__name__}: {error})"
    return None


def load_model(name: str, device: str = "cpu", trust_remote_code: bool = False, revision: str | None = None):
    """A model and its tokenizer from a local folder or the Hub (`revision`: a commit, branch or tag there), with
    clear errors. A BarcodeMAE model loads through this package's own classes (`_loading_classes`: no file of the
    folder is run); another through AutoModel / AutoTokenizer, its own code (auto_map) run only with
    `trust_remote_code`."""
    local, looks_local = Path(name).expanduser(), _looks_local(name)
    if looks_local and not (local / "config.json").is_file():
        if not local.exists():
            raise UserFileNotFoundError(
                f"model {name!r}: no such folder (models are a folder with config.json, a Hub id, or kmer:K)"
            )
        available = sorted(path.name for path in local.iterdir())[:20]
        raise UserFileNotFoundError(f"model {name!r}: the folder has no config.json; it holds {available}")
    problem = None if looks_local else _not_on_hub(name)
    if problem:
        raise UserFileNotFoundError(f"model {name!r}: no such folder in {Path.cwd()}, {problem} (models are a folder "
                                    "with config.json, a Hub id, or kmer:K)")  # fmt: skip
    source = str(local) if looks_local else name
    try:
        model_class, tokenizer_class, options = _loading_classes(source, revision, trust_remote_code)
        model = model_class.from_pretrained(source, revision=revision, **options)
        tokenizer = tokenizer_class.from_pretrained(source, revision=revision, **options)
    except OSError as error:
        raise UserFileNotFoundError(
            f"model {name!r}: could not load it as a local folder or Hub model ({error}); "
            "models are a folder with config.json, a Hub id, or kmer:K"
        ) from error
    except ValueError as error:
        if "trust_remote_code" not in str(error):
            raise
        raise UserError(f"model {name!r} needs its own Python code (auto_map in its config), which runs only with "
                        "--trust_remote_code: give it for a model whose code you trust") from None  # fmt: skip
    check_tokenizer_reads_dna(name, tokenizer)
    return model.to(device).eval(), tokenizer


def _loading_classes(source: str, revision: str | None, trust_remote_code: bool) -> tuple:
    """(model class, tokenizer class, their `from_pretrained` options) for the model at `source`: this package's
    BarcodeMAE classes where its config.json says model_type barcodemae (read as JSON: nothing of the folder runs),
    else AutoModel / AutoTokenizer, trusting the model's own code only with `trust_remote_code`."""
    from transformers import AutoModel, AutoTokenizer, PretrainedConfig

    from configuration_barcodemae import BarcodeMAEConfig

    if PretrainedConfig.get_config_dict(source, revision=revision)[0].get("model_type") == BarcodeMAEConfig.model_type:
        from modeling_barcodemae import BarcodeMAEModel
        from tokenization_barcodemae import BarcodeMAETokenizer

        return BarcodeMAEModel, BarcodeMAETokenizer, {}
    return AutoModel, AutoTokenizer, {"trust_remote_code": trust_remote_code}


def _looks_local(name: str) -> bool:
    """Whether model `name` is meant as a local folder (it exists, or is written as a path), not a Hub id."""
    return Path(name).expanduser().exists() or name.startswith((".", "/", "~")) or name.count("/") > 1


def hub_commit(name: str, revision: str | None = None) -> str | None:
    """The commit that Hub model `name` at `revision` is at (from the Hub cache's snapshot folder of its config.json,
    which loading it has just fetched); None for a local folder, or where it cannot be told."""
    if _looks_local(name):
        return None
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(name, "config.json", revision=revision)).parent.name
    except (OSError, ValueError):
        return None


def num_layers(model) -> int:
    config = model.config
    return getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", None) or 0


class Encoder:
    """Barcodes -> vectors. `layers` lists what one `embed_layers` call returns (one array per entry); `min_run` is
    how many unambiguous nucleotides in a row a barcode needs to be embedded (`barcodemae.data.check_embeddable`);
    `revision`: the Hub commit of the model's files (None: a local folder, or no model)."""

    name: str
    layers: list[int | None] = [None]
    min_run: int = 1
    revision: str | None = None

    def embed_layers(self, sequences: Sequence[str], progress: bool | str = False) -> np.ndarray:
        """(len(self.layers), N, D) float32."""
        raise NotImplementedError

    def embed(self, sequences: Sequence[str], progress: bool | str = False) -> np.ndarray:
        """(N, D) float32 of the encoder's single layer."""
        if len(self.layers) != 1:
            raise ValueError(f"{self.name}: embed() needs one layer, this encoder has {self.layers}")
        return self.embed_layers(sequences, progress)[0]

    def cache_key(self) -> dict:
        """Everything that determines the vectors (for cache keys and reports)."""
        raise NotImplementedError


class KmerEncoder(Encoder):
    """Overlapping k-mer frequencies: the non-learned baseline."""

    def __init__(self, k: int):
        if not 1 <= k <= 8:
            raise UserError(f"kmer:K needs 1 <= K <= 8, got kmer:{k}")
        self.k, self.name, self.min_run = k, f"kmer:{k}", k  # fewer: no k-mer to count, a zero vector

    def embed_layers(self, sequences: Sequence[str], progress: bool | str = False) -> np.ndarray:
        return kmer_embeddings(sequences, self.k)[None]

    def cache_key(self) -> dict:
        return {"kind": "kmer", "k": self.k}


class AminoAcidEncoder(Encoder):
    """Overlapping amino-acid k-mer frequencies of the translated barcode (`amino_acid_embeddings`): non-learned, it
    compares barcodes by the protein they code, which synonymous changes at third codon positions leave alone."""

    def __init__(self, k: int):
        if not 1 <= k <= 3:
            raise UserError(f"aa:K needs 1 <= K <= 3, got aa:{k}")
        self.k, self.name, self.min_run = k, f"aa:{k}", 3 * k + 2  # every frame holds k codons

    def embed_layers(self, sequences: Sequence[str], progress: bool | str = False) -> np.ndarray:
        return amino_acid_embeddings(sequences, self.k)[None]

    def cache_key(self) -> dict:
        return {"kind": "aa", "k": self.k}


class TransformersEncoder(Encoder):
    """Masked mean of a transformers model's hidden states (any AutoModel with a DNA tokenizer)."""

    def __init__(self, name: str, model, tokenizer, layers: Sequence[int] = (-1,), batch_size: int = 64,
                 precision: str = "fp32", reading_frames: bool = False):  # fmt: skip
        if precision not in PRECISIONS:
            raise UserError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        depth = num_layers(model)
        for layer in layers:
            if depth and not -1 <= layer <= depth:
                raise UserError(f"model {name!r}: layer {layer} does not exist (it has layers 0..{depth})")
        self.name, self.model, self.tokenizer, self.layers = name, model, tokenizer, list(layers)
        self.batch_size, self.precision, self.reading_frames = batch_size, precision, reading_frames
        # A k-mer tokenizer needs a whole k-mer; one that drops up to k-1 leading bases (other reading frames, frame
        # registration) needs k-1 more.
        k = getattr(tokenizer, "k_mer", None) or 1
        self.min_run = 2 * k - 1 if reading_frames or getattr(tokenizer, "register_frame", False) else k
        self._fingerprint = None

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.model, self.tokenizer)
        return self._fingerprint

    def embed_layers(self, sequences: Sequence[str], progress: bool | str = False) -> np.ndarray:
        return embed_sequences(self.model, self.tokenizer, sequences, batch_size=self.batch_size, layers=self.layers,
                               reading_frames=self.reading_frames, precision=self.precision, progress=progress)  # fmt: skip

    def cache_key(self) -> dict:
        return {"kind": "model", "fingerprint": self.fingerprint, "fingerprint_version": FINGERPRINT_VERSION,
                "layers": self.layers, "reading_frames": self.reading_frames, "precision": self.precision}  # fmt: skip


class ConcatenatedEncoder(Encoder):
    """Several encoders side by side (`kmer:6+aa:3`): each part's vector scaled to unit length (a zero vector stays
    zero), the parts concatenated. The cosine of two such vectors is the mean of the parts' cosines."""

    def __init__(self, parts: Sequence[Encoder]):
        self.parts, self.name = list(parts), "+".join(part.name for part in parts)
        self.min_run = max(part.min_run for part in parts)

    def embed_layers(self, sequences: Sequence[str], progress: bool | str = False) -> np.ndarray:
        return np.concatenate([unit_rows(part.embed(sequences, progress)).numpy() for part in self.parts], 1)[None]

    def cache_key(self) -> dict:
        return {"kind": "concatenated", "parts": [part.cache_key() for part in self.parts]}


def spec_parts(spec: str) -> list[str]:
    """The encoder specs that `spec` joins with `+` (one for any other spec); raises on an empty one."""
    parts = spec.split("+")
    if len(parts) > 1 and "" in parts:
        raise UserError(f"model {spec!r}: an empty part; join encoder specs with + (e.g. kmer:6+aa:3)")
    return parts


def non_learned_encoder(name: str) -> Encoder | None:
    """The encoder of `kmer:K`, `aa:K` or of such specs joined by `+` (numpy only: no transformers import), None for
    any other name."""
    parts = spec_parts(name)
    if len(parts) > 1:
        encoders = [non_learned_encoder(part) for part in parts]
        return None if None in encoders else ConcatenatedEncoder(encoders)
    for spec, encoder in ((KMER_SPEC, KmerEncoder), (AMINO_ACID_SPEC, AminoAcidEncoder)):
        found = spec.fullmatch(name)
        if found:
            return encoder(int(found.group(1)))
    return None


def load_encoder(spec: str, layer: int | None = None, all_layers: bool = False, device: str = "auto",
                 trust_remote_code: bool = False, revision: str | None = None, **options) -> Encoder:  # fmt: skip
    """`kmer:K`, `aa:K`, or a folder / Hub id (`NAME@L` pools layer L; `layer` is the default when the spec has none, then
    the model's own `config.pooling_layer`, then the last layer); specs joined by `+`: a `ConcatenatedEncoder` of
    theirs (each pooling one layer). A model loads as `load_model` says (`trust_remote_code`, `revision`); a Hub one
    keeps the commit it was loaded at as the encoder's `revision` (`hub_commit`), which an index stores.

    `options`: batch_size, precision, reading_frames of `TransformersEncoder`.
    """
    parts = spec_parts(spec)
    if len(parts) > 1:
        return ConcatenatedEncoder([load_encoder(part, layer, False, device, trust_remote_code, revision, **options)
                                    for part in parts])  # fmt: skip
    name, spec_layer = parse_model_spec(spec)
    encoder = non_learned_encoder(name)
    if encoder is not None:
        return encoder
    model, tokenizer = load_model(name, str(resolve_device(device)), trust_remote_code, revision)
    encoder = from_model(name, model, tokenizer, spec_layer if spec_layer is not None else layer, all_layers, **options)
    encoder.revision = hub_commit(name, revision)
    return encoder


def from_model(name: str, model, tokenizer, layer: int | None = None, all_layers: bool = False, **options) -> Encoder:
    """An encoder around an in-memory model (e.g. a checkpoint during training)."""
    check_tokenizer_reads_dna(name, tokenizer)
    if layer is None:  # the layer the model pools itself (`pooling_layer` of a BarcodeMAE config), else the last
        layer = getattr(model.config, "pooling_layer", -1)
    layers = list(range(num_layers(model) + 1)) if all_layers else [layer]
    return TransformersEncoder(name, model, tokenizer, layers, **options)


def auto_precision(device: str = "auto") -> str:
    """bf16 where it is fast: CUDA GPUs with bf16, CPUs with AMX or AVX512-BF16 instructions; fp32 elsewhere."""
    resolved = resolve_device(device)
    if resolved.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "fp32"
    return "bf16" if ("amx_bf16" in flags or "avx512_bf16" in flags) else "fp32"
