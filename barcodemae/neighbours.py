"""Exact cosine nearest neighbours: chunked matrix products in torch, over keys read a block at a time (bounded memory,
memory-mapped float16 keys welcome)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from barcodemae.errors import UserError

BLOCK_CELLS = 1 << 26  # key values (rows x dims) searched at a time: 256 MiB as float32


def unit_rows(x: np.ndarray) -> torch.Tensor:
    """The rows of `x` scaled to unit length, as a float32 tensor (a zero row stays zero; `x` itself untouched, a
    read-only memory map too)."""
    array = np.ascontiguousarray(x, dtype=np.float32)
    return F.normalize(torch.from_numpy(array if array.flags.writeable else array.copy()), dim=1)


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


def _top_k(keys: torch.Tensor, queries: torch.Tensor, k: int, chunk_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest dot products of each query row with the key rows: (indices, values), largest first."""
    indices = np.empty((len(queries), k), dtype=np.int64)
    similarities = np.empty((len(queries), k), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(queries), chunk_size):
            values, found = (queries[start : start + chunk_size] @ keys.T).topk(k, dim=1)
            indices[start : start + chunk_size], similarities[start : start + chunk_size] = found.numpy(), values.numpy()
    return indices, similarities


def nearest_neighbours(
    keys: np.ndarray, queries: np.ndarray, k: int = 5, chunk_size: int = 1024, block_cells: int = BLOCK_CELLS
) -> tuple[np.ndarray, np.ndarray]:
    """The k cosine-nearest keys of each query, nearest first: (indices (Q, k), cosine similarities (Q, k)). Exact.

    `keys` may be memory-mapped and in float16: they are read, as float32 unit rows, `block_cells` values (rows x
    dims) at a time, so memory stays bounded whatever their number; each block's k nearest are merged (ties: the
    lower key index first).
    """
    _check(keys, queries)
    k = min(k, len(keys))
    query_matrix = unit_rows(queries)
    block = max(k, block_cells // max(keys.shape[1], 1))
    if len(keys) <= block:
        return _top_k(unit_rows(keys), query_matrix, k, chunk_size)
    found = [_top_k(unit_rows(keys[start : start + block]), query_matrix, min(k, len(keys) - start), chunk_size)
             for start in range(0, len(keys), block)]  # fmt: skip
    indices = np.concatenate([part + start for (part, _), start in zip(found, range(0, len(keys), block))], axis=1)
    similarities = np.concatenate([values for _, values in found], axis=1)
    order = np.argsort(-similarities, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(indices, order, 1), np.take_along_axis(similarities, order, 1)
