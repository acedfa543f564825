"""Exact cosine nearest neighbours: chunked matrix products in torch, or faiss (exact flat index) when installed."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from barcodemae.errors import UserError

FAISS_MIN_KEYS = 200_000  # faiss's flat index is used above this many keys, when faiss is installed


def unit_rows(x: np.ndarray) -> torch.Tensor:
    """The rows of `x` scaled to unit length, as a float32 tensor (a zero row stays zero)."""
    return F.normalize(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), dim=1)


def _check(keys: np.ndarray, queries: np.ndarray) -> None:
    if len(keys) == 0 or len(queries) == 0:
        raise UserError(f"nearest neighbours need keys and queries; got {len(keys)} keys and {len(queries)} queries")


def nearest_neighbour(keys: np.ndarray, queries: np.ndarray, chunk_size: int = 2048) -> np.ndarray:
    """Index of the cosine-nearest key of each query (exact; chunked matmul; ties go to the lowest key index)."""
    _check(keys, queries)
    key_matrix, query_matrix = unit_rows(keys), unit_rows(queries)
    result = torch.empty(len(queries), dtype=torch.long)
    with torch.inference_mode():
        for start in range(0, len(queries), chunk_size):
            result[start : start + chunk_size] = (query_matrix[start : start + chunk_size] @ key_matrix.T).argmax(1)
    return result.numpy()


def _faiss():
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def nearest_neighbours(
    keys: np.ndarray, queries: np.ndarray, k: int = 5, chunk_size: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """The k cosine-nearest keys of each query, nearest first: (indices (Q, k), cosine similarities (Q, k)).

    Exact either way: chunked matmul in torch, or faiss's flat inner-product index for references of at least
    `FAISS_MIN_KEYS` when faiss is installed.
    """
    _check(keys, queries)
    k = min(k, len(keys))
    key_matrix, query_matrix = unit_rows(keys), unit_rows(queries)
    faiss = _faiss() if len(keys) >= FAISS_MIN_KEYS else None
    if faiss is not None:
        index = faiss.IndexFlatIP(key_matrix.shape[1])
        index.add(key_matrix.numpy())
        similarities, indices = index.search(query_matrix.numpy(), k)
        return indices, similarities
    indices = np.empty((len(queries), k), dtype=np.int64)
    similarities = np.empty((len(queries), k), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(queries), chunk_size):
            values, found = (query_matrix[start : start + chunk_size] @ key_matrix.T).topk(k, dim=1)
            indices[start : start + chunk_size], similarities[start : start + chunk_size] = found.numpy(), values.numpy()
    return indices, similarities
