"""The saved reference index: `barcodemae index build / add / info`, `identify --index`, the compact search, the
files' checks; on the bundled fixture, through the console script where users would meet it."""

import json
import os
import re

import numpy as np
import pandas as pd
import pytest
from test_cli import barcodemae

import barcodemae.search.index as index_module
import barcodemae.search.references as references_module
import barcodemae.search.store as store_module
from barcodemae.cli import main
from barcodemae.encoders import load_encoder
from barcodemae.files import read_records, read_selected, scan_records
from barcodemae.identify import RANKS, ranked_neighbours
from barcodemae.embedding_job import parts_folder
from barcodemae.neighbours import nearest_neighbours
from barcodemae.search.index import build_index, load_index
from barcodemae.search.packing import ALPHABET, PackedSequences, pack_sequences
from barcodemae.search.store import map_tensors, write_tensors

pytestmark = pytest.mark.usefixtures("one_thread")


def reference_scan(paths, splits=None):
    """What `index build` reads of these files (`scan_records`: labelled, each barcode once)."""
    return lambda: scan_records(paths, splits, label_columns=RANKS, deduplicate=True)


def _write_parts(fixture_metadata, folder):
    """The fixture's train split as CSV, its val split as TSV, its test split as parquet."""
    paths = {"train": folder / "train.csv", "val": folder / "val.tsv", "test": folder / "test.parquet"}
    for split, path in paths.items():
        part = fixture_metadata[fixture_metadata.split == split]
        if path.suffix == ".parquet":
            part.to_parquet(path, index=False)
        else:
            part.to_csv(path, sep="\t" if path.suffix == ".tsv" else ",", index=False)
    return paths


@pytest.mark.slow
def test_index_build_add_info_and_identify_through_the_console(tmp_path, fixture_path, fixture_metadata):
    paths = _write_parts(fixture_metadata, tmp_path)
    built = barcodemae("index", "build", paths["train"], paths["val"], "--output", "library", "--no_progress",
                       cwd=tmp_path)  # fmt: skip
    assert built.returncode == 0, built.stderr
    distinct = len(load_index(tmp_path / "library"))
    assert f"indexed {distinct} barcodes (kmer:6;" in built.stdout and "exact: the encoder's 4096 dims" in built.stdout

    by_index = barcodemae("identify", fixture_path, "--query_splits", "test_unseen", "--index", "library",
                          "--output", "by_index.tsv", "--no_progress", cwd=tmp_path)  # fmt: skip
    by_file = barcodemae("identify", fixture_path, "--query_splits", "test_unseen", "--reference", paths["train"],
                         paths["val"], "--output", "by_file.tsv", "--no_progress", cwd=tmp_path)  # fmt: skip
    assert by_index.returncode == by_file.returncode == 0, by_index.stderr + by_file.stderr
    assert (tmp_path / "by_index.tsv").read_bytes() == (tmp_path / "by_file.tsv").read_bytes()
    assert f"200 queries against {distinct} reference barcodes" in by_index.stdout

    again = barcodemae("index", "add", "library", paths["val"], "--no_progress", cwd=tmp_path)
    val = len(set(fixture_metadata[fixture_metadata.split == "val"].dna_barcode))
    assert again.returncode == 0 and f"added 0 barcodes to library ({val} already in the index" in again.stdout
    assert len(load_index(tmp_path / "library")) == distinct  # kept once

    grown = barcodemae("index", "add", "library", paths["test"], "--no_progress", cwd=tmp_path)
    assert grown.returncode == 0, grown.stderr
    added = int(grown.stdout.split()[1])
    assert added > 0 and len(load_index(tmp_path / "library")) == distinct + added
    assert sorted(path.name for path in (tmp_path / "library").iterdir()) == [".verified.json",
        "manifest.json", "records.2.parquet", "sequences.2.safetensors", "settings.2.json", "vectors.2.safetensors"]

    info = barcodemae("index", "info", "library", cwd=tmp_path)
    assert info.returncode == 0 and f"barcodes: {distinct + added}" in info.stdout and "generation 2" in info.stdout


