"""Reading DNA barcode files, and preparing them the same way everywhere (training, embedding, the protocol).

    dataset = load_barcodes("BIOSCAN_5M_Insect_Dataset_metadata.csv", splits=["pretrain", "other_heldout"],
                            columns=["species", "genus"])
    dataset[0]  # {"sequence": "AACATTATATTT...", "row": 1, "species": "", "genus": "Ablabesmyia"}

Formats: CSV / TSV (optionally .gz; the BIOSCAN-5M metadata CSV, BOLD TSV exports), parquet, FASTA (.fa, .fasta,
.fas, .fna, optionally .gz). Everything goes through `datasets` (Arrow files, memory-mapped and cached), so even the
5.15M-row BIOSCAN-5M file never sits in Python memory. Every value comes back as a string, and an empty string means
unknown: "" and "NA" stay what they are, never NaN.
"""

from __future__ import annotations

import dataclasses
import errno
import gzip
import hashlib
import logging
import os
import re
import stat
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from alphabet_barcodemae import MAX_NUCLEOTIDES, find_invalid_character

from barcodemae.errors import Option, UserError, UserFileNotFoundError

logger = logging.getLogger(__name__)

SEQUENCE_COLUMNS = ("dna_barcode", "nucleotides", "sequence")  # auto-detected, in this order
ID_COLUMNS = ("processid", "sampleid", "id", "record_id")  # the first one a file has names its records
FASTA_SUFFIXES = (".fa", ".fasta", ".fas", ".fna")
BAD_SEQUENCE_POLICIES = ("error", "skip")
_BATCH = 10_000
FIXTURE = Path(__file__).resolve().parent / "bioscan_fixture.csv.gz"  # the bundled real barcodes (package data)


def _check_bad_sequence_policy(on_bad_sequence: str) -> None:
    if on_bad_sequence not in BAD_SEQUENCE_POLICIES:
        raise UserError(f"on_bad_sequence must be one of {BAD_SEQUENCE_POLICIES}, got {on_bad_sequence!r}")


def _suffix(path: Path) -> str:
    """The format suffix, ignoring a trailing .gz: "data.tsv.gz" -> ".tsv"."""
    name = path.name.lower()
    name = name[:-3] if name.endswith(".gz") else name
    return Path(name).suffix


def clean_barcode(sequence: str | None, max_length: int | None = MAX_NUCLEOTIDES) -> str:
    """Upper-case, drop whitespace and alignment gaps, strip trailing N, keep the first `max_length` nucleotides (by
    default `MAX_NUCLEOTIDES`, BIOSCAN-5M's input, what every encoder reads; 0 or None: all of them)."""
    sequence = "".join((sequence or "").split()).replace("-", "").replace(".", "").upper().rstrip("N")
    return sequence[: max_length or None].rstrip("N")


def _open_text(path: Path):
    return gzip.open(path, "rt") if path.name.endswith(".gz") else open(path)


# The compressions a file can start with (magic bytes); only gzip is read, and only from a file named .gz.
COMPRESSIONS = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd",
                b"PK\x03\x04": "zip"}  # fmt: skip


def _compression(path: Path) -> str | None:
    """The compression `path`'s first bytes announce (`COMPRESSIONS`), None for none or an unreadable file."""
    try:
        with open(path, "rb") as handle:
            start = handle.read(6)
    except OSError:
        return None
    return next((name for magic, name in COMPRESSIONS.items() if start.startswith(magic)), None)


