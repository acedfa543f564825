"""A saved reference library for `identify`: built once (`barcodemae index build`), grown (`index add`), searched
by every later call (`identify --index DIR`), memory-mapped.

The folder (no pickle anywhere):
- `vectors.G.safetensors`: `vectors` (N, D), the search vectors (`wants_projection`, `--search`): the encoder's own
  vectors (float32; exact search, as `identify` searched before the index) for references under
  `COMPACT_MIN_REFERENCES` barcodes or encoders of at most `COMPACT_DIMS` dimensions, else their projection onto
  `COMPACT_DIMS` principal directions of a sample of the reference (uncentred SVD, unit rows, float16: 512 bytes a
  barcode; `projection` (D_encoder, D) float32 is stored too; `CompactReference` searches them);
- `relatives.G.safetensors` (compact searches only): the same for the relatives embedding of `identify`
  (`--relatives_model`, by default amino-acid 3-mers) and its own projection;
- `sequences.G.safetensors`: the barcodes 4 bits a nucleotide (`ALPHABET`: every IUPAC code), `offsets` (N + 1,
  bytes), `lengths`, and an 8-byte hash of each barcode (`index add` keeps a barcode once);
- `records.G.parquet`: id and the labels per rank (dictionary-encoded: in memory a pointer per label);
- `settings.G.json`: the encoder (name and `cache_key`: a hash of the weights, or kmer:K) and the relatives
  encoder, the search vectors' kind, the identity measure, quantile and per-rank thresholds calibrated on the whole reference;
- `manifest.json`, written last (atomically): the generation G and each file's size and SHA-256. A folder without
  it, or whose files do not match it (truncated, corrupted), is refused with one error.

`build` writes a new folder beside the target and renames it into place; `add` writes generation G + 1 next to G,
replaces the manifest (the switch), then deletes generation G: an interrupted write leaves the previous index whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from barcodemae.embedding_job import DEFAULT_SHARD_SIZE
from barcodemae.errors import UserError, UserFileNotFoundError
from barcodemae.identify import DEFAULT_QUANTILE, Reference, calibrate_thresholds
from barcodemae.neighbours import nearest_neighbours

FORMAT = "barcodemae-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
VERIFIED = ".verified.json"  # the listed files' states when their checksums last matched (`read_manifest`)
ALPHABET = "ACGTRYSWKMBDHVNU"  # 4-bit codes of the stored barcodes: the nucleotides, the IUPAC ambiguity codes, U
COMPACT_DIMS = 256  # search vectors of large references: float16, 512 bytes a barcode
SEARCHES = ("auto", "exact", "compact")
COMPACT_MIN_REFERENCES = 50_000  # below this, exact search on the encoder's own vectors (docs/index.md: the switch)
PROJECTION_SAMPLE = 8192  # reference barcodes the projection is fitted on (seeded)
RESCORE_FACTOR = 4  # compact search proposes this many times the candidates asked for; exact cosine keeps those
_OVERSAMPLE, _POWER_ITERATIONS = 64, 4  # of the randomized SVD that fits the projection (`fit_projection`)
EMBED_CHUNK = 16384  # barcodes embedded (and projected) at a time: bounded memory for any reference size
_CODES = np.full(256, 255, dtype=np.uint8)
for _code, _base in enumerate(ALPHABET):
    _CODES[ord(_base)] = _code
_BASES = np.frombuffer(ALPHABET.encode(), dtype=np.uint8)
_SAFETENSORS_DTYPES = {"float32": "F32", "float16": "F16", "uint8": "U8", "uint16": "U16", "int64": "I64",
                       "uint64": "U64"}  # fmt: skip
_NUMPY_DTYPES = {code: name for name, code in _SAFETENSORS_DTYPES.items()}


# ---- files: safetensors written in a stream and read memory-mapped; hashes ----


def write_tensors(path: Path, tensors: dict[str, Sequence[np.ndarray]], rows_per_write: int = 65536) -> None:
    """A safetensors file of tensors given as parts to concatenate along the first axis, written part by part (no
    tensor is ever assembled in memory)."""
    header, offset = {}, 0
    for name, parts in tensors.items():
        rows = sum(len(part) for part in parts)
        size = sum(part.nbytes for part in parts)
        dtype = _SAFETENSORS_DTYPES[np.dtype(parts[0].dtype).name]
        header[name] = {"dtype": dtype, "shape": [rows, *parts[0].shape[1:]], "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as file:
        file.write(len(text).to_bytes(8, "little"))
        file.write(text)
        for parts in tensors.values():
            for part in parts:
                for start in range(0, len(part), rows_per_write):
                    file.write(np.ascontiguousarray(part[start : start + rows_per_write]).data)


def map_tensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file as read-only memory maps."""
    with open(path, "rb") as file:
        size = int.from_bytes(file.read(8), "little")
        header = json.loads(file.read(size))
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype, shape = np.dtype(_NUMPY_DTYPES[entry["dtype"]]), tuple(entry["shape"])
        start, end = entry["data_offsets"]
        tensors[name] = (np.memmap(path, dtype, "r", offset=8 + size + start, shape=shape) if end > start
                         else np.empty(shape, dtype))  # fmt: skip
    return tensors


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def barcode_hashes(sequences: Sequence[str]) -> np.ndarray:
    """An 8-byte hash of each barcode (uint64): how `index add` recognises a barcode it already holds."""
    return np.fromiter((int.from_bytes(hashlib.blake2b(sequence.encode(), digest_size=8).digest(), "little")
                        for sequence in sequences), dtype=np.uint64, count=len(sequences))  # fmt: skip


