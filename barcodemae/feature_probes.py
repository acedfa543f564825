"""Representation probes during pretraining: does the frozen feature space improve, not only the loss?

A fixed, seeded subsample of a BIOSCAN-5M-layout file: `train` barcodes as keys, `val` (or `test`) barcodes as
seen-species queries, `val_unseen` (or `test_unseen`) barcodes as unseen-species queries: recipes are chosen on the
validation splits, and the test splits are reported once. At each probe the encoder embeds them (mean pooling, as
the protocol of evaluate_probes.py) and three numbers are reported per pooled layer: species 1-NN of the seen
queries, genus 1-NN of the unseen ones (cosine, against the keys), and the participation ratio of the keys'
embeddings (effective number of dimensions). On the full splits these 1-NN numbers are the protocol's own.
"""

from __future__ import annotations

import numpy as np
import torch

from barcodemae.data import MAX_NUCLEOTIDES, load_splits
from barcodemae.encoders import embed_sequences
from barcodemae.neighbours import nearest_neighbour

PROBE_QUERIES = {"val": ("val", "val_unseen"), "test": ("test", "test_unseen")}  # seen-species, unseen-species queries
PROBE_LAYERS = {"": -1, "_layer0": 0}  # metric suffix -> hidden state (last layer, embedding output)


def participation_ratio(x: np.ndarray) -> float:
    """Effective number of dimensions of a point cloud: (sum of covariance eigenvalues)^2 / sum of their squares."""
    eigenvalues = np.linalg.eigvalsh(np.cov(x, rowvar=False))
    return float(eigenvalues.sum() ** 2 / (eigenvalues**2).sum())


def _sample(rows: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(rows, size, replace=False)) if len(rows) > size else rows


class FeatureProbe:
    """Seconds-long 1-NN probes of an encoder on a fixed subsample (`num_keys` keys, `num_queries` per query set)."""

    def __init__(self, data_file: str, num_keys: int = 4000, num_queries: int = 1000,
                 max_length: int = MAX_NUCLEOTIDES, seed: int = 0, queries: str = "val"):  # fmt: skip
        names = ("train", *PROBE_QUERIES[queries])
        splits = load_splits(data_file, names, max_length=max_length)
        rng = np.random.default_rng(seed)
        train, test, unseen = (splits[name] for name in names)
        keys = _sample(np.flatnonzero((train.labels["species"] != "") & (train.labels["genus"] != "")), num_keys, rng)
        seen = _sample(np.flatnonzero(test.labels["species"] != ""), num_queries, rng)
        novel = _sample(np.flatnonzero(unseen.labels["genus"] != ""), num_queries, rng)
        if not (len(keys) and len(seen) and len(novel)):
            raise ValueError(f"{data_file}: the probes need labelled barcodes in the splits {', '.join(names)}")
        self.sequences = [train.sequences[i] for i in keys] + [test.sequences[i] for i in seen]
        self.sequences += [unseen.sequences[i] for i in novel]
        self.key_species, self.key_genus = train.labels["species"][keys], train.labels["genus"][keys]
        self.seen_species, self.unseen_genus = test.labels["species"][seen], unseen.labels["genus"][novel]
        self.bounds = (len(keys), len(keys) + len(seen))

    def __len__(self) -> int:
        return len(self.sequences)

    def __call__(self, encoder: torch.nn.Module, tokenizer, precision: str = "fp32", batch_size: int = 128) -> dict:
        """Probe metrics of `encoder` (a `BarcodeMAEModel`) at the last layer and (suffix `_layer0`) the embeddings."""
        layers = list(PROBE_LAYERS.values())
        embedded = embed_sequences(encoder, tokenizer, self.sequences, batch_size, layers=layers, precision=precision,
                                   progress=False)  # fmt: skip
        metrics = {}
        for suffix, x in zip(PROBE_LAYERS, embedded):
            metrics.update({f"{name}{suffix}": value for name, value in self.score(x).items()})
        return metrics

    def score(self, x: np.ndarray) -> dict:
        """Probe metrics of embeddings `x` of `self.sequences` (in %; participation ratio in dimensions)."""
        first, second = self.bounds
        keys, seen, unseen = x[:first], x[first:second], x[second:]
        species = self.key_species[nearest_neighbour(keys, seen)] == self.seen_species
        genus = self.key_genus[nearest_neighbour(keys, unseen)] == self.unseen_genus
        return {"probe_species_1nn": round(100 * float(species.mean()), 2),
                "probe_genus_1nn_unseen": round(100 * float(genus.mean()), 2),
                "probe_participation_ratio": round(participation_ratio(keys), 2)}  # fmt: skip
