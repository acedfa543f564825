"""`identify` and `cluster` across data sets and reference densities, beside BLAST and VSEARCH on the same barcodes.

    # choose (the main file's val splits only, at every density; clustering: the validation half of each BIN set)
    OMP_NUM_THREADS=1 python benchmarks/bench_densities.py --data_file ../shared/data/bold_insecta_coi.csv.gz \\
        --extra_dir ../shared/data/extra --phase val --tools ours
    # report (test splits, the extra sets, the test halves), BLAST and VSEARCH beside
    OMP_NUM_THREADS=1 python benchmarks/bench_densities.py --data_file ../shared/data/bold_insecta_coi.csv.gz \\
        --extra_dir ../shared/data/extra
    python benchmarks/bench_densities.py                          # the bundled fixture only, in seconds

Data sets (each read, cleaned and deduplicated per split by `load_splits`, as everywhere; extra sets are rewritten in
the BIOSCAN-5M layout first, so the code path is the same):
- `main` (`--data_file`): reference = `train` thinned to each of `--fractions` of its barcodes by species (seeded:
  every species keeps round(fraction x its barcodes), at least one; barcodes without a species keep the fraction);
  queries `val` (seen species) + `val_unseen` (unseen species of seen genera) with `--phase val`, `test` +
  `test_unseen` with `--phase test`.
- `--extra_dir` (`../shared/data/extra`, see its README), reported with `--phase test` only, never used to choose
  an identification setting: the five Weitschek et al. sets (bats, birds, cypraeidae, drosophila, fishes) with their
  own train / test splits (seen species; birds have coded species and no genus); `gulf` (Gulf of St. Lawrence marine
  animals) and `canadian` (100 Canadian invertebrate species), which have no splits, split here (seeded, on distinct
  cleaned barcodes): `test_unseen` = every barcode of round(20%) of the species whose genus (gulf) / family
  (canadian: only 3 of its genera have two species) has another species, drawn so that every such taxon keeps a seen
  species; `test` = round(20%) (at least one) of the barcodes of each remaining species with two or more; `train` =
  the rest.
- Clustering (AMI against BINs, no cluster count given to any method): `main` val + val_unseen (`--phase val`) or
  test + test_unseen (`--phase test`); `gulf` and `canadian` split by species into two seeded halves, the first for
  `--phase val`, the second for `--phase test`. Barcodes with a BIN only; deduplicated per split, each barcode's
  abundance = its records there (VSEARCH `--cluster_size` reads it as ;size=N, ours orders by it).
  Beside each row: the AMI of `cluster`'s defaults (average, overlap) minus the row's, with a 95% interval from a
  paired bootstrap over BINs (`--bootstrap` draws; `barcodemae.clustering.bootstrap_ami_differences`).

identify: per rank, the accuracy of the best guess over the queries whose true label exists in the reference (the
answerable ones; BLAST / VSEARCH: their top hit, no hit = wrong); ours also (how often a call is made, how often a made
call is right). On a split of unseen species the species cell is how often a species is (wrongly) called. Seconds:
ours from the embedded barcodes to the calls (calibration, cosine search, alignments; the 6-mer embedding, about a
second per 16k barcodes, is done once per data set and not counted), the rules of one measure share one ranking, so
only its first row counts the time; BLAST makeblastdb + blastn -task megablast; VSEARCH --usearch_global. Summary
tables after each data set: the mean over its ranks and query splits per reference. BLAST (blastn, makeblastdb) and
VSEARCH are optional: each is skipped, saying so, when not on PATH.
"""

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench_identify import blast_top_hits, have, vsearch_clusters, vsearch_top_hits
from machine import cpu_description  # the benchmarks folder is on sys.path when run as a script

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from barcodemae.alignment import DEFAULT_MEASURE, IDENTITY_MEASURES  # noqa: E402
from barcodemae.clustering import (  # noqa: E402
    DEFAULT_AVERAGE_UP_TO, DEFAULT_CLUSTER_CANDIDATES, DEFAULT_METHOD, bootstrap_ami_differences, centroid_clusters,
    identity_clusters,
)
from barcodemae.data import FIXTURE, SplitData, clean_barcode, load_barcodes, load_splits  # noqa: E402
from barcodemae.encoders import load_encoder  # noqa: E402
from barcodemae.identify import (  # noqa: E402
    DEFAULT_CANDIDATES, DEFAULT_MARGIN, DEFAULT_RELATIVE_CANDIDATES, DEFAULT_RELATIVES_MODEL, RANKS, RULES, Relatives,
    assign, prefer_species_matches, ranked_neighbours,
)
from barcodemae.search.references import Reference  # noqa: E402

