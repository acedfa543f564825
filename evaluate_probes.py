#!/usr/bin/env python
"""The BIOSCAN-5M frozen-feature protocol: `barcodemae evaluate`, as a script.

    python evaluate_probes.py --models kmer:4 kmer:6 outputs/barcodemae-small \
        --data_file barcodemae/bioscan_fixture.csv.gz --output_dir outputs/probes

The protocol is `barcodemae.protocol` (documented there); this file keeps the old command and import name.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script from anywhere
from barcodemae.cache import EmbeddingCache  # noqa: E402,F401 - the old import names
from barcodemae.cli import main as barcodemae_main  # noqa: E402
from barcodemae.data import SplitData, load_splits  # noqa: E402,F401
from barcodemae.encoders import embed_sequences, kmer_embeddings, load_model  # noqa: E402,F401
from barcodemae.neighbours import nearest_neighbour  # noqa: E402,F401
from barcodemae.protocol import *  # noqa: E402,F401,F403


def main(argv: list[str] | None = None) -> int:
    return barcodemae_main(["evaluate", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
