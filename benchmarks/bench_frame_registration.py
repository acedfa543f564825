"""Reading frames of real barcodes, and what registering them costs: per dataset, how many barcodes the tokenizer
places on its COI-5P reference, how many start off its frame (registration drops 1..5 bases), how often two barcodes
of one species start in different frames, how often the seed vote agrees with an edlib alignment, and the tokenizer's
throughput with and without registration, side by side in one run.

    python benchmarks/bench_frame_registration.py [--data_dir ../shared/data] [--sample 5000] [--edlib_sample 500]

Datasets: the main file (`bold_insecta_coi.csv.gz`, every split) and each set of `extra/` (the Weitschek benchmarks
one dataset at a time, the Gulf of St. Lawrence marine library, the Canadian invertebrates); the bundled fixture where
the folder is missing. edlib's placement: the first 200 nt aligned (infix) to each reference barcode, the best one's
most frequent diagonal of matching bases; "agree" = same frame (mod k) among barcodes both place.
"""

import argparse
import sys
import time
from pathlib import Path

from machine import cpu_description  # the benchmarks folder is on sys.path when run as a script

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from alphabet_barcodemae import FRAME_REFERENCE, FRAME_WINDOW  # noqa: E402
from barcodemae.alignment import reference_start  # noqa: E402
from barcodemae.data import FIXTURE  # noqa: E402
from tokenization_barcodemae import BarcodeMAETokenizer  # noqa: E402

MAX_EDIT_FRACTION = 0.3  # an edlib placement with more edits than this is no placement


def datasets(data_dir: Path) -> dict[str, pd.DataFrame]:
    """Name -> (sequence, species) of every dataset found (sequences with gaps removed)."""
    found = {}
    main = data_dir / "bold_insecta_coi.csv.gz"
    if not main.exists():
        main = FIXTURE
    found[main.name] = pd.read_csv(main, usecols=["dna_barcode", "species"], dtype=str, keep_default_na=False)
    extra = data_dir / "extra"
    if (extra / "weitschek_benchmarks.csv.gz").exists():
        weitschek = pd.read_csv(extra / "weitschek_benchmarks.csv.gz", dtype=str, keep_default_na=False)
        for name, group in weitschek.groupby("dataset"):
            found[f"weitschek {name}"] = group[["dna_barcode", "species"]]
    if (extra / "gulf_st_lawrence_marine.csv.gz").exists():
        found["gulf st lawrence marine"] = pd.read_csv(extra / "gulf_st_lawrence_marine.csv.gz", dtype=str,
                                                       keep_default_na=False)[["dna_barcode", "species"]]  # fmt: skip
    if (extra / "canadian_invertebrates_100species.tsv.gz").exists():
        table = pd.read_csv(extra / "canadian_invertebrates_100species.tsv.gz", sep="\t", dtype=str, keep_default_na=False)
        found["canadian invertebrates"] = table.rename(columns={"nucleotides": "dna_barcode", "species_name": "species"})[
            ["dna_barcode", "species"]]  # fmt: skip
    for name, table in found.items():
        table = table.assign(dna_barcode=table["dna_barcode"].str.replace(r"[-.\s]", "", regex=True).str.upper())
        found[name] = table[table["dna_barcode"].str.len() > 0].drop_duplicates("dna_barcode")
    return found


def edlib_start(barcode: str) -> int | None:
    """The reference position of the barcode's first base by edlib, or None where it does not align."""
    return reference_start(barcode, [(offset, reference) for *_, offset, reference in FRAME_REFERENCE], FRAME_WINDOW,
                           MAX_EDIT_FRACTION)  # fmt: skip


def species_pairs_in_other_frames(table: pd.DataFrame, starts: np.ndarray, placed: np.ndarray, k: int, rng) -> float:
    """Of up to 3,000 random pairs of placed barcodes of one species, the fraction whose starts differ mod k."""
    frame = pd.DataFrame({"species": table["species"].to_numpy(), "start": starts})[placed]
    frame = frame[frame["species"] != ""]
    groups = [group["start"].to_numpy() for _, group in frame.groupby("species") if len(group) > 1]
    if not groups:
        return float("nan")
    pairs = [rng.choice(groups[index], 2, replace=False) for index in rng.integers(len(groups), size=3000)]
    return float(np.mean([(a - b) % k != 0 for a, b in pairs]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--sample", type=int, default=5000, help="barcodes per dataset (seeded), for the frame counts")
    parser.add_argument("--edlib_sample", type=int, default=500, help="barcodes per dataset checked against edlib")
    parser.add_argument("--speed_sequences", type=int, default=20_000)
    args = parser.parse_args()
    print(f"# {cpu_description()}")
    tokenizer = BarcodeMAETokenizer(register_frame=True)
    k, rng = tokenizer.k_mer, np.random.default_rng(0)
    print("| dataset | barcodes | placed | off-frame (1..5 bases dropped) | same-species pairs in other frames "
          "| agree with edlib | edlib places, we do not | we place, edlib does not |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    tables = datasets(Path(args.data_dir))
    for name, table in tables.items():
        table = table.sample(min(args.sample, len(table)), random_state=0)
        placement = tokenizer.frame_registration(table["dna_barcode"].tolist())
        placed, starts = placement["aligned"], placement["reference_start"]
        checked = rng.choice(len(table), min(args.edlib_sample, len(table)), replace=False)
        truth = [edlib_start(table["dna_barcode"].iloc[index]) for index in checked]
        both = [(starts[index] - start) % k == 0 for index, start in zip(checked, truth) if start is not None and placed[index]]
        only_edlib = np.mean([start is not None and not placed[index] for index, start in zip(checked, truth)])
        only_ours = np.mean([start is None and placed[index] for index, start in zip(checked, truth)])
        pairs = species_pairs_in_other_frames(table, starts, placed, k, rng)
        print(f"| {name} | {len(table):,} | {placed.mean():.1%} | {(placement['dropped_bases'][placed] > 0).mean():.1%} "
              f"| {pairs:.1%} | {np.mean(both):.2%} ({len(both)}) | {only_edlib:.1%} | {only_ours:.1%} |")

    sequences = tables[next(iter(tables))]["dna_barcode"].tolist()
    sequences = (sequences * (1 + args.speed_sequences // len(sequences)))[: args.speed_sequences]
    print(f"\ntokenizer throughput, {len(sequences):,} barcodes of the main file to padded tensors (best of 3):")
    rates = {}
    for register in (False, True):
        tok = BarcodeMAETokenizer(register_frame=register)
        for batch in (64, len(sequences)):
            best = min(_seconds(tok, sequences, batch) for _ in range(3))
            rates[register, batch] = len(sequences) / best
            print(f"  register_frame={register!s:5} batch {batch:>6}: {rates[register, batch]:,.0f} barcodes/s")
    for batch in (64, len(sequences)):
        cost = 1 / rates[True, batch] - 1 / rates[False, batch]
        print(f"  batch {batch}: registration adds {cost * 1e6:.1f} us per barcode "
              f"({rates[False, batch] / rates[True, batch]:.2f}x the time)")


def _seconds(tokenizer, sequences: list[str], batch: int) -> float:
    start = time.perf_counter()
    for index in range(0, len(sequences), batch):
        tokenizer(sequences[index : index + batch], padding=True, truncation=True, return_tensors="pt")
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
