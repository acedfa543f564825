"""Barcode records in, result files out: the file side of the commands."""

from __future__ import annotations

import os
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

from barcodemae.data import (
    FASTA_SUFFIXES, ID_COLUMNS, MAX_NUCLEOTIDES, _fasta_records, _hash_sequences, _problem, _read_header,
    _sniff_delimiter, _suffix, check_fasta_start, check_input_file, check_selection_not_empty, check_splits_present,
    clean_barcode, invalid_sequence_error, reading, report_skipped_invalid, report_skipped_unembeddable,
    resolve_columns, unambiguous_run, unembeddable_error,
)
from barcodemae.errors import UserError
EMBEDDING_SUFFIXES = (".parquet", ".npy")
READ_CHUNK_ROWS = 10_000  # rows the streaming readers parse at a time
# How embeddings are written to parquet: on 4,000 kmer:6 vectors 1.8-2x faster to write and read back than
# pyarrow's default (dictionary + snappy), the file 1.6x larger; dense model vectors: the same size (BENCHMARKS.md).
PARQUET_OPTIONS = {"compression": "lz4", "use_dictionary": False}


@dataclass
class Records:
    """Barcodes of a file: their ids, cleaned sequences, and the requested labels ("" = unknown)."""

    ids: list[str]
    sequences: list[str]
    labels: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.sequences)

    @classmethod
    def joined(cls, parts: Sequence[Records], label_columns: Sequence[str]) -> Records:
        """The records of `parts`, one part after the other (`label_columns`: the labels every part has)."""
        labels = {name: np.concatenate([np.array([], dtype=str), *(part.labels[name] for part in parts)])
                  for name in label_columns}  # fmt: skip
        return cls([record for part in parts for record in part.ids],
                   [sequence for part in parts for sequence in part.sequences], labels)  # fmt: skip


def read_records(
    path: str | os.PathLike, splits: Sequence[str] | None = None, sequence_column: str | None = None,
    id_column: str | None = None, label_columns: Sequence[str] = (), deduplicate: bool = False,
    max_length: int = MAX_NUCLEOTIDES, min_run: int = 1, on_bad_sequence: str = "error",
) -> Records:
    """Read a barcode file (any format of `load_barcodes`), clean every barcode; with `deduplicate`, prepare it as
    everywhere else (`prepare_barcodes`: one record per distinct cleaned barcode). Ids: `id_column`, else the first of
    `ID_COLUMNS` the file has, else the row number. `label_columns` the file lacks are left out of `labels`.

    Bad barcodes (a character that is not a nucleotide code; fewer than `min_run` unambiguous nucleotides in a row,
    `check_embeddable`) raise a `UserError` naming the first, or with `on_bad_sequence="skip"` are dropped (logged).
    Read as `scan_records` and `iter_records` stream a file (pandas, pyarrow), so without `datasets`.
    """
    return read_selected(scan_records([path], splits, sequence_column, id_column, label_columns, deduplicate,
                                      max_length, min_run, on_bad_sequence))  # fmt: skip


def read_selected(selection: Selection) -> Records:
    """The barcodes that `selection` (`scan_records`) selects, read into memory as one `Records`."""
    return Records.joined(list(iter_records(selection)), selection.label_columns)


def file_columns(path: Path) -> list[str]:
    """The columns of a barcode file (a FASTA file: processid and sequence); raises if it has no record."""
    suffix = _suffix(path)
    with reading(path):
        if suffix in FASTA_SUFFIXES:
            check_fasta_start(path)
            return ["processid", "sequence"]
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(path).schema_arrow.names)
        return _read_header(path, _sniff_delimiter(path))


def iter_raw_chunks(path: Path, columns: Sequence[str]) -> Iterator[dict[str, list[str]]]:
    """The file's `columns`, `READ_CHUNK_ROWS` data rows at a time, every value a string ("" = missing), as
    `load_barcodes` reads them but without holding the file: pandas chunks, pyarrow record batches, FASTA records
    (which have a column `line` too: the header's line number). An error of reading the file (`data.reading`) is one
    `UserError` saying up to which row it was read."""
    read = 0
    with reading(path, lambda: read):
        for chunk in _raw_chunks(path, columns):
            read += len(chunk[columns[0]])
            yield chunk


