"""Embedding files of any size on one process or many (`torchrun`, `accelerate launch`, several nodes), in shards
that survive an interruption.

    scan = lambda: scan_records([path], ...)                       # barcodemae.files: which rows, checked
    shards = embed_to_shards(scan, encoder, Path("out.parquet.parts"))     # every process calls it; rank 0 scans
    for records, vectors in shards.chunks():                       # rank 0 (or any): input order, a shard at a time
        ...
    write_embedding_chunks("out.parquet", shards.id_chunks(), shards.rows)   # one file, renamed into place

Shard k holds the selected barcodes k*S .. (k+1)*S - 1 in input order (S = `shard_size`), whatever the number of
processes: process r of W embeds the shards k with k % W == r, and the output, the shards concatenated in order, is
the input order. Each shard is written to `part-0000k.parquet` under a temporary name and renamed; its metadata
holds a digest of its barcodes and of the encoder's settings, so a rerun (with any number of processes) keeps the
parts that match and embeds only the others. The input is read a chunk at a time (`iter_records`), so memory is a
shard's vectors, not the file's.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from barcodemae.errors import UserError
from barcodemae.files import PARQUET_OPTIONS, Records, Selection, embedding_array, iter_records

# Barcodes per shard: the unit of work of a process and of resuming. Peak memory grows by 90-110 KB per barcode of
# a shard at 4,096 dims (kmer:6: vectors, k-mer counting, parquet buffers; BENCHMARKS.md, "Embedding large files").
DEFAULT_SHARD_SIZE = 2_000
PART_METADATA = b"barcodemae_shard"  # parquet schema metadata key of a part: {"key", "digest", "rows"}
FORMAT_VERSION = 1  # of the parts; a change makes earlier parts be embedded again


class Processes:
    """This process's rank among the `WORLD_SIZE` processes that torchrun or accelerate launch started, and the
    two collectives the job needs, over gloo (CPU tensors, also on GPU nodes). One process: no process group."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.group = None
        if self.world > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                dist.init_process_group("gloo")
            elif dist.get_backend() != "gloo":
                self.group = dist.new_group(backend="gloo")

    def broadcast(self, value):
        """Rank 0's `value`, on every rank."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0, group=self.group)
        return box[0]

    def on_first(self, work):
        """`work()` run by rank 0 (e.g. reading the input), its result on every rank. A `UserError` there is raised
        on rank 0; the other ranks exit quietly with status 0, leaving rank 0's status 2 and its `error:` line to the
        launcher (exiting first with an error would get it killed unheard)."""
        result = None
        if self.rank == 0:
            try:
                result = work()
            except UserError as error:
                self.broadcast(str(error))
                raise
        result = self.broadcast(result)
        if isinstance(result, str):
            raise SystemExit(0)
        return result

    def close(self) -> None:
        """Wait for every process, then end the process group (before interpreter exit: gloo's threads must not
        outlive it, or a process aborts at exit)."""
        if self.world == 1:
            return
        import torch.distributed as dist

        if dist.is_initialized():
            dist.barrier(group=self.group)
            dist.destroy_process_group()

    def total(self, counts: list[int]) -> list[int]:
        """`counts` summed over the processes (also a barrier)."""
        if self.world == 1:
            return counts
        import torch
        import torch.distributed as dist

        tensor = torch.tensor(counts, dtype=torch.int64)
        dist.all_reduce(tensor, group=self.group)
        return tensor.tolist()


def process_device(device: str) -> str:
    """`auto`: this process's GPU (LOCAL_RANK, as torchrun and accelerate number them) when there is one, else the
    CPU; any other device as given."""
    import torch

    if device != "auto":
        return device
    if not torch.cuda.is_available():
        return "cpu"
    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0')) % torch.cuda.device_count()}"


@dataclass
class Shards:
    """Finished parts in `folder`: `count` shards of `rows` barcodes in all, in input order."""

    folder: Path
    count: int
    rows: int
    processes: Processes
    embedded: int = 0  # rows embedded by this run (the others were kept from an earlier one)

    def part(self, index: int) -> Path:
        return self.folder / f"part-{index:05d}.parquet"

    @property
    def dims(self) -> int:
        import pyarrow.parquet as pq

        return pq.read_schema(self.part(0)).field("embedding").type.list_size

    def chunks(self) -> Iterator[tuple[Records, np.ndarray]]:
        """(records, (n, D) float32 vectors) per shard, in order; records.sequences is empty unless the parts keep
        the sequences (`embed_to_shards(keep_sequences=True)`)."""
        import pyarrow.parquet as pq

        for index in range(self.count):
            table = pq.read_table(self.part(index))
            embedding = table["embedding"].combine_chunks()
            vectors = embedding.values.to_numpy().reshape(len(table), embedding.type.list_size)
            labels = {name: np.asarray(table[name].to_pylist(), dtype=object).astype(str)
                      for name in table.column_names if name not in ("id", "sequence", "embedding")}  # fmt: skip
            sequences = table["sequence"].to_pylist() if "sequence" in table.column_names else []
            yield Records(table["id"].to_pylist(), sequences, labels), vectors

    def id_chunks(self) -> Iterator[tuple[list[str], np.ndarray]]:
        """(ids, vectors) per shard, in order: what `write_embedding_chunks` takes."""
        return ((records.ids, vectors) for records, vectors in self.chunks())

    def remove(self) -> None:
        shutil.rmtree(self.folder)


def parts_folder(output: str | os.PathLike) -> Path:
    """Where the parts of `output` go: OUTPUT.parts beside it."""
    output = Path(output)
    return output.with_name(output.name + ".parts")


def embed_to_shards(scan, encoder, folder: str | os.PathLike, shard_size: int = DEFAULT_SHARD_SIZE,
                    keep_sequences: bool = False, progress: bool = True) -> Shards:  # fmt: skip
    """Embed the barcodes that `scan()` selects into parts in `folder`; every process of the run calls this.

    `scan`: a function returning a `barcodemae.files.Selection` (e.g. `lambda: scan_records(paths, ...)`): only
    rank 0 calls it (`Processes.on_first`), so a bad file is reported once, before anything is written. Parts of an earlier run that
    match are kept; `keep_sequences` stores the cleaned barcodes in the parts too (labels always are). A progress
    bar (barcodes/s, ETA) on rank 0 unless `progress` is False. Returns when every part is written, on every rank.
    """
    processes = Processes()
    folder = Path(folder)
    plan = processes.on_first(lambda: _prepare(scan(), folder))
    shards = Shards(folder, math.ceil(len(plan) / shard_size), len(plan), processes)
    bar = _progress_bar(len(plan), encoder.name, progress and processes.rank == 0)
    try:
        _embed_parts(plan, shards, encoder, _settings_key(encoder, plan, keep_sequences), shard_size, keep_sequences,
                     bar)  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    return shards


def _embed_parts(selection: Selection, shards: Shards, encoder, key: str, shard_size: int, keep_sequences: bool,
                 bar) -> None:  # fmt: skip
    """This process's shards (k % W == rank); after each round of W shards the processes add up what they did, for
    the progress bar and `shards.embedded`."""
    rank, world = shards.processes.rank, shards.processes.world
    done = {False: 0, True: 0}  # rows embedded now / kept from an earlier run, since the last round
    for index, records in enumerate(_shard_records(selection, shard_size)):
        if index % world == rank:
            done[_embed_shard(shards.part(index), records, encoder, key, keep_sequences, rank)] += len(records)
        if index % world == world - 1 or index == shards.count - 1:
            embedded, kept = shards.processes.total([done[False], done[True]])
            done = {False: 0, True: 0}
            shards.embedded += embedded
            if bar is not None:
                bar.total -= kept
                bar.update(embedded)


def _prepare(selection: Selection, folder: Path) -> Selection:
    """Make the parts folder (once the input is known to be good) and drop what a killed run left half-written."""
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in folder.glob("*.partial"):
        leftover.unlink()
    return selection


def _settings_key(encoder, selection: Selection, keep_sequences: bool) -> str:
    """What besides its barcodes decides a part's content."""
    settings = {"format": FORMAT_VERSION, "encoder": encoder.cache_key(), "max_length": selection.max_length,
                "labels": selection.label_columns, "sequences": keep_sequences}  # fmt: skip
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def _shard_records(selection: Selection, shard_size: int) -> Iterator[Records]:
    """The selected records, `shard_size` at a time (the last shard: the rest)."""
    pending = Records.joined([], selection.label_columns)
    for chunk in iter_records(selection):
        pending = Records.joined([pending, chunk], selection.label_columns)
        while len(pending) >= shard_size:
            yield _head(pending, shard_size)
            pending = _head(pending, len(pending), shard_size)
    if len(pending):
        yield pending


