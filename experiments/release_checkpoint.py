"""Write the released checkpoint: an encoder, its tokenizer and custom code, the chosen pooling layer, and a model card
(barcodemae.model_card) with a table of frozen-feature probes from `barcodemae evaluate` results.

    python experiments/release_checkpoint.py --encoder outputs/mae_vs_mlm/mae-seed0 --pooling_layer 0 \\
        --results outputs/protocol_main/results.json outputs/protocol_kmer/results.json \\
        --row "kmer:6=kmer:6" --row "untrained encoder, seed 0=outputs/untrained-4x256-s0" \\
        --row "this model=checkpoints/barcodemae-4x256-bold@0" --training training.json
    python experiments/release_checkpoint.py --card_only --results ... --row ... --training ...   # README.md only

The card's model-index holds the probes of the row labelled `--model_index_row` (default: the one with "this model").
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from barcodemae.model_card import MODEL_ID, model_card  # noqa: E402
from barcodemae.protocol import markdown_table  # noqa: E402
from configuration_barcodemae import BarcodeMAEConfig  # noqa: E402
from modeling_barcodemae import BarcodeMAEModel  # noqa: E402
from tokenization_barcodemae import BarcodeMAETokenizer  # noqa: E402

TARGET = ROOT / "checkpoints" / "barcodemae-4x256-bold"
DATA = ("Pretrained on the `pretrain` + `other_heldout` splits (16.7k unique barcodes) of a 108k-record BOLD export of "
        "insect COI-5P barcodes in the BIOSCAN-5M metadata layout; probed on its `train` / `test` / `test_unseen` "
        "splits, which pretraining never saw labelled.")  # fmt: skip
DATASET_NAME = "BOLD insect COI-5P barcodes (108k records, BIOSCAN-5M layout)"


def release(source: str, target: Path, args) -> None:
    """Save the encoder and tokenizer of `source` to `target` with the --pooling_layer and --register_frame asked."""
    encoder = BarcodeMAEModel.from_pretrained(source)
    if args.pooling_layer is not None:
        encoder.config.pooling_layer = args.pooling_layer
    encoder.save_pretrained(target)
    tokenizer = BarcodeMAETokenizer.from_pretrained(source)
    if args.register_frame is not None:
        tokenizer = BarcodeMAETokenizer(k_mer=tokenizer.k_mer, max_sequence_length=tokenizer.max_sequence_length,
                                        register_frame=args.register_frame == "on")  # fmt: skip
    tokenizer.save_pretrained(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", help="folder with the encoder (or the whole pretraining model); not with --card_only")
    parser.add_argument("--pooling_layer", type=int, default=None, help="saved in config.json (default: unchanged)")
    parser.add_argument("--register_frame", choices=("on", "off"), default=None,
                        help="the tokenizer's frame registration, saved in tokenizer_config.json (default: unchanged)")
    parser.add_argument("--results", nargs="+", required=True, help="results.json files of `barcodemae evaluate`")
    parser.add_argument("--row", action="append", required=True, help="LABEL=RESULTS_KEY, in table order")
    parser.add_argument("--training", required=True, help="JSON file: the resolved training settings")
    parser.add_argument("--notes", default="", help="markdown appended below the probe table")
    parser.add_argument("--target", default=str(TARGET))
    parser.add_argument("--model_index_row", default=None, help="default: the --row whose label says 'this model'")
    parser.add_argument("--card_only", action="store_true", help="rewrite the target's README.md only (no weights)")
    parser.add_argument("--model_id", default=MODEL_ID, help="the Hub id the card loads")
    args = parser.parse_args()
    results = {}
    for path in args.results:
        results.update(json.loads(Path(path).read_text())["results"])
    rows = {label: results[key] for label, key in (row.split("=", 1) for row in args.row)}
    indexed = args.model_index_row or next(label for label in rows if "this model" in label)
    target = Path(args.target)
    if not args.card_only:
        if not args.encoder:
            parser.error("--encoder is needed (or --card_only)")
        release(args.encoder, target, args)
    config, tokenizer = BarcodeMAEConfig.from_pretrained(target), BarcodeMAETokenizer.from_pretrained(target)
    training = json.loads(Path(args.training).read_text())
    table = markdown_table(rows)
    card = model_card(config, target.name, args.model_id, DATA, training, DATASET_NAME,
                      probe_table=f"{table}\n\n{args.notes}".strip(), register_frame=tokenizer.register_frame,
                      probe_result=rows[indexed])  # fmt: skip
    (target / "README.md").write_text(card)
    print(table)


if __name__ == "__main__":
    main()
