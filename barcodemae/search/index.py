"""The lifecycle of a saved reference library for `identify`: built once (`barcodemae index build`), grown (`index
add`), searched by every later call (`identify --index DIR`), memory-mapped (`ReferenceIndex`).

The folder (no pickle anywhere; its files, manifest and trust checks: `store`):
- `vectors.G.safetensors`: `vectors` (N, D), the search vectors (`projection.wants_projection`, `--search`): the
  encoder's own vectors (float32; exact search, as `identify` searched before the index) for references under
  `COMPACT_MIN_REFERENCES` barcodes or encoders of at most `COMPACT_DIMS` dimensions, else their projection onto
  `COMPACT_DIMS` principal directions of a sample of the reference (uncentred SVD, unit rows, float16: 512 bytes a
  barcode; `projection` (D_encoder, D) float32 is stored too; `references.CompactReference` searches them);
- `relatives.G.safetensors` (compact searches only): the same for the relatives embedding of `identify`
  (`--relatives_model`, by default amino-acid 3-mers) and its own projection;
- `sequences.G.safetensors`: the barcodes 4 bits a nucleotide (`packing.ALPHABET`: every IUPAC code), `offsets` (N + 1,
  bytes), `lengths`, and an 8-byte hash of each barcode (`index add` keeps a barcode once);
- `records.G.parquet`: id and the labels per rank (dictionary-encoded: in memory a pointer per label);
- `settings.G.json`: the encoder (name and `cache_key`: a hash of the weights, or kmer:K) and the relatives
  encoder, the search vectors' kind, the identity measure, quantile and per-rank thresholds calibrated on the whole reference;
- `manifest.json`, written last (atomically): the generation G and each file's size and SHA-256. A folder without
  it, or whose files do not match it (truncated, corrupted), is refused with one error.

`build` writes a new folder beside the target and renames it into place (with the permissions the umask gives);
`add` takes the folder's lock (`store.writing`), writes generation G + 1 next to G, replaces the manifest (the
switch), then deletes generation G: an interrupted write leaves the previous index whole.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from barcodemae.embedding_job import DEFAULT_SHARD_SIZE
from barcodemae.errors import UserError
from barcodemae.identify import DEFAULT_QUANTILE, calibrate_thresholds
from barcodemae.search.packing import PackedSequences, barcode_hashes, pack_sequences
from barcodemae.search.projection import SearchEncoder, embed_for_search, fit_search_space
from barcodemae.search.references import RESCORE_FACTOR, CompactReference, EmbeddedReference, Reference
from barcodemae.search.store import (
    FORMAT, FORMAT_VERSION, PARTS, checked_files, map_tensors, part_file_name, read_manifest, write_data,
    write_generation, write_manifest, write_settings, writing,
)


# ---- the loaded index ----


def _encoder_settings(encoder) -> dict:
    """What identifies the encoder's vectors (its precision aside: bf16 and fp32 runs of one model agree), and a Hub
    model's commit (`revision`: what `store.index_model` loads it at again)."""
    settings = {"name": encoder.name, "key": _without_precision(encoder.cache_key())}
    revision = getattr(encoder, "revision", None)
    return settings | {"revision": revision} if revision else settings


def _without_precision(key: dict) -> dict:
    """A `cache_key` without its precision, nor its parts' (a `ConcatenatedEncoder`'s)."""
    return {name: [_without_precision(part) for part in value] if name == "parts" else value
            for name, value in key.items() if name != "precision"}  # fmt: skip


