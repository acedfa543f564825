"""Convert an original BarcodeMAE / BarcodeBERT checkpoint (`.pt`) into a Hub folder that `AutoModel` loads.

    barcodemae convert SRC.pt OUT_DIR [--kind barcodemae|barcodebert]      (or python convert_original_checkpoint.py)

The original releases save, with `torch.save`, a dict holding `"model"` (the state dict: a transformers `BertModel`
for BarcodeMAE, a `BertForTokenClassification` for BarcodeBERT, keys possibly prefixed by `module.`), `"bert_config"`
(`BertConfig.to_dict()`) and `"config"` (the training `argparse.Namespace`: `k_mer`, `stride`, `max_len`, ...), plus
optimizer and scheduler state, which are ignored.

The file is read with `torch.load(weights_only=True)`; the only class allowed beyond tensors and plain containers is
`argparse.Namespace`, so a checkpoint can never run code. Every tensor of the encoder is mapped onto
`BarcodeMAEModel` (same parameter names as BERT) and its shape checked; no tensor may be left over, except the known
ones that are dropped and reported: BERT's pooler (never used: the embedding is a masked mean), BarcodeBERT's
k-mer prediction head (`classifier`), the decoder of a full BarcodeMAE training model, and the `position_ids` buffer
of old transformers versions. Our vocabulary has one more row than the original (`[PAD]` = 4**k + 2), so a zero row
is appended to the word embeddings (padding is never attended to).

After writing the folder, the converter reloads it and checks that its embeddings equal those of the original model
(a transformers `BertModel` with the original weights, fed the original pipeline's token ids and attention mask) on a
few synthetic barcodes; `--no-verify` skips that.
"""

from __future__ import annotations

import argparse
import functools
import pickle
import re
import zipfile
from pathlib import Path

import torch
from transformers.utils import logging as transformers_logging

from configuration_barcodemae import BarcodeMAEConfig
from modeling_barcodemae import BarcodeMAEModel
from tokenization_barcodemae import PAD_TOKEN, BarcodeMAETokenizer, kmer_vocabulary

from barcodemae.errors import UserError

KINDS = ("barcodemae", "barcodebert")
REQUIRED_KEYS = ("model", "bert_config", "config")
STRIPPED_PREFIXES = ("module.", "_orig_mod.")  # DistributedDataParallel, torch.compile
ATOL = 1e-5

DROPPED_REASONS = {
    "pooler": "BERT pooler (tanh dense on the first token); never used: the barcode embedding is the masked mean",
    "classifier": "BarcodeBERT's k-mer prediction head (pretraining only; not part of the encoder)",
    "decoder": "BarcodeMAE's pretraining decoder (not part of the encoder; not mapped)",
    "projection_layer": "BarcodeMAE's encoder-to-decoder projection (pretraining only)",
    "position_ids": "buffer of old transformers versions (always 0..N-1), not a weight",
}


# Top-level modules beside the encoder, by the encoder's key prefix: BertForTokenClassification, full MAELMModel.
HEADS_OUTSIDE_ENCODER = {"bert.": ("classifier",), "encoder.": ("decoder", "projection_layer")}


class ConversionError(UserError):
    """The checkpoint cannot be converted; the message says why and what was expected."""


# --------------------------------------------------------------------------------------------------------------------
# Reading the file


