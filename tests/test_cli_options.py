"""Command options and edge cases of identify / cluster that the end-to-end tests do not reach: --id_column, a
single barcode, a reference without labels."""

import numpy as np
import pandas as pd
import pytest

from barcodemae.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def val_file(tmp_path_factory, fixture_metadata):
    """The fixture's 60 `val` barcodes with their labels (a small reference and query file)."""
    path = tmp_path_factory.mktemp("val") / "val.csv"
    fixture_metadata[fixture_metadata.split == "val"].to_csv(path, index=False)
    return path


def identify(queries, reference, output, *options):
    return main(["identify", str(queries), "--reference", str(reference), "--output", str(output), "--no_progress",
                 "--model", "kmer:4", *map(str, options)])  # fmt: skip


def test_id_column_names_the_records(tmp_path, val_file, fixture_metadata):
    assert identify(val_file, val_file, tmp_path / "calls.tsv", "--id_column", "sampleid") == 0
    calls = pd.read_csv(tmp_path / "calls.tsv", sep="\t", dtype=str)
    val = fixture_metadata[fixture_metadata.split == "val"]
    assert list(calls["query"]) == list(val.sampleid)
    assert set(calls["nearest_reference"]) <= set(val.sampleid)
    assert main(["cluster", str(val_file), "--model", "kmer:4", "--id_column", "sampleid", "--output",
                 str(tmp_path / "clusters.tsv"), "--no_progress"]) == 0  # fmt: skip
    assert list(pd.read_csv(tmp_path / "clusters.tsv", sep="\t", dtype=str)["id"]) == list(val.sampleid)


def test_a_single_barcode_is_identified_and_clustered(tmp_path, val_file, fixture_metadata):
    one = tmp_path / "one.fasta"
    record = fixture_metadata[fixture_metadata.split == "val"].iloc[3]
    one.write_text(f">{record.processid}\n{record.dna_barcode}\n")
    assert identify(one, val_file, tmp_path / "calls.tsv") == 0
    calls = pd.read_csv(tmp_path / "calls.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert list(calls["query"]) == [record.processid] and calls["nearest_reference"][0] == record.processid
    assert calls["species"][0] == record.species  # itself is in the reference
    assert main(["cluster", str(one), "--model", "kmer:4", "--output", str(tmp_path / "c.tsv"), "--no_progress"]) == 0
    clusters = pd.read_csv(tmp_path / "c.tsv", sep="\t", dtype=str)
    assert list(clusters["id"]) == [record.processid] and list(clusters["cluster"]) == ["0"]


def test_a_reference_without_label_columns_is_an_error_naming_it(tmp_path, val_file, fixture_metadata, capsys):
    """identify needs labels to call: a reference with none is one error line, and no output is written."""
    unlabelled = tmp_path / "unlabelled.csv"
    fixture_metadata[fixture_metadata.split == "val"][["processid", "dna_barcode"]].to_csv(unlabelled, index=False)
    assert identify(val_file, unlabelled, tmp_path / "calls.tsv") == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: ") and "unlabelled.csv: no label column" in error[0]
    assert not (tmp_path / "calls.tsv").exists()

@pytest.mark.parametrize(
    "command",
    [
        ["identify", "--query_splits", "test_unseen", "--reference_splits", "train"],
        ["cluster", "--splits", "test", "test_unseen"],
        ["cluster", "--splits", "test", "test_unseen", "--method", "centroid"],
    ],
)
def test_two_alignment_threads_write_the_bytes_of_one(tmp_path, fixture_path, monkeypatch, command):
    from barcodemae import alignment

    pools, make_pool = [], alignment._thread_pool
    monkeypatch.setattr(alignment, "_thread_pool", lambda threads: pools.append(threads) or make_pool(threads))
    name, *options = command
    reference = ["--reference", str(fixture_path)] if name == "identify" else []
    written = []
    for threads in ("1", "2"):
        monkeypatch.setenv("OMP_NUM_THREADS", threads)
        output = tmp_path / f"{threads}.tsv"
        assert main([name, str(fixture_path), *reference, *options, "--model", "kmer:4", "--output", str(output),
                     "--no_progress"]) == 0  # fmt: skip
        written.append(output.read_bytes())
    assert set(pools) == {2}  # the second run aligned on two threads, the first on none
    assert written[0] == written[1]
