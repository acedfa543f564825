"""Pretraining step throughput (sequences/s: forward, backward, AdamW step), all variants in one run.

    python benchmarks/bench_pretraining.py [--model_size paper|small] [--batch_size 16] [--steps 4] [--profile]
    python benchmarks/bench_pretraining.py --device cuda --batch_size 256 --steps 20 --only a d   # on a GPU: + MFU

(a) the original implementation style: encoder = transformers `BertModel` fed the visible tokens (every barcode padded
    with N to 660 nt, i.e. [UNK] k-mers), decoder = `BertForTokenClassification` over all 110 positions, logits at all
    positions, fp32;
(b) ours (`BarcodeMAEForPreTraining`, objective mae, eager attention and fused AdamW as train.py uses on CPU), fp32;
(c) the same, bf16 autocast (what `python train.py` runs on this CPU); (d) ours with SDPA attention, bf16 autocast;
(e) the MLM baseline as train.py runs it, bf16 autocast; (f) = (d) under `torch.compile`;
(g) = (b) under `torch.compile`. Compilation happens in the warm-up step, which is not timed.
Real barcodes from the fixture (cleaned as train.py does), 110 tokens, same sizes for all. Ratios are vs (a).
"""

import argparse
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForTokenClassification, BertModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from barcodemae.data import FIXTURE, clean_barcode, load_barcodes  # noqa: E402
from barcodemae.recipes import SIZE_PRESETS  # noqa: E402
from configuration_barcodemae import BarcodeMAEConfig  # noqa: E402
from modeling_barcodemae import BarcodeMAEForPreTraining  # noqa: E402
from tokenization_barcodemae import BarcodeMAETokenizer  # noqa: E402


class OriginalStyleMAE(torch.nn.Module):
    """The original BarcodeMAE recipe: BertModel on the kept tokens, BertForTokenClassification over all positions."""

    def __init__(self, config: BarcodeMAEConfig):
        super().__init__()
        self.mask_ratio = config.mask_ratio
        bert = dict(vocab_size=config.vocab_size, max_position_embeddings=config.max_position_embeddings,
                    attn_implementation="eager")  # fmt: skip
        self.encoder = BertModel(BertConfig(hidden_size=config.hidden_size, num_hidden_layers=config.num_hidden_layers,
                                            num_attention_heads=config.num_attention_heads,
                                            intermediate_size=config.intermediate_size, **bert), add_pooling_layer=False)
        self.decoder_embed = torch.nn.Linear(config.hidden_size, config.decoder_hidden_size)
        self.mask_token = torch.nn.Parameter(torch.zeros(1, 1, config.decoder_hidden_size))
        self.decoder = BertForTokenClassification(BertConfig(
            hidden_size=config.decoder_hidden_size, num_hidden_layers=config.decoder_num_hidden_layers,
            num_attention_heads=config.decoder_num_attention_heads, intermediate_size=config.decoder_intermediate_size,
            num_labels=config.num_kmers, **bert))  # fmt: skip

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        batch, length = input_ids.shape
        num_keep = int(length * (1 - self.mask_ratio))
        shuffle = torch.rand(batch, length, device=input_ids.device).argsort(1)
        restore = shuffle.argsort(1)
        keep = shuffle[:, :num_keep]
        encoded = self.encoder(input_ids.gather(1, keep), position_ids=keep).last_hidden_state
        tokens = torch.cat([self.decoder_embed(encoded), self.mask_token.expand(batch, length - num_keep, -1)], 1)
        tokens = tokens.gather(1, restore.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        logits = self.decoder(inputs_embeds=tokens).logits  # (batch, length, 4^k): every position
        labels = (input_ids - 2).masked_fill(restore < num_keep, -100).masked_fill(input_ids < 2, -100)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


def make_step(model, precision: str, fused: bool, device: torch.device):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=fused)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
    model.train()
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step(batch) -> float:
        synchronize()
        start = time.perf_counter()
        with autocast:
            out = model(**batch)
        loss = out if isinstance(out, torch.Tensor) else out.loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        synchronize()
        return time.perf_counter() - start

    return step


