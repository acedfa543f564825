"""Which embedding should propose `identify`'s candidates: 6-mer counts, a second embedding, or the two together.

    OMP_NUM_THREADS=1 python benchmarks/compare_retrievers.py --data_file bold_insecta_coi.csv.gz \\
        --relatives_models aa:3 checkpoints/barcodemae-4x256-bold

On the `val` (seen species) and `val_unseen` (unseen species) splits with the reference `train` thinned by species
to 100/50/20/5% (`bench_densities.thin`), per rank the accuracy of the best hit by overlap identity among the
candidates each way proposes: `kmer50` (6-mer cosine, 50: the first embedding of `identify`), `MODEL:N` (that
embedding's N cosine-nearest), `switchT/MODEL:N` (the 6-mer best hit where its identity is at least T, a
species-level match, else that embedding's; T = "calibrated": the reference's species threshold), `union0.95/MODEL:N`
(below 0.95, the better aligned of the two best hits). The mean over the
28 cells (4 densities x 7 ranks) is the number to choose by. Validation splits only: the reported numbers come from
bench_densities.py --relatives_model.
"""

import argparse
import sys
from pathlib import Path

from bench_densities import thin  # the benchmarks folder is on sys.path when run as a script

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from barcodemae.alignment import overlap_identity  # noqa: E402
from barcodemae.data import load_splits  # noqa: E402
from barcodemae.encoders import load_encoder  # noqa: E402
from barcodemae.identify import calibrate_thresholds  # noqa: E402
from barcodemae.neighbours import nearest_neighbours  # noqa: E402

FRACTIONS = (1.0, 0.5, 0.2, 0.05)
SPLITS = ("val", "val_unseen")


def best_hits(reference_vectors, query_vectors, queries, references, n: int, sizes):
    """Per pool size in `sizes` (each <= n): each query's best hit by overlap identity and that identity."""
    candidates = nearest_neighbours(reference_vectors, query_vectors, n)[0]
    identity = np.array([[overlap_identity(query, references[index]) for index in row]
                         for query, row in zip(queries, candidates)])  # fmt: skip
    rows = np.arange(len(candidates))
    return {size: (candidates[rows, identity[:, :size].argmax(1)], identity[:, :size].max(1)) for size in sizes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_file", required=True, help="a BIOSCAN-5M-layout file with val and val_unseen")
    parser.add_argument("--relatives_models", nargs="+", default=["aa:3"], help="kmer:K, aa:K, folders, Hub ids")
    parser.add_argument("--sizes", type=int, nargs="+", default=[25, 50, 100], help="candidates they propose")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    splits = load_splits(args.data_file, ["train", *SPLITS])
    encoders = {"kmer": load_encoder("kmer:6")} | {name: load_encoder(name) for name in args.relatives_models}
    train = {name: encoder.embed(splits["train"].sequences) for name, encoder in encoders.items()}
    position = {sequence: index for index, sequence in enumerate(splits["train"].sequences)}
    cells: dict[str, list[float]] = {}
    for fraction in FRACTIONS:
        reference = thin(splits["train"], fraction, args.seed)
        rows = [position[sequence] for sequence in reference.sequences]
        species_threshold = calibrate_thresholds(train["kmer"][rows], reference.labels, sequences=reference.sequences,
                                                 measure="overlap")["species"]  # fmt: skip
        for name in SPLITS:
            split = splits[name]
            vectors = {key: encoder.embed(split.sequences) for key, encoder in encoders.items()}
            kmer = best_hits(train["kmer"][rows], vectors["kmer"], split.sequences, reference.sequences, 50, [50])[50]
            picks = {"kmer50": kmer[0]}
            for model in args.relatives_models:
                found = best_hits(train[model][rows], vectors[model], split.sequences, reference.sequences,
                                  max(args.sizes), args.sizes)  # fmt: skip
                picks |= {f"{model}:{size}": hits[0] for size, hits in found.items()}
                for threshold, label in ((0.95, "0.95"), (0.97, "0.97"), (species_threshold, "calibrated")):
                    for size in args.sizes:
                        picks[f"switch{label}/{model}:{size}"] = np.where(kmer[1] >= threshold, kmer[0], found[size][0])
                for size in args.sizes:  # both candidate sets for the others: the better aligned best hit
                    better = (kmer[1] >= 0.95) | (kmer[1] >= found[size][1])
                    picks[f"union0.95/{model}:{size}"] = np.where(better, kmer[0], found[size][0])
            ranks = ("genus", "family", "order") if name.endswith("unseen") else ("species", "genus", "family", "order")
            for method, pick in picks.items():
                accuracies = []
                for rank in ranks:
                    truth, labels = split.labels[rank], reference.labels[rank]
                    answerable = np.isin(truth, labels[labels != ""]) & (truth != "")
                    accuracies.append(100 * np.mean(labels[pick][answerable] == truth[answerable]))
                cells.setdefault(method, []).extend(accuracies)
                print(f"{name} {fraction:g} {method:40s} {'/'.join(ranks)} " + " ".join(f"{a:.2f}" for a in accuracies),
                      flush=True)  # fmt: skip
    for method, values in cells.items():
        print(f"mean {method:40s} {np.mean(values):.3f} over {len(values)} cells")


if __name__ == "__main__":
    main()
