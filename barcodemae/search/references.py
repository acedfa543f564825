"""What `identify` searches: a `Reference` (the barcodes' vectors and labels, the per-rank thresholds, the barcodes
themselves), by exact cosine; and an index's two other ways to search one: compact projected vectors whose proposals
exact cosine re-scores (`CompactReference`), and vectors embedded at the first search (`EmbeddedReference`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from barcodemae.alignment import DEFAULT_MEASURE
from barcodemae.identify import DEFAULT_QUANTILE, calibrate_thresholds
from barcodemae.neighbours import nearest_neighbours
from barcodemae.search.projection import embed_for_search, project, unit

RESCORE_FACTOR = 4  # compact search proposes this many times the candidates asked for; exact cosine keeps those


@dataclass
class Reference:
    """Reference barcodes' vectors and labels (`labels[rank]`, "" = unknown), the per-rank thresholds, and the
    barcodes themselves (None: rank by cosine similarity only) and the identity measure that ranks them
    (`barcodemae.alignment.IDENTITY_MEASURES`)."""

    vectors: np.ndarray
    labels: dict[str, np.ndarray]
    thresholds: dict[str, float]
    sequences: list[str] | None = None
    measure: str = DEFAULT_MEASURE

    @classmethod
    def calibrated(
        cls, vectors: np.ndarray, labels: dict[str, np.ndarray], sequences: list[str] | None = None,
        quantile: float = DEFAULT_QUANTILE, measure: str = DEFAULT_MEASURE,
    ) -> Reference:
        """A reference with its thresholds calibrated on itself (`calibrate_thresholds`): in alignment identity
        (`measure`) when `sequences` are given (ranking by identity), else in cosine similarity."""
        thresholds = calibrate_thresholds(vectors, labels, quantile, sequences=sequences, measure=measure)
        return cls(vectors, labels, thresholds, sequences, measure)

    def nearest(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The `n` cosine-nearest references of each query vector: (indices, similarities), nearest first."""
        return nearest_neighbours(self.vectors, queries, n)

    def with_vectors(self, vectors: np.ndarray) -> Reference:
        """The same barcodes, labels and thresholds searched (exactly) on other vectors: a second embedding."""
        return Reference(vectors, self.labels, self.thresholds, self.sequences, self.measure)


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
            exact = unit(self.encoder.embed([self.barcodes[row] for row in rows]))
            cosine = unit(np.asarray(queries[start : start + chunk_size], dtype=np.float32)) @ exact.T
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
