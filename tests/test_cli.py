"""The `barcodemae` command: embed, identify, cluster on the bundled fixture, and its one-line errors."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_probes import one_thread, tiny_model_dir  # noqa: F401 - shared fixtures

from barcodemae.cli import main
from barcodemae.files import read_embeddings
from modeling_barcodemae import BarcodeMAEModel
from tokenization_barcodemae import BarcodeMAETokenizer

CONSOLE_SCRIPT = Path(sys.executable).parent / "barcodemae"  # what `pip install` puts beside the interpreter


def barcodemae(*arguments, cwd) -> subprocess.CompletedProcess:
    """The console command as a user runs it (python -m barcodemae.cli where the package is not pip-installed)."""
    command = [str(CONSOLE_SCRIPT)] if CONSOLE_SCRIPT.exists() else [sys.executable, "-m", "barcodemae.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([*command, *map(str, arguments)], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


@pytest.mark.slow
def test_console_embed_writes_parquet_pandas_reads(tmp_path, fixture_path, fixture_metadata):
    result = barcodemae("embed", fixture_path, "--splits", "test", "--model", "kmer:3", "--output", "out/test.parquet",
                        cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    frame = pd.read_parquet(tmp_path / "out" / "test.parquet")
    test = fixture_metadata[fixture_metadata.split == "test"]
    assert list(frame.columns) == ["id", "embedding"] and list(frame.id) == list(test.processid)
    vectors = np.stack(frame.embedding.to_numpy())
    assert vectors.shape == (len(test), 64) and np.allclose(vectors.sum(1), 1.0, atol=1e-5)  # 3-mer frequencies
    assert f"{len(test)} barcodes x 64 dims" in result.stdout


def test_embed_model_npy_equals_encoder(tmp_path, fixture_path, fixture_metadata, tiny_model_dir):
    output = tmp_path / "vectors.npy"
    assert main(["embed", str(fixture_path), "--splits", "val", "--model", f"{tiny_model_dir}@1", "--output",
                 str(output), "--no_progress", "--precision", "fp32"]) == 0  # fmt: skip
    ids, vectors = read_embeddings(output)
    val = fixture_metadata[fixture_metadata.split == "val"]
    assert ids == list(val.processid)
    model = BarcodeMAEModel.from_pretrained(tiny_model_dir).eval()
    encoded = BarcodeMAETokenizer()(list(val.dna_barcode)[:4], padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**encoded, output_hidden_states=True).hidden_states[1]
    mask = encoded["attention_mask"].unsqueeze(-1)
    np.testing.assert_allclose(vectors[:4], ((hidden * mask).sum(1) / mask.sum(1)).numpy(), atol=1e-5)


def test_identify_calls_genus_not_species_for_unseen_species(tmp_path, fixture_path, capsys):
    output = tmp_path / "calls.tsv"
    arguments = ["identify", str(fixture_path), "--reference", str(fixture_path), "--reference_splits", "train",
                 "--model", "kmer:6", "--no_progress", "--output", str(output), "--query_splits"]  # fmt: skip
    rates = {}
    for split in ("test", "test_unseen"):
        assert main([*arguments, split]) == 0
        calls = pd.read_csv(output, sep="\t", keep_default_na=False)
        truth = pd.read_csv(fixture_path, keep_default_na=False).query("split == @split")
        assert list(calls["query"]) == list(truth.processid)  # every query row answered, in file order
        assert calls["species_similarity"].between(-1, 1).all() and calls["genus_agreement"].between(0, 1).all()
        genus = truth.genus.to_numpy() != ""
        rates[split] = {"species called": (calls.species != "").mean(),
                        "genus right": (calls.genus_best_hit == truth.genus.to_numpy())[genus].mean()}  # fmt: skip
    assert "queries against" in capsys.readouterr().out
    assert rates["test"]["species called"] > 0.8 and rates["test_unseen"]["species called"] < 0.2
    assert rates["test"]["genus right"] > 0.9 and rates["test_unseen"]["genus right"] > 0.6


def test_cluster_without_a_count_recovers_bins(tmp_path, fixture_path, capsys):
    output = tmp_path / "clusters.tsv"
    assert main(["cluster", str(fixture_path), "--splits", "test", "test_unseen", "--output", str(output),
                 "--no_progress"]) == 0  # fmt: skip
    clusters = pd.read_csv(output, sep="\t", keep_default_na=False)
    printed = capsys.readouterr().out
    ami = float(printed.split("AMI against dna_bin ")[1].split()[0])
    assert ami > 0.9 and f"in {clusters.cluster.max() + 1} clusters" in printed
    assert len(clusters) == 450 and clusters.cluster.min() == 0


@pytest.mark.parametrize(
    ("write", "arguments", "message"),
    [
        (None, [], r"missing\.csv: no such file"),
        ("", [], r"input\.csv: the file is empty"),
        ("dna,processid\nACGTACGTAC,a\n", [], r"input\.csv: no sequence column.*dna, processid"),
        ("dna,processid\nACGTACGTAC,a\n", ["--sequence_column", "seq"], r"input\.csv: no column 'seq'"),
        ("dna_barcode\nACGTACGTAC\nACGT7CGTAC\n", [], r"input\.csv: row 2, column 'dna_barcode': the character '7'"),
        ("dna_barcode\nACGTACGTAC\n", ["--model", "no/such/model"], r"model 'no/such/model': no such folder"),
    ],
)
def test_user_errors_are_one_line(tmp_path, capsys, write, arguments, message):
    path = tmp_path / ("missing.csv" if write is None else "input.csv")
    if write is not None:
        path.write_text(write)
    assert main(["embed", str(path), "--output", str(tmp_path / "out.npy"), *arguments]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1, error
    assert re.search(message, error), error


@pytest.mark.slow
def test_console_error_exit_status_without_traceback(tmp_path):
    (tmp_path / "bad.fasta").write_text(">a\nACGTACGT\n>b\nACGTXACGT\n")
    result = barcodemae("cluster", "bad.fasta", "--output", "clusters.tsv", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: bad.fasta: record 2, column 'sequence'")