def _read_problem(path: Path, error: BaseException) -> str | None:
    """What is wrong with the file `path` where reading it raised `error` (or an error `error` was raised from:
    `datasets` wraps them), said for the user; None for an error that is not about the file."""
    import pyarrow as pa  # only here, on an error: reading a text file never needs it

    causes, seen = [], error
    while seen is not None and seen not in causes:
        causes.append(seen)
        seen = seen.__cause__ or seen.__context__
    for cause in causes:
        if isinstance(cause, EOFError):
            return "the compressed data ends too early: the file is truncated (an interrupted download or copy?)"
        if isinstance(cause, (gzip.BadGzipFile, zlib.error)):
            compression = _compression(path)
            if compression != "gzip":
                what = f"compressed with {compression}, not gzip" if compression else "not gzip-compressed"
                return f"{what}, though its name ends in .gz"
            return f"corrupt gzip data ({cause})"
        if isinstance(cause, UnicodeDecodeError):
            compression = _compression(path)
            if compression == "gzip":
                return "gzip-compressed, but its name does not end in .gz (rename it to end in .gz)"
            if compression is not None:
                return f"compressed with {compression}, which is not read: decompress it, or compress it with gzip (.gz)"
            return "not UTF-8 text: a binary file, or text in another encoding (save it as UTF-8)"
        if isinstance(cause, IsADirectoryError):
            return "a folder, not a file"
        if isinstance(cause, PermissionError):
            return "cannot be read: permission denied"
        if isinstance(cause, pd.errors.ParserError):
            return f"not a well-formed table: {cause}"
        if isinstance(cause, pa.ArrowException):
            return f"not a parquet file, or a corrupt or truncated one ({cause})"
        if isinstance(cause, OSError) and cause.errno in _READ_ERRNOS and cause.filename in (None, str(path)):
            return f"cannot be read: {cause.strerror or cause}"
    return None


# The errors of reading a file (not, say, of writing the `datasets` cache: ENOSPC is about another disk).
_READ_ERRNOS = {errno.EIO, errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENXIO, errno.ESTALE}


@contextmanager
def reading(path: Path, done: Callable[[], int] | None = None) -> Iterator[None]:
    """Where `path` is read: an error of its reading (truncated or corrupt compressed data, not text, not parquet, a
    malformed table, unreadable) becomes one `UserError` naming the file and, where `done()` says how many records
    were read whole, the last one. Any other error passes through."""
    try:
        yield
    except UserError:
        raise
    except Exception as error:
        problem = _read_problem(path, error)
        if problem is None:
            raise
        read = done() if done is not None else 0
        unit = "record" if _suffix(path) in FASTA_SUFFIXES else "data row"
        raise UserError(f"{path}: {problem}" + (f" (read up to {unit} {read})" if read else "")) from error


def _read_header(path: Path, delimiter: str) -> list[str]:
    """The column names; raises if the file has no data row."""
    try:
        head = pd.read_csv(path, sep=delimiter, nrows=1, quoting=3 if delimiter == "\t" else 0, dtype=str)
    except pd.errors.EmptyDataError:
        raise UserError(f"{path}: the file is empty (no header, no rows)") from None
    if len(head) == 0:
        raise UserError(f"{path}: no data rows (only a header: {', '.join(head.columns)}): the selection is empty")
    return list(head.columns)


def _sniff_delimiter(path: Path) -> str:
    if _suffix(path) in (".tsv", ".tab"):
        return "\t"
    if _suffix(path) == ".csv":
        return ","
    # .txt and anything else (BOLD exports are tab-separated .txt/.tsv): look at the header line.
    with _open_text(path) as handle:
        header = handle.readline()
    return "\t" if header.count("\t") > header.count(",") else ","


def _fasta_records(path: str, mtime: float, size: int, lines: bool = False):
    """(processid, sequence) per FASTA record; the id is the header's first word, up to a `|` (BOLD headers). With
    `lines`, `line` too: the header's line number (1-based)."""
    del mtime, size  # only part of the cache key: a changed file is read again
    header, chunks, start = None, [], 0

    def record():
        return {"processid": header, "sequence": "".join(chunks), **({"line": start} if lines else {})}

    with _open_text(Path(path)) as handle:
        for number, line in enumerate(handle, 1):
            line = line.strip()
            if line.startswith(">"):
                if header is not None:
                    yield record()
                words = line[1:].split()
                header, chunks, start = (words[0].split("|")[0] if words else ""), [], number
            elif line:
                chunks.append(line)
    if header is not None:
        yield record()


