#!/usr/bin/env bash
# Reading-frame registration (RESULTS.md, "Reading frames"): the shipped checkpoint and two untrained encoders with
# registration, the `paper` and `visible` recipes pretrained on registered barcodes (4+4 x 256, the shipped
# checkpoint's settings: 800 steps of 64, lr 5e-4, seed 1), and the full protocol on all of them.
#   bash experiments/frame_registration_study.sh [DATA_FILE] [OUT_DIR]
# Two processes at a time, one thread each (2 cores); about 1 h 40 min on the 2-core AMD EPYC.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/bold_insecta_coi.csv.gz}
OUT=${2:-outputs/frame}
mkdir -p "$OUT"
SECONDS=0

# 1. Registered copies: the untrained encoders train.py starts from (--seed 0, 1) and the shipped checkpoint.
PYTHONPATH=. python - "$OUT" <<'PY'
import shutil, sys
from accelerate.utils import set_seed
from train import build_config, parse_args
from modeling_barcodemae import BarcodeMAEForPreTraining
from tokenization_barcodemae import BarcodeMAETokenizer
out = sys.argv[1]
for seed in (0, 1):
    set_seed(seed)
    model = BarcodeMAEForPreTraining(build_config(parse_args(["--model_size", "small"])))
    for register in (False, True):
        folder = f"{out}/untrained-4x256-s{seed}" + ("-reg" if register else "")
        model.barcodemae.save_pretrained(folder)
        BarcodeMAETokenizer(register_frame=register).save_pretrained(folder)
shutil.copytree("checkpoints/barcodemae-4x256-bold", f"{out}/shipped-reg", dirs_exist_ok=True)
BarcodeMAETokenizer(register_frame=True).save_pretrained(f"{out}/shipped-reg")
PY

# 2. Pretraining on registered barcodes, with probes every 200 steps.
pretrain() {  # recipe
  local run="$OUT/$1-reg-seed1"
  [ -f "$run/model.safetensors" ] && return
  OMP_NUM_THREADS=1 python train.py --data_file "$DATA" --model_size small --recipe "$1" --register_frame \
    --max_steps 800 --per_device_train_batch_size 64 --learning_rate 5e-4 --warmup_ratio 0.05 \
    --checkpointing_steps 200 --save_total_limit 0 --eval_steps 200 --logging_steps 20 --report_to none --seed 1 \
    --probe_file "$DATA" --probe_steps 200 --output_dir "$run" > "$run.log" 2>&1
}
pretrain paper & pretrain visible & wait
echo "pretraining: ${SECONDS}s"

# 3. The full protocol, registered encoders (the unregistered rows are RESULTS.md's "recipe study" table).
protocol() {  # name models...
  local name=$1; shift
  OMP_NUM_THREADS=1 python evaluate_probes.py --data_file "$DATA" --output_dir "$OUT/protocol_$name" --no_plots \
    --no_progress --models "$@" > "$OUT/protocol_$name.log" 2>&1
}
protocol baselines "$OUT/untrained-4x256-s0-reg@-1" "$OUT/untrained-4x256-s1-reg@-1" "$OUT/shipped-reg@0" &
protocol trained "$OUT/paper-reg-seed1@0" "$OUT/paper-reg-seed1@-1" "$OUT/visible-reg-seed1@0" \
  "$OUT/visible-reg-seed1@-1" &
wait
echo "total: ${SECONDS}s"
