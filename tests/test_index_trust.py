"""An index folder is data, not authority: its manifest names only its own files, its settings never choose the code
or weights that run, `index add` holds a lock, and a shared index is readable by the group the umask lets in. Through
the console script where a user would meet it."""

import hashlib
import json
import os
import shutil

import pytest
from conftest import REPO
from test_cli import barcodemae

from barcodemae.cli import main
from barcodemae.encoders import BUNDLED_MODEL, load_encoder
from barcodemae.errors import UserError
from barcodemae.files import read_selected, scan_records
from barcodemae.identify import RANKS
from barcodemae.search.index import add_to_index, build_index, load_index
from barcodemae.search.store import writing

pytestmark = pytest.mark.usefixtures("one_thread")


def val_scan(fixture_path):
    """What `index build` reads of the fixture's val split (60 labelled barcodes)."""
    return lambda: scan_records([fixture_path], ["val"], label_columns=RANKS, deduplicate=True)


@pytest.fixture(scope="module")
def small_index(tmp_path_factory, fixture_path):
    """A kmer:4 index of the fixture's 60 val barcodes (copied by `library`)."""
    folder = tmp_path_factory.mktemp("small") / "library"
    build_index(folder, load_encoder("kmer:4"), val_scan(fixture_path), "overlap")
    return folder


@pytest.fixture
def library(small_index, tmp_path, fixture_path):
    """A fresh copy of `small_index` in tmp_path / "library", with the fixture beside it."""
    shutil.copy(fixture_path, tmp_path / "fixture.csv.gz")
    return shutil.copytree(small_index, tmp_path / "library")


