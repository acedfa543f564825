"""Search vectors (`wants_projection`, `--search`): a reference's own vectors (exact search), or, for large references
of wide encoders, their projection onto `COMPACT_DIMS` principal directions of a sample (a seeded randomized SVD), unit
rows in float16."""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from barcodemae.errors import UserError

COMPACT_DIMS = 256  # search vectors of large references: float16, 512 bytes a barcode
SEARCHES = ("auto", "exact", "compact")
COMPACT_MIN_REFERENCES = 50_000  # below this, exact search on the encoder's own vectors (docs/index.md: the switch)
PROJECTION_SAMPLE = 8192  # reference barcodes the projection is fitted on (seeded)
_OVERSAMPLE, _POWER_ITERATIONS = 64, 4  # of the randomized SVD that fits the projection (`fit_projection`)
EMBED_CHUNK = 16384  # barcodes embedded (and projected) at a time: bounded memory for any reference size


def unit(vectors: np.ndarray) -> np.ndarray:
    """The rows of `vectors` scaled to unit length (numpy; a zero row stays zero)."""
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
    return unit(np.asarray(vectors, dtype=np.float32) @ projection).astype(np.float16)


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
