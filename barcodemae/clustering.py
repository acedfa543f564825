"""BIN-like clusters without a cluster count.

`identity_clusters` (the default of `barcodemae cluster`): single linkage on alignment identity, as BINs and VSEARCH
group barcodes: each barcode's `candidates` cosine-nearest barcodes are aligned to it and pairs at least `identity`
alike are joined; clusters are the connected components.

`threshold_clusters`: single or average linkage on cosine distance, cut at a threshold. Exact and in bounded memory:
two barcodes can only end in one average-linkage cluster if a chain of pairs closer than the threshold joins them
(each merge joins clusters with a mean distance below it, so with at least one such pair). So the barcodes are first
split into the connected components of the "closer than the threshold" graph (chunked similarity products), then
each component is clustered on its own (scipy's average linkage). Single linkage is the components themselves.
"""

from __future__ import annotations

import numpy as np
import torch

from barcodemae.alignment import alignment_identity
from barcodemae.errors import UserError
from barcodemae.neighbours import nearest_neighbours, unit_rows

LINKAGES = ("single", "average")
DEFAULT_LINKAGE = "single"
DEFAULT_THRESHOLD = 0.1  # cosine distance; chosen on the shared data's val splits with kmer:6 (bench_identify.py)
DEFAULT_IDENTITY = 0.97  # chosen on the shared data's val splits with kmer:6 (bench_identify.py; 0.975 ties)
DEFAULT_CLUSTER_CANDIDATES = 20


def _connected(rows: np.ndarray, columns: np.ndarray, size: int) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, columns)), shape=(size, size))
    return connected_components(graph, directed=False)[1]


def identity_clusters(
    vectors: np.ndarray, sequences: list[str], identity: float = DEFAULT_IDENTITY,
    candidates: int = DEFAULT_CLUSTER_CANDIDATES, progress: bool = False,
) -> np.ndarray:
    """Cluster number (0.., in order of first appearance) of each barcode: single linkage on alignment identity
    over each barcode's `candidates` (at least 1) cosine-nearest barcodes (`vectors` propose, `alignment_identity`
    decides)."""
    if not 0.0 < identity <= 1.0:
        raise UserError(f"the clustering identity is a fraction between 0 and 1, got {identity}")
    if candidates < 1:
        raise UserError(f"the number of candidates must be at least 1, got {candidates}")
    if len(vectors) == 0:
        raise UserError("nothing to cluster: no barcodes")
    from tqdm.auto import tqdm

    neighbours, _ = nearest_neighbours(vectors, vectors, candidates + 1)
    pairs = {(min(row, column), max(row, column)) for row in range(len(neighbours)) for column in neighbours[row].tolist()
             if column != row}  # fmt: skip
    joined = [pair for pair in tqdm(sorted(pairs), desc="aligning", unit="pair", leave=False, disable=not progress)
              if alignment_identity(sequences[pair[0]], sequences[pair[1]]) >= identity]  # fmt: skip
    rows, columns = np.array(joined, dtype=np.int64).reshape(-1, 2).T
    return _by_first_appearance(_connected(rows, columns, len(vectors)))


def _components(unit: torch.Tensor, threshold: float, chunk_size: int) -> np.ndarray:
    """Connected components of the graph joining pairs with cosine distance below `threshold`."""
    rows, columns = [], []
    with torch.inference_mode():
        for start in range(0, len(unit), chunk_size):
            close = (unit[start : start + chunk_size] @ unit.T) > 1.0 - threshold
            row, column = torch.nonzero(close, as_tuple=True)
            rows.append(row.numpy() + start)
            columns.append(column.numpy())
    return _connected(np.concatenate(rows), np.concatenate(columns), len(unit))


def _average_linkage(unit: torch.Tensor, threshold: float) -> np.ndarray:
    """Cluster labels (0..) of one component: average linkage, clusters merged while below `threshold`."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    distance = (1.0 - unit @ unit.T).clamp_min(0.0).double().numpy()
    np.fill_diagonal(distance, 0.0)
    merges = linkage(squareform(distance, checks=False), method="average")
    return fcluster(merges, t=threshold, criterion="distance") - 1


def threshold_clusters(
    vectors: np.ndarray, threshold: float = DEFAULT_THRESHOLD, linkage: str = DEFAULT_LINKAGE, chunk_size: int = 1024
) -> np.ndarray:
    """Cluster number (0.., in order of first appearance) of each vector; `threshold` is a cosine distance."""
    if not 0.0 < threshold < 2.0:
        raise UserError(f"the clustering threshold is a cosine distance between 0 and 2, got {threshold}")
    if linkage not in LINKAGES:
        raise UserError(f"linkage must be one of {LINKAGES}, got {linkage!r}")
    if len(vectors) == 0:
        raise UserError("nothing to cluster: no barcodes")
    unit = unit_rows(vectors)
    components = _components(unit, threshold, chunk_size)
    if linkage == "single":
        return _by_first_appearance(components)
    labels = np.empty(len(unit), dtype=np.int64)
    next_label = 0
    for component in range(components.max() + 1):
        members = np.flatnonzero(components == component)
        local = _average_linkage(unit[members], threshold) if len(members) > 1 else np.zeros(1, dtype=np.int64)
        labels[members] = local + next_label
        next_label += local.max() + 1
    return _by_first_appearance(labels)


def _by_first_appearance(labels: np.ndarray) -> np.ndarray:
    """The same partition, clusters numbered in order of their first member: deterministic output."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    return np.argsort(np.argsort(first))[inverse]