def check_fasta_start(path: Path) -> None:
    """Raise unless the first non-blank line of `path` is a FASTA header."""
    with _open_text(path) as handle:
        first = next((line for line in handle if line.strip()), "")
    if not first.strip():
        raise UserError(f"{path}: the file is empty (no FASTA record)")
    if not first.startswith(">"):
        raise UserError(f"{path}: not a FASTA file (the first line is not a '>' header): {first[:60]!r}")


def _raw_dataset(path: Path, cache_dir: str | None) -> tuple[datasets.Dataset, list[str]]:
    """The file as a Dataset of its own columns (all strings for text formats), and the list of its columns."""
    import datasets  # here, not at the top: reading through `barcodemae.files` never needs it

    suffix = _suffix(path)
    if suffix in FASTA_SUFFIXES:
        check_fasta_start(path)
        stat = path.stat()
        features = datasets.Features({"processid": datasets.Value("string"), "sequence": datasets.Value("string")})
        dataset = datasets.Dataset.from_generator(
            _fasta_records,
            features=features,
            gen_kwargs={"path": str(path), "mtime": stat.st_mtime, "size": stat.st_size},
            cache_dir=cache_dir,
        )
        return dataset, ["processid", "sequence"]
    if suffix == ".parquet":
        dataset = datasets.load_dataset("parquet", data_files=str(path), split="train", cache_dir=cache_dir)
        return dataset, list(dataset.column_names)
    delimiter = _sniff_delimiter(path)
    header = _read_header(path, delimiter)
    dataset = datasets.load_dataset(
        "csv",
        data_files=str(path),
        split="train",
        cache_dir=cache_dir,
        delimiter=delimiter,
        na_filter=False,  # "" and "NA" stay strings
        quoting=3 if delimiter == "\t" else 0,  # BOLD TSVs hold unbalanced quotes: no quoting in TSV
        features=datasets.Features({name: datasets.Value("string") for name in header}),
    )
    return dataset, header


def _standardise(batch: dict, indices: list[int], sequence_column: str, columns: list[str]) -> dict:
    out = {"sequence": ["" if value is None else str(value) for value in batch[sequence_column]]}
    out["row"] = [index + 1 for index in indices]
    for column in columns:
        out[column] = ["" if value is None else str(value) for value in batch[column]]
    return out


def check_input_file(path: str | os.PathLike, on_bad_sequence: str) -> Path:
    """`path` as a Path, if it is a non-empty file this user can read and `on_bad_sequence` a policy; else a
    `UserError` saying which it is not."""
    path = Path(path)
    try:
        status = path.stat()
    except FileNotFoundError:
        raise UserFileNotFoundError(f"{path}: no such file") from None
    except OSError as error:  # a folder on the way that this user cannot enter, a link loop, ...
        raise UserError(f"{path}: cannot be read: {error.strerror or error}") from None
    if stat.S_ISDIR(status.st_mode):
        raise UserError(f"{path}: a folder, not a file: give a barcode file (FASTA, CSV, TSV or parquet)")
    if not stat.S_ISREG(status.st_mode):
        raise UserError(f"{path}: not a regular file (a pipe or a device?): it is read twice, save it to a file")
    if not os.access(path, os.R_OK):
        raise UserError(f"{path}: cannot be read: permission denied")
    if status.st_size == 0:
        raise UserError(f"{path}: the file is empty")
    _check_bad_sequence_policy(on_bad_sequence)
    return path


