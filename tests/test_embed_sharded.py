"""`barcodemae embed` on files read a chunk at a time, in shards, over several processes and across interruptions:
one output, the bytes of a one-process run."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from barcodemae import files
from barcodemae.cli import main
from barcodemae.embedding_job import embed_to_shards
from barcodemae.encoders import load_encoder
from barcodemae.files import iter_records, read_embeddings, read_records, scan_records
from barcodemae.search.store import VERIFIED

pytestmark = pytest.mark.usefixtures("one_thread")
BAD_ROWS = {5: "ACGT7ACGTACGT", 9: "ACGNTAC"}  # 1-based data rows of `barcode_file`: a bad character, no 4-mer


@pytest.fixture(scope="module")
def barcode_file(tmp_path_factory, fixture_metadata) -> Path:
    """1,200 real fixture rows, two of them made bad (`BAD_ROWS`), as CSV."""
    frame = fixture_metadata.iloc[::3].head(1200).copy()
    for row, sequence in BAD_ROWS.items():
        frame.iloc[row - 1, frame.columns.get_loc("dna_barcode")] = sequence
    path = tmp_path_factory.mktemp("input") / "barcodes.csv"
    frame.to_csv(path, index=False)
    return path


def write_as(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".fasta":
        path.write_text("".join(f">{row.processid} extra words\n{row.dna_barcode}\n" for row in frame.itertuples()))
    elif path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False, sep="\t" if path.suffix == ".tsv" else ",")
    return path


SKIP_BAD = {"on_bad_sequence": "skip", "min_run": 6}
SPLITS_LABELS_UNIQUE = {"splits": ["train", "test"], "label_columns": ["genus", "species", "absent"],
                        "deduplicate": True}  # fmt: skip


@pytest.mark.parametrize(
    ("suffix", "options"),
    [(".csv", SKIP_BAD), (".tsv", SKIP_BAD), (".fasta", SKIP_BAD), (".parquet", SKIP_BAD),
     (".csv", SPLITS_LABELS_UNIQUE), (".parquet", SPLITS_LABELS_UNIQUE)],  # fmt: skip
)
def test_chunked_reading_selects_what_read_records_does(tmp_path, monkeypatch, fixture_metadata, suffix, options):
    frame = fixture_metadata.iloc[::4].copy()
    if options is SKIP_BAD:
        frame.iloc[3, frame.columns.get_loc("dna_barcode")] = "ACGT7ACGT"
        frame.iloc[5, frame.columns.get_loc("dna_barcode")] = "ACGTNNACGT"
    path = write_as(frame, tmp_path / f"barcodes{suffix}")
    monkeypatch.setattr(files, "READ_CHUNK_ROWS", 37)  # many chunks, shards across their boundaries
    chunks = list(iter_records(scan_records([path], **options)))
    expected = read_records(path, **options)
    assert len(chunks) > 5 and max(map(len, chunks)) <= 37
    assert sum((chunk.ids for chunk in chunks), []) == expected.ids
    assert sum((chunk.sequences for chunk in chunks), []) == expected.sequences
    assert list(chunks[0].labels) == list(expected.labels)
    for name, values in expected.labels.items():
        assert list(np.concatenate([chunk.labels[name] for chunk in chunks])) == list(values)


def test_bad_row_is_named_as_read_records_names_it(tmp_path, barcode_file):
    with pytest.raises(ValueError) as streamed:
        scan_records([barcode_file], min_run=6)
    with pytest.raises(ValueError) as at_once:
        read_records(barcode_file, min_run=6)
    assert str(streamed.value) == str(at_once.value)
    record = pd.read_csv(barcode_file, dtype=str).processid[4]
    assert f"barcodes.csv: row 5 (processid {record!r}), column 'dna_barcode': the character '7' at position 5" in str(
        streamed.value)  # fmt: skip


def test_embed_in_shards_equals_embedding_at_once_and_leaves_one_file(tmp_path, barcode_file, capsys):
    output = tmp_path / "out" / "vectors.npy"
    assert main(["embed", str(barcode_file), "--model", "kmer:4", "--shard_size", "250", "--output", str(output),
                 "--on_bad_sequence", "skip", "--no_progress"]) == 0  # fmt: skip
    records = read_records(barcode_file, min_run=4, on_bad_sequence="skip")
    ids, vectors = read_embeddings(output)
    assert ids == records.ids and len(ids) == 1198
    np.testing.assert_array_equal(vectors, load_encoder("kmer:4").embed(records.sequences))
    assert sorted(path.name for path in output.parent.iterdir()) == ["vectors.ids.txt", "vectors.npy"]
    assert "1198 barcodes x 256 dims (kmer:4)" in capsys.readouterr().out


def test_rerun_keeps_the_parts_that_match_and_embeds_the_rest(tmp_path, barcode_file):
    folder = tmp_path / "vectors.parquet.parts"
    scan = lambda: scan_records([barcode_file], min_run=4, on_bad_sequence="skip")  # noqa: E731
    first = embed_to_shards(scan, load_encoder("kmer:4"), folder, shard_size=250, progress=False)
    assert (first.count, first.rows, first.embedded) == (5, 1198, 1198)
    vectors = np.concatenate([vectors for _, vectors in first.chunks()])
    first.part(1).write_bytes(first.part(1).read_bytes()[:100])  # a part cut short, as by a full disk
    first.part(3).unlink()
    (folder / "part-00004.parquet.1.partial").write_bytes(b"half")  # a killed writer's file
    again = embed_to_shards(scan, load_encoder("kmer:4"), folder, shard_size=250, progress=False)
    assert again.embedded == 500 and not list(folder.glob("*.partial"))
    np.testing.assert_array_equal(np.concatenate([vectors for _, vectors in again.chunks()]), vectors)
    other = embed_to_shards(scan, load_encoder("kmer:3"), folder, shard_size=250, progress=False)
    assert other.embedded == 1198 and other.dims == 64  # another encoder: nothing kept


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


LAUNCHERS = {
    "one process": [sys.executable, "-m", "barcodemae.cli"],
    "torchrun": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
                 "barcodemae.cli"],  # fmt: skip
    "accelerate": [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                   "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
                   "PORT", "-m", "barcodemae.cli"],  # fmt: skip
}


def embed_command(launcher: str, *arguments) -> list[str]:
    command = [str(free_port()) if part == "PORT" else part for part in LAUNCHERS[launcher]]
    return [*command, "embed", *map(str, arguments)]


def run(command: list[str], cwd: Path, **options):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **options)  # fmt: skip


def finished(process: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def model_options(tiny_model_dir, barcode_file) -> list:
    return [barcode_file, "--model", tiny_model_dir, "--precision", "fp32", "--on_bad_sequence", "skip",
            "--shard_size", "100", "--no_progress"]  # fmt: skip


@pytest.fixture(scope="module")
def one_process_bytes(tmp_path_factory, model_options) -> bytes:
    """The tiny model's vectors of `barcode_file` from one uninterrupted process."""
    folder = tmp_path_factory.mktemp("one_process")
    result = finished(run(embed_command("one process", *model_options, "--output", "vectors.parquet"), folder))
    assert result.returncode == 0, result.stderr
    return (folder / "vectors.parquet").read_bytes()