LAYOUT = ["processid", "order", "family", "genus", "species", "dna_bin", "dna_barcode", "split"]
WEITSCHEK = ("bats", "birds", "cypraeidae", "drosophila", "fishes")
TOOLS = ("ours", "blast", "vsearch")
CLUSTER_METHODS = ("centroid-abundance", "centroid-length", "single", "average")
DEFAULT_ROW = f"ours: {DEFAULT_METHOD}, {DEFAULT_MEASURE}"  # `barcodemae cluster`'s defaults


def thin(split: SplitData, fraction: float, seed: int) -> SplitData:
    """`split` with round(fraction x n) of each species' n barcodes (at least one; seeded), in the original order."""
    if fraction >= 1.0:
        return split
    rng = np.random.default_rng(seed)
    species = split.labels["species"]
    keep = []
    for name in sorted(set(species)):
        rows = rng.permutation(np.flatnonzero(species == name))
        keep += list(rows[: round(fraction * len(rows)) if name == "" else max(1, round(fraction * len(rows)))])
    keep = np.sort(np.array(keep, dtype=np.int64))
    return SplitData(split.name, [split.sequences[i] for i in keep], {k: v[keep] for k, v in split.labels.items()},
                     len(keep))  # fmt: skip


def _layout(frame: pd.DataFrame) -> pd.DataFrame:
    for column in LAYOUT:
        if column not in frame:
            frame[column] = ""
    return frame[LAYOUT].fillna("")


def _distinct(frame: pd.DataFrame) -> pd.DataFrame:
    """One record per distinct cleaned barcode (the first), so that no barcode is both reference and query."""
    return frame[~frame.dna_barcode.map(clean_barcode).duplicated()].reset_index(drop=True)


def define_splits(frame: pd.DataFrame, unseen_rank: str, seed: int, fraction: float = 0.2) -> pd.DataFrame:
    """train / test / test_unseen for a set without splits (see the module docstring)."""
    rng = np.random.default_rng(seed)
    frame = _distinct(frame)
    species = frame.groupby("species")[unseen_rank].first()
    species = species[(species.index != "") & (species != "")]
    per_taxon = species.groupby(species).size()
    eligible = species[species.map(per_taxon) >= 2]
    unseen, seen_left = [], per_taxon.to_dict()
    for name in rng.permutation(eligible.index.to_numpy()):
        if len(unseen) < round(fraction * len(eligible)) and seen_left[eligible[name]] > 1:
            unseen.append(name)
            seen_left[eligible[name]] -= 1
    split = np.where(frame.species.isin(unseen), "test_unseen", "train").astype(object)
    for name, rows in frame[split == "train"].groupby("species").groups.items():
        if name and len(rows) >= 2:
            split[rng.permutation(np.asarray(rows))[: max(1, round(fraction * len(rows)))]] = "test"
    return frame.assign(split=split)


