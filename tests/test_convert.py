"""Conversion of original BarcodeMAE / BarcodeBERT checkpoints (issue 6).

The original checkpoints are rebuilt here with random weights in the original shapes (transformers `BertModel` /
`BertForTokenClassification`, vocabulary 4**k + 2, `torch.save` of the training dict with an `argparse.Namespace`,
a DDP `module.` prefix and optimizer state). The reference embedding is the original pipeline's: the original
`KmerTokenizer` (`convert_original_checkpoint.original_token_ids`, which the converter also checks our tokenizer
against) and the mean of the last hidden state over the attention mask.

Attention mask of the original (BarcodeBERT / BarcodeMAE `datasets.KmerTokenizer`, `padding=True`): the sequence is
cut to `max_len` or padded with `N` to `max_len`; the mask is 1 for the first `len(sequence) // k` tokens (all of
them if the sequence was cut) and 0 after, so the padding `[UNK]` k-mers and a trailing partial k-mer are masked both
in attention (passed to BERT as `attention_mask`) and in the mean (`single_inference`). Our tokenizer drops the
trailing partial k-mer and pads with `[PAD]`, so the attended tokens are the same and the embeddings must be too.
"""

import argparse
import json
import os
import subprocess
import sys

import pytest
import torch
from transformers import BertConfig, BertForTokenClassification, BertModel

from conftest import REPO, run_clean_python, tiny_config_kwargs
from barcodemae.convert import ConversionError, convert, original_token_ids
from convert_original_checkpoint import main
from modeling_barcodemae import BarcodeMAEModel
from tokenization_barcodemae import BarcodeMAETokenizer

MAX_LEN = 660
ATOL = 1e-5


# ---- the original pipeline -----------------------------------------------------------------------------------------


