"""Batches for the identity-distillation term (`BarcodeMAEConfig.identity_distillation_weight`): each batch holds a few
anchor barcodes and some of their k-mer nearest neighbours, so that the similarities it is taught to rank span
relatives as well as strangers; and the batch's target matrix, from its teacher (`BarcodeMAEConfig.
distillation_teacher`): alignment identity (`barcodemae.alignment`) or a non-learned encoder's cosine similarities.

Label-free: the neighbours come from overlapping k-mer profiles of the pretraining barcodes, not from taxonomy.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from barcodemae.alignment import identities
from barcodemae.encoders import kmer_embeddings, non_learned_encoder
from barcodemae.neighbours import nearest_neighbours, unit_rows


def kmer_neighbour_table(sequences: Sequence[str], k: int = 6, neighbours: int = 32) -> np.ndarray:
    """(N, neighbours) indices of each barcode's cosine-nearest barcodes by overlapping k-mer frequencies, itself
    excluded, nearest first."""
    profiles = kmer_embeddings(sequences, k)
    found, _ = nearest_neighbours(profiles, profiles, k=min(neighbours + 1, len(sequences)))
    table = np.empty((len(sequences), found.shape[1] - 1), dtype=np.int64)
    for row, indices in enumerate(found):
        others = indices[indices != row]
        table[row] = others[: table.shape[1]]
    return table


class NeighbourBatchSampler(torch.utils.data.Sampler):
    """Batches of `batch_size` indices: `batch_size // (1 + per_anchor)` anchors in a permutation seeded by (seed,
    epoch), each with `per_anchor` of its `neighbour_table` row drawn at random (seeded by (seed, epoch, batch)); an
    index already in the batch is not repeated, and the batch is filled up with random barcodes. An epoch takes every
    barcode once as an anchor. Same batches on resume."""

    def __init__(self, neighbour_table: np.ndarray, batch_size: int, per_anchor: int, seed: int):
        if batch_size < 1 + per_anchor or per_anchor > neighbour_table.shape[1]:
            raise ValueError(f"a batch of {batch_size} cannot hold an anchor and {per_anchor} of its neighbours "
                             f"({neighbour_table.shape[1]} known)")  # fmt: skip
        self.table, self.batch_size, self.per_anchor, self.seed, self.epoch = neighbour_table, batch_size, per_anchor, seed, 0
        self.anchors_per_batch = batch_size // (1 + per_anchor)

    def __len__(self) -> int:
        return -(-len(self.table) // self.anchors_per_batch)

    def __iter__(self):
        size = len(self.table)
        order = np.random.default_rng([self.seed, self.epoch]).permutation(size)
        for batch in range(len(self)):
            rng = np.random.default_rng([self.seed, self.epoch, batch])
            chosen: dict[int, None] = {}  # insertion-ordered set
            for anchor in order[batch * self.anchors_per_batch : (batch + 1) * self.anchors_per_batch]:
                chosen[int(anchor)] = None
                for neighbour in rng.choice(self.table[anchor], self.per_anchor, replace=False):
                    chosen.setdefault(int(neighbour), None)
            target = min(self.batch_size, size)
            while len(chosen) < target:
                chosen.setdefault(int(rng.integers(size)), None)
            yield list(chosen)[: self.batch_size]


def identity_matrix(sequences: Sequence[str]) -> torch.Tensor:
    """(N, N) float32 alignment identities between the sequences (symmetric, 1 on the diagonal)."""
    rows, columns = np.triu_indices(len(sequences), 1)
    matrix = torch.eye(len(sequences))
    matrix[rows, columns] = matrix[columns, rows] = torch.tensor(
        identities([(sequences[i], sequences[j]) for i, j in zip(rows, columns)], "infix")
    )
    return matrix


def cosine_matrix(sequences: Sequence[str], encoder) -> torch.Tensor:
    """(N, N) float32 cosine similarities between the sequences' embeddings by `encoder` (1 on the diagonal)."""
    vectors = unit_rows(encoder.embed(sequences))
    return vectors @ vectors.T


def teacher_matrix(teacher: str) -> Callable[[Sequence[str]], torch.Tensor]:
    """The batch target matrix of `BarcodeMAEConfig.distillation_teacher`: `identity` or a non-learned encoder spec."""
    if teacher == "identity":
        return identity_matrix
    encoder = non_learned_encoder(teacher)
    if encoder is None:
        raise ValueError(f"distillation_teacher must be 'identity' or a non-learned encoder spec, got {teacher!r}")
    return lambda sequences: cosine_matrix(sequences, encoder)
