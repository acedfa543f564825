#!/usr/bin/env bash
# One GPU session (< 9 min on one H100/H200), run from the repository root on the lent machine:
#   1. what the GPU image lacks (datasets, umap-learn), from wheels carried in .whl/ (see the device tool's README);
#   2. the recipe screen of experiments/feature_study.py at 4x256 on the shared data, runs side by side on the card,
#      with probes along training (the study of issue 11), and the bf16 encoders of its two best recipes;
#   3. pretraining throughput, ours vs the original style, paper size, bf16, with MFU;
#   4. the paper-size (6+6 x 768) run of the best recipe next to the paper's recipe, with probes;
#   (2 and 4 pretrain on frame-registered barcodes unless REGISTER_FRAME=0)
#   5. the model tests, if time is left.
# Results go to $OUT: session.log (summaries), bench.md, screen.tar.gz and paper_size.tar.gz (every metrics.jsonl
# and log), encoder-RECIPE.tar.gz (bf16 encoders of the screen's seed-0 runs).
#   DATA=.gpu_data/bold_insecta_coi.csv.gz OUT=/tmp/out bash scripts/gpu_session.sh
set -uo pipefail
OUT=${OUT:-outputs/gpu_session}
DATA=${DATA:-.gpu_data/bold_insecta_coi.csv.gz}
# Seconds of training: the screen's runs, then the paper-size runs get what is left of END_S (the whole session).
SCREEN_S=${SCREEN_S:-140} SCREEN_STEPS=${SCREEN_STEPS:-3000} SCREEN_SIZE=${SCREEN_SIZE:-4x256}
END_S=${END_S:-530} PAPER_STEPS=${PAPER_STEPS:-2000} PAPER_SIZE=${PAPER_SIZE:-paper}  # a dry run: smaller sizes
SCREEN_SEEDS=${SCREEN_SEEDS:-0 1}
# BEST="visible" skips the screen (done on 2026-11-27, RESULTS.md): the paper-size stage trains that recipe alone for
# the time left, then runs the full protocol on it. The next session's run, with RESULTS.md's question:
#   BEST=visible PAPER_STEPS=6000 OUT=$OUT bash scripts/gpu_session.sh
BEST=${BEST:-}
# Pretraining on barcodes registered to the COI-5P reference frame (train.py's default, RESULTS.md "Reading
# frames"); REGISTER_FRAME=0 trains on barcodes as they are, as the 2026-11-27 session did.
FRAME_FLAG="--register_frame $([ "${REGISTER_FRAME:-1}" = 1 ] && echo on || echo off)"
SCREEN_RECIPES=${SCREEN_RECIPES:-paper visible visible_soft soft reference_optimiser visible_mask25 contrastive visible_contrastive}
mkdir -p "$OUT"
exec > >(tee "$OUT/session.log") 2>&1
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_DATASETS_DISABLE_PROGRESS_BARS=1

