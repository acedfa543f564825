"""BIN-like clusters without a cluster count.

`identity_clusters`: single linkage on alignment identity: each barcode's `candidates` cosine-nearest barcodes are
aligned to it and pairs at least `identity` alike are joined; clusters are the connected components. With
`average_up_to` (20 by default, as in `barcodemae cluster`), each component of at most that many barcodes is then split
by average linkage on all its pairwise identities, cut at `identity`, and the split is kept where its mean silhouette
is above `least_silhouette` (0.6), as BOLD's RESL accepts a refinement of single linkage by its silhouette. Single
linkage chains: two BINs joined by one barcode alike both become one cluster. Where BINs are sampled by a few barcodes
each, such chains are most of its errors, and greedy centroids (VSEARCH) beat it; in a well-sampled BIN, chaining is
what joins its diverse barcodes, and centroids split it. Large components are such BINs, small ones mostly the chains,
so average linkage splits only the small ones, and only into groups clearly apart (chosen on validation sets of every
sampling density, benchmarks/bench_cluster_refinements.py).

`centroid_clusters`: greedy centroid clustering on alignment identity, as VSEARCH's `--cluster_size` /
`--cluster_fast` and UCLUST do: barcodes in order of decreasing abundance (identical barcodes counted), then length;
each joins the most alike centroid at least `identity` alike among its candidate centroids, else becomes a centroid
itself. Candidate centroids: the `candidates` centroids nearest to it by cosine similarity (the embedding proposes,
identity decides; VSEARCH's k-mer prefilter ranks the centroids likewise). No chaining: every member is at least
`identity` alike its centroid. Within 1 AMI point of VSEARCH at the same identity on those sets.

`threshold_clusters`: single or average linkage on cosine distance, cut at a threshold. Exact and in bounded memory:
two barcodes can only end in one average-linkage cluster if a chain of pairs closer than the threshold joins them
(each merge joins clusters with a mean distance below it, so with at least one such pair). So the barcodes are first
split into the connected components of the "closer than the threshold" graph (chunked similarity products), then
each component is clustered on its own (scipy's average linkage). Single linkage is the components themselves.

`bootstrap_ami_differences`: how sure a difference in AMI between two clusterings of the same barcodes is (a paired
bootstrap over the true groups; benchmarks/bench_densities.py prints its 95% interval beside every row).
"""

from __future__ import annotations

import numpy as np
import torch

from barcodemae.alignment import DEFAULT_MEASURE, identities, identity_measure
from barcodemae.errors import UserError
from barcodemae.neighbours import nearest_neighbours, unit_rows

LINKAGES = ("single", "average")
DEFAULT_LINKAGE = "single"
DEFAULT_THRESHOLD = 0.1  # cosine distance; chosen on the shared data's val splits with kmer:6 (bench_identify.py)
DEFAULT_CLUSTER_CANDIDATES = 20
METHODS = ("average", "single", "centroid")
# chosen with kmer:6 on ten validation sets of every sampling density (benchmarks/bench_cluster_refinements.py)
DEFAULT_METHOD, DEFAULT_IDENTITY, DEFAULT_AVERAGE_UP_TO, DEFAULT_LEAST_SILHOUETTE = "average", 0.98, 20, 0.6
ORDERS = ("abundance", "length")


def joined_components(rows: np.ndarray, columns: np.ndarray, size: int) -> np.ndarray:
    """Component number of each of `size` nodes of the undirected graph with the edges `rows[k]`-`columns[k]`."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, columns)), shape=(size, size))
    return connected_components(graph, directed=False)[1]


def _check_identity_clustering(vectors: np.ndarray, identity: float, candidates: int) -> None:
    if not 0.0 < identity <= 1.0:
        raise UserError(f"the clustering identity is a fraction between 0 and 1, got {identity}")
    if candidates < 1:
        raise UserError(f"the number of candidates must be at least 1, got {candidates}")
    if len(vectors) == 0:
        raise UserError("nothing to cluster: no barcodes")


def candidate_pairs(vectors: np.ndarray, candidates: int) -> list[tuple[int, int]]:
    """The pairs (i < j, sorted) in which one barcode is among the other's `candidates` cosine-nearest barcodes."""
    neighbours, _ = nearest_neighbours(vectors, vectors, candidates + 1)
    return sorted({(min(row, column), max(row, column)) for row in range(len(neighbours))
                   for column in neighbours[row].tolist() if column != row})  # fmt: skip