def resolve_columns(path: Path, found: list[str], sequence_column: str | None, columns: list[str],
                    splits: list[str] | None) -> str:  # fmt: skip
    """The sequence column (`sequence_column`, else the first of `SEQUENCE_COLUMNS` in `found`); raises naming the
    file's columns if it or one of `columns` (or `split`, to select `splits`) is missing."""
    if sequence_column is None:
        sequence_column = next((name for name in SEQUENCE_COLUMNS if name in found), None)
        if sequence_column is None:
            raise UserError(
                f"{path}: no sequence column: looked for {', '.join(SEQUENCE_COLUMNS)}; the file has the columns "
                f"{', '.join(found)}", " (name it with ", Option("sequence_column"), ")"
            )
    elif sequence_column not in found:
        raise UserError(f"{path}: no column {sequence_column!r}; the file has the columns {', '.join(found)}")
    missing = [name for name in columns + (["split"] if splits is not None else []) if name not in found]
    if missing:
        reason = " (needed to select splits)" if missing == ["split"] and "split" not in columns else ""
        raise UserError(
            f"{path}: no column {', '.join(map(repr, missing))}{reason}; the file has the columns {', '.join(found)}"
        )
    return sequence_column


def load_barcodes(
    path: str | os.PathLike,
    splits: list[str] | tuple[str, ...] | str | None = None,
    sequence_column: str | None = None,
    columns: list[str] | tuple[str, ...] = (),
    on_bad_sequence: str = "error",
    cache_dir: str | None = None,
    optional_columns: list[str] | tuple[str, ...] = (),
) -> datasets.Dataset:
    """Read a barcode file into a Dataset with columns `sequence`, `row` and the requested metadata `columns`.

    Args:
        path: CSV/TSV (.gz ok), parquet or FASTA (.gz ok) file. FASTA gives a `processid` column (the header id).
        splits: keep only rows whose `split` column is one of these (None: all rows).
        sequence_column: the column holding the barcodes; default: the first of `dna_barcode`, `nucleotides`,
            `sequence` that the file has.
        columns: metadata columns to keep (e.g. `["split", "species", "genus"]`), as strings, "" = unknown.
        on_bad_sequence: "error" raises on the first sequence that is empty or holds a character that is not a
            nucleotide code, gap or whitespace (naming file, row, column and character); "skip" drops those rows
            and logs how many.
        cache_dir: `datasets` cache directory (default: the `datasets` default).
        optional_columns: metadata columns kept when the file has them (after `columns`), skipped otherwise.

    `row` is the 1-based data row of the file (header not counted; the record number for FASTA), for messages.
    Raises UserFileNotFoundError / UserError (subclasses of FileNotFoundError / ValueError) naming the file, what is
    missing and what is available.
    """
    path = check_input_file(path, on_bad_sequence)
    splits = [splits] if isinstance(splits, str) else (None if splits is None else list(splits))
    columns = list(dict.fromkeys(columns))
    with reading(path):
        dataset, found = _raw_dataset(path, cache_dir)
    sequence_column = resolve_columns(path, found, sequence_column, columns, splits)
    columns += [name for name in optional_columns if name in found and name not in columns]
    keep = columns + (["split"] if splits is not None and "split" not in columns else [])
    dataset = dataset.map(
        _standardise,
        batched=True,
        batch_size=_BATCH,
        with_indices=True,
        fn_kwargs={"sequence_column": sequence_column, "columns": keep},
        remove_columns=dataset.column_names,
        desc="Reading barcodes",
    )
    if splits is not None:
        check_splits_present(path, splits, dataset.unique("split"))
        dataset = dataset.filter(
            _in_splits,
            fn_kwargs={"splits": sorted(set(splits))},
            batched=True,
            batch_size=_BATCH,
            input_columns="split",
            desc="Selecting splits",
        )
        if "split" not in columns:
            dataset = dataset.remove_columns("split")
    check_selection_not_empty(path, splits, len(dataset))
    dataset, skipped = validate_sequences(dataset, path, on_bad_sequence, source_column=sequence_column)
    report_skipped_invalid(path, skipped, len(dataset))
    return dataset.select_columns(["sequence", "row", *columns])


