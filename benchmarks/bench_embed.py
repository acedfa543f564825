"""Embedding throughput, end to end (file in, file out) with `barcodemae embed`, and the model step of
`embed_sequences` beside the reference pipeline (transformers `BertModel` + masked mean, fp32, every barcode padded
to 660 nt as the original repository extracts features), all in one run.

    OMP_NUM_THREADS=1 python benchmarks/bench_embed.py [--data_file F] [--count 300] [--repeats 2]

Models: the shipped checkpoint, an untrained paper-size encoder (6 x 768; speed does not depend on the weights) and
kmer:6. Our model step is timed at the model's own pooled layer (the shipped checkpoint pools layer 0, so only the
embedding layer runs), at the last layer in fp32, and at the last layer with `precision="int8"`. End-to-end seconds
include start-up (imports), reading, tokenizing, embedding and writing parquet. Model steps: best of `--repeats`.
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
from barcodemae.data import FIXTURE, load_barcodes, prepare_barcodes  # noqa: E402
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


def ours_embed(sequences: list[str], model, batch_size: int, layer: int, precision: str) -> float:
    """Seconds for `embed_sequences` (int8 includes quantizing the model, as every call does)."""
    start = time.perf_counter()
    embed_sequences(model, BarcodeMAETokenizer(), sequences, batch_size, layers=layer, precision=precision, progress=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_file", default=str(FIXTURE))
    parser.add_argument("--count", type=int, default=300, help="the first COUNT distinct barcodes of the file")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2, help="model steps: best of this many runs")
    args = parser.parse_args()
    data, _ = prepare_barcodes(load_barcodes(args.data_file))
    sequences = data["sequence"][: args.count]
    print(f"CPU: {cpu_description()}, {torch.get_num_threads()} threads; {len(sequences)} barcodes")
    with tempfile.TemporaryDirectory() as folder:
        fasta = Path(folder) / "barcodes.fasta"
        fasta.write_text("".join(f">b{index}\n{sequence}\n" for index, sequence in enumerate(sequences)))
        paper = Path(folder) / "paper"
        BarcodeMAEModel(BarcodeMAEConfig()).save_pretrained(paper)
        BarcodeMAETokenizer().save_pretrained(paper)
        print("| model | pipeline | end to end: sequences/s | model step: sequences/s | / reference |")
        print("|---|---|---:|---:|---:|")
        for name, model in (("shipped 4x256", str(CHECKPOINT)), ("paper size 6x768", str(paper)), ("kmer:6", "kmer:6")):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "barcodemae.cli", "embed", str(fasta), "--model", model, "--output",
                            str(Path(folder) / "out.parquet")], check=True, capture_output=True, cwd=ROOT)  # fmt: skip
            end_to_end = f"{len(sequences) / (time.perf_counter() - start):.1f}"
            if model == "kmer:6":
                print(f"| {name} | k-mer frequencies | {end_to_end} | - | - |")
                continue
            encoder = BarcodeMAEModel.from_pretrained(model).eval()
            own = encoder.config.pooling_layer
            runs = {"reference: BertModel, padded to 660 nt, fp32": lambda: reference_embed(sequences, encoder.config, args.batch_size)}
            runs[f"ours, own pooled layer ({own}), fp32"] = lambda: ours_embed(sequences, encoder, args.batch_size, own, "fp32")
            if own != -1:
                runs["ours, last layer, fp32"] = lambda: ours_embed(sequences, encoder, args.batch_size, -1, "fp32")
            runs["ours, last layer, int8"] = lambda: ours_embed(sequences, encoder, args.batch_size, -1, "int8")
            speeds = {label: len(sequences) / min(run() for _ in range(args.repeats)) for label, run in runs.items()}
            reference = next(iter(speeds.values()))
            for index, (label, speed) in enumerate(speeds.items()):
                cli = end_to_end if index == 1 else "-"  # `barcodemae embed` pools the model's own layer in fp32
                print(f"| {name} | {label} | {cli} | {speed:.1f} | {speed / reference:.2f}x |")


if __name__ == "__main__":
    main()
