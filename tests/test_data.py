"""barcodemae.data: every input format, row numbers, strings-only metadata, and every error message."""

import gzip
import logging
import re

import datasets
import pytest

from barcodemae.data import clean_barcode, deduplicate, load_barcodes, prepare_barcodes, validate_sequences
from barcodemae.errors import UserError

LABELS = ["split", "species", "genus", "dna_bin", "processid"]


@pytest.fixture()
def cache(tmp_path):
    return str(tmp_path / "hf_datasets_cache")


@pytest.fixture()
def rows(fixture_metadata):
    """40 fixture rows from several splits, with empty labels among them."""
    return fixture_metadata.iloc[::90].head(40).reset_index(drop=True)


def test_bioscan_csv_all_strings_rows_and_splits(fixture_path, fixture_metadata, cache):
    dataset = load_barcodes(fixture_path, splits=["train", "test"], columns=LABELS, cache_dir=cache)
    assert dataset.column_names == ["sequence", "row", *LABELS]
    expected = fixture_metadata[fixture_metadata.split.isin(["train", "test"])]
    assert len(dataset) == len(expected) == 950
    # `row` is the 1-based data row: row r is pandas index r - 1.
    for record in dataset.select(range(0, 950, 97)):
        source = fixture_metadata.iloc[record["row"] - 1]
        assert record["sequence"] == source.dna_barcode and record["species"] == source.species
    assert all(isinstance(value, str) for column in LABELS for value in dataset[column])
    assert len(load_barcodes(fixture_path, splits="val", cache_dir=cache)) == 60
    everything = load_barcodes(fixture_path, columns=["species"], cache_dir=cache)
    assert len(everything) == len(fixture_metadata)
    assert "" in everything["species"]  # unknown labels are empty strings, not None/NaN


def test_na_and_empty_stay_strings(tmp_path, cache):
    path = tmp_path / "na.csv"
    path.write_text("sequence,species,count\nACGTACGTAC,NA,1\nACGTAAAAAA,,2\n")
    dataset = load_barcodes(path, columns=["species", "count"], cache_dir=cache)
    assert dataset["species"] == ["NA", ""] and dataset["count"] == ["1", "2"]


@pytest.mark.parametrize("name", ["bold.tsv", "bold.tsv.gz", "bold_export.txt"])
def test_bold_tsv_with_nucleotides(tmp_path, rows, cache, name):
    species = ['Aus "quoted sp.', *rows.species[1:]]  # BOLD exports hold unbalanced quotes
    lines = ["processid\tspecies_name\tnucleotides", *map("\t".join, zip(rows.processid, species, rows.dna_barcode))]
    text = "\n".join(lines) + "\n"
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    dataset = load_barcodes(path, columns=["processid", "species_name"], cache_dir=cache)
    assert dataset["sequence"] == list(rows.dna_barcode)
    assert dataset["species_name"][0] == 'Aus "quoted sp.'
    assert dataset["row"] == list(range(1, len(rows) + 1))


def test_parquet_non_string_and_null_columns(tmp_path, rows, cache):
    frame = rows[["processid", "dna_barcode", "split"]].copy()
    frame["coord_lat"] = [None if index % 3 == 0 else index * 0.5 for index in range(len(frame))]
    path = tmp_path / "barcodes.parquet"
    frame.to_parquet(path)
    dataset = load_barcodes(path, columns=["coord_lat", "split"], cache_dir=cache)
    assert dataset["sequence"] == list(rows.dna_barcode)
    assert dataset["coord_lat"][:3] == ["", "0.5", "1.0"]


@pytest.mark.parametrize("name", ["barcodes.fasta", "barcodes.fa.gz", "barcodes.fas"])
def test_fasta(tmp_path, rows, cache, name):
    text = "".join(
        f">{pid}|{species}|COI-5P|BOLD:X\n{seq[:300]}\n{seq[300:]}\n\n"
        for pid, species, seq in zip(rows.processid, rows.species, rows.dna_barcode)
    )
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    dataset = load_barcodes(path, columns=["processid"], cache_dir=cache)
    assert dataset["sequence"] == list(rows.dna_barcode)
    assert dataset["processid"] == list(rows.processid)
    assert dataset["row"] == list(range(1, len(rows) + 1))