def _raw_chunks(path: Path, columns: Sequence[str]) -> Iterator[dict[str, list[str]]]:
    rows = READ_CHUNK_ROWS
    suffix = _suffix(path)
    if suffix in FASTA_SUFFIXES:
        records = _fasta_records(str(path), 0, 0, lines="line" in columns)
        while chunk := list(islice(records, rows)):
            yield {name: [record[name] for record in chunk] for name in columns}
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows, columns=list(columns)):
            yield {name: ["" if value is None else str(value) for value in batch.column(name).to_pylist()]
                   for name in columns}  # fmt: skip
    else:
        delimiter = _sniff_delimiter(path)
        with pd.read_csv(path, sep=delimiter, dtype=str, na_filter=False, quoting=3 if delimiter == "\t" else 0,
                         usecols=list(columns), chunksize=rows) as reader:  # fmt: skip
            for frame in reader:
                yield {name: frame[name].tolist() for name in columns}


def row_names(path: Path, row: int, id_column: str | None = None) -> tuple[str | None, str, int | None]:
    """What names data row `row` (1-based) of `path` for a user: the id column (`id_column`, by default the first of
    `ID_COLUMNS` the file has; None without one; FASTA: processid, the header's id), the row's id ("" without one) and
    in a FASTA file the header's line number (else None). Reads the file up to that row: for messages."""
    fasta = _suffix(path) in FASTA_SUFFIXES
    found = file_columns(path)
    column = id_column or next((name for name in ID_COLUMNS if name in found), None)
    column = column if column in found else None
    wanted = [name for name in (column, "line" if fasta else None) if name]
    start = 0
    for chunk in iter_raw_chunks(path, wanted) if wanted else ():
        count = len(chunk[wanted[0]])
        if row <= start + count:
            index = row - 1 - start
            return column, chunk[column][index] if column else "", chunk["line"][index] if fasta else None
        start += count
    return column, "", None


@dataclass
class FileSelection:
    """Which data rows of one file are read (`keep`), and from which columns."""

    path: Path
    sequence_column: str
    id_column: str | None  # None: ids are the row numbers
    label_columns: dict[str, str]  # label -> the file's column ("" where the file lacks it)
    keep: np.ndarray  # bool, one per data row
    skipped: int = 0  # selected rows left out as bad barcodes (`on_bad_sequence="skip"`)

    @property
    def columns(self) -> list[str]:
        names = [self.sequence_column, self.id_column, *self.label_columns.values()]
        return list(dict.fromkeys(name for name in names if name))


@dataclass
class Selection:
    """The barcodes of one or more files that `scan_records` selected, to be read again chunk by chunk."""

    files: list[FileSelection]
    label_columns: list[str]
    max_length: int
    repeated: int = 0  # rows left out as repeats of a barcode selected before (`scan_records(deduplicate=True)`)

    def __len__(self) -> int:
        return int(sum(file.keep.sum() for file in self.files))

    @property
    def skipped(self) -> int:
        """Selected rows left out as bad barcodes (`on_bad_sequence="skip"`), in all the files."""
        return sum(file.skipped for file in self.files)


def scan_records(
    paths: Sequence[str | os.PathLike], splits: Sequence[str] | None = None, sequence_column: str | None = None,
    id_column: str | None = None, label_columns: Sequence[str] = (), deduplicate: bool = False,
    max_length: int = MAX_NUCLEOTIDES, min_run: int = 1, on_bad_sequence: str = "error",
) -> Selection:
    """Read the files once, a chunk at a time, and decide which rows `read_records` would return: the same checks,
    errors and skip messages, file by file; with `deduplicate`, the first row of each distinct cleaned barcode over
    all the files. Memory: one byte per data row (and 8 per selected row with `deduplicate`)."""
    scans = [_scan_file(path, splits, sequence_column, id_column, label_columns, max_length, min_run, on_bad_sequence)
             for path in paths]  # fmt: skip
    files, repeated = [file for file, _ in scans], 0
    if deduplicate:
        _, first = np.unique(np.concatenate([hashes for _, hashes in scans]), return_index=True)
        repeated = sum(len(hashes) for _, hashes in scans) - len(first)
        unique = np.zeros(sum(int(file.keep.sum()) for file in files), dtype=bool)
        unique[first] = True
        for file, kept in zip(files, np.split(unique, np.cumsum([int(file.keep.sum()) for file in files])[:-1])):
            file.keep[file.keep] = kept
    present = [name for name in label_columns if any(file.label_columns[name] for file in files)]
    for file in files:
        file.label_columns = {name: file.label_columns[name] for name in present}
    return Selection(files, present, max_length, repeated)


