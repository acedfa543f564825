"""Print the bundled COI-5P frame reference of alphabet_barcodemae.py (`FRAME_REFERENCE`) from a BIOSCAN-5M-layout
file: for each insect order, the full-length (658 nt, A/C/G/T only) barcode of the pretraining and `train` splits that
shares the most 8-mers with 300 others of its order (seeded), placed on the Diptera one (edlib, start region).

    python scripts/make_frame_reference.py ../shared/data/bold_insecta_coi.csv.gz
"""

import sys

import edlib
import numpy as np
import pandas as pd

FOLMER_LENGTH = 658  # the COI-5P barcode region between the Folmer primers


def representative(barcodes: list[str]) -> int:
    """Index of the barcode sharing the most 8-mers with the others."""
    kmer_sets = [{barcode[i : i + 8] for i in range(len(barcode) - 7)} for barcode in barcodes]
    return int(np.argmax([sum(len(a & b) for b in kmer_sets) for a in kmer_sets]))


def main(path: str) -> None:
    data = pd.read_csv(path, usecols=["processid", "order", "dna_barcode", "split"])
    data = data[data["split"].isin(["pretrain", "other_heldout", "train"])].drop_duplicates("dna_barcode")
    full = data[(data["dna_barcode"].str.len() == FOLMER_LENGTH) & ~data["dna_barcode"].str.contains("[^ACGT]")]
    chosen = {}
    for order, group in full.groupby("order"):
        sample = group.sample(min(300, len(group)), random_state=0)
        chosen[order] = sample.iloc[representative(sample["dna_barcode"].tolist())]
    anchor = chosen["Diptera"]["dna_barcode"]
    print("FRAME_REFERENCE = (  # (order, BOLD processid, offset on the first barcode, barcode)")
    for order, row in sorted(chosen.items(), key=lambda item: item[0] != "Diptera"):
        offset = edlib.align(row["dna_barcode"][:200], anchor, mode="HW", task="locations")["locations"][0][0]
        print(f'    ("{order}", "{row["processid"]}", {offset}, "{row["dna_barcode"]}"),')
    print(")")


if __name__ == "__main__":
    main(sys.argv[1])