def halves(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Every record, `split` = cluster_val / cluster_test by species (a seeded half of the species each)."""
    names = np.random.default_rng(seed).permutation(sorted(set(frame.species)))
    first = set(names[: len(names) // 2])
    return frame.assign(split=np.where(frame.species.isin(first), "cluster_val", "cluster_test"))


def extra_sets(folder: Path, out: Path, seed: int) -> tuple[dict, dict]:
    """({name: (identification file, reference split, query splits)}, {name: clustering file}) in the BIOSCAN-5M
    layout under `out`."""
    identification, clustering = {}, {}

    def write(frame: pd.DataFrame, name: str) -> Path:
        path = out / f"{name}.csv.gz"
        _layout(frame).to_csv(path, index=False, compression="gzip")
        return path

    weitschek = pd.read_csv(folder / "weitschek_benchmarks.csv.gz", dtype=str, keep_default_na=False)
    for name in WEITSCHEK:
        frame = weitschek[weitschek.dataset == name].rename(columns={"id": "processid"})
        identification[name] = (write(frame, name), "train", ["test"])
    gulf = pd.read_csv(folder / "gulf_st_lawrence_marine.csv.gz", dtype=str, keep_default_na=False)
    canadian = pd.read_csv(folder / "canadian_invertebrates_100species.tsv.gz", sep="\t", dtype=str,
                           keep_default_na=False)  # fmt: skip
    columns = {"bin_uri": "dna_bin", "order_name": "order", "family_name": "family", "genus_name": "genus",
             "species_name": "species", "nucleotides": "dna_barcode"}  # fmt: skip
    canadian = canadian.rename(columns=columns)
    for name, frame, rank in (("gulf", gulf, "genus"), ("canadian", canadian, "family")):
        identification[name] = (write(define_splits(frame, rank, seed), name), "train", ["test", "test_unseen"])
        clustering[name] = write(halves(frame, seed), f"{name}_halves")
    return identification, clustering


def measured(truth: np.ndarray, reference_labels: np.ndarray, guess: np.ndarray, calls: np.ndarray | None) -> dict:
    """accuracy of `guess` on the answerable queries, and with `calls` how often a call is made and how often a made
    one is right; where no query is answerable, how often one is called anyway (`false_calls`). See the module."""
    answerable = (truth != "") & np.isin(truth, reference_labels[reference_labels != ""])
    if not answerable.any():
        known = truth != ""
        return {"false_calls": 100 * (calls[known] != "").mean()} if calls is not None and known.any() else {}
    right = guess == truth
    found = {"accuracy": 100 * right[answerable].mean()}
    if calls is not None:
        made = calls != ""
        found |= {"called": 100 * made[answerable].mean(), "right": 100 * right[answerable & made].mean()}
    return found


def cell(found: dict) -> str:
    if "accuracy" in found:
        extra = f" ({found['called']:.0f}% called, {found['right']:.1f} right)" if "called" in found else ""
        return f"{found['accuracy']:.1f}{extra}"
    return f"({found['false_calls']:.0f}% called)" if "false_calls" in found else "-"


def row(dataset: str, density: str, method: str, split: SplitData, seconds: float, reference: SplitData,
        best: dict, calls: dict | None, results: list) -> str:  # fmt: skip
    cells = []
    for rank in RANKS:
        found = measured(split.labels[rank], reference.labels[rank], best[rank], None if calls is None else calls[rank])
        results.append({"data": dataset, "reference": density, "method": method, "queries": split.name,
                        "rank": rank, **found})  # fmt: skip
        cells.append(cell(found))
    return f"| {dataset} | {density} | {method} | {split.name} | {len(split)} | {seconds:.1f} | {' | '.join(cells)} |"


def summary(results: list, dataset: str) -> str:
    """Per method: the mean best-guess accuracy over the ranks and query splits of each reference of `dataset` (with
    the mean call rate and accuracy of the calls), then over all of them; and how often a species is called for a
    query of an unseen species."""
    frame = pd.DataFrame([result for result in results if result["data"] == dataset])
    if frame.empty:
        return ""
    references = list(dict.fromkeys(frame.reference))
    header = " | ".join(f"{reference}: accuracy (called %, right), unseen species called" for reference in references)
    lines = [f"\n| method | {header} | mean accuracy |", "|---|" + "---|" * (len(references) + 1)]
    for method, rows in frame.groupby("method", sort=False):
        cells = []
        for reference in references:
            part = rows[rows.reference == reference]
            false_calls = part["false_calls"].dropna() if "false_calls" in part else pd.Series(dtype=float)
            made = "called" in part and part.called.notna().any()
            calls = f" ({part.called.mean():.1f}%, {part.right.mean():.1f})" if made else ""
            unseen = f"{false_calls.mean():.1f}%" if len(false_calls) else "-"
            cells.append(f"{part.accuracy.mean():.2f}{calls}, {unseen}")
        lines.append(f"| {method} | {' | '.join(cells)} | {rows.accuracy.mean():.2f} |")
    return "\n".join(lines)


def identify_rows(dataset, density, reference_split, reference_vectors, queries, query_vectors, args, folder: Path,
                  results: list, relatives=None):  # fmt: skip
    """Ours (every measure x rule) and the field tools on one reference and its query splits: markdown rows.
    `relatives`: (reference vectors, [query vectors per split]) of `--relatives_model` (None: none)."""
    for measure in args.measures if "ours" in args.tools else []:
        started = time.perf_counter()
        reference = Reference.calibrated(reference_vectors, reference_split.labels, reference_split.sequences,
                                         args.quantile, measure)  # fmt: skip
        setup = time.perf_counter() - started
        for number, (split, vectors) in enumerate(zip(queries, query_vectors)):
            started = time.perf_counter()
            indices, similarities = ranked_neighbours(reference, vectors, split.sequences, args.candidates)
            if relatives is not None:
                second = Relatives(reference.with_vectors(relatives[0]), relatives[1][number], args.relative_candidates)
                indices, similarities = prefer_species_matches(reference, (indices, similarities), second,
                                                               split.sequences)  # fmt: skip
            seconds = setup + time.perf_counter() - started
            for rule in args.rules:
                for margin in args.margins if rule == "lca" else [DEFAULT_MARGIN]:
                    table = assign(reference, indices, similarities, rule=rule, margin=margin)
                    best = {rank: table[f"{rank}_best_hit"].to_numpy() for rank in RANKS}
                    calls = {rank: table[rank].to_numpy() for rank in RANKS}
                    name = f"ours: {measure}, {rule}" + (f" {margin:g}" if rule == "lca" else "")
                    yield row(dataset, density, name, split, seconds, reference_split, best, calls, results)
                    seconds = 0.0
    for tool, ready, find in (("BLAST megablast top hit", have("blastn", "makeblastdb"), blast_top_hits),
                              ("VSEARCH --usearch_global top hit", have("vsearch"), vsearch_top_hits)):  # fmt: skip
        if tool.split()[0].lower() not in args.tools:
            continue
        if not ready:
            yield f"| {dataset} | {density} | {tool} | skipped: not on PATH (apt-get install ncbi-blast+ vsearch) |"
            continue
        for split in queries:
            top, seconds = find(reference_split.sequences, split.sequences, folder)
            best = {rank: np.where(top >= 0, reference_split.labels[rank][top], "") for rank in RANKS}
            yield row(dataset, density, tool, split, seconds, reference_split, best, None, results)


def abundances(path: Path, names: list[str], sequences: list[str]) -> np.ndarray:
    """Records of each (cleaned, distinct) barcode in the splits `names` of `path`."""
    records = load_barcodes(path, splits=names)
    counts = Counter(clean_barcode(sequence) for sequence in records["sequence"])
    return np.array([counts[sequence] for sequence in sequences])


def clustering_set(path: Path, names: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(barcodes, their BINs, their abundances) of the barcodes with a BIN in the splits `names` of `path`."""
    splits = load_splits(path, names)
    sequences, bins = [], []
    for name in names:
        known = splits[name].labels["dna_bin"] != ""
        sequences += [sequence for sequence, keep in zip(splits[name].sequences, known) if keep]
        bins += list(splits[name].labels["dna_bin"][known])
    return sequences, np.asarray(bins), abundances(path, names, sequences)


def clustering_sets(args, clustering: dict) -> list[tuple[str, Path, list[str]]]:
    """(name, file, splits) of each clustering set of `args.phase`: the main file's pooled query splits, and the
    halves of the sets in `clustering` (`extra_sets`)."""
    pooled = ["val", "val_unseen"] if args.phase == "val" else ["test", "test_unseen"]
    return [("main", Path(args.data_file), pooled)] + [(name, path, [f"cluster_{args.phase}"])
                                                       for name, path in clustering.items()]  # fmt: skip


def cluster_rows(dataset: str, path: Path, names: list[str], encoder, args, folder: Path):
    """Ours (method x measure x identity) and VSEARCH at the same identities on the barcodes with a BIN; beside each,
    the AMI of ours with the defaults (`cluster`'s method and measure) minus its own, with a 95% paired bootstrap
    interval over BINs (`--bootstrap` draws)."""
    from sklearn.metrics import adjusted_mutual_info_score

    sequences, bins, sizes = clustering_set(path, names)
    vectors = encoder.embed(sequences)
    where = f"| {dataset} | {' + '.join(names)} | {len(bins)} | {len(set(bins))} |"
    for identity in args.identities:
        rows = list(ours_clusterings(vectors, sequences, sizes, identity, args) if "ours" in args.tools else [])
        if "vsearch" in args.tools and not have("vsearch"):
            yield f"{where} VSEARCH | skipped: not on PATH (apt-get install vsearch) |"
        elif "vsearch" in args.tools:
            rows += [(f"VSEARCH {command}", *vsearch_clusters(sequences, identity, folder, command, sizes))
                     for command in ("--cluster_fast", "--cluster_size")]  # fmt: skip
        amis = [100 * adjusted_mutual_info_score(bins, clusters) for _, clusters, _ in rows]
        besides = beside_default(bins, rows, amis, args.bootstrap, args.seed)
        for (name, clusters, seconds), ami, beside in zip(rows, amis, besides):
            yield f"{where} {name} | {identity} | {clusters.max() + 1} | {ami:.1f} | {seconds:.1f} | {beside} |"


def beside_default(bins: np.ndarray, rows: list, amis: list[float], draws: int, seed: int) -> list[str]:
    """For each of `rows` (name, clusters, seconds; AMI x100 `amis`): the default row's AMI minus its own, with a 95%
    paired bootstrap interval over BINs of `draws` (0: none); "" for the default row, and for all without one."""
    names = [name for name, _, _ in rows]
    if DEFAULT_ROW not in names:
        return [""] * len(rows)
    default = names.index(DEFAULT_ROW)
    others = [clusters for name, clusters, _ in rows if name != DEFAULT_ROW]
    intervals = iter([""] * len(others))
    if others and draws:
        differences = 100 * bootstrap_ami_differences(bins, rows[default][1], others, draws, seed)
        intervals = iter(f" [{low:+.1f}, {high:+.1f}]" for low, high in np.percentile(differences, [2.5, 97.5], axis=0).T)
    return ["" if at == default else f"{amis[default] - ami:+.1f}{next(intervals)}" for at, ami in enumerate(amis)]


def ours_clusterings(vectors: np.ndarray, sequences: list[str], sizes: np.ndarray, identity: float, args):
    """(row name, clusters, seconds) of each of our methods x measures at `identity`."""
    for method in args.cluster_methods:
        for measure in args.measures:
            started = time.perf_counter()
            if method in ("single", "average"):
                average_up_to = DEFAULT_AVERAGE_UP_TO if method == "average" else 0
                clusters = identity_clusters(vectors, sequences, identity, args.cluster_candidates, measure=measure,
                                             average_up_to=average_up_to)  # fmt: skip
            else:
                clusters = centroid_clusters(vectors, sequences, identity, args.cluster_candidates, measure=measure,
                                             order=method.split("-")[1], abundances=sizes)  # fmt: skip
            yield f"ours: {method}, {measure}", clusters, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_file", default=str(FIXTURE), help="the main file (BIOSCAN-5M layout)")
    parser.add_argument("--extra_dir", default=None, help="../shared/data/extra; default: none")
    parser.add_argument("--phase", choices=("val", "test"), default="test", help="val: choose; test: report")
    parser.add_argument("--sections", nargs="+", default=["identify", "cluster"])
    parser.add_argument("--datasets", nargs="+", default=None, help="default: all (main, the extra sets' names)")
    parser.add_argument("--fractions", type=float, nargs="+", default=[1.0, 0.5, 0.2, 0.05])
    parser.add_argument("--measures", nargs="+", default=list(IDENTITY_MEASURES), choices=list(IDENTITY_MEASURES))
    parser.add_argument("--rules", nargs="+", default=list(RULES), choices=list(RULES))
    parser.add_argument("--margins", type=float, nargs="+", default=[DEFAULT_MARGIN], help="of the lca rule")
    parser.add_argument("--quantile", type=float, default=0.05)
    parser.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS, help="ours, BLAST, VSEARCH")
    parser.add_argument("--identities", type=float, nargs="+", default=[0.97, 0.975, 0.98, 0.985, 0.99])
    parser.add_argument("--cluster_methods", nargs="+", default=list(CLUSTER_METHODS), choices=CLUSTER_METHODS)
    parser.add_argument("--cluster_candidates", type=int, default=DEFAULT_CLUSTER_CANDIDATES)
    parser.add_argument("--bootstrap", type=int, default=200, help="draws of the BIN bootstrap; 0: none")
    parser.add_argument("--candidates", type=int, default=DEFAULT_CANDIDATES, help="proposed per query (identify)")
    parser.add_argument("--model", default="kmer:6", help="the embedding that proposes candidates (kmer:K or a folder)")
    parser.add_argument("--relatives_model", default=DEFAULT_RELATIVES_MODEL,
                        help=f"identify --relatives_model (kmer:K, aa:K, a folder, none); default: {DEFAULT_RELATIVES_MODEL}")
    parser.add_argument("--relative_candidates", type=int, default=DEFAULT_RELATIVE_CANDIDATES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    import datasets

    datasets.disable_progress_bars()
    print(f"data {args.data_file}, extra {args.extra_dir}, phase {args.phase}, model {args.model}, {args.candidates} candidates, relatives {args.relatives_model} ({args.relative_candidates}); CPU {cpu_description()}, 1 thread; "
          f"torch {torch.__version__}", flush=True)  # fmt: skip
    encoder = load_encoder(args.model)
    relatives_encoder = None if args.relatives_model == "none" else load_encoder(args.relatives_model)
    embed_relatives = (lambda sequences: relatives_encoder.embed(sequences) if relatives_encoder else None)  # noqa: E731
    wanted = (lambda name: args.datasets is None or name in args.datasets)  # noqa: E731
    results = []
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        extra, clustering = extra_sets(Path(args.extra_dir), folder, args.seed) if args.extra_dir else ({}, {})
        if "identify" in args.sections:
            header = f"| data | reference | method | queries | n | seconds | {' | '.join(RANKS)} |"
            print(f"\n{header}\n|---|---|---|---|---:|---:|" + "---|" * len(RANKS), flush=True)
            if wanted("main"):
                names = ["val", "val_unseen"] if args.phase == "val" else ["test", "test_unseen"]
                splits = load_splits(args.data_file, ["train", *names])
                train_vectors = encoder.embed(splits["train"].sequences)
                query_vectors = [encoder.embed(splits[name].sequences) for name in names]
                train_relatives = embed_relatives(splits["train"].sequences)
                query_relatives = [embed_relatives(splits[name].sequences) for name in names]
                index = {sequence: i for i, sequence in enumerate(splits["train"].sequences)}
                for fraction in args.fractions:
                    reference = thin(splits["train"], fraction, args.seed)
                    rows = [index[sequence] for sequence in reference.sequences]
                    relatives = None if relatives_encoder is None else (train_relatives[rows], query_relatives)
                    density = f"train {100 * fraction:g}% ({len(reference)})"
                    for line in identify_rows("main", density, reference, train_vectors[rows], [splits[n] for n in names],
                                              query_vectors, args, folder, results, relatives):  # fmt: skip
                        print(line, flush=True)
            for name, (path, reference_name, names) in extra.items() if args.phase == "test" else []:
                if not wanted(name):
                    continue
                splits = load_splits(path, [reference_name, *names])
                reference = splits[reference_name]
                density = f"{reference_name} ({len(reference)})"
                queries = [splits[n] for n in names]
                vectors = [encoder.embed(split.sequences) for split in queries]
                reference_vectors = encoder.embed(reference.sequences)
                relatives = None if relatives_encoder is None else (
                    embed_relatives(reference.sequences), [embed_relatives(split.sequences) for split in queries])
                for line in identify_rows(name, density, reference, reference_vectors, queries, vectors, args, folder,
                                          results, relatives):  # fmt: skip
                    print(line, flush=True)
            for name in dict.fromkeys(result["data"] for result in results):
                print(summary(results, name), flush=True)
        if "cluster" in args.sections:
            print(f"\n| data | barcodes | n | BINs | method | identity | clusters | AMI | seconds | {DEFAULT_ROW} minus "
                  "this row [95% BIN bootstrap] |\n|---|---|---:|---:|---|---:|---:|---:|---:|---:|", flush=True)  # fmt: skip
            for name, path, names in clustering_sets(args, clustering):
                if wanted(name):
                    for line in cluster_rows(name, path, names, encoder, args, folder):
                        print(line, flush=True)


if __name__ == "__main__":
    main()