# ---- barcodes, 4 bits a nucleotide ----


def pack_sequences(sequences: Sequence[str]) -> dict[str, np.ndarray]:
    """`packed` (two nucleotides a byte), `offsets` (N + 1, where each barcode's bytes start), `lengths`."""
    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    codes = _CODES[np.frombuffer("".join(s + "A" * (len(s) % 2) for s in sequences).encode(), dtype=np.uint8)]
    if (codes == 255).any():
        raise UserError(f"a barcode holds a character that is not one of {ALPHABET} (clean barcodes first)")
    packed = (codes[0::2] << 4) | codes[1::2]
    offsets = np.concatenate([[0], np.cumsum((lengths + 1) // 2)])
    return {"packed": packed, "offsets": offsets, "lengths": lengths.astype(np.uint16)}


class PackedSequences:
    """Read-only list of barcodes stored 4 bits a nucleotide (`pack_sequences`), decoded when asked for."""

    def __init__(self, packed: np.ndarray, offsets: np.ndarray, lengths: np.ndarray):
        self.packed, self.offsets, self.lengths = packed, offsets, lengths

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, index: int) -> str:
        data = np.asarray(self.packed[self.offsets[index] : self.offsets[index + 1]])
        codes = np.stack([data >> 4, data & 15], axis=1).reshape(-1)[: self.lengths[index]]
        return _BASES[codes].tobytes().decode()


# ---- search vectors ----


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), np.finfo(np.float32).tiny)


def fit_projection(vectors: np.ndarray, dims: int = COMPACT_DIMS, seed: int = 0) -> np.ndarray:
    """(D, dims) float32: the top right singular vectors of (uncentred) `vectors`, so that dot products, and so
    cosine similarities, of the projected rows approximate those of the rows. A seeded randomized SVD (a range
    finder with `_POWER_ITERATIONS` power iterations and `_OVERSAMPLE` extra directions, Halko et al. 2011): on one
    core, 8,192 x 4,096 6-mer vectors took 6 s, where the full SVD took 53 s (docs/index.md)."""
    import torch

    matrix = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    width = min(dims + _OVERSAMPLE, *matrix.shape)
    probe = torch.randn(matrix.shape[1], width, generator=torch.Generator().manual_seed(seed))
    basis = torch.linalg.qr(matrix @ probe).Q
    for _ in range(_POWER_ITERATIONS):
        basis = torch.linalg.qr(matrix @ torch.linalg.qr(matrix.T @ basis).Q).Q
    _, _, right = torch.linalg.svd(basis.T @ matrix, full_matrices=False)
    return right[:dims].T.contiguous().numpy()