def test_explicit_sequence_column(tmp_path, cache):
    path = tmp_path / "two.csv"
    path.write_text("id,dna_barcode,alt_seq\na,AAAAAAAAAA,CCCCCCCCCC\n")
    assert load_barcodes(path, cache_dir=cache)["sequence"] == ["AAAAAAAAAA"]
    assert load_barcodes(path, sequence_column="alt_seq", cache_dir=cache)["sequence"] == ["CCCCCCCCCC"]


# ------------------------------------------------------------------------------------------------ errors


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_barcodes(tmp_path / "nope.csv")


def test_missing_sequence_column_lists_columns(tmp_path, cache):
    path = tmp_path / "noseq.csv"
    path.write_text("processid,dna,split\na,ACGTACGT,train\n")
    with pytest.raises(ValueError, match=r"noseq\.csv.*dna_barcode.*processid, dna, split"):
        load_barcodes(path, cache_dir=cache)
    with pytest.raises(ValueError, match=r"noseq\.csv.*'barcode'.*processid, dna, split"):
        load_barcodes(path, sequence_column="barcode", cache_dir=cache)


def test_missing_requested_column(fixture_path, tmp_path, cache):
    with pytest.raises(ValueError, match=r"bioscan_fixture.*'subspecies'.*processid, sampleid"):
        load_barcodes(fixture_path, columns=["species", "subspecies"], cache_dir=cache)
    path = tmp_path / "nosplit.csv"
    path.write_text("sequence\nACGTACGT\n")
    with pytest.raises(ValueError, match=r"nosplit\.csv.*'split'.*select splits.*sequence"):
        load_barcodes(path, splits=["train"], cache_dir=cache)


def test_unknown_split_lists_present(fixture_path, cache):
    with pytest.raises(ValueError, match=r"unknown split 'pretraining'.*key_unseen, other_heldout, pretrain, test"):
        load_barcodes(fixture_path, splits=["pretrain", "pretraining"], cache_dir=cache)


@pytest.mark.parametrize("name", ["empty.csv", "empty.tsv", "empty.csv.gz", "empty.fasta", "empty.parquet"])
def test_empty_file_names_the_file(tmp_path, cache, name):
    path = tmp_path / name
    path.write_bytes(gzip.compress(b"") if name.endswith(".gz") else b"")
    with pytest.raises(UserError, match=rf"{name.replace('.', '[.]')}: the file is empty"):
        load_barcodes(path, cache_dir=cache)


def test_prepare_cleans_then_deduplicates(tmp_path, cache):
    path = tmp_path / "prepare.csv"
    path.write_text("dna_barcode,processid\nACGTACGTNN,a\nACGTACGT,b\nACG,c\nnnnn,d\nCCCCCCCC,e\n")
    prepared, too_short = prepare_barcodes(load_barcodes(path, columns=["processid"], cache_dir=cache), min_length=6)
    assert too_short == 2  # "ACG" and "nnnn" (empty once the trailing N are stripped)
    assert prepared["processid"] == ["a", "e"] and prepared["sequence"] == ["ACGTACGT", "CCCCCCCC"]


def test_empty_selection(tmp_path, cache):
    path = tmp_path / "header_only.csv"
    path.write_text("dna_barcode,split\n")
    with pytest.raises(ValueError, match=r"header_only\.csv.*empty"):
        load_barcodes(path, cache_dir=cache)
    bad = tmp_path / "all_bad.csv"
    bad.write_text("dna_barcode\nACGT1\nXXXX\n")
    with pytest.raises(ValueError, match=r"all_bad\.csv.*no valid barcodes left after skipping 2"):
        load_barcodes(bad, on_bad_sequence="skip", cache_dir=cache)


