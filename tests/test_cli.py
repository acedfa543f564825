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

from barcodemae.cli import main
from barcodemae.files import read_embeddings
from modeling_barcodemae import BarcodeMAEModel
from tokenization_barcodemae import BarcodeMAETokenizer

CONSOLE_SCRIPT = Path(sys.executable).parent / "barcodemae"  # what `pip install` puts beside the interpreter
pytestmark = pytest.mark.usefixtures("one_thread")


def barcodemae(*arguments, cwd, **env) -> subprocess.CompletedProcess:
    """The console command as a user runs it (python -m barcodemae.cli where the package is not pip-installed), with
    the environment variables `env` besides."""
    command = [str(CONSOLE_SCRIPT)] if CONSOLE_SCRIPT.exists() else [sys.executable, "-m", "barcodemae.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **env}
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


@pytest.mark.slow
def test_kmer_commands_import_neither_transformers_nor_datasets(tmp_path, fixture_path):
    """Start-up is most of a small run: the kmer:K path must not load the model stack or the Arrow datasets."""
    commands = [
        ["index", "build", fixture_path, "--reference_splits", "train", "--output", "library"],
        ["identify", fixture_path, "--query_splits", "test_unseen", "--index", "library", "--output", "calls.tsv"],
        ["embed", fixture_path, "--splits", "test", "--model", "kmer:4", "--output", "vectors.parquet"],
    ]
    for command in commands:
        result = barcodemae(*command, "--no_progress", cwd=tmp_path, PYTHONPROFILEIMPORTTIME="1")
        assert result.returncode == 0, result.stderr[-2000:]
        imported = imported_packages(result)
        assert {"barcodemae", "edlib" if command[0] != "embed" else "numpy"} <= imported, command  # the report is there
        assert not imported & {"transformers", "datasets"}, command


def imported_packages(result: subprocess.CompletedProcess) -> set[str]:
    """The top-level packages a console run with PYTHONPROFILEIMPORTTIME=1 imported."""
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in result.stderr.splitlines()
            if line.startswith("import time:")}  # fmt: skip


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
    assert result.stderr.strip().splitlines()[-1].startswith("error: bad.fasta: record 2 (>b, line 3), column 'sequence'")