def project(vectors: np.ndarray, projection: np.ndarray | None) -> np.ndarray:
    """Search vectors: the vectors themselves (float32) without a projection, else their projection's unit rows in
    float16."""
    if projection is None:
        return np.ascontiguousarray(vectors, dtype=np.float32)
    return _unit(np.asarray(vectors, dtype=np.float32) @ projection).astype(np.float16)


def wants_projection(references: int, dims: int, search: str = "auto") -> bool:
    """Whether a reference of this many barcodes, embedded in `dims` dimensions, is searched on compact vectors:
    `search` "compact", "exact", or "auto" (`SEARCHES`): from `COMPACT_MIN_REFERENCES` barcodes on, for encoders of
    more than `COMPACT_DIMS` dimensions."""
    if search not in SEARCHES:
        raise UserError(f"the search must be one of {', '.join(SEARCHES)}, got {search!r}")
    return search == "compact" or (search == "auto" and references >= COMPACT_MIN_REFERENCES and dims > COMPACT_DIMS)


def embed_for_search(encoder, sequences: Sequence[str], projection: np.ndarray | None, progress: bool = False,
                     dtype=None) -> np.ndarray:
    """The search vectors of `sequences` (`project`; stored as `dtype` where given), embedded `EMBED_CHUNK` at a time
    into one array (besides it, only a chunk's full vectors in memory). `sequences`: anything indexable by row."""
    from tqdm.auto import tqdm

    vectors = None
    bar = tqdm(total=len(sequences), desc=f"{encoder.name} embedding", unit="seq", leave=False, disable=not progress)
    for start in range(0, len(sequences), EMBED_CHUNK):
        rows = range(start, min(start + EMBED_CHUNK, len(sequences)))
        chunk = project(encoder.embed([sequences[row] for row in rows]), projection)
        if vectors is None:
            vectors = np.empty((len(sequences), chunk.shape[1]), dtype or chunk.dtype)
        vectors[start : rows.stop] = chunk
        bar.update(len(rows))
    bar.close()
    return vectors if vectors is not None else np.empty((0, 0), np.float32)


def sample_rows(references: int, seed: int = 0) -> np.ndarray:
    """The rows, in order, of the seeded sample of up to `PROJECTION_SAMPLE` reference barcodes that the projection
    is fitted on."""
    return np.sort(np.random.default_rng(seed).permutation(references)[:PROJECTION_SAMPLE])


def fit_search_space(encoder, barcodes_at, references: int, search: str = "auto", seed: int = 0) -> np.ndarray | None:
    """The projection a reference of `references` barcodes is searched through (`wants_projection`), fitted on the
    barcodes of its `sample_rows` (`barcodes_at(rows)` gives them); None: exact search on the encoder's own vectors
    (nothing read or embedded when the size alone decides)."""
    if search != "compact" and not wants_projection(references, COMPACT_DIMS + 1, search):
        return None
    vectors = encoder.embed(list(barcodes_at(sample_rows(references, seed))))
    return fit_projection(vectors) if wants_projection(references, vectors.shape[1], search) else None


def search_space(encoder, sequences: Sequence[str], search: str = "auto", seed: int = 0) -> np.ndarray | None:
    """`fit_search_space` of these reference barcodes."""
    return fit_search_space(encoder, lambda rows: [sequences[row] for row in rows], len(sequences), search, seed)