if [ -d .whl ] && [ -z "${NO_WHEELS:-}" ]; then  # the image's pyarrow decides which datasets release fits
  arrow=$(python3 -c "import pyarrow; print(pyarrow.__version__.split('.')[0])")
  wheels=$(ls .whl/*.whl)
  [ "$arrow" -lt 24 ] && wheels="$(ls .whl/alt/*.whl) $(ls .whl/umap*.whl .whl/pynndescent*.whl)"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $wheels
  export PYTHONPATH=/tmp/site
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, transformers, datasets; print('torch', torch.__version__, 'transformers', transformers.__version__, 'datasets', datasets.__version__)" || exit 1
[ -f "$DATA" ] || DATA=barcodemae/bioscan_fixture.csv.gz
echo "data: $DATA; $(elapsed) s"

# 2. the screen. One warm-up step first writes the `datasets` caches that the parallel runs then share.
python3 train.py --data_file "$DATA" --output_dir /tmp/warmup --max_steps 1 --report_to none --checkpointing_steps 0 \
  --hidden_size 64 --num_hidden_layers 1 --num_attention_heads 1 --intermediate_size 64 --decoder_hidden_size 64 \
  --decoder_num_hidden_layers 1 --decoder_num_attention_heads 1 --decoder_intermediate_size 64 \
  --probe_file "$DATA" --probe_keys 10 --probe_queries 10 > /tmp/warmup.log 2>&1 \
  || { tail -20 /tmp/warmup.log; exit 1; }
echo "warm-up done: $(elapsed) s"
SCREEN=$OUT/screen
if [ -z "$BEST" ]; then
python3 experiments/feature_study.py --data_file "$DATA" --output_dir "$SCREEN" --sizes "$SCREEN_SIZE" --seeds $SCREEN_SEEDS \
  --recipes $SCREEN_RECIPES \
  --max_steps "$SCREEN_STEPS" --probe_steps 250 --batch_size 64 --parallel 16 --threads 1 \
  --time_budget_s $(( SCREEN_S + 90 )) -- $FRAME_FLAG --max_train_minutes "$(awk "BEGIN {print $SCREEN_S / 60}")" --logging_steps 25
echo "screen done: $(elapsed) s"
tar -C "$OUT" -czf "$OUT/screen.tar.gz" --exclude='*.safetensors' --exclude='checkpoints' screen
best=$(python3 - "$SCREEN" <<'EOF'
import json, sys
from collections import defaultdict
runs = {name: run["curve"] for name, run in json.load(open(f"{sys.argv[1]}/summary.json")).items() if "curve" in run}
common = max(set.intersection(*({row["step"] for row in curve} for curve in runs.values())))  # a step all reached
scores = defaultdict(list)
for name, curve in runs.items():
    scores[name.split("-")[1]] += [row["probe_genus_1nn_unseen"] for row in curve if row["step"] == common]
ranked = sorted((recipe for recipe in scores if recipe != "paper"), key=lambda r: -sum(scores[r]) / len(scores[r]))
print(f"compared at step {common}: " + ", ".join(f"{r} {sum(scores[r]) / len(scores[r]):.1f}" for r in scores), file=sys.stderr)
print(" ".join(ranked[:2]))
EOF
)
echo "best recipes by genus 1-NN on unseen species: $best"
else
best=$BEST
fi
[ -z "$BEST" ] && for recipe in $best paper; do  # the encoders, bf16 (half the size), for the full protocol elsewhere
  python3 -c "
import sys, torch; from modeling_barcodemae import BarcodeMAEModel
model = BarcodeMAEModel.from_pretrained(sys.argv[1]).to(torch.bfloat16); model.save_pretrained(sys.argv[2])
" "$SCREEN/$SCREEN_SIZE-$recipe-s0" "$OUT/encoder-$recipe" && tar -C "$OUT" -czf "$OUT/encoder-$recipe.tar.gz" "encoder-$recipe" \
    && rm -r "$OUT/encoder-$recipe"
done

# 3. throughput, paper size, bf16 (SDPA as train.py uses on GPUs; f: the same under torch.compile) against the
#    original style in fp32.
python3 benchmarks/bench_pretraining.py --device "${BENCH_DEVICE:-cuda}" --model_size paper --batch_size "${BENCH_BATCH:-256}" \
  --steps "${BENCH_STEPS:-10}" --only a d f \
  | tee "$OUT/bench.md"
echo "benchmark done: $(elapsed) s"

# 4. paper size: the best recipe and the paper's, side by side, batch 256, lr 4e-4 (the reference's 1e-4 per 64),
#    training for what is left of END_S after start-up, validation, probes and export (about 70 s).
first=${best%% *}
paper_recipes="$first paper"  # side by side; with BEST, the best alone, and time kept for the full protocol after
reserve=0
[ -n "$BEST" ] && paper_recipes=$first && reserve=150
paper_s=$(( END_S - $(elapsed) - 70 - reserve ))
echo "paper size: $paper_s s of training each"
[ "$paper_s" -gt 30 ] && python3 experiments/feature_study.py --data_file "$DATA" --output_dir "$OUT/paper_size" --sizes "$PAPER_SIZE" --seeds 0 \
  --recipes $paper_recipes --max_steps "$PAPER_STEPS" --probe_steps 250 --batch_size 256 --parallel 2 --threads 2 \
  --time_budget_s $(( paper_s + 60 )) -- $FRAME_FLAG --learning_rate 4e-4 --logging_steps 25 \
  --max_train_minutes "$(awk "BEGIN {print $paper_s / 60}")"
echo "paper size done: $(elapsed) s"
# The full protocol (umap-learn comes from .whl) on the paper-size runs, layer 0 and last layer, while time is left.
if [ "$(elapsed)" -lt $(( END_S + 20 )) ] && [ -d "$OUT/paper_size/$PAPER_SIZE-$first-s0" ]; then
  timeout $(( END_S + 60 - $(elapsed) )) python3 evaluate_probes.py --data_file "$DATA" --output_dir /tmp/protocol \
    --no_plots --no_progress --precision bf16 --batch_size 256 \
    --models "$OUT/paper_size/$PAPER_SIZE-$first-s0@0" "$OUT/paper_size/$PAPER_SIZE-$first-s0@-1" \
    && cp /tmp/protocol/results.md "$OUT/protocol_paper_size.md" && cat "$OUT/protocol_paper_size.md"
fi

tar -C "$OUT" -czf "$OUT/paper_size.tar.gz" --exclude='*.safetensors' --exclude='checkpoints' paper_size
rm -rf "$OUT/screen" "$OUT/paper_size"

# 5. the model tests on this machine, while time is left (train.py's tests run on CUDA here)
if [ "$(elapsed)" -lt $(( END_S - 30 )) ]; then
  timeout $(( END_S + 30 - $(elapsed) )) python3 -m pytest -q -x tests/test_modeling.py tests/test_train.py \
    -p no:cacheprovider 2>&1 | tail -5
fi
echo "total: $(elapsed) s"