def error_line(capsys) -> str:
    """The one line a failed command writes to stderr."""
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1, error
    return error


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["identify", "--quantile", "5"], r"identify: argument --quantile: must be a fraction strictly between 0 and 1"),
        (["identify", "--quantile", "0"], r"argument --quantile: must be a fraction strictly between 0 and 1, got 0"),
        (["identify", "--candidates", "-1"], r"argument --candidates: must be a whole number of at least 1, got -1"),
        (["identify", "--candidates", "0"], r"argument --candidates: must be a whole number of at least 1, got 0"),
        (["identify", "--neighbours", "0"], r"argument --neighbours: must be a whole number of at least 1, got 0"),
        (["cluster", "--candidates", "0"], r"cluster: argument --candidates: must be a whole number of at least 1"),
        (["cluster", "--identity", "97"], r"argument --identity: must be a fraction from 0 to 1, got 97"),
        (["cluster", "--threshold", "2"], r"argument --threshold: must be a cosine distance between 0 and 2"),
        (["cluster", "--method", "complete"], r"argument --method: invalid choice: 'complete'"),
        (["identify", "--margin", "2"], r"argument --margin: must be a number from 0 to 1, got 2"),
        (["identify", "--rule", "majority"], r"argument --rule: invalid choice: 'majority'"),
        (["identify", "--measure", "global"], r"argument --measure: invalid choice: 'global'"),
        (["embed", "--batch_size", "many"], r"argument --batch_size: must be a whole number of at least 1, got 'many'"),
        (["embed", "--layer", "-2"], r"argument --layer: must be a layer"),
        (["cluster", "--max_length", "-1"], r"argument --max_length: must be a whole number of at least 0, got -1"),
        (["embed", "--on_bad_sequence", "drop"], r"argument --on_bad_sequence: invalid choice: 'drop'"),
    ],
)
def test_bad_numbers_are_refused_before_anything_is_read(tmp_path, capsys, arguments, message):
    """Checked by argparse: the input files do not even exist, and the error is the option's."""
    command, *options = arguments
    files = {"embed": ["missing.csv"], "identify": ["missing.csv", "--reference", "missing.csv"],
             "cluster": ["missing.csv"]}[command]  # fmt: skip
    assert main([command, *files, "--output", str(tmp_path / "out" / "x.tsv"), *options]) == 2
    assert re.search(message, error_line(capsys))
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_console_usage_error_is_one_line(tmp_path):
    result = barcodemae("identify", "queries.csv", "--reference", "reference.csv", "--output", "calls.tsv",
                        "--quantile", "5", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == ["error: barcodemae identify: argument --quantile: must be a fraction strictly "
                                          "between 0 and 1, got 5 (see barcodemae identify --help)"]  # fmt: skip


def test_help_shows_what_the_tool_does_and_the_defaults(capsys):
    with pytest.raises(SystemExit) as exit_status:
        main(["--help"])
    assert exit_status.value.code == 0
    assert "species-to-order identification from a labelled reference" in " ".join(capsys.readouterr().out.split())
    with pytest.raises(SystemExit):
        main(["identify", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # unwrapped
    for default in ("re-ranks (default: 50)", "per query (default: 5)", "per rank (default: 0.05)",
                    "(default: kmer:6)", "(default: error)", "(default: identity)"):  # fmt: skip
        assert default in text, default


SHORT_AND_AMBIGUOUS = [("short", "ACGT"), ("all_n", "NNNNNNNNNNNN"), ("ambiguous", "ACGTNACGTRACGTYACGTN")]


@pytest.mark.parametrize("model", ["kmer:6", "tiny"])
@pytest.mark.parametrize(("name", "barcode"), SHORT_AND_AMBIGUOUS)
def test_barcode_without_a_kmer_to_embed_is_an_error_naming_its_row(tmp_path, capsys, tiny_model_dir, model, name,
                                                                    barcode):  # fmt: skip
    """Shorter than k, all N or too ambiguous: no k-mer to embed (kmer:6 would give a zero vector, a model's tokenizer
    a traceback); the error names the row and its id and says how to skip such rows."""
    good = "AACATTATATTTTATTTTTGGAATTTGAGCAGGAATAGTAGGAACTTCTTTAAGATTATTAATTCGAGCAGAATT"
    path = tmp_path / "barcodes.csv"
    path.write_text(f"processid,dna_barcode\na,{good}\n{name},{barcode}\n")
    model = str(tiny_model_dir) if model == "tiny" else model
    for command in (["embed", str(path), "--output", str(tmp_path / "out" / "x.npy")],
                    ["cluster", str(path), "--output", str(tmp_path / "out" / "x.tsv")],
                    ["identify", str(path), "--reference", str(path), "--output", str(tmp_path / "out" / "x.tsv")]):  # fmt: skip
        assert main([*command, "--model", model, "--no_progress"]) == 2
        error = error_line(capsys)
        assert f"barcodes.csv: row 2 (processid {name!r}): the barcode" in error
        assert "no 6 unambiguous nucleotides (A, C, G, T) in a row" in error
        assert error.endswith("; fix the file or skip them with --on_bad_sequence skip\n")  # the flag only
        assert not (tmp_path / "out").exists()


def test_skip_drops_bad_barcodes_and_says_how_many(tmp_path, caplog):
    good = ["AACATTATATTTTATTTTTGGAATTTGAGCAGGAATAGTAGGAACTTCTTTAAGATTATTAATTCGAGCAGAATT",
            "TACTTTATATTTTATTTTTGGTGCATGAGCTGGAATAGTAGGAACTTCTTTAAGAATATTAATTCGAGCTGAATT"]  # fmt: skip
    path = tmp_path / "barcodes.fasta"
    path.write_text(f">a\n{good[0]}\n>short\nACGT\n>bad\nACGT7ACGTACGT\n>b\n{good[1]}\n>n\nNNNNNNNN\n")
    output = tmp_path / "vectors.npy"
    assert main(["embed", str(path), "--output", str(output), "--on_bad_sequence", "skip", "--no_progress"]) == 0
    ids, vectors = read_embeddings(output)
    assert ids == ["a", "b"] and (vectors.sum(1) > 0).all()
    assert "skipped 1 rows with an empty or invalid sequence" in caplog.text
    assert "skipped 2 barcodes without 6 unambiguous nucleotides in a row" in caplog.text


def test_embed_of_a_bad_file_leaves_no_output_behind(tmp_path, capsys):
    path = tmp_path / "barcodes.csv"
    path.write_text("dna_barcode\nACGTACGTACGT\nACGT7CGTAC\n")
    assert main(["embed", str(path), "--output", str(tmp_path / "new" / "folder" / "vectors.parquet")]) == 2
    assert "row 2, column 'dna_barcode': the character '7'" in error_line(capsys)
    assert not (tmp_path / "new").exists()


def test_identify_rank_by_cosine_calibrates_and_ranks_in_cosine(tmp_path, fixture_path):
    from barcodemae.encoders import kmer_embeddings
    from barcodemae.files import read_records
    from barcodemae.identify import RANKS, identify
    from barcodemae.search.references import Reference

    output = tmp_path / "calls.tsv"
    assert main(["identify", str(fixture_path), "--query_splits", "test_unseen", "--reference", str(fixture_path),
                 "--reference_splits", "train", "--rank_by", "cosine", "--output", str(output), "--no_progress"]) == 0  # fmt: skip
    reference = read_records(fixture_path, ["train"], label_columns=RANKS, deduplicate=True)
    queries = read_records(fixture_path, ["test_unseen"])
    expected = identify(Reference.calibrated(kmer_embeddings(reference.sequences, 6), reference.labels),
                        kmer_embeddings(queries.sequences, 6))  # fmt: skip
    calls = pd.read_csv(output, sep="\t", keep_default_na=False)
    for rank in RANKS:
        assert list(calls[rank]) == list(expected[rank]), rank
    np.testing.assert_allclose(calls.species_similarity, expected.species_similarity, atol=1e-4)


def test_cluster_identity_0_is_cosine_clustering(tmp_path, fixture_path, capsys):
    from barcodemae.clustering import threshold_clusters
    from barcodemae.encoders import kmer_embeddings
    from barcodemae.files import read_records

    output = tmp_path / "clusters.tsv"
    assert main(["cluster", str(fixture_path), "--splits", "test", "--identity", "0", "--threshold", "0.2",
                 "--output", str(output), "--no_progress"]) == 0  # fmt: skip
    assert "single linkage at cosine distance 0.2" in capsys.readouterr().out
    expected = threshold_clusters(kmer_embeddings(read_records(fixture_path, ["test"]).sequences, 6), 0.2)
    assert list(pd.read_csv(output, sep="\t").cluster) == list(expected)


def test_evaluate_checks_barcodes_before_writing_and_can_skip(tmp_path, capsys, fixture_metadata):
    from barcodemae.data import load_splits

    frame = fixture_metadata.copy()
    row = int(np.flatnonzero(frame.split == "train")[0])
    frame.loc[row, "dna_barcode"] = "ACGN"  # shorter than a 4-mer once cleaned
    path = tmp_path / "metadata.csv"
    frame.to_csv(path, index=False)
    assert main(["evaluate", "--models", "kmer:4", "--data_file", str(path), "--output_dir", str(tmp_path / "out"),
                 "--no_progress"]) == 2  # fmt: skip
    assert (f"metadata.csv: row {row + 1} (processid {frame.processid[row]!r}): the barcode 'ACG' (3 nt once cleaned) "
            "has no 4 unambiguous") in error_line(capsys)  # fmt: skip
    assert not (tmp_path / "out").exists()
    kept = load_splits(path, ["train"], on_bad_sequence="skip", min_run=4)["train"]
    assert kept.rows_before_dedup == (frame.split == "train").sum() - 1


def test_identify_rule_lca_abstains_where_best_calls_and_measure_infix_is_the_library(tmp_path, fixture_path):
    from barcodemae.encoders import kmer_embeddings
    from barcodemae.files import read_records
    from barcodemae.identify import RANKS, identify
    from barcodemae.search.references import Reference

    arguments = ["identify", str(fixture_path), "--query_splits", "test_unseen", "--reference", str(fixture_path),
                 "--reference_splits", "train", "--no_progress", "--output"]  # fmt: skip
    tables = {}
    runs = {"best": [], "lca": ["--rule", "lca", "--margin", "0.02"], "infix": ["--measure", "infix", "--relatives_model", "none"]}
    for name, options in runs.items():
        assert main([*arguments, str(tmp_path / f"{name}.tsv"), *options]) == 0
        tables[name] = pd.read_csv(tmp_path / f"{name}.tsv", sep="\t", keep_default_na=False)
    best, lca = tables["best"], tables["lca"]
    for rank in RANKS:
        assert (best[f"{rank}_best_hit"] == lca[f"{rank}_best_hit"]).all()  # the same guess, fewer calls
        made = lca[rank] != ""
        assert (lca[rank][made] == best[rank][made]).all() and made.sum() <= (best[rank] != "").sum()
    assert (lca.genus != "").sum() < (best.genus != "").sum()
    reference = read_records(fixture_path, ["train"], label_columns=RANKS, deduplicate=True)
    queries = read_records(fixture_path, ["test_unseen"])
    calibrated = Reference.calibrated(kmer_embeddings(reference.sequences, 6), reference.labels, reference.sequences,
                                      measure="infix")  # fmt: skip
    expected = identify(calibrated, kmer_embeddings(queries.sequences, 6), query_sequences=queries.sequences)
    for rank in RANKS:
        assert list(tables["infix"][rank]) == list(expected[rank]), rank


@pytest.mark.parametrize(
    "options, rule",
    [
        ([], "single linkage at 0.98 overlap identity over 20 candidates, average linkage within components of up to 20 "
         "where the split's silhouette is above 0.6"),
        (["--average_up_to", "5"], "average linkage within components of up to 5 where"),
        (["--least_silhouette", "-1"], "where the split's silhouette is above -1"),
        (["--method", "single", "--identity", "0.97"], "single linkage at 0.97 overlap identity over 20 candidates);"),
        (["--method", "centroid"], "greedy centroids by abundance at 0.98 overlap identity over 20 candidates"),
    ],
)
def test_cluster_methods_are_the_library(tmp_path, fixture_path, capsys, options, rule):
    from barcodemae.clustering import centroid_clusters, identity_clusters
    from barcodemae.encoders import kmer_embeddings
    from barcodemae.files import read_records

    output = tmp_path / "clusters.tsv"
    assert main(["cluster", str(fixture_path), "--splits", "test", "test_unseen", *options, "--output", str(output),
                 "--no_progress"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert rule in printed and float(printed.split("AMI against dna_bin ")[1].split()[0]) > 0.95
    sequences = read_records(fixture_path, ["test", "test_unseen"]).sequences
    vectors = kmer_embeddings(sequences, 6)
    expected = {
        (): lambda: identity_clusters(vectors, sequences),
        ("--average_up_to", "5"): lambda: identity_clusters(vectors, sequences, average_up_to=5),
        ("--least_silhouette", "-1"): lambda: identity_clusters(vectors, sequences, least_silhouette=-1.0),
        ("--method", "single", "--identity", "0.97"): lambda: identity_clusters(vectors, sequences, 0.97, average_up_to=0),
        ("--method", "centroid"): lambda: centroid_clusters(vectors, sequences),
    }[tuple(options)]()
    assert list(pd.read_csv(output, sep="\t").cluster) == list(expected)


def test_identify_relatives_model_equals_the_library_and_needs_identity(tmp_path, fixture_path, capsys):
    from barcodemae.encoders import amino_acid_embeddings, kmer_embeddings
    from barcodemae.files import read_records
    from barcodemae.identify import RANKS, Relatives, identify
    from barcodemae.search.references import Reference

    common = ["identify", str(fixture_path), "--query_splits", "test_unseen", "--reference", str(fixture_path),
              "--reference_splits", "train", "--no_progress"]  # fmt: skip
    reference = read_records(fixture_path, ["train"], label_columns=RANKS, deduplicate=True)
    queries = read_records(fixture_path, ["test_unseen"])
    first = Reference.calibrated(kmer_embeddings(reference.sequences, 6), reference.labels, reference.sequences)
    query_vectors = kmer_embeddings(queries.sequences, 6)

    def nearest(options: list[str], name: str) -> list[str]:
        assert main([*common, *options, "--output", str(tmp_path / name)]) == 0
        return list(pd.read_csv(tmp_path / name, sep="\t", keep_default_na=False).nearest_reference)

    def expected(relatives=None) -> list[str]:
        table = identify(first, query_vectors, query_sequences=queries.sequences, relatives=relatives)
        return [reference.ids[index] for index in table.nearest_reference]

    default = Relatives(first.with_vectors(amino_acid_embeddings(reference.sequences, 3).astype(np.float16)),
                        amino_acid_embeddings(queries.sequences, 3))  # fmt: skip
    assert nearest([], "default.tsv") == expected(default)
    assert "(kmer:6, relatives by aa:3)" in capsys.readouterr().out
    other = Relatives(first.with_vectors(kmer_embeddings(reference.sequences, 4).astype(np.float16)),
                      kmer_embeddings(queries.sequences, 4), candidates=20, species_match=0.97)  # fmt: skip
    options = ["--relatives_model", "kmer:4", "--relative_candidates", "20", "--species_match", "0.97"]
    assert nearest(options, "kmer4.tsv") == expected(other)
    assert "(kmer:6, relatives by kmer:4)" in capsys.readouterr().out
    alone = nearest(["--relatives_model", "none"], "alone.tsv")
    assert alone == expected() and alone != expected(default)  # the relatives changed some hits
    assert "(kmer:6);" in capsys.readouterr().out
    assert main([*common, "--relatives_model", "kmer:4", "--rank_by", "cosine", "--output", str(tmp_path / "c.tsv")]) == 2
    assert "--relatives_model needs --rank_by identity" in error_line(capsys)
    assert not (tmp_path / "c.tsv").exists()
    assert main([*common, "--rank_by", "cosine", "--output", str(tmp_path / "c.tsv")]) == 0  # no relatives by default
    assert "(kmer:6);" in capsys.readouterr().out


@pytest.mark.slow
def test_console_embed_and_identify_take_a_joined_spec(tmp_path, fixture_path):
    """`kmer:6+aa:3` as --model of embed (its vectors are the encoder's) and of identify, another joined spec as
    identify's --relatives_model; numpy only, as kmer:K."""
    from barcodemae.encoders import load_encoder
    from barcodemae.files import read_records

    embed = barcodemae("embed", fixture_path, "--splits", "val", "--model", "kmer:6+aa:3", "--output", "vectors.npy",
                       "--no_progress", cwd=tmp_path, PYTHONPROFILEIMPORTTIME="1")  # fmt: skip
    identify = barcodemae("identify", fixture_path, "--query_splits", "val_unseen", "--reference", fixture_path,
                          "--reference_splits", "train", "--model", "kmer:6+aa:3", "--relatives_model", "kmer:4+aa:2",
                          "--output", "calls.tsv", "--no_progress", cwd=tmp_path,
                          PYTHONPROFILEIMPORTTIME="1")  # fmt: skip
    for result in (embed, identify):
        assert result.returncode == 0, result.stderr[-2000:]
        assert not imported_packages(result) & {"transformers", "datasets"}
    ids, vectors = read_embeddings(tmp_path / "vectors.npy")
    records = read_records(fixture_path, ["val"])
    assert ids == records.ids and "x 12096 dims (kmer:6+aa:3)" in embed.stdout
    np.testing.assert_allclose(vectors, load_encoder("kmer:6+aa:3").embed(records.sequences), rtol=1e-6)
    assert "(kmer:6+aa:3, relatives by kmer:4+aa:2)" in identify.stdout
    assert len(pd.read_csv(tmp_path / "calls.tsv", sep="\t")) == len(read_records(fixture_path, ["val_unseen"]))


def test_a_bad_part_of_a_joined_spec_is_a_one_line_error_naming_it(tmp_path, capsys, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # "foo" is looked for in the local Hub cache only
    path = tmp_path / "barcodes.csv"
    path.write_text("dna_barcode\nAACATTATATTTTATTTTTGGAATTTGAGCAGGAATAGTAGG\n")
    for spec, message in [("kmer:6+foo", r"model 'foo': no such folder"),
                          ("kmer:6+", r"model 'kmer:6\+': an empty part"),
                          ("kmer:6+aa:9", r"aa:K needs 1 <= K <= 3, got aa:9")]:  # fmt: skip
        assert main(["embed", str(path), "--model", spec, "--output", str(tmp_path / "out.npy")]) == 2
        assert re.search(message, error_line(capsys)), spec
    assert not (tmp_path / "out.npy").exists()


def test_every_command_keeps_the_same_660_nucleotides_by_default():
    from barcodemae.cli import build_parser
    from barcodemae.data import MAX_NUCLEOTIDES
    from barcodemae.protocol import ProtocolSettings

    parser = build_parser()
    commands = [["embed", "x.csv", "--output", "x.npy"], ["cluster", "x.csv", "--output", "x.tsv"],
                ["identify", "x.csv", "--reference", "x.csv", "--output", "x.tsv"],
                ["index", "build", "x.csv", "--output", "library"], ["index", "add", "library", "x.csv"],
                ["evaluate", "--models", "kmer:6"]]  # fmt: skip
    found = {parser.parse_args(command).max_length for command in commands}
    assert found == {MAX_NUCLEOTIDES} == {ProtocolSettings().max_length} == {660}  # BIOSCAN-5M's input


def test_max_length_cuts_what_is_embedded_and_0_keeps_every_nucleotide(tmp_path, fixture_metadata):
    from barcodemae.encoders import kmer_embeddings

    longest = max(fixture_metadata.dna_barcode, key=len)
    assert len(longest) > 700
    path = tmp_path / "long.csv"
    path.write_text(f"processid,dna_barcode\nlong,{longest}\n")
    for options, kept in (([], longest[:660]), (["--max_length", "700"], longest[:700]),
                          (["--max_length", "0"], longest)):  # fmt: skip
        assert main(["embed", str(path), "--model", "kmer:6", "--output", str(tmp_path / "x.npy"), *options]) == 0
        np.testing.assert_array_equal(read_embeddings(tmp_path / "x.npy")[1], kmer_embeddings([kept], 6))
