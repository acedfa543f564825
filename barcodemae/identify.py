"""Taxonomic assignment of query barcodes from a labelled reference, with a confidence and an abstention per rank.

For each query: its nearest reference barcodes. With the barcodes themselves at hand (the default), the embedding
proposes `candidates` nearest references (cosine, exact) and alignment identity (`barcodemae.alignment`, the
reference's `measure`) ranks them, as BLAST's seeds propose and its alignments decide; without them, cosine
similarity ranks. Per rank, by the `rule` (`RULES`):
- "best" (the default): the call is the label of the best hit with a known label at that rank, at every rank (the
  best hit per rank). Chosen on the shared data's val splits with the reference thinned to 100/50/20/5% of its
  barcodes (benchmarks/bench_densities.py): the best mean over the four densities; it trails the vote only at 100%,
  on the genus of unseen species (75.3 against 78.7, mostly one mislabelled reference barcode the vote outvotes);
- "lca": the same best guess, called only where every hit within `margin` identity of the best hit (with a known
  label at that rank) carries it: the lowest common ancestor of the near-best hits, as BOLD's ID engine, BASTA and
  MEGAN report; an abstention on top of the threshold;
- "vote": species by the best hit, genus and coarser ranks by the largest summed similarity among the `k` nearest
  (the rule before: it helps only where genera have many reference barcodes near the query, and loses about 10
  points of genus at 5% of the reference, where they have few);
- `similarity`: the identity (or cosine) of the nearest neighbour carrying the call; `agreement`: the fraction of the
  `k` nearest (with a known label at that rank) that carry it;
- abstention: no call when `similarity` is below the rank's threshold, calibrated on the reference itself
  (`calibrate_thresholds`): a quantile of how similar a reference barcode is to its nearest relative of the same
  taxon at that rank, but another taxon one rank below (species: another barcode of the same species; genus: a
  barcode of another species of the same genus; ...). A query farther from its best hit than reference barcodes of one
  species usually are from each other gets no species call: a query of an unseen species should get a genus only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from barcodemae.alignment import DEFAULT_MEASURE, identities
from barcodemae.errors import UserError
from barcodemae.neighbours import unit_rows

if TYPE_CHECKING:  # for annotations only: search.references imports this module (`Reference.calibrated`)
    from barcodemae.search.references import Reference

RANKS = ("species", "genus", "family", "order")  # fine to coarse: each rank's calibration looks one rank below
DEFAULT_NEIGHBOURS = 5
DEFAULT_QUANTILE = 0.05
DEFAULT_CANDIDATES = 50  # nearest by embedding, re-ranked by alignment identity (chosen on val_unseen, README)
RULES = ("best", "lca", "vote")
DEFAULT_RULE = "best"  # chosen on the shared data's val splits at four reference densities (bench_densities.py)
DEFAULT_MARGIN = 0.005  # "lca": hits this much less alike than the best hit still have to agree with it
DEFAULT_SPECIES_MATCH = 0.95  # with a relatives embedding: a best hit this alike keeps the first embedding's ranking
DEFAULT_RELATIVES_MODEL = "aa:3"  # proposes the candidates of the other queries: amino-acid 3-mers of the translation
DEFAULT_RELATIVE_CANDIDATES = 25  # proposed by the relatives embedding (all three chosen with compare_retrievers.py)


def _nearest_relative(similarity: torch.Tensor, same: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the largest similarity where `same` holds (-inf where it holds nowhere) and its column."""
    return similarity.masked_fill(~same, float("-inf")).max(1)


def _relative_similarities(
    found: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], sequences: list[str] | None, measure: str
) -> np.ndarray:
    """The finite similarities of (rows, cosine, relative) chunks; with sequences, the alignment identity instead."""
    if not found:
        return np.empty(0)
    rows, cosine, relatives = (torch.cat(parts).numpy() for parts in zip(*found))
    finite = np.isfinite(cosine)
    if sequences is None:
        return cosine[finite]
    pairs = [(sequences[row], sequences[relative]) for row, relative in zip(rows[finite], relatives[finite])]
    return np.array(identities(pairs, measure))