def identity_clusters(
    vectors: np.ndarray, sequences: list[str], identity: float = DEFAULT_IDENTITY,
    candidates: int = DEFAULT_CLUSTER_CANDIDATES, progress: bool = False, measure: str = DEFAULT_MEASURE,
    average_up_to: int = DEFAULT_AVERAGE_UP_TO, least_silhouette: float = DEFAULT_LEAST_SILHOUETTE,
) -> np.ndarray:
    """Cluster number (0.., in order of first appearance) of each barcode: single linkage on alignment identity
    (`measure`) over each barcode's `candidates` (at least 1) cosine-nearest barcodes (`vectors` propose, identity
    decides). `average_up_to`: each component of 3 to that many barcodes is then split by average linkage on all
    its pairwise identities (two groups stay joined while on average at least `identity` alike), a split kept where
    its mean silhouette is above `least_silhouette` (-1: every split); larger ones stay whole; 0: single linkage
    alone."""
    _check_identity_clustering(vectors, identity, candidates)
    identity_measure(measure)  # an unknown measure fails before the neighbour search
    pairs = candidate_pairs(vectors, candidates)
    alike = identities([(sequences[row], sequences[column]) for row, column in pairs], measure, progress)
    joined = [pair for pair, value in zip(pairs, alike) if value >= identity]
    rows, columns = np.array(joined, dtype=np.int64).reshape(-1, 2).T
    components = joined_components(rows, columns, len(vectors))
    if average_up_to >= 3:
        known = dict(zip(pairs, alike))
        components = split_by_average_linkage(components, sequences, identity, measure, average_up_to, known, progress,
                                              least_silhouette)  # fmt: skip
    return _by_first_appearance(components)


def split_by_average_linkage(
    components: np.ndarray, sequences: list[str], identity: float, measure: str, largest: int, known: dict,
    progress: bool, least_silhouette: float = DEFAULT_LEAST_SILHOUETTE,
) -> np.ndarray:
    """`components` with each one of 3 to `largest` barcodes split by average linkage on identity, cut at
    `identity`, where the split's mean silhouette is above `least_silhouette`; `known`: {(i, j): identity} of the
    pairs aligned already, completed here."""
    from scipy.cluster.hierarchy import fcluster, linkage

    local = np.zeros(len(components), dtype=np.int64)
    for group in small_components(components, sequences, measure, largest, known, progress):
        pairs = [(first, second) for at, first in enumerate(group) for second in group[at + 1 :]]  # condensed order
        distances = np.array([1.0 - known[pair] for pair in pairs])
        split = fcluster(linkage(distances, method="average"), t=1.0 - identity + 1e-9, criterion="distance") - 1
        if split.max() > 0 and mean_silhouette(distances, split) > least_silhouette:
            local[group] = split
    return components * largest + local  # local < the component's size <= largest