def training_flops(config: BarcodeMAEConfig, batch: int, tokens: int) -> float:
    """Matmul FLOPs of one MAE training step (forward + backward = 3x forward): the encoder on the visible tokens,
    the decoder and the k-mer head on all positions (what ours computes; the original style scores every position too).
    """

    def stack(width: int, ffn: int, layers: int, length: int) -> float:
        per_token = 2 * (4 * width * width + 2 * width * ffn)  # Q, K, V, output; FFN in and out
        attention = 2 * 2 * length * length * width  # scores and weighted values
        return layers * (per_token * length + attention)

    visible = int(tokens * (1 - config.mask_ratio))
    forward = stack(config.hidden_size, config.intermediate_size, config.num_hidden_layers, visible)
    forward += 2 * visible * config.hidden_size * config.decoder_hidden_size  # decoder_embed
    forward += stack(config.decoder_hidden_size, config.decoder_intermediate_size, config.decoder_num_hidden_layers, tokens)
    masked = tokens - visible  # ours scores the masked positions only
    forward += 2 * masked * (config.decoder_hidden_size**2 + config.decoder_hidden_size * config.num_kmers)
    return 3.0 * batch * forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_file", default=str(FIXTURE))
    parser.add_argument("--model_size", choices=sorted(SIZE_PRESETS), default="paper")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per variant (after one warm-up)")
    parser.add_argument("--only", nargs="+", default=["a", "b", "c", "d", "e"])
    parser.add_argument("--profile", action="store_true", help="then profile 3 steps of each variant (torch profiler)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (then MFU against --peak_tflops)")
    parser.add_argument("--peak_tflops", type=float, default=989.0, help="dense bf16 peak (H100/H200 SXM: 989)")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)

    config = BarcodeMAEConfig(**SIZE_PRESETS[args.model_size])  # BERT's dropout 0.1 (hidden and attention), as the original
    pretrain = load_barcodes(args.data_file, splits=["pretrain"])["sequence"]
    sequences = [clean_barcode(s) for s in pretrain[: args.batch_size * (args.steps + 1)]]
    tokenizer = BarcodeMAETokenizer()
    chunks = [sequences[i : i + args.batch_size] for i in range(0, len(sequences) - args.batch_size + 1, args.batch_size)]
    ours_batches = [dict(tokenizer(c, padding=True, truncation=True, return_tensors="pt")) for c in chunks]
    # The original pads every barcode with N to 660 nt: 110 tokens, the padding being [UNK] k-mers.
    original = [{"input_ids": tokenizer([s.ljust(660, "N")[:660] for s in c], return_tensors="pt")["input_ids"]}
                for c in chunks]  # fmt: skip

    ours_batches = [{key: value.to(device) for key, value in batch.items()} for batch in ours_batches]
    original = [{key: value.to(device) for key, value in batch.items()} for batch in original]

    def ours(attn_implementation: str, objective: str = "mae", compiled: bool = False):
        model = BarcodeMAEForPreTraining(BarcodeMAEConfig(**SIZE_PRESETS[args.model_size], objective=objective))
        model.set_attn_implementation(attn_implementation)
        if compiled:
            model.compile()
        return model

    variants = {
        "a": ("original style (BertModel + BertForTokenClassification, all-position logits), fp32",
              lambda: OriginalStyleMAE(config), original, "fp32"),
        "b": ("ours, mae, eager attention, fp32", lambda: ours("eager"), ours_batches, "fp32"),
        "c": ("ours, mae, eager attention, bf16 autocast (train.py on CPU)", lambda: ours("eager"), ours_batches, "bf16"),
        "d": ("ours, mae, SDPA attention, bf16 autocast", lambda: ours("sdpa"), ours_batches, "bf16"),
        "e": ("ours, mlm baseline, eager attention, bf16 autocast", lambda: ours("eager", "mlm"), ours_batches, "bf16"),
        "f": ("ours, mae, SDPA attention, bf16 autocast, torch.compile", lambda: ours("sdpa", compiled=True),
              ours_batches, "bf16"),
        "g": ("ours, mae, eager attention, fp32, torch.compile", lambda: ours("eager", compiled=True), ours_batches,
              "fp32"),
    }  # fmt: skip
    print(f"{args.model_size} model ({config.num_hidden_layers}+{config.decoder_num_hidden_layers} layers x "
          f"{config.hidden_size}), batch {args.batch_size}, {ours_batches[0]['input_ids'].shape[1]} tokens, {args.steps} timed "
          f"steps, torch {torch.__version__}, {torch.get_num_threads()} threads")  # fmt: skip
    # The original uses AdamW's default (foreach) implementation; ours is the step of train.py (fused AdamW).
    steps = {key: make_step(variants[key][1]().to(device), variants[key][3], fused=key != "a", device=device)
             for key in args.only}  # fmt: skip
    times = {key: [] for key in args.only}
    for index in range(args.steps + 1):  # round robin, so that other load on the machine hits every variant alike
        for key in args.only:
            batches = variants[key][2]
            elapsed = steps[key](batches[index % len(batches)])
            if index:  # the first step of each is a warm-up
                times[key].append(elapsed)
    flops = training_flops(config, args.batch_size, ours_batches[0]["input_ids"].shape[1])
    print(f"device {torch.cuda.get_device_name() if device.type == 'cuda' else device.type}; MFU = "
          f"{flops / 1e9:.0f} GFLOP per step (ours' matmuls) / median step time / {args.peak_tflops:g} TFLOP/s")  # fmt: skip
    print("| variant | sequences/s (median step) | sequences/s (best step) | vs (a), median | MFU |\n|---|---|---|---|---|")
    rates = {key: args.batch_size / statistics.median(times[key]) for key in args.only}
    for key in args.only:
        ratio = f"{rates[key] / rates['a']:.2f}x" if "a" in rates else "-"
        best = args.batch_size / min(times[key])
        mfu = flops * rates[key] / args.batch_size / (args.peak_tflops * 1e12)
        print(f"| ({key}) {variants[key][0]} | {rates[key]:.2f} | {best:.2f} | {ratio} | {mfu:.1%} |")
    if args.profile:
        for key in args.only:
            with torch.profiler.profile() as profiler:
                for index in range(3):
                    steps[key](variants[key][2][index % len(variants[key][2])])
            print(f"\n({key}) {variants[key][0]}: 3 steps")
            print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


if __name__ == "__main__":
    main()