def load_checkpoint(path: str | Path) -> dict:
    """`torch.load(weights_only=True)` with `argparse.Namespace` allow-listed, and errors that say what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such file")
    size = path.stat().st_size
    if size == 0:
        raise ConversionError(f"{path}: the file is empty")
    with open(path, "rb") as handle:
        head = handle.read(4)
    is_zip_format = head == b"PK\x03\x04"  # torch.save's default format since PyTorch 1.6
    if is_zip_format and not zipfile.is_zipfile(path):
        raise ConversionError(
            f"{path}: the file is truncated ({size} bytes; its zip directory is missing): the download or copy was "
            "probably interrupted; fetch it again"
        )
    if not is_zip_format and not head.startswith(b"\x80"):
        raise ConversionError(
            f"{path}: not a PyTorch checkpoint (it starts with {head!r}, neither torch.save's zip format nor a pickle)"
        )
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        message = str(error)
        forbidden = re.search(r"GLOBAL ([\w.]+)", message)
        if forbidden and "truncated" not in message:
            raise ConversionError(
                f"{path}: refused to load: the checkpoint contains the Python object {forbidden.group(1)}, and this "
                "converter only unpickles tensors, plain containers and argparse.Namespace (unpickling anything "
                "else can run arbitrary code). Original BarcodeMAE/BarcodeBERT checkpoints contain nothing else; if "
                "you trust the file, re-save it with the model state dict, bert_config as a dict (BertConfig."
                "to_dict()) and config as an argparse.Namespace"
            ) from None
        raise ConversionError(f"{path}: truncated or corrupt checkpoint ({message.splitlines()[0][:200]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, KeyError, ValueError, OSError) as error:
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        kind = "truncated or corrupt" if is_zip_format or isinstance(error, EOFError) else "unreadable"
        raise ConversionError(f"{path}: {kind} checkpoint ({reason})") from None
    return checkpoint


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor{list(value.shape)}"
    if isinstance(value, dict):
        return f"dict with {len(value)} keys"
    return type(value).__name__


def check_layout(checkpoint, path: str | Path = "checkpoint") -> None:
    """The top level must be the training checkpoint dict of the original code."""
    expected = ", ".join(repr(key) for key in REQUIRED_KEYS)
    if not isinstance(checkpoint, dict):
        raise ConversionError(
            f"{path}: not an original BarcodeMAE/BarcodeBERT checkpoint: expected a dict with the keys {expected} "
            f"(plus 'optimizer', 'scheduler', 'epoch', ...), found a {type(checkpoint).__name__}"
        )
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint]
    if missing:
        found = ", ".join(f"{key!r} ({_describe(value)})" for key, value in list(checkpoint.items())[:12])
        hint = ""
        if checkpoint and all(isinstance(value, torch.Tensor) for value in checkpoint.values()):
            hint = (
                " This looks like a bare state dict: the converter needs the full training checkpoint, whose "
                "'config' and 'bert_config' give k, the maximum length and the model size."
            )
        raise ConversionError(
            f"{path}: not an original BarcodeMAE/BarcodeBERT checkpoint: expected the keys {expected}, missing "
            f"{', '.join(map(repr, missing))}; found {found or 'no keys'}.{hint}"
        )
    if not isinstance(checkpoint["model"], dict) or not all(
        isinstance(value, torch.Tensor) for value in checkpoint["model"].values()
    ):
        found = _describe(checkpoint["model"])
        raise ConversionError(f"{path}: 'model' must be a state dict of tensors, found {found}")
    if not isinstance(checkpoint["bert_config"], dict):
        raise ConversionError(
            f"{path}: 'bert_config' must be a dict (BertConfig.to_dict()), found {_describe(checkpoint['bert_config'])}"
        )
    if not isinstance(checkpoint["config"], (argparse.Namespace, dict)):
        raise ConversionError(
            f"{path}: 'config' must be an argparse.Namespace (or a dict), found {_describe(checkpoint['config'])}"
        )


# --------------------------------------------------------------------------------------------------------------------
# Tokenizer settings and model config


def tokenizer_settings(training_config) -> tuple[int, int]:
    """(k, max_len) of the original tokenizer; raises if it is not the non-overlapping k-mer tokenizer we implement."""
    options = vars(training_config) if isinstance(training_config, argparse.Namespace) else dict(training_config)
    for key in ("k_mer", "max_len"):
        if not isinstance(options.get(key), int) or options[key] < 1:
            raise ConversionError(f"config.{key} must be a positive integer, found {options.get(key)!r}")
    k, max_len = options["k_mer"], options["max_len"]
    stride = options.get("stride")
    stride = k if stride is None else stride  # the original DNADataset reads stride=None as k
    if stride != k:
        raise ConversionError(
            f"unsupported tokenizer: stride {stride} != k_mer {k}; this package tokenises by non-overlapping k-mers "
            "(stride = k), as the released BarcodeMAE/BarcodeBERT models do"
        )
    unsupported = {
        "tokenizer": (lambda value: value not in (None, "kmer"), "only the k-mer tokenizer is supported"),
        "tokenize_n_nucleotide": (bool, "k-mers with N as tokens of their own (vocabulary 5^k) are not supported"),
        "use_unk_token": (lambda value: value is False, "without [UNK] the vocabulary is 5^k k-mers, not supported"),
        "use_cls_token": (bool, "a [CLS] token (id 2) shifts the vocabulary, not supported"),
        "jumbo": (bool, "Jumbo-token encoders are not a BERT encoder, not supported"),
        "n_registers": (lambda value: isinstance(value, int) and value > 0, "register tokens are not supported"),
    }
    for key, (is_unsupported, reason) in unsupported.items():
        if key in options and is_unsupported(options[key]):
            raise ConversionError(f"unsupported checkpoint: config.{key}={options[key]!r}: {reason}")
    return k, max_len


def build_config(bert_config: dict, k: int, max_len: int, kind: str, decoder_config: dict | None) -> BarcodeMAEConfig:
    """Our config from the original `BertConfig.to_dict()` and tokenizer settings."""
    for key, allowed in (("position_embedding_type", ("absolute", None)), ("is_decoder", (False, None))):
        if bert_config.get(key) not in allowed:
            raise ConversionError(f"unsupported bert_config: {key}={bert_config[key]!r}")
    expected_vocab = 4**k + 2
    vocab_size = bert_config.get("vocab_size")
    if vocab_size != expected_vocab:
        raise ConversionError(_vocab_error(vocab_size, k, "bert_config.vocab_size"))
    fields = (
        "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
        "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size",
        "layer_norm_eps", "initializer_range",
    )  # fmt: skip
    kwargs = {field: bert_config[field] for field in fields if field in bert_config}
    decoder = decoder_config or bert_config
    kwargs.update(
        decoder_hidden_size=decoder.get("hidden_size", kwargs.get("hidden_size", 768)),
        decoder_num_hidden_layers=decoder.get("num_hidden_layers", kwargs.get("num_hidden_layers", 6)),
        decoder_num_attention_heads=decoder.get("num_attention_heads", kwargs.get("num_attention_heads", 6)),
        decoder_intermediate_size=decoder.get("intermediate_size", kwargs.get("intermediate_size", 3072)),
    )
    try:
        return BarcodeMAEConfig(
            k_mer=k, max_sequence_length=max_len, objective="mae" if kind == "barcodemae" else "mlm", **kwargs
        )
    except ValueError as error:
        raise ConversionError(f"unsupported model settings: {error}") from None


def _vocab_error(vocab_size, k: int, where: str) -> str:
    message = (
        f"unsupported vocabulary: {where} is {vocab_size}, but {k}-mers with the BarcodeMAE/BarcodeBERT layout "
        f"([MASK], [UNK], then the 4^{k} k-mers) need {4**k + 2}"
    )
    if vocab_size == 4**k + 3:
        message += " (4^k + 3 is the BarcodeBERT v1 layout with <CLS> at id 1 and <UNK> at id 2, which differs)"
    elif vocab_size in (5**k + 1, 5**k + 2):
        message += " (5^k + ... is a vocabulary where k-mers containing N have tokens of their own)"
    elif isinstance(vocab_size, int):
        for other in range(1, 13):
            if vocab_size in (4**other + 2, 4**other + 3):
                message += f" (it fits k={other}: is config.k_mer right?)"
    return message


# --------------------------------------------------------------------------------------------------------------------
# Weights


def strip_prefixes(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    stripped = {}
    for key, value in state_dict.items():
        changed = True
        while changed:
            changed = False
            for prefix in STRIPPED_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix) :], True
        stripped[key] = value
    return stripped


def detect_kind(state_dict: dict[str, torch.Tensor]) -> tuple[str, str]:
    """(kind, prefix of the encoder's keys) from the key layout."""
    keys = list(state_dict)
    if any(key.startswith(("bert.", "classifier.")) for key in keys):
        return "barcodebert", "bert."
    if any(key.startswith("embeddings.") for key in keys):
        return "barcodemae", ""
    if any(key.startswith("encoder.embeddings.") for key in keys):  # a full MAELMModel: encoder + decoder
        return "barcodemae", "encoder."
    sample = ", ".join(keys[:6]) or "no keys"
    raise ConversionError(
        "not a BERT state dict: expected 'embeddings.word_embeddings.weight' (BarcodeMAE, BertModel) or "
        f"'bert.embeddings.word_embeddings.weight' (BarcodeBERT, BertForTokenClassification); found {sample}"
    )


def map_weights(
    state_dict: dict[str, torch.Tensor], prefix: str, config: BarcodeMAEConfig
) -> tuple[dict[str, torch.Tensor], list[tuple[str, list[int], str]]]:
    """Our state dict, and the dropped tensors as (original key, shape, reason). Raises on anything unexpected."""
    target = BarcodeMAEModel(config).state_dict()
    mapped: dict[str, torch.Tensor] = {}
    dropped: list[tuple[str, list[int], str]] = []
    unused: list[str] = []
    for key, tensor in state_dict.items():
        name = key[len(prefix) :] if key.startswith(prefix) else None
        if name in target:
            mapped[name] = tensor
            continue
        if name is not None and name.split(".")[0] == "pooler":
            dropped.append((key, list(tensor.shape), DROPPED_REASONS["pooler"]))
        elif name is not None and name.endswith("embeddings.position_ids"):
            if not torch.equal(tensor.flatten(), torch.arange(tensor.numel(), dtype=tensor.dtype)):
                raise ConversionError(f"{key} is not 0..N-1: positions other than the default are not supported")
            dropped.append((key, list(tensor.shape), DROPPED_REASONS["position_ids"]))
        elif key.split(".")[0] in HEADS_OUTSIDE_ENCODER.get(prefix, ()):
            dropped.append((key, list(tensor.shape), DROPPED_REASONS[key.split(".")[0]]))
        else:
            unused.append(key)
    if unused:
        raise ConversionError(
            f"{len(unused)} tensors of the checkpoint have no place in the model: {', '.join(unused[:10])}"
            + (" ..." if len(unused) > 10 else "")
        )
    missing = [name for name in target if name not in mapped]
    if missing:
        raise ConversionError(
            f"the checkpoint lacks {len(missing)} tensors of the encoder ({config.num_hidden_layers} layers per "
            f"bert_config): {', '.join(prefix + name for name in missing[:10])}" + (" ..." if len(missing) > 10 else "")
        )
    word = "embeddings.word_embeddings.weight"
    rows = mapped[word].shape[0]
    if rows != config.vocab_size - 1:
        raise ConversionError(_vocab_error(rows, config.k_mer, f"the word embedding table ({prefix}{word})"))
    pad_row = torch.zeros(1, mapped[word].shape[1], dtype=mapped[word].dtype)
    mapped[word] = torch.cat([mapped[word], pad_row])  # [PAD] = 4**k + 2, never attended to
    for name, tensor in mapped.items():
        if tuple(tensor.shape) != tuple(target[name].shape):
            raise ConversionError(
                f"shape mismatch for {prefix}{name}: checkpoint {list(tensor.shape)}, model {list(target[name].shape)}"
                " (from bert_config)"
            )
        if not tensor.is_floating_point():
            raise ConversionError(f"{prefix}{name} is {tensor.dtype}, expected a floating-point tensor")
    return mapped, dropped


# --------------------------------------------------------------------------------------------------------------------
# Verification against the original pipeline


@functools.lru_cache
def original_vocabulary(k: int) -> dict[str, int]:
    """The original vocabulary: [MASK]=0, [UNK]=1, then the k-mers of product("ACGT") from id 2: ours without [PAD]."""
    return {token: index for token, index in kmer_vocabulary(k).items() if token != PAD_TOKEN}


def original_token_ids(sequence: str, k: int, max_len: int) -> tuple[list[int], list[int]]:
    """The original `KmerTokenizer(k, vocab, stride=k, padding=True, max_len)`: ids and attention mask."""
    vocabulary = original_vocabulary(k)
    mask = [1] * (max_len // k)
    if len(sequence) > max_len:
        sequence = sequence[:max_len]
    else:
        mask[len(sequence) // k :] = [0] * (len(mask) - len(sequence) // k)
        sequence = sequence + "N" * (max_len - len(sequence))
    ids = [vocabulary.get(sequence[i : i + k], 1) for i in range(0, len(sequence) - k + 1, k)]
    return ids, mask


def verify(out_dir: Path, bert_config: dict, encoder_state: dict[str, torch.Tensor], k: int, max_len: int) -> float:
    """Max |difference| between the converted folder's embeddings and the original model's on synthetic barcodes."""
    from transformers import BertConfig, BertModel

    reference = BertModel(BertConfig(**bert_config), add_pooling_layer=False).eval()
    expected_keys = reference.state_dict().keys()
    reference.load_state_dict({key: value for key, value in encoder_state.items() if key in expected_keys}, strict=True)
    model = BarcodeMAEModel.from_pretrained(out_dir).eval()
    tokenizer = BarcodeMAETokenizer.from_pretrained(out_dir)
    generator = torch.Generator().manual_seed(0)
    sequences = []
    for length in (k, k + 1, max_len // 3, max_len // 2 + k - 1, max_len - 1, max_len, max_len + 2 * k + 1):
        bases = torch.randint(0, 4, (length,), generator=generator).tolist()
        sequence = "".join("ACGT"[base] for base in bases)
        if length > 3 * k:
            sequence = sequence[:k] + "N" + sequence[k + 1 :]  # one [UNK] k-mer
        sequences.append(sequence)
    ids, masks = zip(*(original_token_ids(sequence, k, max_len) for sequence in sequences))
    ids, masks = torch.tensor(ids), torch.tensor(masks)
    encoded = tokenizer(sequences, padding="max_length", truncation=True, max_length=max_len // k, return_tensors="pt")
    if not torch.equal(encoded["attention_mask"], masks.long()) or not torch.equal(
        encoded["input_ids"][masks.bool()], ids[masks.bool()]
    ):
        raise ConversionError("verification failed: the tokenizer's ids differ from the original pipeline's")
    with torch.no_grad():
        hidden = reference(input_ids=ids, attention_mask=masks).last_hidden_state
        weights = masks.unsqueeze(-1).to(hidden.dtype)
        expected = (hidden * weights).sum(1) / weights.sum(1)
        actual = model(**encoded).pooler_output
    return float((actual - expected).abs().max())


# --------------------------------------------------------------------------------------------------------------------
# Model card and command line


def model_card(source: Path, kind: str, config: BarcodeMAEConfig, dropped, training_config, max_diff) -> str:
    name = "BarcodeMAE" if kind == "barcodemae" else "BarcodeBERT"
    options = vars(training_config) if isinstance(training_config, argparse.Namespace) else dict(training_config)
    provenance = {key: options[key] for key in ("arch", "dataset_name", "run_name", "epochs") if key in options}
    dropped_lines = "\n".join(f"- `{key}` {shape}: {reason}" for key, shape, reason in dropped) or "- nothing"
    check = (
        "not run (`--no-verify`)"
        if max_diff is None
        else f"max |difference| {max_diff:.2e} (tolerance {ATOL:g}) against a transformers `BertModel` holding the "
        "original weights, fed the original pipeline's token ids and attention mask"
    )
    return f"""---
library_name: transformers
tags:
- dna
- dna-barcodes
- {kind}
---

# {name} encoder, converted from an original checkpoint

Converted with `convert_original_checkpoint.py` from the original {name} checkpoint `{source.name}`
({", ".join(f"{key}={value}" for key, value in provenance.items()) or "no run metadata"}).

- Tokenizer: non-overlapping {config.k_mer}-mers, {config.max_sequence_length} nt ({config.max_tokens} tokens);
  vocabulary `[MASK]`=0, `[UNK]`=1, the 4^{config.k_mer} k-mers in `itertools.product("ACGT")` order, and
  `[PAD]`={config.pad_token_id} (a zero row appended to the original word embeddings; never attended to).
- Encoder: {config.num_hidden_layers} layers, hidden size {config.hidden_size}, {config.num_attention_heads} heads.
- Embedding (`pooler_output`): mean of the last hidden state over the non-padding tokens, as in the original probes.
- Embedding check at conversion: {check}.

Dropped from the checkpoint (not part of the encoder):

{dropped_lines}

```python
from transformers import AutoModel, AutoTokenizer

model = AutoModel.from_pretrained("PATH", trust_remote_code=True).eval()
tokenizer = AutoTokenizer.from_pretrained("PATH", trust_remote_code=True)
batch = tokenizer(["AACATTATATTTTATTTTTGG..."], padding=True, truncation=True, return_tensors="pt")
embeddings = model(**batch).pooler_output
```
"""


def convert(
    source: str | Path, out_dir: str | Path, kind: str | None = None, verify_output: bool = True, force: bool = False,
    log=print,
) -> dict:
    """Convert `source` into the Hub folder `out_dir`; returns a summary (kind, dropped tensors, max difference)."""
    source, out_dir = Path(source), Path(out_dir)
    if kind is not None and kind not in KINDS:
        raise ConversionError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())) and not force:
        raise ConversionError(f"{out_dir} exists and is not an empty folder; pass --force to write into it anyway")
    transformers_logging.disable_progress_bar()
    checkpoint = load_checkpoint(source)
    check_layout(checkpoint, source)
    k, max_len = tokenizer_settings(checkpoint["config"])
    state_dict = strip_prefixes(checkpoint["model"])
    detected, prefix = detect_kind(state_dict)
    if kind is not None and kind != detected:
        raise ConversionError(
            f"--kind {kind} does not match the checkpoint, whose keys are those of {detected} "
            f"({'BertForTokenClassification: bert.*, classifier.*' if detected == 'barcodebert' else 'BertModel'})"
        )
    if "register_tokens" in state_dict:
        raise ConversionError("unsupported checkpoint: it holds register tokens (n_registers > 0)")
    decoder_config = checkpoint.get("decoder_config")
    config = build_config(
        checkpoint["bert_config"], k, max_len, detected, decoder_config if isinstance(decoder_config, dict) else None
    )
    mapped, dropped = map_weights(state_dict, prefix, config)
    log(f"{source}: {detected} checkpoint, k={k}, max_len={max_len}, {config.num_hidden_layers} layers, "
        f"hidden {config.hidden_size}; {len(mapped)} tensors mapped")  # fmt: skip
    for key, shape, reason in dropped:
        log(f"  dropped {key} {shape}: {reason}")

    out_dir.mkdir(parents=True, exist_ok=True)
    model = BarcodeMAEModel(config)
    model.load_state_dict(mapped, strict=True)
    model.save_pretrained(out_dir)
    # no frame registration: the original models saw barcodes as they are, and the conversion is exact
    BarcodeMAETokenizer(k_mer=k, max_sequence_length=max_len, register_frame=False).save_pretrained(out_dir)

    max_diff = None
    if verify_output:
        encoder_state = {key[len(prefix) :]: value for key, value in state_dict.items() if key.startswith(prefix)}
        max_diff = verify(out_dir, checkpoint["bert_config"], encoder_state, k, max_len)
        log(f"  embeddings vs the original model: max |difference| {max_diff:.2e}")
        if not max_diff <= ATOL:
            raise ConversionError(f"verification failed: embeddings differ by {max_diff:.2e} > {ATOL:g}")
    (out_dir / "README.md").write_text(model_card(source, detected, config, dropped, checkpoint["config"], max_diff))
    log(f"wrote {out_dir}")
    return {"kind": detected, "k_mer": k, "max_len": max_len, "dropped": dropped, "max_diff": max_diff}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The converter's command-line arguments (shared by `barcodemae convert` and convert_original_checkpoint.py)."""
    parser.add_argument("source", metavar="SRC.pt", help="original BarcodeMAE / BarcodeBERT checkpoint")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="Hub folder to write")
    parser.add_argument("--kind", choices=KINDS, help="checkpoint kind (default: detected from the keys)")
    parser.add_argument("--no-verify", action="store_true", help="skip the embedding check against the original")
    parser.add_argument(
        "--force", action="store_true", help="write into a non-empty OUT_DIR (files of the same name are replaced)"
    )
