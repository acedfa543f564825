"""Shared test fixtures: the bundled real-barcode fixture, tiny model configs, a clean-interpreter runner."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FIXTURE = REPO / "data" / "bioscan_fixture.csv.gz"


@pytest.fixture(scope="session")
def fixture_path() -> Path:
    return FIXTURE


@pytest.fixture(scope="session")
def fixture_metadata() -> pd.DataFrame:
    return pd.read_csv(FIXTURE, dtype=str, keep_default_na=False)


@pytest.fixture(scope="session")
def barcodes(fixture_metadata) -> list[str]:
    """32 real barcodes of various lengths, some with ambiguity codes."""
    return list(fixture_metadata.dna_barcode.iloc[::100][:32])


def tiny_config_kwargs(**overrides) -> dict:
    """A 2-layer, 32-wide model (encoder and decoder): fast enough for any test."""
    kwargs = dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        decoder_hidden_size=32, decoder_num_hidden_layers=2, decoder_num_attention_heads=2,
        decoder_intermediate_size=64,
    )
    kwargs.update(overrides)
    return kwargs


def run_clean_python(code: str, tmp_path: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `code` as a user would: a fresh interpreter, offline, its own HF caches, outside the repo, repo not importable."""
    workdir = tmp_path / "user"
    workdir.mkdir(exist_ok=True)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "HF_HOME", "HF_MODULES_CACHE")}
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf_home"),
        HF_MODULES_CACHE=str(tmp_path / "hf_modules"),
        PYTHONSAFEPATH="1",
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result