class SearchEncoder:
    """An encoder whose vectors are its search vectors (`project`), as `embed_to_shards` embeds them: an index's
    vectors are written in the resumable shards of `barcodemae embed`."""

    def __init__(self, encoder, projection: np.ndarray | None):
        self.encoder, self.projection, self.name = encoder, projection, encoder.name

    def embed(self, sequences: Sequence[str]) -> np.ndarray:
        return project(self.encoder.embed(sequences), self.projection)

    def cache_key(self) -> dict:
        digest = None if self.projection is None else hashlib.sha256(self.projection.tobytes()).hexdigest()
        return self.encoder.cache_key() | {"projection": digest}


class CompactReference(Reference):
    """A reference searched on projected vectors (`vectors` float16; queries are the encoder's own vectors): the
    `RESCORE_FACTOR` x n nearest by the projection, then the n nearest of those by the encoder's exact cosine (their
    barcodes embedded again): the exact search's candidates wherever its n nearest are among the proposals."""

    def __init__(self, vectors, labels, thresholds, sequences, measure, projection: np.ndarray, encoder, barcodes):
        super().__init__(vectors, labels, thresholds, sequences, measure)
        self.projection, self.encoder, self.barcodes = projection, encoder, barcodes

    def nearest(self, queries: np.ndarray, n: int, chunk_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        proposed, _ = nearest_neighbours(self.vectors, project(queries, self.projection), RESCORE_FACTOR * n)
        n = min(n, proposed.shape[1])
        indices, similarities = np.empty((len(queries), n), np.int64), np.empty((len(queries), n), np.float32)
        for start in range(0, len(queries), chunk_size):  # the proposals' own vectors, a chunk of queries at a time
            rows, inverse = np.unique(proposed[start : start + chunk_size], return_inverse=True)
            exact = _unit(self.encoder.embed([self.barcodes[row] for row in rows]))
            cosine = _unit(np.asarray(queries[start : start + chunk_size], dtype=np.float32)) @ exact.T
            found = np.take_along_axis(cosine, inverse.reshape(len(cosine), -1), 1)
            order = np.argsort(-found, axis=1, kind="stable")[:, :n]
            indices[start : start + chunk_size] = np.take_along_axis(proposed[start : start + chunk_size], order, 1)
            similarities[start : start + chunk_size] = np.take_along_axis(found, order, 1)
        return indices, similarities


class EmbeddedReference(Reference):
    """`reference`'s barcodes and labels searched exactly on `encoder`'s vectors of `barcodes`, embedded at the first
    search (none: nothing embedded) into float16 (`embed_for_search`)."""

    def __init__(self, reference: Reference, encoder, barcodes, progress: bool = False):
        super().__init__(None, reference.labels, reference.thresholds, reference.sequences, reference.measure)
        self.encoder, self.barcodes, self.progress = encoder, barcodes, progress

    def nearest(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        if self.vectors is None:
            self.vectors = embed_for_search(self.encoder, self.barcodes, None, self.progress, np.float16)
        return super().nearest(queries, n)


# ---- the index ----


def _encoder_settings(encoder) -> dict:
    """What identifies the encoder's vectors (its precision aside: bf16 and fp32 runs of one model agree)."""
    key = {name: value for name, value in encoder.cache_key().items() if name != "precision"}
    return {"name": encoder.name, "key": key}


class ReferenceIndex:
    """A loaded index folder: its memory-mapped search vectors and barcodes, labels, ids (pyarrow), `settings` and
    `projection` (None: exact search on the encoder's vectors); `reference(encoder)` searches it."""

    def __init__(self, folder: Path, manifest: dict):
        import pyarrow.parquet as pq

        self.folder, self.manifest = folder, manifest
        files = {part: folder / entry["name"] for part, entry in manifest["files"].items()}
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
        if found["key"] != wanted["key"]:
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


def read_manifest(folder: str | os.PathLike, verify: str = "changed") -> dict:
    """The folder's manifest, after checking every file it lists against its size and, by `verify`, its SHA-256:
    "changed" (the default) where a file changed (size, mtime, ctime, inode) since its checksum last matched (the
    quick check of rsync; the record of what matched is `VERIFIED` in the folder, when it is writable), "all", or
    "none". One clear error for a folder that is not a whole index."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserFileNotFoundError(f"{folder}: no such index folder (make one with barcodemae index build)")
    problem = f"{folder}: not a complete barcodemae index"
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = manifest["files"]
        if manifest.get("format") != FORMAT:
            raise UserError(f"{problem}: {MANIFEST} is not a {FORMAT} manifest")
    except FileNotFoundError:
        raise UserError(f"{problem}: no {MANIFEST} (a build that did not finish?); rebuild it") from None
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(f"{problem}: {MANIFEST} is unreadable ({error}); rebuild it") from None
    if manifest.get("version") != FORMAT_VERSION:
        raise UserError(f"{folder}: index format {manifest.get('version')}, this version reads {FORMAT_VERSION}")
    for entry in files.values():
        path = folder / entry["name"]
        if not path.is_file():
            raise UserError(f"{problem}: {entry['name']} is missing; rebuild it")
        if path.stat().st_size != entry["bytes"]:
            raise UserError(f"{problem}: {entry['name']} has {path.stat().st_size} bytes, the manifest says "
                            f"{entry['bytes']} (truncated?); rebuild it")  # fmt: skip
    if verify == "all" or (verify == "changed" and _file_states(folder, manifest) != _verified_states(folder)):
        for entry in files.values():
            if _sha256(folder / entry["name"]) != entry["sha256"]:
                raise UserError(f"{problem}: {entry['name']} does not match its checksum (corrupted); rebuild it")
        remember_verified(folder, manifest)
    return manifest


def _file_states(folder: Path, manifest: dict) -> dict:
    """What the quick check compares: each listed file's size, mtime, ctime and inode."""
    states = {}
    for entry in manifest["files"].values():
        found = (folder / entry["name"]).stat()
        states[entry["name"]] = [found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino]
    return states


def _verified_states(folder: Path) -> dict | None:
    try:
        return json.loads((folder / VERIFIED).read_text())
    except (OSError, ValueError):
        return None


def remember_verified(folder: Path, manifest: dict) -> None:
    """Record that the files of `manifest` match their checksums as they are now (skipped where the folder is
    read-only: every load then checks them again)."""
    temporary = folder / f".{VERIFIED}.tmp"
    try:
        temporary.write_text(json.dumps(_file_states(folder, manifest)))
        os.replace(temporary, folder / VERIFIED)
    except OSError:
        temporary.unlink(missing_ok=True)


def load_index(folder: str | os.PathLike, verify: str = "changed") -> ReferenceIndex:
    """A checked (`read_manifest`), memory-mapped index folder."""
    return ReferenceIndex(Path(folder), read_manifest(folder, verify))


def _write_generation(folder: Path, generation: int, parts: dict, settings: dict) -> dict:
    """Write one generation's files into `folder`; their manifest entries."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = {part: f"{part}.{generation}.{suffix}" for part, suffix in
             (("vectors", "safetensors"), ("relatives", "safetensors"), ("sequences", "safetensors"),
              ("records", "parquet"), ("settings", "json")) if part in parts or part == "settings"}  # fmt: skip
    for part in ("vectors", "relatives", "sequences"):
        if part in names:
            write_tensors(folder / names[part], parts[part])
    pq.write_table(pa.table(parts["records"]), folder / names["records"])
    (folder / names["settings"]).write_text(json.dumps(settings, indent=1))
    return {part: {"name": name, "bytes": (folder / name).stat().st_size, "sha256": _sha256(folder / name)}
            for part, name in names.items()}  # fmt: skip


def _write_manifest(folder: Path, generation: int, files: dict) -> None:
    """The manifest of just-written `files` (hashed as they were written, so also recorded as verified)."""
    manifest = {"format": FORMAT, "version": FORMAT_VERSION, "generation": generation, "files": files}
    temporary = folder / f".{MANIFEST}.tmp"
    temporary.write_text(json.dumps(manifest, indent=1))
    os.replace(temporary, folder / MANIFEST)
    remember_verified(folder, manifest)


def _records(ids, labels: dict[str, np.ndarray]) -> dict:
    import pyarrow as pa

    columns = {"id": pa.array(list(ids) if not isinstance(ids, pa.Array) else ids, pa.string())}
    return columns | {rank: pa.array(list(values), pa.string()).dictionary_encode() for rank, values in labels.items()}


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
        _write_manifest(temporary, 1, _write_generation(temporary, 1, parts, settings))
        for scratch in temporary.glob("*.scratch"):
            scratch.unlink()
        os.rename(temporary, folder)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    shards.remove()
    processes.close()
    return load_index(folder, verify="none")


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
    """The parts of an index's first generation (`_write_generation`) from the `shards`, read one at a time into
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
    stores some. (added, already held)."""
    index.check_encoder(encoder)
    kept = index.settings.get("relatives")
    if kept is not None and (relatives is None or _encoder_settings(relatives)["key"] != kept["key"]):
        raise UserError(f"{index.folder}: the index stores relatives vectors of {kept['name']!r}: add needs that model")
    hashes = barcode_hashes(entries.sequences)
    new = np.flatnonzero(~np.isin(hashes, index.hashes))
    if len(new) == 0:
        return 0, len(entries.sequences)
    sequences = [entries.sequences[row] for row in new]
    unknown = np.full(len(entries.sequences), "", dtype=object)  # a rank the added files lack
    labels = {rank: np.concatenate([index.labels[rank], entries.labels.get(rank, unknown)[new]])
              for rank in index.settings["ranks"]}  # fmt: skip
    vectors = embed_for_search(encoder, sequences, index.projection, progress)
    all_vectors = np.concatenate([index.vectors, vectors])
    search = index.settings["search"]
    combined = _ConcatenatedSequences(index.sequences, sequences)
    reference = _reference(all_vectors, labels, combined, search["measure"], search["quantile"], search["rank_by"],
                           index.projection, encoder)  # fmt: skip
    packed, stored = pack_sequences(sequences), index.sequences
    base = int(stored.offsets[-1])
    parts = {
        "vectors": _search_parts([index.vectors, vectors], index.projection),
        "sequences": {"packed": [stored.packed, packed["packed"]], "offsets": [stored.offsets, packed["offsets"][1:] + base],
                      "lengths": [stored.lengths, packed["lengths"]], "hashes": [index.hashes, hashes[new]]},
        "records": _records([*index.ids.to_pylist(), *(entries.ids[row] for row in new)], labels),
    }  # fmt: skip
    if kept is not None:
        new_relatives = embed_for_search(relatives, sequences, index.relatives_projection, progress)
        parts["relatives"] = _search_parts([index.relatives_vectors, new_relatives], index.relatives_projection)
    settings = index.settings | {"search": _search_settings(reference, search["quantile"], search["rank_by"])}
    generation = index.manifest["generation"] + 1
    old = [entry["name"] for entry in index.manifest["files"].values()]
    try:
        files = _write_generation(index.folder, generation, parts, settings)
    except BaseException:
        for part in parts:
            for leftover in index.folder.glob(f"{part}.{generation}.*"):
                leftover.unlink()
        raise
    _write_manifest(index.folder, generation, files)
    for name in old:
        (index.folder / name).unlink(missing_ok=True)
    return len(new), len(entries.sequences) - len(new)


class _ConcatenatedSequences:
    """Two sequence lists read as one (the stored barcodes, then the added ones)."""

    def __init__(self, first, second):
        self.first, self.second = first, second

    def __len__(self) -> int:
        return len(self.first) + len(self.second)

    def __getitem__(self, index: int) -> str:
        return self.first[index] if index < len(self.first) else self.second[index - len(self.first)]