@pytest.mark.slow
def test_two_processes_write_the_bytes_of_one(tmp_path, barcode_file, model_options, one_process_bytes):
    result = finished(run(embed_command("torchrun", *model_options, "--output", "vectors.parquet"), tmp_path))
    assert result.returncode == 0, result.stderr
    assert "2 processes" in result.stdout and "1198 barcodes" in result.stdout
    assert (tmp_path / "vectors.parquet").read_bytes() == one_process_bytes
    kmer = [barcode_file, "--model", "kmer:5", "--on_bad_sequence", "skip", "--shard_size", "300", "--no_progress"]
    for launcher in ("one process", "accelerate"):
        result = finished(run(embed_command(launcher, *kmer, "--output", f"{launcher}/kmer.npy"), tmp_path))
        assert result.returncode == 0, result.stderr
    for name in ("kmer.npy", "kmer.ids.txt"):
        assert (tmp_path / "accelerate" / name).read_bytes() == (tmp_path / "one process" / name).read_bytes()


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_bytes(tmp_path, model_options, one_process_bytes):
    """Killed (SIGKILL) once its third part exists; rerun on two processes, it keeps the finished parts."""
    command = embed_command("one process", *model_options, "--output", "vectors.parquet")
    process = run(command, tmp_path)
    third = tmp_path / "vectors.parquet.parts" / "part-00002.parquet"
    while not third.exists() and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert finished(process).returncode == -signal.SIGKILL
    assert not (tmp_path / "vectors.parquet").exists()
    kept = len(list(third.parent.glob("part-*.parquet")))
    assert 3 <= kept < 12
    result = finished(run(embed_command("torchrun", *model_options, "--output", "vectors.parquet"), tmp_path))
    assert result.returncode == 0, result.stderr
    assert f"{kept * 100} kept from an interrupted run" in result.stdout
    assert (tmp_path / "vectors.parquet").read_bytes() == one_process_bytes
    assert sorted(path.name for path in tmp_path.iterdir()) == ["vectors.parquet"]


@pytest.mark.slow
def test_bad_file_on_two_processes_is_one_error_line_and_nothing_written(tmp_path, barcode_file):
    result = finished(run(embed_command("torchrun", barcode_file, "--output", "out/vectors.parquet"), tmp_path))
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    record = pd.read_csv(barcode_file, dtype=str).processid[4]
    assert f"barcodes.csv: row 5 (processid {record!r}), column 'dna_barcode': the character '7' at position 5" in errors[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_index_built_on_two_processes_is_the_index_of_one(tmp_path, fixture_path):
    """`index build` embeds through the same shards: on two processes, with a compact search (the projections of the
    search and relatives vectors fitted on the first process, sent to the second), the same files as on one."""
    options = [fixture_path, "--reference_splits", "train", "val", "--model", "kmer:5", "--search", "compact",
               "--shard_size", "150", "--no_progress"]  # fmt: skip
    for launcher in ("one process", "torchrun"):
        command = [str(free_port()) if part == "PORT" else part for part in LAUNCHERS[launcher]]
        result = finished(run([*command, "index", "build", *map(str, options), "--output", launcher], tmp_path))
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("indexed ") == 1  # the first process reports
    one, two = tmp_path / "one process", tmp_path / "torchrun"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["one process", "torchrun"]  # parts removed
    contents = lambda folder: {path.name: path.read_bytes() for path in folder.iterdir() if path.name != VERIFIED}  # noqa: E731
    assert contents(one) == contents(two) and len(contents(one)) == 6  # (.verified.json records the files' own mtimes)
    assert "relatives.1.safetensors" in contents(one)
