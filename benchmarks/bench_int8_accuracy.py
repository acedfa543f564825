"""fp32 vs `precision="int8"` embeddings on seeded subsets of a BIOSCAN-5M-layout file: genus 1-NN of unseen species
(`test_unseen` -> `train`), species 1-NN (`test` -> `train`), cosine between the two precisions, same nearest neighbour.

    OMP_NUM_THREADS=1 python benchmarks/bench_int8_accuracy.py --data_file ../shared/data/bold_insecta_coi.csv.gz

Models: the shipped checkpoint at its last layer (5,000 / 1,000 / 1,000 barcodes) and an untrained paper-size encoder
(800 / 200 / 200; its cosines are taken after removing the fp32 mean, which dominates untrained vectors).
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from barcodemae.data import load_splits  # noqa: E402
from barcodemae.encoders import embed_sequences  # noqa: E402
from barcodemae.neighbours import nearest_neighbour  # noqa: E402
from barcodemae.protocol import FIXTURE  # noqa: E402
from configuration_barcodemae import BarcodeMAEConfig  # noqa: E402
from modeling_barcodemae import BarcodeMAEModel  # noqa: E402
from tokenization_barcodemae import BarcodeMAETokenizer  # noqa: E402

SPLITS = ("train", "test", "test_unseen")


def subset(split, count: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """`count` seeded barcodes of a prepared split: (sequences, genus, species)."""
    rows = np.random.default_rng(0).permutation(len(split.sequences))[:count]
    return [split.sequences[i] for i in rows], split.labels["genus"][rows], split.labels["species"][rows]


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_file", default=str(FIXTURE))
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    tokenizer = BarcodeMAETokenizer()
    prepared = load_splits(args.data_file, SPLITS)
    models = {
        "shipped 4x256, last layer": (BarcodeMAEModel.from_pretrained(ROOT / "checkpoints" / "barcodemae-4x256-bold"), (5000, 1000, 1000)),
        "untrained paper size, last layer": (BarcodeMAEModel(BarcodeMAEConfig()), (800, 200, 200)),
    }  # fmt: skip
    for name, (model, sizes) in models.items():
        splits = {split: subset(prepared[split], count) for split, count in zip(SPLITS, sizes)}
        vectors, genus, species = {}, {}, {}
        for precision in ("fp32", "int8"):
            vectors[precision] = np.concatenate([embed_sequences(model.eval(), tokenizer, splits[split][0], layers=-1,
                                                                 precision=precision, progress=False) for split in SPLITS])  # fmt: skip
            train, test, unseen = np.split(vectors[precision], np.cumsum([len(splits[s][0]) for s in SPLITS])[:-1])
            genus[precision] = nearest_neighbour(train, unseen)
            species[precision] = nearest_neighbour(train, test)
            genus_right = (splits["train"][1][genus[precision]] == splits["test_unseen"][1]).mean()
            species_right = (splits["train"][2][species[precision]] == splits["test"][2]).mean()
            print(f"{name}, {precision}: genus 1-NN unseen {100 * genus_right:.1f}%, species 1-NN {100 * species_right:.1f}%")
        mean = vectors["fp32"].mean(0)
        print(f"{name}: cosine fp32/int8 min {row_cosines(vectors['fp32'], vectors['int8']).min():.5f}, after removing "
              f"the mean min {row_cosines(vectors['fp32'] - mean, vectors['int8'] - mean).min():.4f}; same 1-NN: "
              f"unseen {100 * (genus['fp32'] == genus['int8']).mean():.1f}%, "
              f"test {100 * (species['fp32'] == species['int8']).mean():.1f}%", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
