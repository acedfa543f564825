"""Refinements of single linkage on identity that might split over-merged components, beside VSEARCH (issue 18).

    # choose (validation parts only: main val + val_unseen, the Gulf and Canadian validation halves)
    OMP_NUM_THREADS=1 python benchmarks/bench_cluster_refinements.py \\
        --data_file ../shared/data/bold_insecta_coi.csv.gz --extra_dir ../shared/data/extra
    python benchmarks/bench_cluster_refinements.py                # the bundled fixture only, in seconds

The sets, barcodes, abundances and 6-mer candidates are those of bench_densities.py's clustering mode. Each set's
candidate pairs (a barcode among the other's 20 cosine-nearest) are aligned once (overlap identity, the default);
at each identity every method clusters the graph of the pairs at least that alike:
- `single`: its connected components (`barcodemae cluster`'s default);
- `mcl`: each component refined by Markov clustering (van Dongen), as BOLD's RESL refines single linkage for BINs:
  edges weighted by identity, self-loops at each node's strongest edge, expansion 2, `inflation`; a component's
  clusters are the barcodes drawn to the same attractors;
- `bridges`: the edges below identity + `delta`, weakest first, are cut when cutting one disconnects its component
  into two parts of at least `m` barcodes each;
- `mutual`: only the pairs in which each barcode is among the other's `m` most alike (of its pairs above the
  identity) are joined;
- `centroids within components`: each component of at most `S` barcodes is re-clustered by greedy centroids
  (`centroid_clusters`: most abundant first, same identity and candidates), larger ones are kept;
- `average within components`: each component of at most `S` barcodes is split by average linkage on all its
  pairwise identities, cut at the identity, larger ones are kept (every split kept: `--least_silhouette -1`);
- `average within components <= S, silhouette > s`: the same, but a component's split is kept only where its mean
  silhouette (Rousseeuw 1987, on 1 - identity; a barcode alone in its group scores 0) is above `s`, as RESL accepts
  a refinement of single linkage by its silhouette; others stay whole (`barcodemae cluster`'s default: S 20, s 0.6);
- `minimax within components`: the same with minimax linkage (Bien & Tibshirani 2011): two groups are joined while
  one of their barcodes (a prototype) is at least the identity alike every other, VSEARCH's centroid guarantee
  without its greedy order.
The sets: the three of bench_densities.py (the main file's pooled validation splits, the validation halves of the
Gulf and Canadian sets), and, as the main file's validation splits sample most BINs densely, seven drawn from the
main file's `train` split at other sampling densities (`train_subsets`: seeded random BINs, at most 2-30 barcodes of
each). Printed first, per set and identity: where single linkage merges BINs (`diagnosis`). Per method: clusters · AMI
(x100, against BINs) of each set, their mean, and on how many sets it is at least both VSEARCH `--cluster_fast` and
`--cluster_size` (same identity, same barcodes). The default is the method and identity at least as good as VSEARCH
on the most sets, then with the highest mean.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_densities import clustering_set, clustering_sets, extra_sets
from bench_identify import have, vsearch_clusters
from machine import cpu_description  # the benchmarks folder is on sys.path when run as a script

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from barcodemae.alignment import overlap_identity  # noqa: E402
from barcodemae.clustering import (  # noqa: E402
    DEFAULT_CLUSTER_CANDIDATES, candidate_pairs, centroid_clusters, joined_components, small_components,
    split_by_average_linkage,
)
from barcodemae.data import FIXTURE  # noqa: E402
from barcodemae.encoders import load_encoder  # noqa: E402


def single(size: int, pairs: np.ndarray, alike: np.ndarray, identity: float) -> np.ndarray:
    return joined_components(*pairs[alike >= identity].T, size)


def markov(weights: np.ndarray, inflation: float, steps: int = 200) -> np.ndarray:
    """Cluster of each node of one component (`weights`: symmetric, zero diagonal) by Markov clustering."""
    weights = weights + np.diag(weights.max(axis=0))
    flow = weights / weights.sum(axis=0)
    for _ in range(steps):
        previous, flow = flow, np.linalg.matrix_power(flow, 2) ** inflation
        flow[flow < 1e-9] = 0.0
        flow /= flow.sum(axis=0)
        if np.abs(flow - previous).max() < 1e-9:
            break
    return joined_components(np.arange(len(flow)), flow.argmax(axis=0), len(flow))  # node - attractor


def mcl(size: int, pairs: np.ndarray, alike: np.ndarray, identity: float, inflation: float) -> np.ndarray:
    joined, weight = pairs[alike >= identity], alike[alike >= identity]
    components, labels, offset = joined_components(*joined.T, size), np.empty(size, dtype=np.int64), 0
    for component in range(components.max() + 1):
        members = np.flatnonzero(components == component)
        local = np.zeros(len(members), dtype=np.int64)
        if len(members) > 2:
            inside = components[joined[:, 0]] == component
            rows, columns = np.searchsorted(members, joined[inside].T)
            weights = np.zeros((len(members), len(members)))
            weights[rows, columns] = weights[columns, rows] = weight[inside]
            local = markov(weights, inflation)
        labels[members] = local + offset
        offset += local.max() + 1
    return labels


def bridges(size: int, pairs: np.ndarray, alike: np.ndarray, identity: float, m: int, delta: float) -> np.ndarray:
    joined, weight = pairs[alike >= identity], alike[alike >= identity]
    kept = np.ones(len(joined), dtype=bool)
    for edge in np.argsort(weight, kind="stable"):
        if weight[edge] >= identity + delta:
            break
        kept[edge] = False
        parts = joined_components(*joined[kept].T, size)
        first, second = parts[joined[edge]]
        kept[edge] = first == second or min((parts == first).sum(), (parts == second).sum()) < m
    return joined_components(*joined[kept].T, size)


def mutual(size: int, pairs: np.ndarray, alike: np.ndarray, identity: float, m: int) -> np.ndarray:
    joined, weight = pairs[alike >= identity], alike[alike >= identity]
    ranked = [[] for _ in range(size)]
    for (first, second), value in zip(joined.tolist(), weight.tolist()):
        ranked[first].append((-value, second))
        ranked[second].append((-value, first))
    best = [{other for _, other in sorted(row)[:m]} for row in ranked]
    both = np.array([second in best[first] and first in best[second] for first, second in joined.tolist()], dtype=bool)
    return joined_components(*joined[both].reshape(-1, 2).T, size)


def centroids_within(components: np.ndarray, barcodes: tuple, identity: float, small: int) -> np.ndarray:
    """`components` with each one of 3 to `small` barcodes re-clustered by greedy centroids; `barcodes`: (vectors,
    sequences, abundances). Components of 2 are joined at `identity` already, so centroids keep them whole."""
    vectors, sequences, abundances = barcodes
    counts, local = np.bincount(components), np.zeros(len(components), dtype=np.int64)
    for component in np.flatnonzero((counts > 2) & (counts <= small)):
        members = np.flatnonzero(components == component)
        local[members] = centroid_clusters(vectors[members], [sequences[member] for member in members], identity,
                                           abundances=abundances[members])  # fmt: skip
    return components * small + local  # local < the component's size <= small


def average_within(components: np.ndarray, barcodes: tuple, identity: float, small: int, known: dict,
                   least: float) -> np.ndarray:  # fmt: skip
    """`components` with each one of 3 to `small` barcodes split by average linkage, each split kept where its mean
    silhouette is above `least` (`known`: the identities aligned so far, completed in place)."""
    return split_by_average_linkage(components, barcodes[1], identity, "overlap", small, known, False, least)


def minimax_linkage(distances: np.ndarray, cut: float) -> np.ndarray:
    """Cluster of each item: agglomerative minimax linkage on `distances` (square), merging while some member of the
    merged group is within `cut` of all its members."""
    groups = [[item] for item in range(len(distances))]
    radii = distances + np.diag(np.full(len(distances), np.inf))
    while len(groups) > 1 and radii.min() <= cut:
        first, second = sorted(np.unravel_index(np.argmin(radii), radii.shape))
        groups[first] += groups.pop(second)
        radii = np.delete(np.delete(radii, second, 0), second, 1)
        for other in range(len(groups)):
            if other != first:
                joined = groups[first] + groups[other]
                radii[first, other] = radii[other, first] = distances[np.ix_(joined, joined)].max(1).min()
    labels = np.empty(len(distances), dtype=np.int64)
    for label, group in enumerate(groups):
        labels[group] = label
    return labels


def minimax_within(components: np.ndarray, barcodes: tuple, identity: float, small: int, known: dict) -> np.ndarray:
    """`components` with each one of 3 to `small` barcodes split by minimax linkage on all its pairwise identities
    (`known` completed in place)."""
    local = np.zeros(len(components), dtype=np.int64)
    for group in small_components(components, barcodes[1], "overlap", small, known, False):
        alike = np.array([[known[min(a, b), max(a, b)] if a != b else 1.0 for b in group] for a in group])
        local[group] = minimax_linkage(1.0 - alike, 1.0 - identity + 1e-9)
    return components * small + local


# (at most so many barcodes of each BIN, BINs drawn, seed)
TRAIN_SUBSETS = ((2, 1000, 1), (3, 800, 2), (5, 600, 3), (10, 300, 4), (30, 120, 5), (3, 800, 6), (10, 300, 7))


def train_subsets(path: Path) -> list[tuple[str, list[str], np.ndarray, np.ndarray]]:
    """(name, barcodes, BINs, abundances) of each of `TRAIN_SUBSETS` drawn from the `train` split of `path`."""
    sequences, bins, sizes = clustering_set(path, ["train"])
    members: dict[str, list[int]] = {}
    for index, bin_uri in enumerate(bins.tolist()):
        members.setdefault(bin_uri, []).append(index)
    subsets = []
    for most, drawn, seed in TRAIN_SUBSETS:
        rng = np.random.default_rng(seed)
        chosen = [rng.permutation(members[bin_uri])[:most] for bin_uri in rng.permutation(sorted(members))[:drawn]]
        kept = np.sort(np.concatenate(chosen))
        subsets.append((f"train <={most}/BIN s{seed}", [sequences[index] for index in kept], bins[kept], sizes[kept]))
    return subsets


def vsearch_identities(sequences: list[str], lowest: float, folder: Path) -> dict:
    """{(i, j): VSEARCH's identity (its default definition)} of the pairs at least `lowest` alike (--allpairs_global)."""
    (folder / "all.fa").write_text("".join(f">{index}\n{sequence}\n" for index, sequence in enumerate(sequences)))
    subprocess.run(["vsearch", "--allpairs_global", str(folder / "all.fa"), "--id", str(lowest), "--threads", "1",
                    "--userout", str(folder / "pairs.tsv"), "--userfields", "query+target+id", "--quiet"],
                   check=True, capture_output=True)  # fmt: skip
    found = {}
    for line in (folder / "pairs.tsv").read_text().splitlines():
        first, second, identity = line.split("\t")
        found[min(int(first), int(second)), max(int(first), int(second))] = float(identity) / 100
    return found


def diagnosis(bins: np.ndarray, pairs: np.ndarray, alike: np.ndarray, identity: float, theirs: dict) -> str:
    """Where single linkage merges BINs at `identity`: its components holding several BINs (their sizes), and the
    candidate pairs on the other side of `identity` by VSEARCH's identity than by ours (in two BINs / all)."""
    components = single(len(bins), pairs, alike, identity)
    sizes = sorted(int((components == component).sum()) for component in set(components.tolist())
                   if len(set(bins[components == component])) > 1)  # fmt: skip
    ours_only = [(first, second) for (first, second), value in zip(pairs.tolist(), alike)
                 if value >= identity > theirs.get((first, second), 0.0)]  # fmt: skip
    across = sum(bins[first] != bins[second] for first, second in ours_only)
    return (f"{len(sizes)} components hold several BINs (sizes {min(sizes, default=0)}-{max(sizes, default=0)}, "
            f"median {np.median(sizes) if sizes else 0:g}); {len(ours_only)} pairs joined at {identity} by our "
            f"identity and not by VSEARCH's ({across} across BINs)")  # fmt: skip


METHODS = [("single", single, {})]
METHODS += [(f"mcl inflation {inflation}", mcl, {"inflation": inflation}) for inflation in (1.2, 1.4, 2.0)]
METHODS += [(f"bridges m {m}, delta {delta}", bridges, {"m": m, "delta": delta})
            for m in (2, 3, 5) for delta in (0.0025, 0.005, 0.01)]  # fmt: skip
METHODS += [(f"mutual m {m}", mutual, {"m": m}) for m in (3, 5, 10)]
SMALL_COMPONENTS = (3, 4, 6, 8, 12)
# (largest component split, least silhouette a split must exceed: -1 keeps every split)
AVERAGED_COMPONENTS = [(small, -1.0) for small in (10, 15, 20, 30)]
AVERAGED_COMPONENTS += [(small, least) for small in (20, 30) for least in (0.5, 0.6, 0.7)]
MINIMAX_COMPONENTS = (10, 20, 50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_file", default=str(FIXTURE), help="the main file (BIOSCAN-5M layout)")
    parser.add_argument("--extra_dir", default=None, help="../shared/data/extra; default: none")
    parser.add_argument("--phase", choices=("val", "test"), default="val")
    parser.add_argument("--identities", type=float, nargs="+", default=[0.97, 0.975, 0.98, 0.985])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from sklearn.metrics import adjusted_mutual_info_score

    print(f"data {args.data_file}, extra {args.extra_dir}, phase {args.phase}; kmer:6, "
          f"{DEFAULT_CLUSTER_CANDIDATES} candidates, overlap identity; CPU {cpu_description()}, 1 thread", flush=True)  # fmt: skip
    encoder, found = load_encoder("kmer:6"), {}
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        clustering = extra_sets(Path(args.extra_dir), folder, args.seed)[1] if args.extra_dir else {}
        sets = [(name, *clustering_set(path, names)) for name, path, names in clustering_sets(args, clustering)]
        sets += train_subsets(Path(args.data_file)) if args.phase == "val" else []
        for name, sequences, bins, sizes in sets:
            vectors = encoder.embed(sequences)
            pairs = np.array(candidate_pairs(vectors, DEFAULT_CLUSTER_CANDIDATES), dtype=np.int64)
            alike = np.array([overlap_identity(sequences[first], sequences[second]) for first, second in pairs])
            print(f"{name}: {len(sequences)} barcodes, {len(set(bins))} BINs, {len(pairs)} candidate pairs", flush=True)
            known = dict(zip(map(tuple, pairs.tolist()), alike.tolist()))
            theirs = vsearch_identities(sequences, min(args.identities) - 0.02, folder) if have("vsearch") else None
            for identity in args.identities if theirs is not None else ():
                print(f"  single linkage at {identity}: {diagnosis(bins, pairs, alike, identity, theirs)}", flush=True)
            for identity in args.identities:
                components, barcodes = single(len(sequences), pairs, alike, identity), (vectors, sequences, sizes)
                rows = [(method, cluster(len(sequences), pairs, alike, identity, **options))
                        for method, cluster, options in METHODS]  # fmt: skip
                rows += [(f"centroids within components <= {small}", centroids_within(components, barcodes, identity,
                                                                                     small))
                         for small in SMALL_COMPONENTS]  # fmt: skip
                rows += [(f"average within components <= {small}" + (f", silhouette > {least}" if least > -1 else ""),
                          average_within(components, barcodes, identity, small, known, least))
                         for small, least in AVERAGED_COMPONENTS]  # fmt: skip
                rows += [(f"minimax within components <= {small}", minimax_within(components, barcodes, identity,
                                                                                 small, known))
                         for small in MINIMAX_COMPONENTS]  # fmt: skip
                rows += [(f"VSEARCH {command}", vsearch_clusters(sequences, identity, folder, command, sizes)[0])
                         for command in (("--cluster_fast", "--cluster_size") if have("vsearch") else ())]  # fmt: skip
                for method, clusters in rows:
                    found[identity, method, name] = (len(np.unique(clusters)),
                                                     100 * adjusted_mutual_info_score(bins, clusters))  # fmt: skip
    names = [name for name, *_ in sets]
    for identity in args.identities:
        print(f"\nidentity {identity} (clusters, AMI)\n| method | {' | '.join(names)} | mean AMI | >= VSEARCH |\n"
              f"|---|{'---:|' * len(names)}---:|---|")  # fmt: skip
        for method in dict.fromkeys(key[1] for key in found if key[0] == identity):
            cells = [found[identity, method, name] for name in names]
            tools = [found.get((identity, f"VSEARCH {command}", name), (0, np.inf))[1]
                     for name in names for command in ("--cluster_fast", "--cluster_size")]  # fmt: skip
            wins = sum(cell[1] >= max(tools[2 * i : 2 * i + 2]) for i, cell in enumerate(cells))
            print(f"| {method} | {' | '.join(f'{count} · {ami:.2f}' for count, ami in cells)} | "
                  f"{np.mean([cell[1] for cell in cells]):.2f} | {wins}/{len(cells)} |")  # fmt: skip


if __name__ == "__main__":
    main()