def original_embeddings(model, sequences: list[str], k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`single_inference` of the original code, batched: (embeddings, token ids, attention mask)."""
    ids, masks = zip(*(original_token_ids(sequence, k, MAX_LEN) for sequence in sequences))
    ids, masks = torch.tensor(ids), torch.tensor(masks, dtype=torch.int32)
    with torch.no_grad():
        hidden = model(ids, masks).hidden_states[-1]
    x = (hidden * masks.unsqueeze(-1)).sum(1) / masks.sum(1, keepdim=True)
    return x, ids, masks


def make_original_checkpoint(path, kind: str, k: int, seed: int = 0, ddp: bool = True, **config_overrides):
    """An original-format training checkpoint with random weights; returns the original model (eval mode)."""
    torch.manual_seed(seed)
    tiny = tiny_config_kwargs()
    bert_config = BertConfig(
        vocab_size=4**k + 2,
        hidden_size=tiny["hidden_size"],
        num_hidden_layers=tiny["num_hidden_layers"],
        num_attention_heads=tiny["num_attention_heads"],
        intermediate_size=tiny["intermediate_size"],
        num_labels=4**k,
        output_hidden_states=True,
        max_position_embeddings=512,
    )
    model = BertModel(bert_config) if kind == "barcodemae" else BertForTokenClassification(bert_config)
    with torch.no_grad():  # weights far from the near-zero default init, LayerNorm gains included
        for name, parameter in model.named_parameters():
            parameter.copy_((1.0 if "LayerNorm.weight" in name else 0.0) + 0.3 * torch.randn_like(parameter))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    output = model(torch.randint(2, 4**k + 2, (2, 8)))
    (output.last_hidden_state if kind == "barcodemae" else output.logits).sum().backward()
    optimizer.step()
    optimizer.zero_grad()
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10)
    state = model.state_dict()
    if ddp:
        state = {f"module.{key}": value for key, value in state.items()}
    config = dict(
        k_mer=k, stride=k, max_len=MAX_LEN, n_layers=2, n_heads=2, tokenizer="kmer", tokenize_n_nucleotide=False,
        arch="maelm" if kind == "barcodemae" else "transformer", dataset_name="BIOSCAN-5M", run_name="tiny",
    )  # fmt: skip
    config.update(config_overrides)
    torch.save(
        {
            "model": state,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "epoch": 3,
            "total_step": 120,
            "bert_config": bert_config.to_dict(),
            "config": argparse.Namespace(**config),
        },
        path,
    )
    return model.eval()


@pytest.fixture(scope="module")
def probe_barcodes(fixture_metadata, barcodes) -> list[str]:
    """The 32 real barcodes plus real ones with IUPAC ambiguity codes (R, W, ...): [UNK] k-mers in both pipelines."""
    ambiguous = fixture_metadata.dna_barcode[fixture_metadata.dna_barcode.str.contains("[RYSWKM]")]
    return barcodes + list(ambiguous.iloc[:4])


# ---- conversion: numerically identical embeddings ------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind,k,ddp",
    [("barcodemae", 6, True), ("barcodebert", 6, True), ("barcodebert", 4, False), ("barcodemae", 4, True)],
)
def test_converted_embeddings_match_original(tmp_path, probe_barcodes, capsys, kind, k, ddp):
    source = tmp_path / "checkpoint_pretraining.pt"
    original = make_original_checkpoint(source, kind, k, ddp=ddp)
    out = tmp_path / "hub"
    assert main([str(source), str(out)]) == 0  # kind detected from the keys
    printed = capsys.readouterr().out
    assert f"{kind} checkpoint, k={k}" in printed
    dropped = ["pooler.dense.weight", "pooler.dense.bias"] if kind == "barcodemae" else ["classifier.weight"]
    for key in dropped:
        assert f"dropped {key}" in printed or f"dropped bert.{key}" in printed
    card = (out / "README.md").read_text()
    assert source.name in card and "Dropped from the checkpoint" in card
    assert ("pooler" in card) if kind == "barcodemae" else ("classifier" in card)

    expected, ids, masks = original_embeddings(original, probe_barcodes, k)
    tokenizer = BarcodeMAETokenizer.from_pretrained(out)
    model = BarcodeMAEModel.from_pretrained(out).eval()
    batch = tokenizer(probe_barcodes, padding=True, truncation=True, return_tensors="pt")
    length = batch["input_ids"].shape[1]
    # Same tokens where the original attends, same mask; the original's extra positions are all masked padding.
    assert torch.equal(batch["attention_mask"], masks[:, :length].long()) and not masks[:, length:].any()
    assert torch.equal(batch["input_ids"][batch["attention_mask"].bool()], ids[:, :length][masks[:, :length].bool()])
    with torch.no_grad():
        actual = model(**batch).pooler_output
    torch.testing.assert_close(actual, expected, atol=ATOL, rtol=0)
    assert model.config.vocab_size == 4**k + 3 and model.config.max_sequence_length == MAX_LEN
    assert torch.count_nonzero(model.embeddings.word_embeddings.weight[4**k + 2]) == 0  # the appended [PAD] row


@pytest.mark.slow
def test_clean_reload_with_automodel(tmp_path, probe_barcodes):
    """The one command, run as a user would, then AutoModel + trust_remote_code in a fresh offline interpreter."""
    source = tmp_path / "barcodebert.pt"
    original = make_original_checkpoint(source, "barcodebert", 6, seed=1)
    out = tmp_path / "converted"
    result = subprocess.run(
        [sys.executable, str(REPO / "convert_original_checkpoint.py"), str(source), str(out), "--kind", "barcodebert"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "dropped classifier.weight" in result.stdout and "dropped classifier.bias" in result.stdout
    assert "max |difference|" in result.stdout
    (tmp_path / "barcodes.json").write_text(json.dumps(probe_barcodes))
    run_clean_python(
        f"""
import json, torch
from transformers import AutoModel, AutoTokenizer
model = AutoModel.from_pretrained({str(out)!r}, trust_remote_code=True).eval()
tokenizer = AutoTokenizer.from_pretrained({str(out)!r}, trust_remote_code=True)
assert type(model).__name__ == "BarcodeMAEModel" and type(tokenizer).__name__ == "BarcodeMAETokenizer"
assert tokenizer.register_frame is False  # the original models tokenized barcodes as they are
barcodes = json.load(open({str(tmp_path / "barcodes.json")!r}))
with torch.no_grad():
    embeddings = model(**tokenizer(barcodes, padding=True, truncation=True, return_tensors="pt")).pooler_output
torch.save(embeddings, {str(tmp_path / "embeddings.pt")!r})
""",
        tmp_path,
    )
    expected, _, _ = original_embeddings(original, probe_barcodes, 6)
    actual = torch.load(tmp_path / "embeddings.pt", weights_only=True)
    torch.testing.assert_close(actual, expected, atol=ATOL, rtol=0)


def test_full_maelm_training_model(tmp_path, probe_barcodes, capsys):
    """A checkpoint of the whole BarcodeMAE training model (encoder.*, decoder.*, projection_layer.*): the encoder is
    converted, the decoder and projection are reported as dropped."""
    make_original_checkpoint(tmp_path / "encoder.pt", "barcodemae", 4)
    checkpoint = torch.load(tmp_path / "encoder.pt", weights_only=False)
    torch.manual_seed(2)
    decoder_config = BertConfig(vocab_size=4**4 + 2, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=32, num_labels=4**4)  # fmt: skip
    decoder = BertForTokenClassification(decoder_config).state_dict()
    encoder = {key.removeprefix("module."): value for key, value in checkpoint["model"].items()}
    checkpoint["model"] = {
        **{f"module.encoder.{key}": value for key, value in encoder.items()},
        **{f"module.decoder.{key}": value for key, value in decoder.items()},
        "module.projection_layer.weight": torch.zeros(16, 32),
        "module.projection_layer.bias": torch.zeros(16),
    }
    checkpoint["decoder_config"] = decoder_config.to_dict()
    torch.save(checkpoint, tmp_path / "maelm.pt")
    summary = convert(tmp_path / "maelm.pt", tmp_path / "out")  # verifies the embeddings against the original
    assert summary["kind"] == "barcodemae" and summary["max_diff"] <= ATOL
    printed = capsys.readouterr().out
    assert "dropped module.decoder.classifier.weight" not in printed  # keys are reported without the DDP prefix
    assert "dropped decoder.classifier.weight" in printed and "dropped projection_layer.weight" in printed
    assert "dropped encoder.pooler.dense.weight" in printed
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["decoder_hidden_size"] == 16 and config["decoder_num_hidden_layers"] == 1


# ---- errors --------------------------------------------------------------------------------------------------------


def _error(source, tmp_path, **kwargs) -> str:
    with pytest.raises(ConversionError) as info:
        convert(source, tmp_path / "out", verify_output=False, log=lambda *_: None, **kwargs)
    return str(info.value)


def test_not_a_dict(tmp_path):
    torch.save([torch.zeros(3)], tmp_path / "list.pt")
    message = _error(tmp_path / "list.pt", tmp_path)
    assert "expected a dict" in message and "'model'" in message and "found a list" in message


def test_wrong_keys_names_expected_and_found(tmp_path):
    torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": 3}, tmp_path / "other.pt")
    message = _error(tmp_path / "other.pt", tmp_path)
    assert "'model', 'bert_config', 'config'" in message and "'state_dict'" in message and "'epoch'" in message
    torch.save({"embeddings.word_embeddings.weight": torch.zeros(4098, 8)}, tmp_path / "bare.pt")
    assert "bare state dict" in _error(tmp_path / "bare.pt", tmp_path)
    (tmp_path / "text.pt").write_text("hello")
    assert "not a PyTorch checkpoint" in _error(tmp_path / "text.pt", tmp_path)


def test_truncated_file(tmp_path):
    source = tmp_path / "full.pt"
    make_original_checkpoint(source, "barcodemae", 4)
    data = source.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    assert "truncated" in _error(tmp_path / "cut.pt", tmp_path)


def test_forbidden_global_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"model": {}, "bert_config": {}, "config": Payload()}, tmp_path / "evil.pt")
    message = _error(tmp_path / "evil.pt", tmp_path)
    assert "refused" in message and "system" in message
    assert not marker.exists()


def test_unsupported_tokenizer_and_vocabulary(tmp_path):
    make_original_checkpoint(tmp_path / "stride.pt", "barcodemae", 4, stride=1)
    assert "stride 1 != k_mer 4" in _error(tmp_path / "stride.pt", tmp_path)
    make_original_checkpoint(tmp_path / "k.pt", "barcodemae", 4, k_mer=5, stride=5)
    message = _error(tmp_path / "k.pt", tmp_path)
    assert "vocab" in message and "need 1026" in message and "fits k=4" in message
    make_original_checkpoint(tmp_path / "n.pt", "barcodebert", 4, tokenize_n_nucleotide=True)
    assert "tokenize_n_nucleotide" in _error(tmp_path / "n.pt", tmp_path)
    # BarcodeBERT v1 layout (<MASK>, <CLS>, <UNK>, k-mers): one row too many, ids shifted.
    checkpoint = torch.load(tmp_path / "stride.pt", weights_only=False)
    checkpoint["config"].stride = 4
    key = "module.embeddings.word_embeddings.weight"
    checkpoint["model"][key] = torch.zeros(4**4 + 3, 32)
    checkpoint["bert_config"]["vocab_size"] = 4**4 + 3
    torch.save(checkpoint, tmp_path / "v1.pt")
    assert "BarcodeBERT v1 layout" in _error(tmp_path / "v1.pt", tmp_path)


def test_every_tensor_accounted_for(tmp_path):
    make_original_checkpoint(tmp_path / "base.pt", "barcodebert", 4)
    checkpoint = torch.load(tmp_path / "base.pt", weights_only=False)
    extra = dict(checkpoint, model={**checkpoint["model"], "module.bert.extra_head.weight": torch.zeros(2)})
    torch.save(extra, tmp_path / "extra.pt")
    assert "no place in the model: bert.extra_head.weight" in _error(tmp_path / "extra.pt", tmp_path)
    short = dict(checkpoint, model={k: v for k, v in checkpoint["model"].items() if ".layer.1." not in k})
    torch.save(short, tmp_path / "short.pt")
    assert "lacks" in _error(tmp_path / "short.pt", tmp_path)
    bad = dict(checkpoint, model=dict(checkpoint["model"]))
    bad["model"]["module.bert.encoder.layer.0.intermediate.dense.weight"] = torch.zeros(48, 32)
    torch.save(bad, tmp_path / "shape.pt")
    message = _error(tmp_path / "shape.pt", tmp_path)
    assert "shape mismatch for bert.encoder.layer.0.intermediate.dense.weight" in message
    assert "does not match" in _error(tmp_path / "base.pt", tmp_path, kind="barcodemae")
    # The persistent position_ids buffer of transformers < 4.31 is known: dropped and reported.
    buffer = {"module.bert.embeddings.position_ids": torch.arange(512)[None]}
    old = dict(checkpoint, model={**checkpoint["model"], **buffer})
    torch.save(old, tmp_path / "old.pt")
    summary = convert(tmp_path / "old.pt", tmp_path / "old", log=lambda *_: None)
    dropped = {key for key, _, _ in summary["dropped"]}
    assert dropped == {"bert.embeddings.position_ids", "classifier.weight", "classifier.bias"}


def test_out_dir_not_overwritten(tmp_path, capsys):
    make_original_checkpoint(tmp_path / "ckpt.pt", "barcodemae", 4)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    assert main([str(tmp_path / "ckpt.pt"), str(tmp_path / "out"), "--no-verify"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1 and "--force" in error and (tmp_path / "out" / "keep.txt").exists()
