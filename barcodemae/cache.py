"""Embedding cache: `.npy` arrays + `.json` metadata, keyed by the encoder's `cache_key()` and the sequences."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from barcodemae.encoders import Encoder

EMBEDDING_VERSION = "1"  # bump when the embedding code changes what it computes: invalidates every cache entry


def sequences_hash(sequences: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for sequence in sequences:
        digest.update(sequence.encode())
        digest.update(b"\n")
    return digest.hexdigest()


class EmbeddingCache:
    """One `.npy` + `.json` pair per key in `directory`; `directory=None` caches nothing."""

    def __init__(self, directory: str | os.PathLike | None):
        self.directory = Path(directory) if directory is not None else None

    def key(self, **parts: Any) -> str:
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]

    def load(self, key: str) -> np.ndarray | None:
        if self.directory is None:
            return None
        path = self.directory / f"{key}.npy"
        if not path.exists():
            return None
        try:
            return np.load(path)
        except (OSError, ValueError):
            return None

    def save(self, key: str, array: np.ndarray, metadata: dict) -> None:
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.directory / f"{key}.tmp.npy"
        np.save(temporary, array)
        os.replace(temporary, self.directory / f"{key}.npy")
        (self.directory / f"{key}.json").write_text(json.dumps(metadata, indent=1, default=str))

    def embed_layers(self, encoder: Encoder, sequences: Sequence[str], label: str = "", progress: bool = False) -> np.ndarray:
        """`encoder.embed_layers(sequences)`, from the cache when this encoder has embedded these sequences before."""
        parts = encoder.cache_key()
        key = self.key(**parts, sequences=sequences_hash(sequences), version=EMBEDDING_VERSION)
        array = self.load(key)
        if array is None:
            array = encoder.embed_layers(sequences, progress=f"{encoder.name} {label}".strip() if progress else False)
            self.save(key, array, {"model": encoder.name, "label": label, "n": len(sequences), **parts})
        return array