def _scan_file(path, splits, sequence_column, id_column, label_columns, max_length, min_run, on_bad_sequence):
    """One file of `scan_records`: its `FileSelection` and the 64-bit hashes of its selected cleaned barcodes."""
    path = check_input_file(path, on_bad_sequence)
    found = file_columns(path)
    sequence_column = resolve_columns(path, found, sequence_column, [id_column] if id_column else [], splits)
    id_name = id_column or next((name for name in ID_COLUMNS if name in found), None)
    wanted = None if splits is None else set(splits)
    run = unambiguous_run(min_run)
    present, keeps, hashes = set(), [], []
    selected, invalid, unembeddable, first_invalid, first_unembeddable, row = 0, 0, 0, None, None, 0
    for chunk in iter_raw_chunks(path, [sequence_column] + (["split"] if wanted is not None else [])):
        keep, kept = np.zeros(len(chunk[sequence_column]), dtype=bool), []
        for index, sequence in enumerate(chunk[sequence_column]):
            row += 1
            if wanted is not None:
                present.add(chunk["split"][index])
                if chunk["split"][index] not in wanted:
                    continue
            selected += 1
            if _problem(sequence) is not None:
                invalid, first_invalid = invalid + 1, first_invalid or (row, sequence)
                continue
            cleaned = clean_barcode(sequence, max_length)
            if run.search(cleaned) is None:
                unembeddable, first_unembeddable = unembeddable + 1, first_unembeddable or (row, cleaned)
                continue
            keep[index] = True
            kept.append(cleaned)
        keeps.append(keep)
        hashes.append(_hash_sequences(kept)["_hash"])
    if wanted is not None:
        check_splits_present(path, list(splits), present)
    check_selection_not_empty(path, None if splits is None else list(splits), selected)
    if invalid and on_bad_sequence == "error":
        raise invalid_sequence_error(path, *first_invalid, sequence_column, invalid, selected, id_name)
    report_skipped_invalid(path, invalid, selected - invalid)
    if unembeddable and on_bad_sequence == "error":
        raise unembeddable_error(path, *first_unembeddable, min_run, unembeddable, selected - invalid, id_name)
    report_skipped_unembeddable(path, unembeddable, selected - invalid - unembeddable, min_run)
    labels = {name: name if name in found else "" for name in label_columns}
    selection = FileSelection(path, sequence_column, id_name, labels, np.concatenate(keeps), invalid + unembeddable)
    return selection, np.concatenate(hashes)


def iter_records(selection: Selection) -> Iterator[Records]:
    """The selected barcodes, file after file, in file order, as `Records` of at most `READ_CHUNK_ROWS`: ids,
    cleaned sequences, labels. Raises if a file no longer has the rows it had when scanned."""
    for file in selection.files:
        start = 0
        for chunk in iter_raw_chunks(file.path, file.columns):
            count = len(chunk[file.sequence_column])
            if start + count > len(file.keep):
                raise _changed(file, "more")
            index = np.flatnonzero(file.keep[start : start + count])
            ids = chunk[file.id_column] if file.id_column else [str(row) for row in range(start + 1, start + count + 1)]
            sequences = chunk[file.sequence_column]
            labels = {name: np.asarray([chunk[column][i] for i in index] if column else [""] * len(index), dtype=object)
                      .astype(str) for name, column in file.label_columns.items()}  # fmt: skip
            start += count
            yield Records([ids[i] for i in index], [clean_barcode(sequences[i], selection.max_length) for i in index],
                          labels)  # fmt: skip
        if start != len(file.keep):
            raise _changed(file, start)