def test_invalid_character_error_names_file_row_column_character(tmp_path, rows, cache):
    frame = rows[["processid", "dna_barcode"]].copy()
    frame.loc[6, "dna_barcode"] = frame.loc[6, "dna_barcode"][:50] + "X" + frame.loc[6, "dna_barcode"][50:]
    frame.loc[9, "dna_barcode"] = "ACGT*ACGTACGT"
    path = tmp_path / "dirty.csv"
    frame.to_csv(path, index=False)
    record = re.escape(frame.loc[6, "processid"])
    with pytest.raises(ValueError, match=rf"dirty\.csv: row 7 \(processid '{record}'\), column 'dna_barcode': the "
                                         r"character 'X' at position 51"):  # fmt: skip
        load_barcodes(path, cache_dir=cache)
    with pytest.raises(ValueError, match=r"2 of 40 selected rows.*skip them with on_bad_sequence='skip'$") as caught:
        load_barcodes(path, cache_dir=cache)
    assert "--" not in str(caught.value)  # the library names its parameter, not the command line's flag


def test_fasta_error_names_record(tmp_path, cache):
    path = tmp_path / "bad.fasta"
    path.write_text(">a\nACGTACGT\n>b\nACGT>ACGT\n")
    with pytest.raises(ValueError, match=r"bad\.fasta: record 2 \(>b, line 3\), column 'sequence': the character '>'"):
        load_barcodes(path, cache_dir=cache)
    path = tmp_path / "not.fasta"
    path.write_text("ACGT\n")
    with pytest.raises(ValueError, match=r"not\.fasta: not a FASTA file"):
        load_barcodes(path, cache_dir=cache)


def test_skip_drops_and_reports_count(tmp_path, rows, cache, caplog):
    frame = rows[["dna_barcode"]].copy()
    frame.loc[[3, 5], "dna_barcode"] = ["ACGT#ACGT", ""]
    path = tmp_path / "skip.csv"
    frame.to_csv(path, index=False)
    with caplog.at_level(logging.WARNING, logger="barcodemae.data"):
        dataset = load_barcodes(path, on_bad_sequence="skip", cache_dir=cache)
    assert len(dataset) == 38 and 4 not in dataset["row"] and 6 not in dataset["row"]
    assert "skipped 2 rows" in caplog.text
    with pytest.raises(ValueError, match="on_bad_sequence"):
        load_barcodes(path, on_bad_sequence="ignore", cache_dir=cache)
    raw = datasets.Dataset.from_dict({"sequence": list(frame.dna_barcode.fillna("")), "row": list(range(1, 41))})
    kept, skipped = validate_sequences(raw, path, on_bad_sequence="skip")
    assert skipped == 2 and kept["row"] == dataset["row"]


def test_clean_barcode():
    assert clean_barcode("acgt-nnACGTNNN \n") == "ACGTNNACGT"
    assert clean_barcode("A" * 700 + "NNN") == "A" * 660
    assert clean_barcode("A" * 658 + "NNNNC") == "A" * 658  # truncation exposes trailing N: stripped again
    assert clean_barcode("ACGTAC", max_length=4) == "ACGT"
    assert clean_barcode("A" * 700, max_length=0) == clean_barcode("A" * 700, max_length=None) == "A" * 700  # no cut
    assert clean_barcode(None) == ""


def test_deduplicate_keeps_first_in_order(tmp_path, cache):
    path = tmp_path / "dups.csv"
    path.write_text("dna_barcode,processid\nAAAAAA,a\nCCCCCC,b\nAAAAAA,c\nGGGGGG,d\nCCCCCC,e\n")
    dataset = deduplicate(load_barcodes(path, columns=["processid"], cache_dir=cache))
    assert dataset["processid"] == ["a", "b", "d"] and dataset["row"] == [1, 2, 4]