def mean_silhouette(distances: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette (Rousseeuw 1987) of a partition of at least 2 groups, on condensed `distances`; a member alone
    in its group scores 0."""
    from scipy.spatial.distance import squareform
    from sklearn.metrics import silhouette_score

    if labels.max() + 1 == len(labels):  # every member alone
        return 0.0
    return float(silhouette_score(squareform(distances), labels, metric="precomputed"))


def small_components(
    components: np.ndarray, sequences: list[str], measure: str, largest: int, known: dict, progress: bool,
) -> list[list[int]]:
    """The members (ascending) of each component of 3 to `largest` barcodes, with `known` ({(i, j): identity}, i < j)
    completed to all pairs within them: the pairs not aligned yet are aligned here, in one batch."""
    groups = [group.tolist() for group in members_by_label(components) if 3 <= len(group) <= largest]
    within = {(first, second) for group in groups for at, first in enumerate(group) for second in group[at + 1 :]}
    missing = sorted(within - known.keys())
    if missing:
        known.update(zip(missing, identities([(sequences[a], sequences[b]) for a, b in missing], measure, progress)))
    return groups


def members_by_label(labels: np.ndarray) -> list[np.ndarray]:
    """The indices holding each label 0..max(labels) (non-negative integers), each in ascending order."""
    return np.split(np.argsort(labels, kind="stable"), np.cumsum(np.bincount(labels))[:-1])


def centroid_clusters(
    vectors: np.ndarray, sequences: list[str], identity: float = DEFAULT_IDENTITY,
    candidates: int = DEFAULT_CLUSTER_CANDIDATES, progress: bool = False, measure: str = DEFAULT_MEASURE,
    order: str = "abundance", abundances: np.ndarray | None = None, block_size: int = 256,
) -> np.ndarray:
    """Cluster number (0.., in order of first appearance) of each barcode: greedy centroid clustering on alignment
    identity (`measure`; see the module): each barcode is aligned to its `candidates` cosine-nearest centroids.
    `order`: "abundance" (`abundances`, default: how often each barcode occurs in `sequences`; ties by length) or
    "length" (VSEARCH's `--cluster_fast`), longest first; remaining ties keep the input order. Identical barcodes
    always share a cluster and are aligned once. `block_size` barcodes are compared with the centroids in one matrix
    product (the result does not depend on it)."""
    _check_identity_clustering(vectors, identity, candidates)
    if order not in ORDERS:
        raise UserError(f"the clustering order must be one of {', '.join(ORDERS)}, got {order!r}")
    from tqdm.auto import tqdm

    distinct, first, inverse, counts = np.unique(np.asarray(sequences, dtype=object), return_index=True,
                                                 return_inverse=True, return_counts=True)  # fmt: skip
    if abundances is not None:
        counts = np.bincount(inverse, weights=np.asarray(abundances, dtype=np.float64))
    lengths = np.array([len(sequence) for sequence in distinct])
    rank = np.lexsort((first, -lengths, -counts) if order == "abundance" else (first, -lengths))
    unit, ranked = unit_rows(vectors[first[rank]]), distinct[rank]  # in processing order from here
    centroid = np.full(len(rank), -1)
    centroids: list[int] = []
    blocks = tqdm(range(0, len(rank), block_size), desc="clustering", unit="block", leave=False, disable=not progress)
    for start in blocks:
        block = unit[start : start + block_size]
        with torch.inference_mode():
            earlier = block @ unit[centroids].T if centroids else torch.empty(len(block), 0)
            top_similarities, top = earlier.topk(min(candidates, len(centroids)), dim=1)
            within = block @ block.T
        founded: list[int] = []  # centroids founded in this block so far
        for row in range(len(block)):
            proposed = list(zip(top_similarities[row].tolist(), (centroids[index] for index in top[row].tolist())))
            proposed += [(float(within[row, other - start]), other) for other in founded]
            proposed = sorted(proposed, key=lambda pair: -pair[0])[:candidates]
            alike = identities([(ranked[start + row], ranked[other]) for _, other in proposed], measure)
            scored = list(zip(alike, (other for _, other in proposed)))
            best = max(scored, default=(-1.0, -1), key=lambda pair: pair[0])
            if best[0] >= identity:
                centroid[start + row] = best[1]
            else:
                centroid[start + row] = start + row
                founded.append(start + row)
        centroids += founded
    by_distinct = np.empty(len(rank), dtype=np.int64)
    by_distinct[rank] = centroid
    return _by_first_appearance(by_distinct[inverse])


def _components(unit: torch.Tensor, threshold: float, chunk_size: int) -> np.ndarray:
    """Connected components of the graph joining pairs with cosine distance below `threshold`."""
    rows, columns = [], []
    with torch.inference_mode():
        for start in range(0, len(unit), chunk_size):
            close = (unit[start : start + chunk_size] @ unit.T) > 1.0 - threshold
            row, column = torch.nonzero(close, as_tuple=True)
            rows.append(row.numpy() + start)
            columns.append(column.numpy())
    return joined_components(np.concatenate(rows), np.concatenate(columns), len(unit))


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


def bootstrap_ami_differences(
    truth: np.ndarray, clusters: np.ndarray, others: list[np.ndarray], draws: int, seed: int = 0,
) -> np.ndarray:
    """AMI(truth, clusters) - AMI(truth, other) for each of `others` (integer cluster numbers, like `clusters`), on
    `draws` paired bootstrap resamplings of the true groups (e.g. BINs): groups are drawn with replacement and every
    copy of a group is a group of its own, with its own copies of the clusters, so a merge of two groups counts only
    where both are drawn (once per copy they share). Shape (draws, len(others)); seeded."""
    from sklearn.metrics import adjusted_mutual_info_score

    groups = np.unique(np.asarray(truth), return_inverse=True)[1]
    members, sizes = members_by_label(groups), np.bincount(groups)
    rng, differences = np.random.default_rng(seed), np.empty((draws, len(others)))
    for draw in range(draws):
        drawn = np.sort(rng.integers(0, len(members), len(members)))
        copy = np.arange(len(drawn)) - np.searchsorted(drawn, drawn)  # how many times drawn before
        rows = np.concatenate([members[group] for group in drawn])
        copies = np.repeat(copy, sizes[drawn])

        def copied(labels: np.ndarray) -> np.ndarray:  # each drawn copy's labels apart from the other copies'
            return labels[rows] * len(drawn) + copies

        resampled = copied(groups)
        ours = adjusted_mutual_info_score(resampled, copied(clusters))
        for column, other in enumerate(others):
            differences[draw, column] = ours - adjusted_mutual_info_score(resampled, copied(other))
    return differences
