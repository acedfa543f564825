"""Regenerate the bundled fixture `barcodemae/bioscan_fixture.csv.gz` (package data, `barcodemae.data.FIXTURE`) from a BIOSCAN-5M-layout metadata file.

    python scripts/make_fixture.py ../shared/data/bold_insecta_coi.csv.gz barcodemae/bioscan_fixture.csv.gz

Keeps the source's columns and split names. Picks genera that have both seen (`train`/`test`) and
unseen (`test_unseen`) species, so the open-world genus task is well posed on the fixture, and
samples a fixed number of rows per split from them (seeded).
"""
import argparse

import pandas as pd

ROWS_PER_SPLIT = {
    "pretrain": 2000, "other_heldout": 300, "train": 700, "val": 60,
    "test": 250, "key_unseen": 120, "val_unseen": 60, "test_unseen": 200,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source")
    parser.add_argument("output")
    parser.add_argument("--num_genera", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    metadata = pd.read_csv(args.source, dtype=str, keep_default_na=False)
    seen = set(metadata.loc[metadata.split == "train", "genus"])
    unseen = set(metadata.loc[metadata.split == "test_unseen", "genus"])
    candidates = pd.Series(sorted((seen & unseen) - {""}))
    genera = set(candidates.sample(args.num_genera, random_state=args.seed))

    parts = []
    for split, rows in ROWS_PER_SPLIT.items():
        in_split = metadata[metadata.split == split]
        # Pretraining rows mostly have no genus label: sample them from the whole split.
        pool = in_split if split == "pretrain" else in_split[in_split.genus.isin(genera)]
        parts.append(pool.sample(min(rows, len(pool)), random_state=args.seed))
    fixture = pd.concat(parts).sort_values(["split", "processid"])
    fixture.to_csv(args.output, index=False, compression={"method": "gzip", "mtime": 0})
    print(f"{args.output}: {len(fixture)} rows")
    print(fixture.split.value_counts().to_string())


if __name__ == "__main__":
    main()
