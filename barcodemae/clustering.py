"""BIN-like clusters without a cluster count: single or average linkage on cosine distance, cut at a threshold.

Exact and in bounded memory: two barcodes can only end in one average-linkage cluster if a chain of pairs closer than
the threshold joins them (each merge joins clusters with a mean distance below it, so with at least one such pair).
So the barcodes are first split into the connected components of the "closer than the threshold" graph (chunked
similarity products), then each component is clustered on its own (scipy's average linkage). Single linkage is the
components themselves.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from barcodemae.errors import UserError

LINKAGES = ("single", "average")
DEFAULT_LINKAGE = "single"
DEFAULT_THRESHOLD = 0.1  # cosine distance; chosen on the shared data's val splits with kmer:6 (bench_identify.py)


def _components(unit: torch.Tensor, threshold: float, chunk_size: int) -> np.ndarray:
    """Connected components of the graph joining pairs with cosine distance below `threshold`."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows, columns = [], []
    with torch.inference_mode():
        for start in range(0, len(unit), chunk_size):
            close = (unit[start : start + chunk_size] @ unit.T) > 1.0 - threshold
            row, column = torch.nonzero(close, as_tuple=True)
            rows.append(row.numpy() + start)
            columns.append(column.numpy())
    rows, columns = np.concatenate(rows), np.concatenate(columns)
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, columns)), shape=(len(unit), len(unit)))
    return connected_components(graph, directed=False)[1]


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
    unit = F.normalize(torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)), dim=1)
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