class ReferenceIndex:
    """A loaded index folder: its memory-mapped search vectors and barcodes, labels, ids (pyarrow), `settings` and
    `projection` (None: exact search on the encoder's vectors); `reference(encoder)` searches it."""

    def __init__(self, folder: Path, manifest: dict):
        import pyarrow.parquet as pq

        self.folder, self.manifest = folder, manifest
        files = checked_files(folder, manifest)
        self.settings = json.loads(files["settings"].read_text())
        arrays, packed = map_tensors(files["vectors"]), map_tensors(files["sequences"])
        self.vectors, self.projection, self.hashes = arrays["vectors"], arrays.get("projection"), packed["hashes"]
        relatives = map_tensors(files["relatives"]) if "relatives" in files else {}
        self.relatives_vectors, self.relatives_projection = relatives.get("vectors"), relatives.get("projection")
        table = pq.read_table(files["records"], read_dictionary=list(self.settings["ranks"]))
        self.ids = table.column("id").combine_chunks()
        self.labels = {rank: _decoded(table.column(rank).combine_chunks()) for rank in self.settings["ranks"]}
        self.sequences = PackedSequences(packed["packed"], packed["offsets"], packed["lengths"])

    def __len__(self) -> int:
        return len(self.hashes)

    def check_encoder(self, encoder) -> None:
        """Refuse an encoder other than the one the index was built with."""
        found, wanted = _encoder_settings(encoder), self.settings["encoder"]
        if found["key"] == wanted["key"]:
            return
        if wanted["key"].get("kind") == "model" and "fingerprint_version" not in wanted["key"]:
            raise UserError(f"{self.folder}: the index was built by an earlier barcodemae, whose model fingerprint "
                            "changed with the path the model was loaded from; rebuild it (barcodemae index build)")
        raise UserError(f"{self.folder}: the index was built with model {wanted['name']!r} "
                        f"({_describe(wanted['key'])}), not {found['name']!r} ({_describe(found['key'])}); give "
                        f"--model {wanted['name']} or build an index with this model")  # fmt: skip

    def relatives_reference(self, encoder, reference: Reference, progress: bool = False) -> Reference | None:
        """`reference` (`self.reference(...)`) searched on `encoder`'s vectors, identify's relatives embedding: the
        stored ones where the index holds them (compact); else, for an exact-search index, its barcodes embedded at
        the first search (`EmbeddedReference`); None for a compact index without them."""
        stored = self.settings.get("relatives")
        if stored is not None and stored["key"] == _encoder_settings(encoder)["key"]:
            return CompactReference(self.relatives_vectors, reference.labels, reference.thresholds,
                                    reference.sequences, reference.measure, self.relatives_projection, encoder,
                                    self.sequences)  # fmt: skip
        if self.projection is not None:
            return None
        return EmbeddedReference(reference, encoder, self.sequences, progress)

    def reference_ids(self, indices: np.ndarray) -> list[str]:
        return self.ids.take(np.asarray(indices)).to_pylist()

    def reference(self, encoder, measure: str | None = None, quantile: float | None = None,
                  rank_by: str | None = None) -> Reference:  # fmt: skip
        """The reference to search with `encoder`'s query vectors, ranked by `rank_by` / `measure` with thresholds
        at `quantile` (None: the index's own): the stored thresholds when the index was calibrated so, else
        recalibrated now (`identify.calibrate_thresholds`)."""
        self.check_encoder(encoder)
        search = self.settings["search"]
        wanted = (measure or search["measure"], quantile or search["quantile"], rank_by or search["rank_by"])
        thresholds = search["thresholds"] if wanted == (search["measure"], search["quantile"], search["rank_by"]) else None
        return _reference(self.vectors, self.labels, self.sequences, *wanted, self.projection, encoder, thresholds)

    def describe(self) -> str:
        search, encoder = self.settings["search"], self.settings["encoder"]
        relatives = self.settings.get("relatives")
        relatives = "none" if relatives is None else (
            f"{relatives['name']} ({_describe(relatives['key'])}), {_search_kind(self.relatives_vectors, self.relatives_projection)}")
        sizes = {part: entry["bytes"] for part, entry in self.manifest["files"].items()}
        labelled = ", ".join(f"{rank} {int((labels != '').sum())}" for rank, labels in self.labels.items())
        thresholds = ", ".join(f"{rank} {value:.4f}" for rank, value in search["thresholds"].items())
        return "\n".join([
            f"index {self.folder} (generation {self.manifest['generation']}, format {FORMAT} {FORMAT_VERSION})",
            f"barcodes: {len(self)}; labelled: {labelled}",
            f"model: {encoder['name']} ({_describe(encoder['key'])})",
            f"search vectors: {_search_kind(self.vectors, self.projection)}",
            f"relatives (identify --relatives_model): {relatives}",
            f"ranking: {search['rank_by']}, {search['measure']} identity; thresholds (quantile {search['quantile']:g}):"
            f" {thresholds}",
            "files: " + ", ".join(f"{part} {size / 2**20:.1f} MiB" for part, size in sizes.items())
            + f" ({sum(sizes.values()) / max(len(self), 1):.0f} bytes a barcode)",
        ])  # fmt: skip


def _search_kind(vectors: np.ndarray, projection: np.ndarray | None) -> str:
    if projection is None:
        return f"exact: the encoder's {vectors.shape[1]} dims, float32"
    return f"compact: {vectors.shape[1]}-dim projection, float16, exact cosine of {RESCORE_FACTOR}x the candidates"


