"""A normal (non-editable) install: the wheel's contents, the installed package used from another folder, and a model
name that is no folder there."""

import os
import re
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HUB_FILES = {"alphabet_barcodemae.py", "configuration_barcodemae.py", "tokenization_barcodemae.py",
             "modeling_barcodemae.py"}


def _offline_env(**extra) -> dict:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return {**env, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **extra}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(REPO)], check=True, capture_output=True, text=True)  # fmt: skip
    return next(out.glob("barcodemae-*.whl"))


@pytest.mark.slow
def test_wheel_ships_the_fixture_and_no_generic_top_level_modules(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "barcodemae/bioscan_fixture.csv.gz" in names and "barcodemae/identify.py" in names
    assert "barcodemae/search/index.py" in names  # the subpackage too
    top_level = {name for name in names if "/" not in name}
    assert top_level == HUB_FILES | {"evaluate_probes.py"}
    assert not any(name.startswith(("tests/", "data/", "checkpoints/", "space/", "benchmarks/")) for name in names)


@pytest.mark.slow
def test_installed_package_runs_from_another_folder(wheel, tmp_path):
    """The wheel unpacked on its own (`pip install --target`): its FIXTURE is inside it and the command line embeds
    it from a folder that is not the clone."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _offline_env(PYTHONPATH=str(target))
    where = subprocess.run([sys.executable, "-c", "import modeling_barcodemae; from barcodemae.data import FIXTURE; "
                            "print(FIXTURE)"], cwd=elsewhere, env=env, capture_output=True, text=True, check=True)  # fmt: skip
    fixture = Path(where.stdout.strip())
    assert fixture.is_file() and target in fixture.parents
    result = subprocess.run([sys.executable, "-m", "barcodemae.cli", "embed", str(fixture), "--splits", "val",
                             "--model", "kmer:3", "--output", "val.npy", "--no_progress"],
                            cwd=elsewhere, env=env, capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("60 barcodes x 64 dims (kmer:3)") and (elsewhere / "val.npy").is_file()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once the socket is closed


@pytest.mark.slow
@pytest.mark.parametrize(
    "hub, problem",
    [
        ({"HF_HUB_OFFLINE": "1"}, "nor a Hub model in the local cache (HF_HUB_OFFLINE is set)"),
        ({"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:{port}"}, "and the Hub could not be asked for it (Connect"),
    ],
    ids=["offline", "hub-unreachable"],
)
def test_relative_model_folder_from_elsewhere_fails_at_once(tmp_path, barcodes, hub, problem):
    """`--model checkpoints/...` from outside the clone: one error naming the folder, not five Hub retries."""
    (tmp_path / "reads.fasta").write_text(f">a\n{barcodes[0]}\n")
    env = _offline_env(HF_HOME=str(tmp_path / "hf"), **{key: value.format(port=_closed_port()) for key, value in hub.items()})
    result = subprocess.run(["barcodemae", "embed", "reads.fasta", "--model", "checkpoints/barcodemae-4x256-bold",
                             "--output", "out.npy"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 2 and "Retrying" not in result.stderr
    assert result.stderr.startswith(f"error: model 'checkpoints/barcodemae-4x256-bold': no such folder in {tmp_path}, "
                                    f"{problem}"), result.stderr  # fmt: skip
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out.npy").exists()


def test_readme_names_a_newest_tested_transformers_no_older_than_the_one_installed():
    """The README's "tested with ... the newest, transformers X and tokenizers Y" stays true: a suite that runs on a
    newer release than it names says so here (older installs, as the compatibility job's floors, pass)."""
    import tokenizers
    import transformers
    from packaging.version import Version

    text = " ".join((REPO / "README.md").read_text().split())
    newest = re.search(r"with the newest, transformers (\S+) and tokenizers (\S+?);", text)
    assert newest, "the README no longer names the newest tested versions"
    assert Version(transformers.__version__) <= Version(newest.group(1)), transformers.__version__
    assert Version(tokenizers.__version__) <= Version(newest.group(2)), tokenizers.__version__