def check_splits_present(path: str | os.PathLike, splits: list[str], present) -> None:
    """Raise if one of `splits` is not among the `present` split names of the file."""
    present = sorted(present)
    unknown = [name for name in splits if name not in present]
    if unknown:
        raise UserError(
            f"{path}: unknown split {', '.join(map(repr, unknown))}; the splits present are {', '.join(present)}"
        )


def check_selection_not_empty(path: str | os.PathLike, splits: list[str] | None, selected: int) -> None:
    if selected == 0:
        what = f"in the splits {', '.join(splits)}" if splits is not None else "at all"
        raise UserError(f"{path}: no barcodes {what}: the selection is empty")


def report_skipped_invalid(path: str | os.PathLike, skipped: int, remaining: int) -> None:
    """Log how many rows `on_bad_sequence="skip"` dropped as invalid; raise if none is left."""
    if skipped:
        logger.warning(f"{path}: skipped {skipped} rows with an empty or invalid sequence (on_bad_sequence='skip')")
    if remaining == 0:
        raise UserError(f"{path}: no valid barcodes left after skipping {skipped} bad ones: the selection is empty")


def _in_splits(values: list[str], splits: list[str]) -> list[bool]:
    return [value in splits for value in values]


def _problem(sequence: str | None) -> tuple[int, str] | None:
    """(position, character) of the first invalid character, (-1, "") for an empty sequence, None if fine."""
    if not sequence or not sequence.strip():
        return -1, ""
    return find_invalid_character(sequence)


def validate_sequences(
    dataset: datasets.Dataset, path: str | os.PathLike, on_bad_sequence: str = "error", source_column: str = "sequence"
) -> tuple[datasets.Dataset, int]:
    """Check every `sequence`: "error" raises on the first bad one; "skip" drops the bad ones.

    A bad sequence is empty or holds a character that is not a nucleotide, IUPAC code, gap or whitespace.
    Returns the (possibly filtered) dataset and the number of rows dropped. Never drops silently.
    """
    _check_bad_sequence_policy(on_bad_sequence)
    is_bad = lambda sequences: [_problem(sequence) is not None for sequence in sequences]  # noqa: E731
    is_good = lambda sequences: [_problem(sequence) is None for sequence in sequences]  # noqa: E731
    if on_bad_sequence == "skip":
        good = dataset.filter(is_good, batched=True, batch_size=_BATCH, input_columns="sequence",
                              desc="Skipping bad barcodes")  # fmt: skip
        return good, len(dataset) - len(good)
    bad = dataset.filter(is_bad, batched=True, batch_size=_BATCH, input_columns="sequence", desc="Checking barcodes")
    if len(bad) == 0:
        return dataset, 0
    first = bad[0]
    raise invalid_sequence_error(path, first["row"], first["sequence"], source_column, len(bad), len(dataset))


SKIP_BAD = Option("on_bad_sequence", "skip")  # what gets past a bad barcode


def invalid_sequence_error(path: str | os.PathLike, row: int, sequence: str, source_column: str, bad: int,
                           selected: int, id_column: str | None = None) -> UserError:  # fmt: skip
    """The error about the first bad sequence (`sequence`, at data row `row`, named by its `id_column`: `_where`),
    `bad` of the `selected` rows being bad."""
    position, character = _problem(sequence)
    what = (
        "an empty sequence"
        if position < 0
        else f"the character {character!r} at position {position + 1} (not a nucleotide ACGTU, IUPAC code "
        f"RYSWKMBDHVN, gap or whitespace) in {sequence[max(0, position - 10) : position + 10]!r}"
    )
    return UserError(
        f"{_where(path, row, id_column)}, column {source_column!r}: {what}. {bad} of {selected} selected "
        "rows have a bad sequence; fix the file", " or skip them with ", SKIP_BAD
    )