def _describe(key: dict) -> str:
    if "parts" in key:  # a `ConcatenatedEncoder`
        return " + ".join(map(_describe, key["parts"]))
    return ", ".join(f"{name} {str(value)[:16]}" for name, value in key.items() if name != "kind")


def _decoded(array) -> np.ndarray:
    """A dictionary-encoded array of labels as an object array sharing one string per distinct label."""
    vocabulary = np.array(array.dictionary.to_pylist(), dtype=object)
    return vocabulary[array.indices.to_numpy(zero_copy_only=False)] if len(array) else np.empty(0, dtype=object)


def _reference(vectors, labels, sequences, measure: str, quantile: float, rank_by: str, projection, encoder,
               thresholds: dict | None = None) -> Reference:  # fmt: skip
    """The `Reference` (a `CompactReference` with a projection) of these search vectors, with `thresholds`, else
    calibrated on itself (`identify.calibrate_thresholds`)."""
    ranked = sequences if rank_by == "identity" else None
    if thresholds is None:
        thresholds = calibrate_thresholds(vectors, labels, quantile, sequences=ranked, measure=measure)
    if projection is None:
        return Reference(vectors, labels, thresholds, ranked, measure)
    return CompactReference(vectors, labels, thresholds, ranked, measure, projection, encoder, sequences)


def load_index(folder: str | os.PathLike, verify: str = "changed") -> ReferenceIndex:
    """A checked (`read_manifest`), memory-mapped index folder."""
    return ReferenceIndex(Path(folder), read_manifest(folder, verify))


# ---- build and add: the folder's generations ----


def _records(ids, labels: dict[str, np.ndarray]) -> dict:
    """The columns of a records file: `ids` (an Arrow string array) and the labels per rank, dictionary-encoded."""
    import pyarrow as pa

    encoded = {rank: pa.array(list(values), pa.string()).dictionary_encode() for rank, values in labels.items()}
    return {"id": ids} | encoded


def _search_settings(reference: Reference, quantile: float, rank_by: str) -> dict:
    return {"rank_by": rank_by, "measure": reference.measure, "quantile": quantile, "thresholds": reference.thresholds}


def build_index(
    folder: str | os.PathLike, encoder, scan, measure: str, quantile: float = DEFAULT_QUANTILE,
    rank_by: str = "identity", progress: bool = False, sources: Sequence[str] = (), search: str = "auto",
    shard_size: int = DEFAULT_SHARD_SIZE, relatives=None,
) -> ReferenceIndex | None:
    """Embed, calibrate and write the barcodes that `scan()` selects (a `barcodemae.files.Selection`, deduplicated,
    with the labels of `RANKS`; only rank 0 calls it) as a new index folder, which must not exist yet; `search`: see
    `wants_projection`. Streamed: the vectors go through `embed_to_shards` (every process of a torchrun / accelerate
    launch calls this; the parts in FOLDER.parts survive an interruption and a rerun keeps them), then rank 0 writes
    the folder a shard at a time and renames it into place. `relatives`: the encoder of identify's relatives
    embedding (None: none), stored where `search` makes it compact (embedded by rank 0 as it writes); exact-search
    relatives are not stored (aa:3's 8,000 float16 dims would add 16 KB a barcode, as much as the 6-mer vectors):
    `identify` embeds them again. Returns the index on rank 0, None on the others."""
    from barcodemae.embedding_job import Processes, embed_to_shards, parts_folder

    folder = Path(folder)
    processes = Processes()
    selection, projection, relatives_projection = processes.on_first(
        lambda: _planned(folder, scan(), encoder, search, relatives))
    parts = parts_folder(folder)
    shards = embed_to_shards(lambda: selection, SearchEncoder(encoder, projection), parts, shard_size, True, progress)
    if processes.rank != 0:
        processes.close()  # waits for the first process to write the folder
        return None
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent))
    try:
        second = None if relatives_projection is None else SearchEncoder(relatives, relatives_projection)
        parts, reference = _gathered(temporary, shards, projection, encoder, measure, quantile, rank_by, progress,
                                     second)  # fmt: skip
        settings = {"encoder": _encoder_settings(encoder), "ranks": selection.label_columns,
                    "search": _search_settings(reference, quantile, rank_by), "sources": list(sources)}  # fmt: skip
        if second is not None:
            settings["relatives"] = _encoder_settings(relatives)
        write_manifest(temporary, 1, write_generation(temporary, 1, parts, settings))
        for scratch in temporary.glob("*.scratch"):
            scratch.unlink()
        temporary.chmod(0o777 & ~_umask())  # mkdtemp's folder is the owner's only; an index is shared like files
        os.rename(temporary, folder)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    shards.remove()
    processes.close()
    return load_index(folder, verify="none")