def _related(codes: dict, known: dict, rank: str, rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """(rows x columns) whether a column barcode is a relative of a row barcode at `rank`: the same taxon there,
    another one rank below (both known)."""
    same = (codes[rank][rows, None] == codes[rank][None, columns]) & known[rank][columns][None] & known[rank][rows, None]
    below = RANKS[RANKS.index(rank) - 1] if rank != RANKS[0] else None
    if below in codes:
        same &= (codes[below][rows, None] != codes[below][None, columns]) & known[below][columns][None]
        same &= known[below][rows, None]
    return same


def calibrate_thresholds(
    vectors: np.ndarray, labels: dict[str, np.ndarray], quantile: float = DEFAULT_QUANTILE, sample: int = 2000,
    seed: int = 0, block_cells: int = 1 << 24, sequences: list[str] | None = None, measure: str = DEFAULT_MEASURE,
) -> dict[str, float]:
    """Per rank, the `quantile` of the similarity between a reference barcode and its nearest relative: same taxon at
    this rank, another taxon one rank below (species: any other barcode of the species). `sample` barcodes (seeded)
    are compared with the whole reference, `block_cells` similarities (sample x reference barcodes) at a time: memory
    stays bounded and `vectors` may be memory-mapped. With `sequences`, the relative is the cosine-nearest one and the
    similarity its alignment identity by `measure` (the measure `identify` ranks by then). A rank without any such
    pair gets no threshold (-inf: never abstains).
    """
    labels = {rank: labels[rank] for rank in RANKS if rank in labels}
    codes = {rank: torch.from_numpy(pd.factorize(labels[rank])[0]) for rank in labels}  # "" gets a code too
    known = {rank: torch.from_numpy(np.asarray(labels[rank] != "")) for rank in labels}
    rows = torch.from_numpy(np.random.default_rng(seed).permutation(len(vectors))[:sample])
    queries = unit_rows(vectors[np.sort(rows.numpy())])[torch.argsort(torch.argsort(rows))]
    nearest = {rank: (torch.full((len(rows),), float("-inf")), torch.zeros(len(rows), dtype=torch.long)) for rank in labels}
    block = max(1, block_cells // max(len(rows), 1))
    with torch.inference_mode():
        for start in range(0, len(vectors), block):
            columns = torch.arange(start, min(start + block, len(vectors)))
            similarity = queries @ unit_rows(vectors[start : start + block]).T
            similarity[rows[:, None] == columns[None]] = float("-inf")  # not its own relative
            for rank in labels:
                value, column = _nearest_relative(similarity, _related(codes, known, rank, rows, columns))
                better = value > nearest[rank][0]
                nearest[rank][0][better], nearest[rank][1][better] = value[better], column[better] + start
    thresholds = {}
    for rank, (cosine, relatives) in nearest.items():
        values = _relative_similarities([(rows, cosine, relatives)], sequences, measure)
        thresholds[rank] = float(np.quantile(values, quantile)) if len(values) else float("-inf")
    return thresholds


def _weighted_vote(labels: np.ndarray, similarities: np.ndarray) -> str:
    totals: dict[str, float] = {}
    for label, similarity in zip(labels, similarities):
        totals[label] = totals.get(label, 0.0) + float(similarity)
    return max(totals, key=totals.get)


def _call(labels: np.ndarray, similarities: np.ndarray, k: int, vote: bool, margin: float | None) -> tuple:
    """(call, similarity of its nearest carrier, agreement, whether the hits within `margin` of the best all carry
    it) from one query's ranked neighbours (nearest first); `vote`: the weighted vote of the `k` nearest."""
    known = labels != ""
    if not known.any():
        return "", float("nan"), float("nan"), False
    labels, similarities = labels[known], similarities[known]
    call = _weighted_vote(labels[:k], similarities[:k]) if vote else labels[0]
    carriers = labels == call
    consistent = margin is None or bool(carriers[similarities >= similarities[0] - margin].all())
    return call, float(similarities[carriers][0]), float(carriers[:k].mean()), consistent


def _rank_by_identity(
    reference_sequences: list[str], query_sequences: list[str], candidates: np.ndarray, measure: str, progress: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Each query's candidates ordered by alignment identity (ties keep the embedding's order), with their
    identities."""
    pairs = [(query, reference_sequences[index]) for query, row in zip(query_sequences, candidates) for index in row]
    aligned = np.array(identities(pairs, measure, progress), dtype=np.float32).reshape(candidates.shape)
    order = np.argsort(-aligned, axis=1, kind="stable")
    return np.take_along_axis(candidates, order, 1), np.take_along_axis(aligned, order, 1)


def ranked_neighbours(
    reference: Reference, queries: np.ndarray, query_sequences: list[str] | None = None, n: int = DEFAULT_CANDIDATES,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Each query's `n` cosine-nearest references (indices, similarities), nearest first: with the reference's
    sequences re-ranked by alignment identity (similarities: identities), else by cosine similarity."""
    aligned = reference.sequences is not None
    if aligned and query_sequences is None:
        raise UserError("the reference ranks by alignment identity (it has sequences): give the query sequences too")
    indices, similarities = reference.nearest(queries, n)
    if aligned:
        return _rank_by_identity(reference.sequences, query_sequences, indices, reference.measure, progress)
    return indices, similarities


def assign(
    reference: Reference, indices: np.ndarray, similarities: np.ndarray, k: int = DEFAULT_NEIGHBOURS,
    rule: str = DEFAULT_RULE, margin: float = DEFAULT_MARGIN,
) -> pd.DataFrame:
    """The table of `identify` from each query's ranked neighbours (`ranked_neighbours`; index -1: none)."""
    if rule not in RULES:
        raise UserError(f"the assignment rule must be one of {', '.join(RULES)}, got {rule!r}")
    if not margin >= 0.0:
        raise UserError(f"the margin is a similarity of at least 0, got {margin}")
    columns = {"nearest_reference": indices[:, 0], "nearest_similarity": similarities[:, 0]}
    for rank in RANKS:
        if rank not in reference.labels:
            continue
        vote, within = rule == "vote" and rank != "species", margin if rule == "lca" else None
        calls = [_call(reference.labels[rank][row[row >= 0]], sims[row >= 0], k, vote, within)
                 for row, sims in zip(indices, similarities)]  # fmt: skip
        best_hit, similarity, agreement, consistent = (np.asarray(values) for values in zip(*calls))
        confident = (similarity >= reference.thresholds[rank]) & consistent
        columns[rank] = np.where(confident, best_hit, "")
        columns[f"{rank}_best_hit"] = best_hit
        columns[f"{rank}_similarity"] = similarity
        columns[f"{rank}_agreement"] = agreement
    return pd.DataFrame(columns)


@dataclass
class Relatives:
    """A second embedding of the reference (`reference`: the same barcodes and labels, other vectors) and of the
    queries (`query_vectors`), e.g. amino-acid 3-mers or a learned model's, that proposes `candidates` for each
    query whose best hit is below `species_match`."""

    reference: Reference
    query_vectors: np.ndarray
    candidates: int = DEFAULT_RELATIVE_CANDIDATES
    species_match: float = DEFAULT_SPECIES_MATCH


def prefer_species_matches(
    reference: Reference, ranked: tuple[np.ndarray, np.ndarray], relatives: Relatives, query_sequences: list[str],
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Each query's `ranked` neighbours (`ranked_neighbours`) where its best hit is at least `relatives.species_match`
    alike (a species-level match), else the `relatives.candidates` that the relatives embedding proposes, ranked by
    alignment identity in the same way; as wide as `ranked` (a row with fewer ends in index -1, similarity -inf).

    On the shared insect data's validation splits at four reference densities, 6-mer candidates with 25 of amino-acid
    3-mers' (`DEFAULT_RELATIVES_MODEL`) for the rest found the genus of species missing from the reference 2.2-7.5
    points more often than 6-mers alone, the family 2.9-6.8, and the species of species present as often or more
    (benchmarks/compare_retrievers.py, results/densities/val_retrievers_aa3*.log)."""
    if reference.sequences is None or relatives.reference.sequences is None:
        raise UserError("a relatives embedding needs the reference's barcodes (ranking by alignment identity)")
    if relatives.candidates < 1:
        raise UserError(f"the number of relative candidates must be at least 1, got {relatives.candidates}")
    distant = np.flatnonzero(ranked[1][:, 0] < relatives.species_match)
    if not len(distant):
        return ranked
    found = ranked_neighbours(relatives.reference, relatives.query_vectors[distant],
                              [query_sequences[row] for row in distant], relatives.candidates, progress)  # fmt: skip
    return with_rows_replaced(ranked, distant, found)


def with_rows_replaced(
    ranked: tuple[np.ndarray, np.ndarray], rows: np.ndarray, found: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """A copy of `ranked` (indices, similarities) whose `rows` are `found` instead, cut to its width; a row of fewer
    ends in index -1, similarity -inf ("no neighbour")."""
    indices, similarities = (array.copy() for array in ranked)
    width = min(found[0].shape[1], indices.shape[1])
    indices[rows], similarities[rows] = -1, -np.inf
    indices[rows, :width], similarities[rows, :width] = (array[:, :width] for array in found)
    return indices, similarities


def identify(
    reference: Reference, queries: np.ndarray, k: int = DEFAULT_NEIGHBOURS, query_sequences: list[str] | None = None,
    candidates: int = DEFAULT_CANDIDATES, progress: bool = False, rule: str = DEFAULT_RULE,
    margin: float = DEFAULT_MARGIN, relatives: Relatives | None = None,
) -> pd.DataFrame:
    """One row per query: per rank the call ("" = abstained), best_hit (the call before abstention), similarity,
    agreement; plus the nearest reference index and its similarity. `rule` and `margin`: see the module.

    A reference with sequences (thresholds in alignment identity) ranks the `max(candidates, k)` cosine-nearest
    references of each query by alignment identity, so it needs the `query_sequences` and `candidates >= 1`; a
    reference without (thresholds in cosine similarity) ranks them by cosine similarity. `relatives`: a second
    embedding that proposes the candidates of queries without a species-level match (`prefer_species_matches`).
    """
    if k < 1:
        raise UserError(f"the number of neighbours must be at least 1, got {k}")
    if reference.sequences is not None and candidates < 1:
        raise UserError(f"the number of candidates must be at least 1, got {candidates}")
    ranked = ranked_neighbours(reference, queries, query_sequences, max(candidates, k), progress)
    if relatives is not None:
        ranked = prefer_species_matches(reference, ranked, relatives, query_sequences, progress)
    return assign(reference, *ranked, k, rule, margin)
