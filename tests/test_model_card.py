"""Model cards (barcodemae.model_card): the shipped checkpoint's card is what release_checkpoint.py writes, its first
snippet runs as printed, and the cards train.py writes read without local paths, raw nulls or unexplained settings."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, run_clean_python, tiny_config_kwargs

from barcodemae.model_card import MODEL_ID, SPACE_URL, model_card
from configuration_barcodemae import BarcodeMAEConfig

CHECKPOINT = REPO / "checkpoints" / "barcodemae-4x256-bold"
RESULTS = REPO / "results" / "frame_registration_2026-12-01"
ROWS = {  # the table of the released card: label -> key of the study's results
    "kmer:6": "kmer:6",
    "untrained encoder, seed 0 (registered)": "outputs/frame/untrained-4x256-s0-reg",
    "untrained encoder, seed 1 (registered)": "outputs/frame/untrained-4x256-s1-reg",
    "previous checkpoint (paper recipe, unregistered pretraining; registered here)": "outputs/frame/shipped-reg@0",
    "**this model** (embedding-layer features, its default)": "outputs/frame/visible-reg-seed1@0",
    "the same recipe, pretraining seed 0": "outputs/frame/visible-reg-seed0@0",
}


def _first_python_block(card: str) -> str:
    return re.search(r"```python\n(.*?)```", card, re.S).group(1)


@pytest.mark.slow
def test_shipped_card_is_what_release_checkpoint_writes(tmp_path):
    for name in ("config.json", "tokenizer_config.json", "tokenizer.json"):
        shutil.copy(CHECKPOINT / name, tmp_path)
    results = [str(RESULTS / f"protocol_{name}.json") for name in ("kmer", "baselines", "paper", "visible", "visible_seed0")]
    notes = (REPO / "experiments" / "release" / "barcodemae-4x256-bold.notes.md").read_text()
    subprocess.run([sys.executable, str(REPO / "experiments" / "release_checkpoint.py"), "--card_only", "--target",
                    str(tmp_path), "--results", *results, "--training",
                    str(REPO / "experiments" / "release" / "barcodemae-4x256-bold.training.json"), "--notes", notes,
                    *[f"--row={label}={key}" for label, key in ROWS.items()]], check=True, capture_output=True)  # fmt: skip
    written = (tmp_path / "README.md").read_text().replace(tmp_path.name, CHECKPOINT.name)
    assert written == (CHECKPOINT / "README.md").read_text()


@pytest.mark.slow
def test_shipped_card_starts_with_a_snippet_that_finds_the_right_reference(tmp_path):
    card = (CHECKPOINT / "README.md").read_text()
    assert card.index("```python") < card.index("## Model") and SPACE_URL in card and "model-index:" in card
    code = _first_python_block(card).replace(f'"{MODEL_ID}"', repr(str(CHECKPOINT)))
    assert run_clean_python(code, tmp_path).stdout.startswith("nearest reference: Aedes aegypti (cosine 0.8")


def test_train_cards_give_chance_level_comparison_and_readable_settings():
    config = BarcodeMAEConfig(**tiny_config_kwargs(pooling_layer=0, masked_loss_weight=0.5))
    training = {"recipe": "visible_layer0", "optimizer_steps": 4, "lr_scheduler": "cosine", "warmup_ratio": 0.05,
                "adam_betas": [0.9, 0.98], "started_from": None}  # fmt: skip
    validation = {"val_masked_accuracy": 0.0123, "val_loss": 7.9, "val_masked_tokens": 512, "step": 4}
    card = model_card(config, "barcodemae-small", "barcodemae-small", "`bioscan_fixture.csv.gz`, splits pretrain",
                      training, "bioscan_fixture.csv.gz", validation)  # fmt: skip
    assert 'model_id = "./barcodemae-small"' in _first_python_block(card)
    assert "0.0123 (chance: 1/4,096 = 0.00024" in card and "ln 4,096 = 8.32" in card
    assert "Not measured for this model" in card and "70.0 vs 72.3 vs 55.9 / 61.3" in card and SPACE_URL in card
    assert "the toolkit's bundled fixture: 3,627 real BOLD" in card
    assert "`visible_layer0` (train.py --recipe visible_layer0)" in card and "| started from | none |" in card
    assert "linear warm-up, then cosine decay" in card and "loss weight 0.5 on the masked k-mers" in card
    assert "null" not in card and "masked_loss_weight" not in card and "probe table below" not in card