def _umask() -> int:
    """The process's umask (read by setting it, then setting it back)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def _planned(folder: Path, selection, encoder, search: str, relatives):
    """(selection, projection, relatives' projection) of a build, once its target and barcodes are known to be good."""
    if folder.exists():
        raise UserError(f"{folder}: already exists; give a new folder (or grow this index with barcodemae index add)")
    if not len(selection):
        raise UserError("no reference barcodes to index")
    projections = [fit_search_space(model, lambda rows: _sequences_at(selection, rows), len(selection), search)
                   if model is not None else None for model in (encoder, relatives)]  # fmt: skip
    return selection, *projections


def _sequences_at(selection, rows: np.ndarray) -> list[str]:
    """The selected barcodes at positions `rows` (in order), read a chunk at a time."""
    from barcodemae.files import iter_records

    found, start = [], 0
    for records in iter_records(selection):
        wanted = rows[(rows >= start) & (rows < start + len(records))] - start
        found += [records.sequences[row] for row in wanted]
        start += len(records)
    return found


def _scratch_vectors(path: Path, rows: int, dims: int, projection: np.ndarray | None) -> np.ndarray:
    """A memory-mapped (rows, dims) scratch file for search vectors (float16 where projected, `project`)."""
    return np.lib.format.open_memmap(path, "w+", np.float32 if projection is None else np.float16, (rows, dims))


def _gathered(folder: Path, shards, projection, encoder, measure: str, quantile: float, rank_by: str,
              progress: bool, relatives: SearchEncoder | None = None) -> tuple[dict, Reference]:  # fmt: skip
    """The parts of an index's first generation (`write_generation`) from the `shards`, read one at a time into
    memory-mapped scratch files in `folder` (vectors, the search vectors of `relatives`, a projected encoder, and
    packed barcodes), and the reference calibrated on them."""
    import pyarrow as pa
    from tqdm.auto import tqdm

    vectors = _scratch_vectors(folder / "vectors.scratch", shards.rows, shards.dims, projection)
    second = None if relatives is None else _scratch_vectors(folder / "relatives.scratch", shards.rows,
                                                             relatives.projection.shape[1], relatives.projection)
    ids, labels, hashes, lengths, row = [], {}, [], [], 0
    with open(folder / "packed.scratch", "wb") as packed_file:
        for records, chunk in tqdm(shards.chunks(), total=shards.count, desc="writing the index", unit="shard",
                                   leave=False, disable=not progress):  # fmt: skip
            if second is not None:
                second[row : row + len(chunk)] = relatives.embed(records.sequences)
            vectors[row : row + len(chunk)], row = chunk, row + len(chunk)
            packed = pack_sequences(records.sequences)
            packed_file.write(packed["packed"].tobytes())
            lengths.append(packed["lengths"])
            hashes.append(barcode_hashes(records.sequences))
            ids.append(pa.array(records.ids, pa.string()))
            for rank, values in records.labels.items():
                labels.setdefault(rank, []).append(pa.array(values.tolist(), pa.string()).dictionary_encode())
    vectors.flush()
    if second is not None:
        second.flush()
    lengths = np.concatenate(lengths)
    sequences = {"packed": np.memmap(folder / "packed.scratch", np.uint8, "r"),
                 "offsets": np.concatenate([[0], np.cumsum((lengths.astype(np.int64) + 1) // 2)]), "lengths": lengths}
    columns = {"id": pa.chunked_array(ids).combine_chunks()}
    columns |= {rank: pa.chunked_array(chunks).combine_chunks() for rank, chunks in labels.items()}
    decoded = {rank: _decoded(columns[rank]) for rank in labels}
    reference = _reference(vectors, decoded, PackedSequences(**sequences), measure, quantile, rank_by, projection,
                           encoder)  # fmt: skip
    parts = {
        "vectors": _search_parts([vectors], projection),
        "sequences": {name: [array] for name, array in sequences.items()} | {"hashes": [np.concatenate(hashes)]},
        "records": columns,
    }
    if second is not None:
        parts["relatives"] = _search_parts([second], relatives.projection)
    return parts, reference


def _search_parts(blocks: list[np.ndarray], projection: np.ndarray | None) -> dict:
    """The tensors of a vectors file: the search vectors (row blocks, in order) and their projection, if any."""
    return {"vectors": blocks} | ({} if projection is None else {"projection": [projection]})


def add_to_index(index: ReferenceIndex, encoder, entries, progress: bool = False, relatives=None) -> tuple[int, int]:
    """Append the barcodes of `entries` (`barcodemae.files.Records`: ids, sequences, labels per rank, "" = unknown)
    the index does not hold yet, recalibrate the thresholds on the whole reference (as a build of everything would),
    and switch the folder to the new generation; `relatives`: the encoder of the index's relatives vectors, if it
    stores some. Holds the folder's write lock (`writing`) while it writes; streamed as a build is (`_write_grown`).
    (added, already held)."""
    index.check_encoder(encoder)
    kept = index.settings.get("relatives")
    if kept is not None and (relatives is None or _encoder_settings(relatives)["key"] != kept["key"]):
        raise UserError(f"{index.folder}: the index stores relatives vectors of {kept['name']!r}: add needs that model")
    new = np.flatnonzero(~np.isin(barcode_hashes(entries.sequences), index.hashes))
    if len(new) == 0:
        return 0, len(entries.sequences)
    with writing(index.folder):
        if read_manifest(index.folder, verify="none")["generation"] != index.manifest["generation"]:
            raise UserError(f"{index.folder}: another index add changed the index since this one read it; run this "
                            "one again")  # fmt: skip
        generation = index.manifest["generation"] + 1
        try:
            files = _write_grown(index, encoder, entries, new, generation, progress, relatives)
        except BaseException:
            for part in PARTS:
                (index.folder / part_file_name(part, generation)).unlink(missing_ok=True)
            raise
        old = checked_files(index.folder, index.manifest).values()
        write_manifest(index.folder, generation, files)
        for path in old:
            path.unlink(missing_ok=True)
    return len(new), len(entries.sequences) - len(new)


def _write_grown(index: ReferenceIndex, encoder, entries, new: np.ndarray, generation: int, progress: bool,
                 relatives) -> dict:  # fmt: skip
    """Write generation `generation`: `index` with the rows `new` of `entries` appended (`_grown_parts`), and its
    thresholds recalibrated on the vectors and barcodes as written (memory-mapped); its manifest entries. Memory: the
    added barcodes' vectors, every barcode's labels (a pointer a rank) and id (in Arrow)."""
    import pyarrow as pa

    unknown = np.full(len(entries.sequences), "", dtype=object)  # a rank the added files lack
    labels = {rank: np.concatenate([index.labels[rank], entries.labels.get(rank, unknown)[new]])
              for rank in index.settings["ranks"]}  # fmt: skip
    ids = pa.concat_arrays([index.ids, pa.array([entries.ids[row] for row in new], pa.string())])
    added = [entries.sequences[row] for row in new]
    names = write_data(index.folder, generation, _grown_parts(index, encoder, added, _records(ids, labels), progress,
                                                               relatives))  # fmt: skip
    vectors, packed = (map_tensors(index.folder / names[part]) for part in ("vectors", "sequences"))
    sequences = PackedSequences(packed["packed"], packed["offsets"], packed["lengths"])
    search = index.settings["search"]
    reference = _reference(vectors["vectors"], labels, sequences, search["measure"], search["quantile"],
                           search["rank_by"], index.projection, encoder)  # fmt: skip
    settings = index.settings | {"search": _search_settings(reference, search["quantile"], search["rank_by"])}
    return write_settings(index.folder, generation, names, settings)


def _grown_parts(index: ReferenceIndex, encoder, added: list[str], records: dict, progress: bool, relatives) -> dict:
    """The data parts (`write_data`) of `index` with the barcodes `added` (embedded, by `relatives` too where the
    index stores relatives vectors) and `records`: the stored tensors are read through memory maps of their own,
    released once the parts are written."""
    stored = {part: map_tensors(path) for part, path in checked_files(index.folder, index.manifest).items()
              if PARTS[part] == "safetensors"}  # fmt: skip
    packed, held = pack_sequences(added), stored["sequences"]
    new_vectors = embed_for_search(encoder, added, index.projection, progress)
    parts = {
        "vectors": _search_parts([stored["vectors"]["vectors"], new_vectors], index.projection),
        "sequences": {"packed": [held["packed"], packed["packed"]],
                      "offsets": [held["offsets"], packed["offsets"][1:] + int(held["offsets"][-1])],
                      "lengths": [held["lengths"], packed["lengths"]],
                      "hashes": [held["hashes"], barcode_hashes(added)]},
        "records": records,
    }  # fmt: skip
    if "relatives" in stored:
        new_relatives = embed_for_search(relatives, added, index.relatives_projection, progress)
        parts["relatives"] = _search_parts([stored["relatives"]["vectors"], new_relatives], index.relatives_projection)
    return parts