def _where(path: str | os.PathLike, row: int, id_column: str | None = None) -> str:
    """How a message names data row `row` (1-based, the header not counted) so that a user finds it: by its id
    (`id_column`, by default the first of `ID_COLUMNS` the file has) and, in a FASTA file, its header's line:
    "file: row 3 (processid 'ABC-1')", "file: record 3 (>ABC-1, line 7)"; "file: row 3" where there is no id."""
    from barcodemae.files import row_names  # files reads through this module: imported here, on an error only

    path = Path(path)
    column, name, line = row_names(path, row, id_column)
    if _suffix(path) in FASTA_SUFFIXES:
        names = ([f">{name}"] if name else []) + ([f"line {line}"] if line else [])
        return f"{path}: record {row}" + (f" ({', '.join(names)})" if names else "")
    return f"{path}: row {row}" + (f" ({column} {name!r})" if name else "")


def unambiguous_run(min_run: int) -> re.Pattern:
    """Matches `min_run` unambiguous nucleotides in a row (in a cleaned barcode)."""
    return re.compile(f"[ACGTU]{{{min_run}}}")


def _has_run(sequences: list[str], min_run: int, max_length: int) -> list[bool]:
    run = unambiguous_run(min_run)
    return [run.search(clean_barcode(sequence, max_length)) is not None for sequence in sequences]


def _lacks_run(sequences: list[str], min_run: int, max_length: int) -> list[bool]:
    return [not found for found in _has_run(sequences, min_run, max_length)]


def check_embeddable(
    dataset: datasets.Dataset, path: str | os.PathLike, min_run: int, on_bad_sequence: str = "error",
    max_length: int = MAX_NUCLEOTIDES,
) -> tuple[datasets.Dataset, int]:
    """Keep the barcodes an encoder can embed: cleaned (`clean_barcode`), they hold `min_run` unambiguous
    nucleotides (A, C, G, T or U) in a row. Shorter or more ambiguous ones (all N, ...) hold no k-mer to embed.

    "error" raises on the first other one, naming its row; "skip" drops them and logs how many. Returns the dataset
    and the number of rows dropped.
    """
    _check_bad_sequence_policy(on_bad_sequence)
    options = dict(batched=True, batch_size=_BATCH, input_columns="sequence",
                   fn_kwargs={"min_run": min_run, "max_length": max_length})  # fmt: skip
    good = dataset.filter(_has_run, desc="Checking barcode lengths", **options)
    dropped = len(dataset) - len(good)
    if dropped and on_bad_sequence == "error":
        first = dataset.filter(_lacks_run, desc="Finding short barcodes", **options)[0]
        cleaned = clean_barcode(first["sequence"], max_length)
        raise unembeddable_error(path, first["row"], cleaned, min_run, dropped, len(dataset))
    report_skipped_unembeddable(path, dropped, len(good), min_run)
    return good, dropped


def unembeddable_error(path: str | os.PathLike, row: int, cleaned: str, min_run: int, dropped: int,
                       selected: int, id_column: str | None = None) -> UserError:  # fmt: skip
    """The error about the first barcode (`cleaned`, at data row `row`, named by its `id_column`: `_where`) without
    `min_run` unambiguous nucleotides in a row."""
    shown = repr(cleaned) if len(cleaned) <= 30 else f"{cleaned[:30]!r}..."
    return UserError(
        f"{_where(path, row, id_column)}: the barcode {shown} ({len(cleaned)} nt once cleaned) has no {min_run} "
        f"unambiguous nucleotides (A, C, G, T) in a row: too short or too ambiguous to embed. {dropped} of "
        f"{selected} selected rows are like it; fix the file", " or skip them with ", SKIP_BAD
    )


def report_skipped_unembeddable(path: str | os.PathLike, dropped: int, remaining: int, min_run: int) -> None:
    """Log how many barcodes were dropped for want of `min_run` unambiguous nucleotides; raise if none is left."""
    if dropped:
        logger.warning(f"{path}: skipped {dropped} barcodes without {min_run} unambiguous nucleotides in a row")
    if remaining == 0:
        raise UserError(f"{path}: no barcode left after skipping {dropped} too short or ambiguous ones")


