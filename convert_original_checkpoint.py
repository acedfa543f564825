#!/usr/bin/env python
"""Convert an original BarcodeMAE / BarcodeBERT checkpoint into a Hub folder: `barcodemae convert`, as a script.

    python convert_original_checkpoint.py SRC.pt OUT_DIR [--kind barcodemae|barcodebert]

The converter is `barcodemae.convert` (import from there); this file keeps the old command and import name.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script from anywhere
from barcodemae.cli import main as barcodemae_main  # noqa: E402
from barcodemae.convert import *  # noqa: E402,F401,F403 - the old import name


def main(argv: list[str] | None = None) -> int:
    return barcodemae_main(["convert", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