def test_index_add_recalibrates_as_a_build_of_everything(tmp_path, fixture_metadata):
    from barcodemae.search.index import add_to_index

    encoder = load_encoder("kmer:6")
    paths = _write_parts(fixture_metadata, tmp_path)
    index = build_index(tmp_path / "grown", encoder, reference_scan([paths["train"]]), "overlap")
    more = scan_records([paths["test"]], label_columns=RANKS, deduplicate=True)
    added, held = add_to_index(index, encoder, read_selected(more))
    both = scan_records([paths["train"], paths["test"]], label_columns=RANKS, deduplicate=True)
    whole = build_index(tmp_path / "whole", encoder, lambda: both, "overlap")
    grown, everything = load_index(tmp_path / "grown"), read_selected(both)
    assert (added, len(grown)) == (len(more) - held, len(both)) and held > 0
    assert grown.settings["search"]["thresholds"] == whole.settings["search"]["thresholds"]
    assert [grown.sequences[row] for row in range(len(grown))] == everything.sequences
    assert grown.reference_ids(np.arange(len(grown))) == everything.ids


def test_an_interrupted_build_leaves_no_index_and_resumes_from_its_parts(tmp_path, fixture_path, monkeypatch):
    encoder, scan = load_encoder("kmer:6"), reference_scan([fixture_path], ["train", "val"])
    fresh = build_index(tmp_path / "fresh", encoder, scan, "overlap")

    def interrupted(*arguments):
        raise KeyboardInterrupt

    monkeypatch.setattr(index_module, "write_generation", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_index(tmp_path / "library", encoder, scan, "overlap", shard_size=100)
    monkeypatch.undo()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["fresh", "library.parts"]  # no half-written index
    embedded = []
    monkeypatch.setattr(encoder, "embed", lambda sequences: embedded.append(len(sequences)))
    resumed = build_index(tmp_path / "library", encoder, scan, "overlap", shard_size=100)
    assert embedded == [] and not parts_folder(tmp_path / "library").exists()  # every shard kept from the first run
    assert all((resumed.folder / entry["name"]).read_bytes() == (fresh.folder / entry["name"]).read_bytes()
               for entry in fresh.manifest["files"].values())  # fmt: skip


def test_checksums_are_checked_again_only_for_files_changed_since(tmp_path, fixture_path, monkeypatch):
    build_index(tmp_path / "library", load_encoder("kmer:4"), reference_scan([fixture_path], ["val"]), "overlap")
    hashed = []
    original = store_module._sha256
    monkeypatch.setattr(store_module, "_sha256", lambda path: hashed.append(path.name) or original(path))
    load_index(tmp_path / "library")
    assert hashed == []  # hashed while built
    os.utime(tmp_path / "library" / "records.1.parquet")  # touched: changed for all the check knows
    load_index(tmp_path / "library")
    load_index(tmp_path / "library")
    assert len(hashed) == 4  # the four files once, then recorded as matching again
    load_index(tmp_path / "library", verify="all")
    assert len(hashed) == 8


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate", "flip", "manifest", "missing"])
def test_a_damaged_index_is_one_error_line(tmp_path, fixture_path, damage):
    build_index(tmp_path / "library", load_encoder("kmer:6"), reference_scan([fixture_path], ["val"]), "overlap")
    vectors = tmp_path / "library" / "vectors.1.safetensors"
    data = bytearray(vectors.read_bytes())
    if damage == "truncate":
        vectors.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        data[len(data) // 2] ^= 1
        vectors.write_bytes(bytes(data))
    elif damage == "manifest":
        (tmp_path / "library" / "manifest.json").write_text('{"format": "barcodemae-index", "files": {')
    else:
        vectors.unlink()
    result = barcodemae("identify", fixture_path, "--index", "library", "--output", "calls.tsv", cwd=tmp_path)
    expected = {"truncate": "has .* bytes, the manifest says .* \\(truncated\\?\\)", "flip": "corrupted",
                "manifest": "manifest.json is unreadable", "missing": "vectors.1.safetensors is missing"}[damage]  # fmt: skip
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: library: not a complete barcodemae index: ")
    assert re.search(expected, result.stderr)
    assert not (tmp_path / "calls.tsv").exists()


def test_an_index_of_another_model_is_refused(tmp_path, fixture_path, capsys):
    assert main(["index", "build", str(fixture_path), "--reference_splits", "val", "--output", str(tmp_path / "k5"),
                 "--model", "kmer:5", "--no_progress"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["identify", str(fixture_path), "--index", str(tmp_path / "k5"), "--model", "kmer:6",
                 "--output", str(tmp_path / "calls.tsv")]) == 2  # fmt: skip
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "built with model 'kmer:5'" in error and "give --model kmer:5" in error
    assert main(["index", "add", str(tmp_path / "k5"), str(fixture_path), "--model", "kmer:6"]) == 2
    assert "built with model 'kmer:5'" in capsys.readouterr().err
    assert not (tmp_path / "calls.tsv").exists() and load_index(tmp_path / "k5").manifest["generation"] == 1
    # without --model, the index's own
    assert main(["identify", str(fixture_path), "--query_splits", "test", "--index", str(tmp_path / "k5"),
                 "--output", str(tmp_path / "calls.tsv"), "--no_progress"]) == 0  # fmt: skip
    assert "(kmer:5, relatives by aa:3)" in capsys.readouterr().out


def test_an_index_of_a_joined_spec_reloads_with_its_model_and_refuses_a_part(tmp_path, fixture_path, capsys):
    library = str(tmp_path / "joined")
    assert main(["index", "build", str(fixture_path), "--reference_splits", "val", "--output", library,
                 "--model", "kmer:4+aa:1", "--no_progress"]) == 0  # fmt: skip
    assert "model: kmer:4+aa:1 (k 4 + k 1)" in capsys.readouterr().out
    assert main(["identify", str(fixture_path), "--query_splits", "val", "--index", library, "--relatives_model",
                 "none", "--output", str(tmp_path / "calls.tsv"), "--no_progress"]) == 0  # fmt: skip
    assert "queries against" in capsys.readouterr().out and (tmp_path / "calls.tsv").exists()
    assert main(["identify", str(fixture_path), "--index", library, "--model", "kmer:4", "--output",
                 str(tmp_path / "other.tsv")]) == 2  # fmt: skip
    assert "built with model 'kmer:4+aa:1' (k 4 + k 1), not 'kmer:4' (k 4)" in capsys.readouterr().err


@pytest.mark.slow
def test_bad_input_is_one_error_line_and_leaves_no_index(tmp_path, fixture_path):
    (tmp_path / "bad.csv").write_text("processid,species,dna_barcode\nx1,A a,ACGTACGTACGT\nx2,A b,ACGTXACGTACG\n")
    result = barcodemae("index", "build", "bad.csv", "--output", "library", cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert "bad.csv" in result.stderr and "row 2" in result.stderr and "'X'" in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bad.csv"]  # no folder, no partial one
    (tmp_path / "x").mkdir()
    for arguments, message in (
        (["index", "build", fixture_path, "--output", "x"], "x: already exists"),
        (["index", "info", "nowhere"], "nowhere: no such index folder"),
        (["identify", fixture_path, "--output", "calls.tsv"], "give --reference FILE... or --index DIR"),
    ):  # fmt: skip
        result = barcodemae(*arguments, cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.splitlines() == [result.stderr.strip()], result.stderr
        assert message in result.stderr


def test_fasta_reference_without_labels_names_the_file(tmp_path, capsys):
    (tmp_path / "plain.fasta").write_text(">a\nACGTACGTACGTAAACCC\n")
    assert main(["index", "build", str(tmp_path / "plain.fasta"), "--output", str(tmp_path / "library")]) == 2
    assert "plain.fasta: no label column" in capsys.readouterr().err and not (tmp_path / "library").exists()


def test_compact_search_rescored_is_the_exact_search(tmp_path, fixture_path, monkeypatch):
    """With proposals covering the whole reference, the compact search's re-scoring gives the exact neighbours; with
    the default 4x proposals, the fixture's alignment-ranked best hits stay those of the exact search."""
    encoder, scan = load_encoder("kmer:6"), reference_scan([fixture_path], ["train"])
    reference = read_selected(scan())
    queries = read_records(fixture_path, ["test_unseen"]).sequences
    compact = build_index(tmp_path / "compact", encoder, scan, "overlap", search="compact")
    assert compact.projection is not None and compact.vectors.dtype == np.float16
    vectors = encoder.embed(queries)
    exact_indices, exact_similarities = nearest_neighbours(encoder.embed(reference.sequences), vectors, 5)
    monkeypatch.setattr(references_module, "RESCORE_FACTOR", len(reference.sequences))
    indices, similarities = compact.reference(encoder).nearest(vectors, 5)
    assert (indices == exact_indices).mean() > 0.99 and np.allclose(similarities, exact_similarities, atol=1e-5)
    monkeypatch.undo()
    exact = build_index(tmp_path / "exact", encoder, scan, "overlap", search="exact")
    found = ranked_neighbours(compact.reference(encoder), vectors, queries)[0][:, 0]
    expected = ranked_neighbours(exact.reference(encoder), vectors, queries)[0][:, 0]
    genus = reference.labels["genus"]
    assert (genus[found] == genus[expected]).mean() >= 0.99


def test_blocked_search_equals_one_block():
    rng = np.random.default_rng(0)
    keys, queries = rng.random((1000, 16)).astype(np.float32), rng.random((30, 16)).astype(np.float32)
    whole = nearest_neighbours(keys, queries, 7)
    blocked = nearest_neighbours(keys.astype(np.float16), queries, 7, block_cells=16 * 64)
    assert (blocked[0] == nearest_neighbours(keys.astype(np.float16), queries, 7)[0]).all()
    assert (whole[0][:, 0] == blocked[0][:, 0]).mean() > 0.9 and np.allclose(whole[1], blocked[1], atol=1e-2)


def test_tensor_files_are_safetensors_and_barcodes_pack_losslessly(tmp_path):
    from safetensors.numpy import load_file

    barcodes = ["ACGT", "ACGTN", "", ALPHABET, "TTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTA"]
    packed = pack_sequences(barcodes)
    write_tensors(tmp_path / "x.safetensors", {name: [array[:2], array[2:]] for name, array in packed.items()})
    assert all((load_file(tmp_path / "x.safetensors")[name] == array).all() for name, array in packed.items())
    mapped = map_tensors(tmp_path / "x.safetensors")
    sequences = PackedSequences(mapped["packed"], mapped["offsets"], mapped["lengths"])
    assert [sequences[row] for row in range(len(sequences))] == barcodes
    assert len(packed["packed"]) == sum((len(barcode) + 1) // 2 for barcode in barcodes)  # 4 bits a nucleotide


def test_settings_record_the_encoder_and_the_manifest_every_file(tmp_path, fixture_path):
    scan = reference_scan([fixture_path], ["val"])
    index = build_index(tmp_path / "library", load_encoder("kmer:4"), scan, "infix", quantile=0.1)
    settings = json.loads((tmp_path / "library" / "settings.1.json").read_text())
    assert settings["encoder"] == {"name": "kmer:4", "key": {"kind": "kmer", "k": 4}}
    assert (settings["search"]["measure"], settings["search"]["quantile"]) == ("infix", 0.1)
    listed = {entry["name"] for entry in index.manifest["files"].values()} | {"manifest.json", ".verified.json"}
    assert listed == {path.name for path in (tmp_path / "library").iterdir()}
    labels = pd.read_parquet(tmp_path / "library" / "records.1.parquet")
    assert list(labels.columns) == ["id", *RANKS] and list(labels.id) == read_selected(scan()).ids


def test_cluster_search_compact_finds_the_exact_search_clusters(tmp_path, fixture_path):
    from sklearn.metrics import adjusted_rand_score

    found = {}
    for search in ("exact", "compact"):
        output = tmp_path / f"{search}.tsv"
        assert main(["cluster", str(fixture_path), "--splits", "test", "test_unseen", "--search", search,
                     "--output", str(output), "--no_progress"]) == 0  # fmt: skip
        found[search] = pd.read_csv(output, sep="\t").cluster
    assert adjusted_rand_score(found["exact"], found["compact"]) > 0.98


def test_compact_index_stores_relatives_vectors_that_add_extends(tmp_path, fixture_metadata):
    """A compact index stores the relatives embedding (aa:3) projected like its search vectors; their search finds
    neighbours as alike as the exact aa:3 search's; `index add` embeds the new barcodes into them (and refuses
    without that model); an exact index stores none and embeds its barcodes at the first relatives search."""
    from barcodemae.errors import UserError
    from barcodemae.search.index import add_to_index
    from barcodemae.search.projection import project

    encoder, relatives = load_encoder("kmer:6"), load_encoder("aa:3")
    paths = _write_parts(fixture_metadata, tmp_path)
    index = build_index(tmp_path / "grown", encoder, reference_scan([paths["train"]]), "overlap", search="compact",
                        relatives=relatives)  # fmt: skip
    assert index.settings["relatives"] == {"name": "aa:3", "key": {"kind": "aa", "k": 3}}
    assert index.relatives_vectors.shape == (len(index), 256) and index.relatives_vectors.dtype == np.float16
    queries = read_records(paths["val"], None).sequences
    query_vectors = relatives.embed(queries)
    reference = index.reference(encoder)
    found = index.relatives_reference(relatives, reference).nearest(query_vectors, 5)[1]
    held = [index.sequences[row] for row in range(len(index))]
    exact = nearest_neighbours(relatives.embed(held), query_vectors, 5)[1]
    assert np.allclose(found[:, 0], exact[:, 0], atol=1e-5)  # the nearest as alike (many are ties)
    assert index.relatives_reference(load_encoder("kmer:4"), reference) is None  # not the stored model
    more = read_selected(scan_records([paths["test"]], label_columns=RANKS, deduplicate=True))
    with pytest.raises(UserError, match="stores relatives vectors of 'aa:3'"):
        add_to_index(index, encoder, more)
    added, _ = add_to_index(index, encoder, more, relatives=relatives)
    grown = load_index(tmp_path / "grown")
    new = [grown.sequences[row] for row in range(len(index), len(grown))]
    assert added == len(new) > 0 and np.array_equal(grown.relatives_vectors[: len(index)], index.relatives_vectors)
    assert np.array_equal(grown.relatives_vectors[len(index) :], project(relatives.embed(new), grown.relatives_projection))
    exact_index = build_index(tmp_path / "exact", encoder, reference_scan([paths["train"]]), "overlap",
                              relatives=relatives)  # fmt: skip
    assert "relatives" not in exact_index.settings and exact_index.relatives_vectors is None
    embedded = exact_index.relatives_reference(relatives, exact_index.reference(encoder))
    assert embedded.vectors is None  # embedded at the first search only: none, nothing embedded
    assert np.array_equal(embedded.nearest(query_vectors, 5)[0], nearest_neighbours(
        relatives.embed(held).astype(np.float16), query_vectors, 5)[0])