def _changed(file: FileSelection, rows) -> UserError:
    return UserError(f"{file.path}: the file changed while it was read: {len(file.keep)} data rows when scanned, "
                     f"{rows} now")  # fmt: skip


def check_output_path(path: str | os.PathLike, suffixes: Sequence[str]) -> Path:
    """The output path, if its suffix is one of `suffixes` and its folder exists or can be made. Nothing is made
    here: the writers make the folder, so a run that fails on its input leaves nothing behind."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise UserError(f"{path}: the output must end in {' or '.join(suffixes)}")
    existing = next(folder for folder in path.absolute().parents if folder.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{path}: cannot write there ({existing} is not a folder this user can write to)")
    return path


def _with_folder(path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_embeddings(path: str | os.PathLike, ids: Sequence[str], vectors: np.ndarray) -> list[Path]:
    """Parquet (`id` column + `embedding`, a fixed-size float32 list per row) or `.npy` + `<stem>.ids.txt`."""
    return write_embedding_chunks(path, [(ids, vectors)], len(ids))


def embedding_array(vectors: np.ndarray):
    """(N, D) vectors as an Arrow fixed-size list of float32 (a parquet `embedding` column)."""
    import pyarrow as pa

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])


def write_embedding_chunks(path: str | os.PathLike, chunks: Iterable[tuple[Sequence[str], np.ndarray]],
                           rows: int) -> list[Path]:  # fmt: skip
    """`write_embeddings` of (ids, vectors) chunks holding `rows` rows in all, one chunk in memory at a time.
    Written under temporary names beside the output, renamed at the end: the output appears complete or not at all
    (for .npy, the ids file is renamed first, then the .npy)."""
    path = _with_folder(path)
    chunks = iter(chunks)
    first = next(chunks)
    chunks, dims = chain([first], chunks), np.shape(first[1])[1]
    is_npy = path.suffix.lower() == ".npy"
    targets = [path.with_suffix(".ids.txt"), path] if is_npy else [path]
    partial = [target.with_name(f".{target.name}.partial") for target in targets]
    try:
        if is_npy:
            _write_npy(partial, chunks, rows, dims)
        else:
            _write_parquet(partial[0], chunks, dims)
        for temporary, target in zip(partial, targets):
            os.replace(temporary, target)
    finally:
        for temporary in partial:
            temporary.unlink(missing_ok=True)
    return targets[::-1]


def _write_parquet(path: Path, chunks: Iterable[tuple[Sequence[str], np.ndarray]], dims: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("id", pa.string()), ("embedding", pa.list_(pa.float32(), dims))])
    with pq.ParquetWriter(path, schema, **PARQUET_OPTIONS) as writer:
        for ids, vectors in chunks:
            table = pa.table({"id": pa.array(list(ids), pa.string()), "embedding": embedding_array(vectors)})
            writer.write_table(table)


def _write_npy(paths: list[Path], chunks: Iterable[tuple[Sequence[str], np.ndarray]], rows: int, dims: int) -> None:
    """The ids file and the .npy (`np.save`'s bytes), written chunk by chunk."""
    written = 0
    with open(paths[0], "w") as id_file, open(paths[1], "wb") as vector_file:
        header = {"descr": "<f4", "fortran_order": False, "shape": (rows, dims)}
        np.lib.format.write_array_header_1_0(vector_file, header)
        for ids, vectors in chunks:
            id_file.write("".join(f"{identifier}\n" for identifier in ids))
            vector_file.write(np.ascontiguousarray(vectors, dtype="<f4").tobytes())
            written += len(ids)
    if written != rows:
        raise ValueError(f"{paths[1]}: {written} rows written, {rows} announced")


def read_embeddings(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """What `write_embeddings` wrote: (ids, (N, D) float32)."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        return path.with_suffix(".ids.txt").read_text().splitlines(), np.load(path)
    frame = pd.read_parquet(path)
    return list(frame["id"]), np.stack(frame["embedding"].to_numpy()).astype(np.float32)


def write_table(path: str | os.PathLike, frame: pd.DataFrame) -> Path:
    """A tab-separated table with a header, floats to 4 decimals."""
    path = _with_folder(path)
    frame.to_csv(path, sep="\t", index=False, float_format="%.4f")
    return path