def _hash_sequences(sequences: list[str]) -> dict:
    digests = [hashlib.blake2b(sequence.encode(), digest_size=8).digest() for sequence in sequences]
    return {"_hash": np.frombuffer(b"".join(digests), dtype=np.int64)}


def deduplicate(dataset: datasets.Dataset, column: str = "sequence") -> datasets.Dataset:
    """Keep the first row of each distinct value of `column` (in file order).

    Compares 64-bit hashes (blake2b) so memory is 8 bytes per row, not one Python string per unique barcode; the
    chance that two distinct barcodes collide among 5 million is below 1e-6.
    """
    hashes = dataset.map(
        _hash_sequences, batched=True, batch_size=_BATCH, input_columns=column,
        remove_columns=dataset.column_names, desc="Hashing barcodes",
    )
    _, first = np.unique(hashes.with_format("numpy")["_hash"], return_index=True)
    if len(first) == len(dataset):
        return dataset
    return dataset.select(np.sort(first))


def _clean_batch(sequences: list[str], max_length: int) -> dict:
    return {"sequence": [clean_barcode(sequence, max_length) for sequence in sequences]}


def _at_least(sequences: list[str], min_length: int) -> list[bool]:
    return [len(sequence) >= min_length for sequence in sequences]


def prepare_barcodes(
    dataset: datasets.Dataset, max_length: int = MAX_NUCLEOTIDES, min_length: int = 1
) -> tuple[datasets.Dataset, int]:
    """The one preparation of barcodes: clean (`clean_barcode`), drop those shorter than `min_length` nt, then keep
    the first row of each distinct cleaned barcode. Returns the dataset and the number of rows dropped as too short.
    """
    rows = len(dataset)
    dataset = dataset.map(_clean_batch, batched=True, batch_size=_BATCH, input_columns="sequence",
                          fn_kwargs={"max_length": max_length}, desc="Cleaning barcodes")  # fmt: skip
    dataset = dataset.filter(_at_least, batched=True, batch_size=_BATCH, input_columns="sequence",
                             fn_kwargs={"min_length": min_length}, desc="Dropping short barcodes")  # fmt: skip
    return deduplicate(dataset), rows - len(dataset)


LABEL_COLUMNS = ("order", "family", "genus", "species", "dna_bin")  # coarse to fine; "" = unknown


@dataclasses.dataclass
class SplitData:
    """One split, prepared (`prepare_barcodes`): sequences and their labels (empty string = unknown)."""

    name: str
    sequences: list[str]
    labels: dict[str, np.ndarray]
    rows_before_dedup: int

    def __len__(self) -> int:
        return len(self.sequences)


def load_splits(
    data_file: str | os.PathLike, split_names: list[str] | tuple[str, ...], max_length: int = MAX_NUCLEOTIDES,
    on_bad_sequence: str = "error", min_run: int | None = None,
) -> dict[str, SplitData]:
    """Read the splits of a BIOSCAN-5M-layout file in one pass and prepare each split (`prepare_barcodes`).

    `on_bad_sequence` as in `load_barcodes`; with `min_run`, barcodes without that many unambiguous nucleotides in a
    row are bad too (`check_embeddable`).
    """
    dataset = load_barcodes(data_file, splits=list(split_names), columns=(*LABEL_COLUMNS, "split"),
                            on_bad_sequence=on_bad_sequence)  # fmt: skip
    if min_run is not None:
        dataset, _ = check_embeddable(dataset, data_file, min_run, on_bad_sequence, max_length)
    split_column = np.asarray(dataset["split"])
    out = {}
    for name in split_names:
        subset = dataset.select(np.flatnonzero(split_column == name))
        prepared, _ = prepare_barcodes(subset, max_length)
        columns = prepared.to_dict()
        labels = {column: np.asarray(columns[column], dtype=object).astype(str) for column in LABEL_COLUMNS}
        out[name] = SplitData(name, columns["sequence"], labels, len(subset))
    return out
