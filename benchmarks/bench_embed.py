"""Embedding throughput, end to end (file in, file out) with `barcodemae embed`, and the model step beside the
reference pipeline (transformers `BertModel` + masked mean, fp32, every barcode padded to 660 nt as the original
repository extracts features), all in one run.

    python benchmarks/bench_embed.py [--data_file ../shared/data/bold_insecta_coi.csv.gz] [--count 2000]

Models: the shipped checkpoint, an untrained paper-size encoder (6 x 768; speed does not depend on the weights) and
kmer:6. End-to-end seconds include start-up (imports), reading, tokenizing, embedding and writing parquet.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_description  # the benchmarks folder is on sys.path when run as a script

import torch
from transformers import BertConfig, BertModel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from barcodemae.data import load_barcodes, prepare_barcodes  # noqa: E402
from barcodemae.encoders import embed_sequences  # noqa: E402
from configuration_barcodemae import BarcodeMAEConfig  # noqa: E402
from modeling_barcodemae import BarcodeMAEModel, masked_mean  # noqa: E402
from tokenization_barcodemae import BarcodeMAETokenizer  # noqa: E402

CHECKPOINT = ROOT / "checkpoints" / "barcodemae-4x256-bold"


def reference_embed(sequences: list[str], config: BarcodeMAEConfig, batch_size: int) -> float:
    """Seconds for the original pipeline: BertModel, barcodes padded with N to 660 nt, masked mean, fp32."""
    bert = BertModel(BertConfig(vocab_size=config.vocab_size, hidden_size=config.hidden_size,
                                num_hidden_layers=config.num_hidden_layers, num_attention_heads=config.num_attention_heads,
                                intermediate_size=config.intermediate_size), add_pooling_layer=False).eval()  # fmt: skip
    tokenizer = BarcodeMAETokenizer()
    start = time.perf_counter()
    with torch.inference_mode():
        for index in range(0, len(sequences), batch_size):
            chunk = [sequence.ljust(660, "N")[:660] for sequence in sequences[index : index + batch_size]]
            batch = tokenizer(chunk, return_tensors="pt")
            masked_mean(bert(**batch).last_hidden_state, batch["attention_mask"])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_file", default=str(ROOT / "data" / "bioscan_fixture.csv.gz"))
    parser.add_argument("--count", type=int, default=2000, help="barcodes of the test split")
    parser.add_argument("--batch_size", type=int, default=64)
    args = parser.parse_args()
    data, _ = prepare_barcodes(load_barcodes(args.data_file, splits=["test"]))
    sequences = data["sequence"][: args.count]
    print(f"CPU: {cpu_description()}, {torch.get_num_threads()} threads; {len(sequences)} barcodes")
    with tempfile.TemporaryDirectory() as folder:
        fasta = Path(folder) / "barcodes.fasta"
        fasta.write_text("".join(f">b{index}\n{sequence}\n" for index, sequence in enumerate(sequences)))
        paper = Path(folder) / "paper"
        BarcodeMAEModel(BarcodeMAEConfig()).save_pretrained(paper)
        BarcodeMAETokenizer().save_pretrained(paper)
        print("| model | end to end: sequences/s | model step only: sequences/s | reference pipeline | ours / reference |")
        print("|---|---:|---:|---:|---:|")
        for name, model in (("shipped 4x256", str(CHECKPOINT)), ("paper size 6x768", str(paper)), ("kmer:6", "kmer:6")):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "barcodemae.cli", "embed", str(fasta), "--model", model, "--output",
                            str(Path(folder) / "out.parquet")], check=True, capture_output=True, cwd=ROOT)  # fmt: skip
            end_to_end = len(sequences) / (time.perf_counter() - start)
            if model == "kmer:6":
                print(f"| {name} | {end_to_end:.0f} | - | - | - |")
                continue
            encoder = BarcodeMAEModel.from_pretrained(model).eval()
            start = time.perf_counter()
            embed_sequences(encoder, BarcodeMAETokenizer(), sequences, args.batch_size, layers=-1, progress=False)
            ours = len(sequences) / (time.perf_counter() - start)
            reference = len(sequences) / reference_embed(sequences, encoder.config, args.batch_size)
            print(f"| {name} | {end_to_end:.1f} | {ours:.1f} | {reference:.1f} | {ours / reference:.2f}x |")


if __name__ == "__main__":
    main()