def _rewrite_manifest(folder, edit) -> None:
    """Edit the manifest's entries (`edit(files)`)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    edit(manifest["files"])
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _rewrite_settings(folder, edit) -> None:
    """Edit the settings file and list its new size and checksum in the manifest, as a crafted index would."""
    path = folder / "settings.1.json"
    settings = json.loads(path.read_text())
    edit(settings)
    path.write_text(json.dumps(settings))
    _rewrite_manifest(folder, lambda files: files["settings"].update(
        bytes=path.stat().st_size, sha256=hashlib.sha256(path.read_bytes()).hexdigest()))


COMMANDS = {
    "info": ["index", "info", "library"],
    "add": ["index", "add", "library", "fixture.csv.gz", "--splits", "test", "--no_progress"],
    "identify": ["identify", "fixture.csv.gz", "--query_splits", "test", "--index", "library", "--output", "calls.tsv",
                 "--no_progress"],
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("naming", ["absolute", "dotdot", "symlink"])
def test_a_manifest_naming_a_file_outside_the_folder_is_one_error_and_the_file_is_left(library, tmp_path, naming):
    """The issue's attack: the vectors entry names a file outside the folder of the right size and checksum; `index
    add` deleted it. Now every command refuses the entry in one line naming it, and the file is untouched."""
    outside = tmp_path / "outside" / "vectors.1.safetensors"
    outside.parent.mkdir()
    shutil.move(library / "vectors.1.safetensors", outside)
    content = outside.read_bytes()
    entry = {"absolute": str(outside), "dotdot": "../outside/vectors.1.safetensors", "symlink": str(outside)}[naming]
    if naming == "symlink":
        (library / "vectors.1.safetensors").symlink_to(outside)
    else:
        _rewrite_manifest(library, lambda files: files["vectors"].update(name=entry))
    for command in COMMANDS.values():
        result = barcodemae(*command, cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.splitlines() == [result.stderr.strip()], result.stderr
        assert result.stderr.startswith("error: library: ") and entry in result.stderr and "refused" in result.stderr
        assert outside.read_bytes() == content
    assert not (tmp_path / "calls.tsv").exists() and not list(library.glob("*.2.*"))  # nothing written


@pytest.mark.parametrize("entry", ["vectors.2.safetensors", "library/vectors.1.safetensors", "vectors.1.npy", ""])
def test_a_manifest_entry_of_another_shape_is_refused(library, capsys, entry):
    _rewrite_manifest(library, lambda files: files["vectors"].update(name=entry))
    assert main(["index", "info", str(library)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and f"entry 'vectors' names {entry!r}, not vectors.1.safetensors" in error


def test_index_add_replaces_links_planted_in_the_folder_instead_of_writing_through_them(library, tmp_path):
    """Links planted where `index add` writes (the next generation, the manifest's and the check's temporary files)
    are replaced: nothing outside the folder is written."""
    victims = {}
    for name in ("vectors.2.safetensors", "records.2.parquet", ".manifest.json.tmp", "..verified.json.tmp"):
        victims[name] = tmp_path / f"victim{len(victims)}"
        victims[name].write_text("precious")
        (library / name).symlink_to(victims[name])
    assert main(["index", "add", str(library), str(tmp_path / "fixture.csv.gz"), "--splits", "test",
                 "--no_progress"]) == 0  # fmt: skip
    assert all(victim.read_text() == "precious" for victim in victims.values())
    assert not any((library / name).is_symlink() for name in victims)
    assert load_index(library, verify="all").manifest["generation"] == 2


def test_a_second_index_add_gets_one_error_naming_the_lock(library, tmp_path, capsys):
    with writing(library):  # another `index add` writing
        assert main(["index", "add", str(library), str(tmp_path / "fixture.csv.gz"), "--splits", "test"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: {library / '.lock'}: another barcodemae index add holds this lock")
    assert len(error.splitlines()) == 1 and load_index(library).manifest["generation"] == 1


def test_a_lock_left_by_a_killed_index_add_does_not_block(library, tmp_path):
    (library / ".lock").touch()  # what a killed writer leaves: the file, no holder (the system dropped its flock)
    assert main(["index", "add", str(library), str(tmp_path / "fixture.csv.gz"), "--splits", "test",
                 "--no_progress"]) == 0  # fmt: skip
    assert load_index(library).manifest["generation"] == 2 and not (library / ".lock").exists()


def test_index_add_refuses_an_index_another_add_changed_since_it_was_read(library, fixture_path):
    encoder, first, second = load_encoder("kmer:4"), load_index(library), load_index(library)
    more = read_selected(scan_records([fixture_path], ["test"], label_columns=RANKS, deduplicate=True))
    add_to_index(first, encoder, more)
    with pytest.raises(UserError, match="another index add changed the index since this one read it"):
        add_to_index(second, encoder, more)
    assert load_index(library, verify="all").manifest["generation"] == 2


@pytest.mark.parametrize("umask, mode", [(0o022, 0o755), (0o027, 0o750), (0o077, 0o700)])
def test_an_index_folder_gets_the_permissions_the_umask_gives(tmp_path, fixture_path, umask, mode):
    previous = os.umask(umask)
    try:
        index = build_index(tmp_path / "library", load_encoder("kmer:3"), val_scan(fixture_path), "overlap")
    finally:
        os.umask(previous)
    assert index.folder.stat().st_mode & 0o777 == mode
    assert {path.stat().st_mode & 0o777 for path in index.folder.iterdir()} == {0o666 & ~umask}


def test_settings_keep_source_file_names_not_local_paths(tmp_path, fixture_path):
    assert main(["index", "build", str(fixture_path.resolve()), "--reference_splits", "val", "--model", "kmer:3",
                 "--output", str(tmp_path / "library"), "--no_progress"]) == 0  # fmt: skip
    assert load_index(tmp_path / "library").settings["sources"] == ["bioscan_fixture.csv.gz"]


# ---- models: an index never chooses code to run ----


def _custom_code_model(folder, marker):
    """A model folder whose config maps AutoModel to its own module, which leaves `marker` when imported."""
    folder.mkdir()
    auto_map = {"AutoConfig": "stub_code.StubConfig", "AutoModel": "stub_code.StubModel"}
    (folder / "config.json").write_text(json.dumps({"model_type": "stub-custom", "auto_map": auto_map}))
    (folder / "stub_code.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    return folder


@pytest.mark.slow
def test_an_index_naming_a_model_with_code_runs_nothing_and_asks_for_model(library, tmp_path):
    marker = tmp_path / "ran"
    stub = _custom_code_model(tmp_path / "stub", marker)
    key = {"kind": "model", "fingerprint": "0" * 64, "fingerprint_version": 2, "layers": [-1], "reading_frames": False}
    _rewrite_settings(library, lambda settings: settings.update(encoder={"name": str(stub), "key": key}))
    for command in (COMMANDS["identify"], COMMANDS["add"]):
        result = barcodemae(*command, cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.splitlines() == [result.stderr.strip()], result.stderr
        assert f"built with model {str(stub)!r}" in result.stderr and f"give --model {stub}" in result.stderr
        assert not marker.exists()


def test_an_index_naming_relatives_with_code_asks_for_relatives_model(library, tmp_path, capsys):
    marker = tmp_path / "ran"
    stub = _custom_code_model(tmp_path / "stub", marker)
    _rewrite_settings(library, lambda settings: settings.update(relatives={"name": str(stub), "key": {}}))
    assert main(["index", "add", str(library), str(tmp_path / "fixture.csv.gz"), "--splits", "test"]) == 2
    assert f"give --relatives_model {stub}" in capsys.readouterr().err and not marker.exists()


def test_a_model_with_its_own_code_loads_only_with_trust_remote_code(tmp_path):
    marker = tmp_path / "ran"
    stub = _custom_code_model(tmp_path / "stub", marker)
    with pytest.raises(UserError, match="runs only with --trust_remote_code"):
        load_encoder(str(stub))
    assert not marker.exists()


def test_a_barcodemae_folder_loads_through_the_package_classes_not_its_own_files(tiny_model_dir, tmp_path, barcodes,
                                                                                 fixture_path):  # fmt: skip
    """Every .py file of the folder poisoned: it loads, indexes and identifies as the clean one, and none runs."""
    marker = tmp_path / "ran"
    poisoned = shutil.copytree(tiny_model_dir, tmp_path / "poisoned")
    for code in poisoned.glob("*.py"):
        code.write_text(f"open({str(marker)!r}, 'w').close()\n")
    encoder = load_encoder(str(poisoned))
    assert type(encoder.model).__module__ == "modeling_barcodemae"
    assert type(encoder.tokenizer).__module__ == "tokenization_barcodemae"
    assert (encoder.embed(barcodes) == load_encoder(str(tiny_model_dir)).embed(barcodes)).all()
    fixture = str(fixture_path)
    assert main(["index", "build", fixture, "--reference_splits", "val", "--model", str(poisoned), "--output",
                 str(tmp_path / "library"), "--no_progress"]) == 0  # fmt: skip
    assert main(["identify", fixture, "--query_splits", "val_unseen", "--index", str(tmp_path / "library"), "--model",
                 str(poisoned), "--output", str(tmp_path / "calls.tsv"), "--no_progress"]) == 0  # fmt: skip
    assert not marker.exists()


@pytest.fixture(scope="module")
def bundled_index(tmp_path_factory, fixture_path):
    """An index of the val barcodes built with the bundled model, named by its path relative to the repository."""
    if not BUNDLED_MODEL.is_dir():
        pytest.skip("no bundled model (not a clone of the repository)")
    folder = tmp_path_factory.mktemp("bundled") / "library"
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        build_index(folder, load_encoder("checkpoints/barcodemae-4x256-bold"), val_scan(fixture_path), "overlap")
    finally:
        os.chdir(cwd)
    return folder


def test_an_index_of_the_bundled_model_loads_it_unnamed_and_checks_its_weights(bundled_index, tmp_path, fixture_path,
                                                                               capsys, monkeypatch):  # fmt: skip
    library = shutil.copytree(bundled_index, tmp_path / "library")
    monkeypatch.chdir(tmp_path)  # elsewhere than where it was built: its fingerprint does not depend on the path
    arguments = ["identify", str(fixture_path), "--query_splits", "val_unseen", "--index", "library", "--output",
                 "calls.tsv", "--no_progress"]  # fmt: skip
    assert main(arguments) == 0
    assert f"({BUNDLED_MODEL}, relatives by aa:3)" in capsys.readouterr().out
    _rewrite_settings(library, lambda settings: settings["encoder"]["key"].update(fingerprint="0" * 64))
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert "the index was built with model 'checkpoints/barcodemae-4x256-bold' (fingerprint 0000" in error


def test_an_index_with_a_fingerprint_of_before_says_rebuild(bundled_index, tmp_path, fixture_path, capsys):
    library = shutil.copytree(bundled_index, tmp_path / "library")
    _rewrite_settings(library, lambda settings: settings["encoder"]["key"].pop("fingerprint_version"))
    assert main(["identify", str(fixture_path), "--query_splits", "val_unseen", "--index", str(library), "--output",
                 str(tmp_path / "calls.tsv")]) == 2  # fmt: skip
    error = capsys.readouterr().err
    assert "built by an earlier barcodemae, whose model fingerprint changed with the path" in error
    assert error.rstrip().endswith("rebuild it (barcodemae index build)") and len(error.splitlines()) == 1
