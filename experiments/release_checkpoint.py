"""Write the released checkpoint: an encoder, its tokenizer and custom code, the chosen pooling layer, and a model card
(barcodemae.model_card) with a table of frozen-feature probes from `barcodemae evaluate` results.

    python experiments/release_checkpoint.py --encoder outputs/mae_vs_mlm/mae-seed0 --pooling_layer 0 \\
        --results outputs/protocol_main/results.json outputs/protocol_kmer/results.json \\
        --row "kmer:6=kmer:6" --row "untrained encoder, seed 0=outputs/untrained-4x256-s0" \\
        --row "this model=checkpoints/barcodemae-4x256-bold@0" --training training.json
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from barcodemae.model_card import model_card  # noqa: E402
from barcodemae.protocol import markdown_table  # noqa: E402
from modeling_barcodemae import BarcodeMAEModel  # noqa: E402
from tokenization_barcodemae import BarcodeMAETokenizer  # noqa: E402

TARGET = ROOT / "checkpoints" / "barcodemae-4x256-bold"
DATA = ("Pretrained on the `pretrain` + `other_heldout` splits (16.7k unique barcodes) of a 108k-record BOLD export of "
        "insect COI-5P barcodes in the BIOSCAN-5M metadata layout; probed on its `train` / `test` / `test_unseen` "
        "splits, which pretraining never saw labelled.")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", required=True, help="folder with the encoder (or the whole pretraining model)")
    parser.add_argument("--pooling_layer", type=int, default=None, help="saved in config.json (default: unchanged)")
    parser.add_argument("--register_frame", choices=("on", "off"), default=None,
                        help="the tokenizer's frame registration, saved in tokenizer_config.json (default: unchanged)")
    parser.add_argument("--results", nargs="+", required=True, help="results.json files of `barcodemae evaluate`")
    parser.add_argument("--row", action="append", required=True, help="LABEL=RESULTS_KEY, in table order")
    parser.add_argument("--training", required=True, help="JSON file: the resolved training settings")
    parser.add_argument("--notes", default="", help="markdown appended below the probe table")
    parser.add_argument("--target", default=str(TARGET))
    args = parser.parse_args()
    results = {}
    for path in args.results:
        results.update(json.loads(Path(path).read_text())["results"])
    table = markdown_table({label: results[key] for label, key in (row.split("=", 1) for row in args.row)})
    encoder = BarcodeMAEModel.from_pretrained(args.encoder)
    if args.pooling_layer is not None:
        encoder.config.pooling_layer = args.pooling_layer
    target = Path(args.target)
    encoder.save_pretrained(target)
    tokenizer = BarcodeMAETokenizer.from_pretrained(args.encoder)
    if args.register_frame is not None:
        tokenizer = BarcodeMAETokenizer(k_mer=tokenizer.k_mer, max_sequence_length=tokenizer.max_sequence_length,
                                        register_frame=args.register_frame == "on")  # fmt: skip
    tokenizer.save_pretrained(target)
    training = json.loads(Path(args.training).read_text())
    card = model_card(encoder.config, target.name, target.name, DATA, training, "bold_insecta_coi.csv.gz",
                      probe_table=f"{table}\n\n{args.notes}".strip(), register_frame=tokenizer.register_frame)  # fmt: skip
    (target / "README.md").write_text(card)
    print(table)


if __name__ == "__main__":
    main()
