"""The CPU kernels behind the pretraining step's speed, each timed alone (median of repeats, milliseconds).

    python benchmarks/bench_cpu_kernels.py

1. Attention, forward + backward, at a paper-size decoder layer in training (16 barcodes, 6 heads, 109 tokens, head
   size 128, bf16): PyTorch's SDPA vs the written-out `eager_attention_forward` of the model, without and with
   dropout 0.1 on the attention probabilities.
2. Attention forward only, as in feature extraction (64 barcodes, 110 tokens, bf16, no grad): SDPA vs eager.
3. One dropout mask over a paper-size hidden state (16 x 109 x 768, bf16): `F.dropout` vs `fast_dropout`.
4. The encoder's FFN down projection (864 x 3072 -> 768, bf16: 16 barcodes x 54 visible tokens) on 2 threads, on 1
   thread, and computed transposed; and the decoder's (1744 rows) on 2 threads.
5. Every GEMM of a paper-size training step at batch 16 (forward y = x W^T, input gradient dy W, weight gradient
   dy^T x, the latter also from operands copied transposed; encoder M = 864 rows, decoder M = 1744) as achieved
   TFLOP/s, and the bandwidth of autocast's fp32 -> bf16 cast of a hidden state and of a weight.
"""

import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from modeling_barcodemae import eager_attention_forward, fast_dropout  # noqa: E402


def median_ms(function, repeats: int = 30) -> float:
    function()
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def attention_inputs(batch: int, length: int, requires_grad: bool):
    query, key, value = (torch.randn(batch, 6, length, 128, dtype=torch.bfloat16, requires_grad=requires_grad)
                         for _ in range(3))  # fmt: skip
    mask = torch.ones(batch, 1, 1, length, dtype=torch.bool)
    mask[::3, ..., length - 5 :] = False  # some padding, as in a real batch
    return query, key, value, mask


def sdpa(query, key, value, mask, dropout: float):
    return F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=dropout)


def eager(query, key, value, mask, dropout: float):
    module = SimpleNamespace(training=dropout > 0)
    return eager_attention_forward(module, query, key, value, mask, 128**-0.5, dropout)[0].transpose(1, 2)


def main() -> None:
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; median milliseconds")
    print("\n| attention, training (16 x 6 heads x 109 tokens, bf16), forward + backward | SDPA | eager |")
    print("|---|---:|---:|")
    query, key, value, mask = attention_inputs(16, 109, requires_grad=True)
    for dropout in (0.0, 0.1):
        times = [median_ms(lambda f=f: f(query, key, value, mask, dropout).sum().backward()) for f in (sdpa, eager)]
        print(f"| dropout {dropout} | {times[0]:.2f} | {times[1]:.2f} |")

    print("\n| attention, inference (64 x 6 heads x 110 tokens, bf16), forward | SDPA | eager |\n|---|---:|---:|")
    query, key, value, mask = attention_inputs(64, 110, requires_grad=False)
    with torch.inference_mode():
        times = [median_ms(lambda f=f: f(query, key, value, mask, 0.0)) for f in (sdpa, eager)]
    print(f"| no dropout | {times[0]:.2f} | {times[1]:.2f} |")

    hidden = torch.randn(16, 109, 768, dtype=torch.bfloat16)
    print("\n| dropout 0.1 on 16 x 109 x 768 (bf16) | F.dropout | fast_dropout |\n|---|---:|---:|")
    times = [median_ms(lambda: F.dropout(hidden, 0.1, training=True)),
             median_ms(lambda: fast_dropout(hidden, 0.1, training=True))]
    print(f"| one mask, applied | {times[0]:.2f} | {times[1]:.2f} |")

    print("\n| bf16 GEMM, x (M x 3072) @ W.T (3072 -> 768) | ms |\n|---|---:|")
    weight, bias = torch.randn(768, 3072, dtype=torch.bfloat16), torch.randn(768, dtype=torch.bfloat16)
    threads = torch.get_num_threads()
    for rows in (864, 1744):
        x = torch.randn(rows, 3072, dtype=torch.bfloat16)
        print(f"| M = {rows}, {threads} threads | {median_ms(lambda: torch.addmm(bias, x, weight.t())):.2f} |")
        if rows == 864:
            torch.set_num_threads(1)
            print(f"| M = {rows}, 1 thread | {median_ms(lambda: torch.addmm(bias, x, weight.t())):.2f} |")
            torch.set_num_threads(threads)
            transposed = median_ms(lambda: torch.addmm(bias[:, None], weight, x.t()))
            print(f"| M = {rows}, {threads} threads, computed transposed (W @ x.T) | {transposed:.2f} |")

    print("\n| bf16 GEMM of a training step (rows x in -> out), TFLOP/s | forward | input grad | weight grad | weight "
          "grad, operands already transposed | the same, counting the two transposing copies |")
    print("|---|---:|---:|---:|---:|---:|")
    for rows in (864, 1744):
        for fan_in, fan_out in ((768, 2304), (768, 768), (768, 3072), (3072, 768)):
            x, dy = torch.randn(rows, fan_in, dtype=torch.bfloat16), torch.randn(rows, fan_out, dtype=torch.bfloat16)
            weight = torch.randn(fan_out, fan_in, dtype=torch.bfloat16)
            tera = 2 * rows * fan_in * fan_out / 1e9  # GFLOP per product / ms = TFLOP/s
            dy_t, x_t = dy.t().contiguous(), x.t().contiguous()
            products = (lambda: x @ weight.t(), lambda: dy @ weight, lambda: dy.t() @ x, lambda: F.linear(dy_t, x_t),
                        lambda: F.linear(dy.t().contiguous(), x.t().contiguous()))  # fmt: skip
            rates = [tera / median_ms(product, 15) for product in products]
            print(f"| {rows} x {fan_in} -> {fan_out} | " + " | ".join(f"{r:.2f}" for r in rates) + " |")

    print("\n| fp32 -> bf16 cast (autocast) | ms | GB/s moved |\n|---|---:|---:|")
    for name, shape in (("hidden state 16 x 109 x 768", (16, 109, 768)), ("FFN weight 3072 x 768", (3072, 768))):
        source = torch.randn(shape)
        milliseconds = median_ms(lambda: source.to(torch.bfloat16))
        print(f"| {name} | {milliseconds:.2f} | {source.numel() * 6 / milliseconds / 1e6:.1f} |")


if __name__ == "__main__":
    main()
