"""Input files that cannot be read, and bad barcodes, are one line each: `error: FILE: what is wrong` (with the row,
the record's id and, in FASTA, its line, where there is one), exit status 2, no traceback; and each surface names the
options that get past an error its own way (the library its parameters, the command line its flags)."""

import bz2
import gzip
import lzma
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from barcodemae import files
from barcodemae.cli import main
from barcodemae.data import load_barcodes
from barcodemae.errors import Option, UserError, command_line_spelling, python_spelling
from barcodemae.files import read_records

CONSOLE_SCRIPT = Path(sys.executable).parent / "barcodemae"
GOOD = "AACATTATATTTTATTTTTGGAATTTGAGCAGGAATAGTAGGAACTTCTTTAAGATTATTAATTCGAGCAGAATT"
pytestmark = pytest.mark.usefixtures("one_thread")


def barcodemae(*arguments, cwd) -> subprocess.CompletedProcess:
    """The console command as a user runs it (python -m barcodemae.cli where it is not pip-installed)."""
    command = [str(CONSOLE_SCRIPT)] if CONSOLE_SCRIPT.exists() else [sys.executable, "-m", "barcodemae.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([*command, *map(str, arguments)], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The `error:` line of a failed console run that printed nothing else and no traceback."""
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def error_of(capsys, *arguments) -> str:
    """The one `error:` line of `barcodemae ARGUMENTS` run in this process, which must exit with status 2."""
    assert main([*map(str, arguments)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1, error
    return error.strip()


@pytest.fixture(scope="module")
def table_text(fixture_metadata) -> str:
    """600 fixture rows as CSV text."""
    return fixture_metadata.head(600).to_csv(index=False)


@pytest.fixture(scope="module")
def truncated_gz(tmp_path_factory, table_text) -> Path:
    """The CSV, gzip-compressed and cut off at 70% of its bytes (an interrupted download)."""
    data = gzip.compress(table_text.encode())
    path = tmp_path_factory.mktemp("truncated") / "queries.csv.gz"
    path.write_bytes(data[: len(data) * 7 // 10])
    return path


# ------------------------------------------------------------------------------------------------ files that cannot be read


def test_truncated_gzip_is_one_line_naming_the_file_and_the_last_row_read(tmp_path, capsys, truncated_gz, monkeypatch):
    monkeypatch.setattr(files, "READ_CHUNK_ROWS", 100)  # rows read whole before the end: 100 at a time
    error = error_of(capsys, "embed", truncated_gz, "--output", tmp_path / "out.parquet")
    assert re.fullmatch(rf"error: {re.escape(str(truncated_gz))}: the compressed data ends too early: the file is "
                        r"truncated \(an interrupted download or copy\?\) \(read up to data row [1-9]\d*00\)", error), error
    assert not (tmp_path / "out.parquet").exists()


def test_truncated_gzip_queries_and_reference_of_identify_are_one_line(tmp_path, capsys, truncated_gz, fixture_metadata):
    reference = tmp_path / "reference.csv"
    fixture_metadata[fixture_metadata.split == "train"].head(200).to_csv(reference, index=False)
    for queries, references in ((truncated_gz, reference), (reference, truncated_gz)):
        error = error_of(capsys, "identify", queries, "--reference", references, "--output", tmp_path / "calls.tsv",
                         "--no_progress")  # fmt: skip
        assert error.startswith(f"error: {truncated_gz}: the compressed data ends too early: the file is truncated")


def test_truncated_fasta_gz_names_the_last_record_read(tmp_path, fixture_metadata, monkeypatch):
    monkeypatch.setattr(files, "READ_CHUNK_ROWS", 50)
    text = "".join(f">{row.processid}\n{row.dna_barcode}\n" for row in fixture_metadata.head(400).itertuples())
    data = gzip.compress(text.encode())
    path = tmp_path / "reads.fasta.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"reads\.fasta\.gz: the compressed data ends too early.*\(read up to record \d+\)$"):
        read_records(path)


def _zstd_like(text: str) -> bytes:
    return b"\x28\xb5\x2f\xfd" + b"\x00" * 8 + text.encode()[:200]  # zstd's magic number, then anything


def _corrupt_gzip(text: str) -> bytes:
    data = bytearray(gzip.compress(text.encode()))
    data[len(data) // 2 : len(data) // 2 + 64] = b"\xff" * 64  # the deflate stream damaged in the middle
    return bytes(data)


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("a.csv.gz", lambda text: b"\x1f\x8b" + b"rubbish" * 50, r"corrupt gzip data \(.+\)"),
        ("a.csv.gz", _corrupt_gzip, r"corrupt gzip data \(.+\)|the compressed data ends too early"),
        ("a.csv.gz", lambda text: text.encode(), r"not gzip-compressed, though its name ends in \.gz"),
        ("a.csv.gz", lambda text: bz2.compress(text.encode()), r"compressed with bzip2, not gzip, though its name ends in \.gz"),
        ("a.csv.bz2", lambda text: bz2.compress(text.encode()), r"compressed with bzip2, which is not read: decompress it, or "
         r"compress it with gzip \(\.gz\)"),
        ("a.tsv.xz", lambda text: lzma.compress(text.encode()), r"compressed with xz, which is not read"),
        ("a.csv.zst", _zstd_like, r"compressed with zstd, which is not read"),
        ("a.csv", lambda text: gzip.compress(text.encode()), r"gzip-compressed, but its name does not end in \.gz"),
        ("a.fasta", lambda text: bytes(range(256)) * 4, r"not UTF-8 text: a binary file, or text in another encoding"),
        ("a.csv", lambda text: text.encode() + "Zoë\n".encode("latin-1"), r"not UTF-8 text"),
        ("a.parquet", lambda text: b"PAR1 this is not parquet", r"not a parquet file, or a corrupt or truncated one \(.+\)"),
        ("a.csv", lambda text: f'processid,dna_barcode\na,{GOOD}\nb,"ACGTAC\n'.encode(),
         r"not a well-formed table: .*EOF inside string starting at row 2"),
    ],
)
def test_corrupt_or_unread_compression_is_one_line_naming_the_file(tmp_path, capsys, table_text, name, content, problem):
    path = tmp_path / name
    path.write_bytes(content(table_text))
    error = error_of(capsys, "embed", path, "--output", tmp_path / "out.parquet", "--no_progress")
    assert re.match(rf"error: {re.escape(str(path))}: ({problem})", error), error


def test_truncated_parquet_is_one_line(tmp_path, capsys, fixture_metadata):
    whole = tmp_path / "whole.parquet"
    fixture_metadata.head(300).to_parquet(whole)
    path = tmp_path / "cut.parquet"
    path.write_bytes(whole.read_bytes()[:-100])
    error = error_of(capsys, "embed", path, "--output", tmp_path / "out.npy")
    assert error.startswith(f"error: {path}: not a parquet file, or a corrupt or truncated one (")


def test_the_datasets_reader_says_the_same(tmp_path, truncated_gz):
    """`load_barcodes` (evaluate, train.py) reads through `datasets`, which wraps the error: the same one line."""
    with pytest.raises(UserError, match=rf"^{re.escape(str(truncated_gz))}: the compressed data ends too early"):
        load_barcodes(truncated_gz, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(UserError, match=rf"^{re.escape(str(tmp_path))}: a folder, not a file"):
        load_barcodes(tmp_path)


def test_folder_given_as_a_file_says_it_is_a_folder(tmp_path, capsys, fixture_path):
    folder = tmp_path / "barcodes"
    folder.mkdir()
    expected = f"error: {folder}: a folder, not a file: give a barcode file (FASTA, CSV, TSV or parquet)"
    assert error_of(capsys, "embed", folder, "--output", tmp_path / "out.npy") == expected
    assert error_of(capsys, "identify", fixture_path, "--reference", folder, "--output", tmp_path / "c.tsv") == expected
    assert error_of(capsys, "index", "build", folder, "--output", tmp_path / "index") == expected
    assert error_of(capsys, "cluster", folder, "--output", tmp_path / "c.tsv") == expected


def test_unreadable_file_permission_denied(tmp_path, capsys, monkeypatch):
    """What a user without read permission gets. Root reads any file whatever its mode, so the operating system's
    answer for such a user (`os.access` false) is given here; the console test below runs it for real where the
    tests do not run as root."""
    path = tmp_path / "barcodes.csv"
    path.write_text(f"dna_barcode\n{GOOD}\n")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda where, mode: False if Path(where) == path else real_access(where, mode))
    assert error_of(capsys, "embed", path, "--output", tmp_path / "out.npy") == f"error: {path}: cannot be read: " \
                                                                                  "permission denied"


def test_link_loop_and_pipe_are_one_line(tmp_path, capsys):
    """Files even root cannot read as barcodes: a symbolic link to itself, a named pipe (read twice: no)."""
    loop = tmp_path / "loop.csv"
    loop.symlink_to(loop)
    error = error_of(capsys, "embed", loop, "--output", tmp_path / "out.npy")
    assert error == f"error: {loop}: cannot be read: Too many levels of symbolic links", error
    pipe = tmp_path / "pipe.csv"
    os.mkfifo(pipe)
    error = error_of(capsys, "embed", pipe, "--output", tmp_path / "out.npy")
    assert error.startswith(f"error: {pipe}: not a regular file (a pipe or a device?)")


# ----------------------------------------------------------------------------------------------------------- bad barcodes


def test_bad_barcode_is_named_by_its_id_and_fasta_line(tmp_path, capsys):
    fasta = tmp_path / "reads.fasta"
    fasta.write_text(f">ok1|Aedes\n{GOOD}\n\n>BAD-7 a description\n{GOOD[:40]}\n{GOOD[40:50]}7{GOOD[50:]}\n>ok2\n{GOOD}\n")
    error = error_of(capsys, "embed", fasta, "--output", tmp_path / "out.npy")
    assert error.startswith(f"error: {fasta}: record 2 (>BAD-7, line 4), column 'sequence': the character '7' at "
                            "position 51")
    table = tmp_path / "reads.tsv"
    table.write_text(f"sampleid\tmy_id\tdna_barcode\nS1\tm1\t{GOOD}\nS2\tm2\tACGTNACGTNA\n")
    error = error_of(capsys, "embed", table, "--output", tmp_path / "out.npy")
    assert error.startswith(f"error: {table}: row 2 (sampleid 'S2'): the barcode 'ACGTNACGTNA'")
    error = error_of(capsys, "embed", table, "--id_column", "my_id", "--output", tmp_path / "out.npy")
    assert error.startswith(f"error: {table}: row 2 (my_id 'm2'): the barcode 'ACGTNACGTNA'")
    plain = tmp_path / "plain.csv"
    plain.write_text(f"dna_barcode\n{GOOD}\nACGT*\n")  # no id column: the row is all there is
    assert error_of(capsys, "embed", plain, "--output", tmp_path / "out.npy").startswith(
        f"error: {plain}: row 2, column 'dna_barcode': the character '*'")  # fmt: skip


# -------------------------------------------------------------------------------------------- each surface, its own words


def test_user_error_spells_its_options_per_surface():
    error = UserError("x.csv: row 2: bad; fix the file", " or skip them with ", Option("on_bad_sequence", "skip"))
    assert str(error) == "x.csv: row 2: bad; fix the file or skip them with on_bad_sequence='skip'"
    assert error.spelled(python_spelling) == str(error)
    assert error.spelled(command_line_spelling()) == "x.csv: row 2: bad; fix the file or skip them with --on_bad_sequence skip"
    assert error.spelled(command_line_spelling({"sequence_column"})) == "x.csv: row 2: bad; fix the file"  # no such flag
    assert error.spelled(lambda option: "the box") == "x.csv: row 2: bad; fix the file or skip them with the box"
    copy = pickle.loads(pickle.dumps(error))  # as errors cross processes
    assert type(copy) is UserError and copy.spelled(command_line_spelling()) == error.spelled(command_line_spelling())


def test_library_names_parameters_and_command_line_names_flags(tmp_path, capsys):
    path = tmp_path / "reads.csv"
    cases = [(f"processid,dna\na,{GOOD}\n", "embed", "out.npy",
              "the file has the columns processid, dna (name it with {})", ("sequence_column", "--sequence_column")),
             (f"processid,dna_barcode\na,{GOOD}\nb,ACGT7\n", "cluster", "c.tsv",
              "; fix the file or skip them with {}", ("on_bad_sequence='skip'", "--on_bad_sequence skip"))]
    for content, command, output, ending, (parameter, flag) in cases:
        path.write_text(content)
        with pytest.raises(UserError) as caught:
            read_records(path)
        assert str(caught.value).endswith(ending.format(parameter))
        assert error_of(capsys, command, path, "--output", tmp_path / output).endswith(ending.format(flag))


def test_command_line_names_only_flags_its_command_has(tmp_path, capsys):
    """`evaluate` reads BIOSCAN-5M-layout files and has no --sequence_column: the remedy is left out, not misnamed."""
    path = tmp_path / "metadata.csv"
    path.write_text(f"processid,dna,split\na,{GOOD},train\n")
    error = error_of(capsys, "evaluate", "--models", "kmer:2", "--data_file", path, "--output_dir", tmp_path / "out",
                     "--no_progress", "--no_plots")  # fmt: skip
    assert error == f"error: {path}: no sequence column: looked for dna_barcode, nucleotides, sequence; the file has " \
                    "the columns processid, dna, split"


def test_model_help_lists_every_kind_of_model(capsys):
    for command in (["embed"], ["identify"], ["cluster"], ["index", "build"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert re.search(r"--model MODEL kmer:K, aa:K, a model folder or Hub id", text), (command, text)


# ---------------------------------------------------------------------------------------------- the console, as users run it


@pytest.mark.slow
def test_console_truncated_gzip_is_one_line_for_embed_and_identify(tmp_path, truncated_gz, fixture_path):
    for arguments in (["embed", truncated_gz, "--output", "out.parquet"],
                      ["identify", truncated_gz, "--reference", fixture_path, "--reference_splits", "train",
                       "--output", "calls.tsv"]):  # fmt: skip
        line = one_error_line(barcodemae(*arguments, "--no_progress", cwd=tmp_path))
        assert line.startswith(f"error: {truncated_gz}: the compressed data ends too early: the file is truncated")
    assert sorted(path.name for path in tmp_path.iterdir()) == []  # nothing written


@pytest.mark.slow
def test_console_folder_given_as_a_file_is_one_line(tmp_path):
    (tmp_path / "barcodes").mkdir()
    line = one_error_line(barcodemae("embed", "barcodes", "--output", "out.npy", cwd=tmp_path))
    assert line == "error: barcodes: a folder, not a file: give a barcode file (FASTA, CSV, TSV or parquet)"


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file whatever its mode: chmod 000 cannot make one "
                    "unreadable (test_unreadable_file_permission_denied and test_link_loop_and_pipe_are_one_line cover it)")
def test_console_file_without_read_permission_is_one_line(tmp_path):
    path = tmp_path / "barcodes.csv"
    path.write_text(f"dna_barcode\n{GOOD}\n")
    path.chmod(0)
    try:
        line = one_error_line(barcodemae("embed", "barcodes.csv", "--output", "out.npy", cwd=tmp_path))
    finally:
        path.chmod(0o644)
    assert line == "error: barcodes.csv: cannot be read: permission denied"


@pytest.mark.slow
def test_console_link_loop_is_one_line(tmp_path):
    """An input that no user, root included, can read."""
    (tmp_path / "barcodes.csv").symlink_to("barcodes.csv")
    line = one_error_line(barcodemae("embed", "barcodes.csv", "--output", "out.npy", cwd=tmp_path))
    assert line == "error: barcodes.csv: cannot be read: Too many levels of symbolic links"


@pytest.mark.slow
def test_console_bad_barcode_is_named_by_id_file_and_line(tmp_path):
    (tmp_path / "reads.fasta").write_text(f">ok1\n{GOOD}\n>ok2\n{GOOD}\n\n>BOLD-123|Aedes vexans|COI-5P\n"
                                          f"{GOOD[:30]}X{GOOD[31:]}\n")  # fmt: skip
    line = one_error_line(barcodemae("embed", "reads.fasta", "--output", "out.npy", cwd=tmp_path))
    assert line.startswith("error: reads.fasta: record 3 (>BOLD-123, line 6), column 'sequence': the character 'X' "
                           "at position 31")
    assert line.endswith("1 of 3 selected rows have a bad sequence; fix the file or skip them with --on_bad_sequence skip")
    frame = pd.DataFrame({"processid": ["P-1", "P-2"], "dna_barcode": [GOOD, "ACGTA"]})
    frame.to_csv(tmp_path / "reads.csv", index=False)
    line = one_error_line(barcodemae("cluster", "reads.csv", "--output", "clusters.tsv", cwd=tmp_path))
    assert line.startswith("error: reads.csv: row 2 (processid 'P-2'): the barcode 'ACGTA' (5 nt once cleaned) has no 6 ")
