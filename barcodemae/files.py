"""Barcode records in, result files out: the file side of the commands."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from barcodemae.data import MAX_NUCLEOTIDES, check_embeddable, clean_barcode, load_barcodes, prepare_barcodes
from barcodemae.errors import UserError

ID_COLUMNS = ("processid", "sampleid", "id", "record_id")  # the first one a file has names its records
EMBEDDING_SUFFIXES = (".parquet", ".npy")


@dataclass
class Records:
    """Barcodes of a file: their ids, cleaned sequences, and the requested labels ("" = unknown)."""

    ids: list[str]
    sequences: list[str]
    labels: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.sequences)


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
    """
    dataset = load_barcodes(path, splits=splits, sequence_column=sequence_column,
                            columns=[id_column] if id_column else [], on_bad_sequence=on_bad_sequence,
                            optional_columns=[*ID_COLUMNS, *label_columns])  # fmt: skip
    dataset, _ = check_embeddable(dataset, path, min_run, on_bad_sequence, max_length)
    if deduplicate:
        dataset, _ = prepare_barcodes(dataset, max_length)
    columns = dataset.to_dict()
    id_name = id_column or next((name for name in ID_COLUMNS if name in columns), None)
    ids = columns[id_name] if id_name else [str(row) for row in columns["row"]]
    sequences = columns["sequence"] if deduplicate else [clean_barcode(s, max_length) for s in columns["sequence"]]
    labels = {name: np.asarray(columns[name], dtype=object).astype(str) for name in label_columns if name in columns}
    return Records(ids, sequences, labels)


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
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = _with_folder(path)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if path.suffix.lower() == ".npy":
        np.save(path, vectors)
        id_path = path.with_suffix(".ids.txt")
        id_path.write_text("".join(f"{identifier}\n" for identifier in ids))
        return [path, id_path]
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])
    pq.write_table(pa.table({"id": pa.array(list(ids), pa.string()), "embedding": embedding}), path)
    return [path]


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