def _head(records: Records, stop: int, start: int = 0) -> Records:
    return Records(records.ids[start:stop], records.sequences[start:stop],
                   {name: values[start:stop] for name, values in records.labels.items()})  # fmt: skip


def _digest(records: Records) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for values in (records.ids, records.sequences, *(records.labels[name] for name in sorted(records.labels))):
        digest.update("\0".join(values).encode())
        digest.update(b"\1")
    return digest.hexdigest()


def _part_metadata(path: Path) -> dict | None:
    """The metadata of a finished part, None if there is none (or it is unreadable)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return json.loads(pq.read_schema(path).metadata[PART_METADATA])
    except (OSError, pa.ArrowException, KeyError, TypeError, ValueError):
        return None


def _embed_shard(path: Path, records: Records, encoder, key: str, keep_sequences: bool, rank: int) -> bool:
    """Embed one shard into `path` unless a matching part is there; whether it was kept."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    metadata = {"key": key, "digest": _digest(records), "rows": len(records)}
    if _part_metadata(path) == metadata:
        return True
    columns = {"id": pa.array(records.ids, pa.string())}
    if keep_sequences:
        columns["sequence"] = pa.array(records.sequences, pa.string())
    columns.update((name, pa.array(values.tolist(), pa.string())) for name, values in records.labels.items())
    columns["embedding"] = embedding_array(encoder.embed(records.sequences))
    table = pa.table(columns).replace_schema_metadata({PART_METADATA: json.dumps(metadata)})
    partial = path.with_name(f"{path.name}.{rank}.partial")
    pq.write_table(table, partial, **PARQUET_OPTIONS)
    os.replace(partial, path)
    return False


def _progress_bar(total: int, name: str, show: bool):
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"embedding ({name})", unit=" barcodes", unit_scale=True, smoothing=0.1)
