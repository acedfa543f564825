"""Shared test fixtures: the bundled real-barcode fixture, tiny models, one torch thread, a clean-interpreter runner."""

import functools
import os
import runpy
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from barcodemae.data import FIXTURE  # noqa: E402 - after the repo is on the path

TRAIN_SCRIPT = REPO / "train.py"


@functools.cache
def train_script() -> SimpleNamespace:
    """train.py's `parse_args` and `main`, run from the script's file (not imported: nothing imports train.py), so that
    tests run the command in this process: fast, and monkeypatch reaches it. Its library is barcodemae.training."""
    return SimpleNamespace(**runpy.run_path(str(TRAIN_SCRIPT), run_name="train_script"))


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


@pytest.fixture(scope="module")
def one_thread():
    """Tiny matrices: one thread is as fast, and far faster when other processes hold the cores (no spin-waits)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config_kwargs(**overrides) -> dict:
    """A 2-layer, 32-wide model (encoder and decoder): fast enough for any test."""
    kwargs = dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        decoder_hidden_size=32, decoder_num_hidden_layers=2, decoder_num_attention_heads=2,
        decoder_intermediate_size=64,
    )
    kwargs.update(overrides)
    return kwargs


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A seeded tiny `BarcodeMAEModel` (`tiny_config_kwargs`) and its tokenizer, saved as a model folder."""
    from configuration_barcodemae import BarcodeMAEConfig
    from modeling_barcodemae import BarcodeMAEModel
    from tokenization_barcodemae import BarcodeMAETokenizer

    directory = tmp_path_factory.mktemp("tiny_barcodemae")
    torch.manual_seed(0)
    BarcodeMAEModel(BarcodeMAEConfig(**tiny_config_kwargs())).save_pretrained(directory)
    BarcodeMAETokenizer().save_pretrained(directory)
    return directory


# Prepended to user code: the package's own modules must not be importable, even if pip-installed, so that
# everything the code gets comes from the model folder through trust_remote_code.
_BLOCK_PACKAGE_IMPORTS = """
import sys
class _BlockPackage:
    def find_spec(self, name, path=None, target=None):
        if name in ("alphabet_barcodemae", "configuration_barcodemae", "tokenization_barcodemae",
                    "modeling_barcodemae"):
            raise ImportError(f"{name} must come from the model folder (trust_remote_code), not the repo")
sys.meta_path.insert(0, _BlockPackage())
"""


def run_clean_python(code: str, tmp_path: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `code` as a user would: a fresh interpreter, offline, its own HF caches, outside the repo.

    The repo is neither on `sys.path` nor importable, so models load only through `trust_remote_code`.
    """
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
        [sys.executable, "-c", _BLOCK_PACKAGE_IMPORTS + code], cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result
