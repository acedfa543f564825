#!/usr/bin/env bash
# Reading-frame registration (RESULTS.md, "Reading frames"): the previous checkpoint and two untrained encoders with
# registration, the `paper` and `visible` recipes pretrained on registered barcodes (4+4 x 256, the previous
# checkpoint's settings: 800 steps of 64, lr 5e-4, seed 1) and `identity` (400 steps), the full protocol on all of them
# and the non-learned encoders, the released checkpoint (the `visible` run at layer 0), and the checkpoint as
# identify's retriever.
#   bash experiments/frame_registration_study.sh [DATA_FILE] [OUT_DIR]
# Run on 2026-12-01 (by hand, with these commands) in about 2 h on the 2-core AMD EPYC, up to three processes at once;
# since 2026-12-08 (issue 30) the protocol cuts every barcode at 660 nt and the non-learned rows are kmer:6, aa:3 and
# kmer:6+aa:3 (results/fair_protocol_2026-12-08/).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/bold_insecta_coi.csv.gz}
OUT=${2:-outputs/frame}
mkdir -p "$OUT"
SECONDS=0

# 1. Registered copies: the untrained encoders train.py starts from (--seed 0, 1) and the previous checkpoint (the one
#    released before this study, commit 1735ec0).
mkdir -p "$OUT/previous" && git archive 1735ec0 checkpoints/barcodemae-4x256-bold | tar -x -C "$OUT/previous"
PYTHONPATH=. python - "$OUT" <<'PY'
import shutil, sys
from accelerate.utils import set_seed
from barcodemae.training import recipe_config
from modeling_barcodemae import BarcodeMAEForPreTraining
from tokenization_barcodemae import BarcodeMAETokenizer
out = sys.argv[1]
for seed in (0, 1):
    set_seed(seed)
    model = BarcodeMAEForPreTraining(recipe_config("small"))
    for register in (False, True):
        folder = f"{out}/untrained-4x256-s{seed}" + ("-reg" if register else "")
        model.barcodemae.save_pretrained(folder)
        BarcodeMAETokenizer(register_frame=register).save_pretrained(folder)
shutil.copytree(f"{out}/previous/checkpoints/barcodemae-4x256-bold", f"{out}/shipped-reg", dirs_exist_ok=True)
for code in ("alphabet_barcodemae.py", "configuration_barcodemae.py", "modeling_barcodemae.py",
             "tokenization_barcodemae.py"):  # today's code
    shutil.copy(code, f"{out}/shipped-reg")
BarcodeMAETokenizer(register_frame=True).save_pretrained(f"{out}/shipped-reg")
PY

# 2. Pretraining on registered barcodes, with probes every 200 steps.
pretrain() {  # recipe steps [seed]
  local seed=${3:-1} run="$OUT/$1-reg-seed${3:-1}"
  [ -f "$run/model.safetensors" ] && return
  OMP_NUM_THREADS=1 python train.py --data_file "$DATA" --model_size small --recipe "$1" --register_frame on \
    --max_steps "$2" --per_device_train_batch_size 64 --learning_rate 5e-4 --warmup_ratio 0.05 \
    --checkpointing_steps 200 --save_total_limit 0 --eval_steps 200 --logging_steps 20 --report_to none --seed "$seed" \
    --probe_file "$DATA" --probe_steps 200 --output_dir "$run" > "$run.log" 2>&1
}
pretrain paper 800 & pretrain visible 800 & wait
pretrain identity 400
pretrain visible 800 0  # the winner's second pretraining seed
echo "pretraining: ${SECONDS}s"

# 3. The full protocol, registered encoders (the unregistered rows are RESULTS.md's "recipe study" table).
protocol() {  # name models...
  local name=$1; shift
  OMP_NUM_THREADS=1 python evaluate_probes.py --data_file "$DATA" --output_dir "$OUT/protocol_$name" --no_plots \
    --no_progress --models "$@" > "$OUT/protocol_$name.log" 2>&1
}
protocol baselines "$OUT/untrained-4x256-s0-reg@-1" "$OUT/untrained-4x256-s1-reg@-1" "$OUT/shipped-reg@0" &
protocol trained "$OUT/paper-reg-seed1@0" "$OUT/visible-reg-seed1@0" &
wait
protocol identity "$OUT/identity-reg-seed1@0" "$OUT/identity-reg-seed1@-1" &
protocol non_learned kmer:6 aa:3 kmer:6+aa:3 &
wait
protocol visible_seed0 "$OUT/visible-reg-seed0@0"
echo "protocol: ${SECONDS}s"

# 4. The released checkpoint: the `visible` run, pooling layer 0, registration on, its model card with the table.
python experiments/release_checkpoint.py --encoder "$OUT/visible-reg-seed1" --pooling_layer 0 --register_frame on \
  --results "$OUT/protocol_non_learned/results.json" "$OUT/protocol_baselines/results.json" \
  "$OUT/protocol_trained/results.json" "$OUT/protocol_visible_seed0/results.json" \
  --training experiments/release/barcodemae-4x256-bold.training.json --row "kmer:6=kmer:6" --row "aa:3=aa:3" \
  --row "kmer:6+aa:3 (each a unit vector, side by side)=kmer:6+aa:3" \
  --row "untrained encoder, seed 0 (registered)=$OUT/untrained-4x256-s0-reg" \
  --row "untrained encoder, seed 1 (registered)=$OUT/untrained-4x256-s1-reg" \
  --row "previous checkpoint (paper recipe, unregistered pretraining; registered here)=$OUT/shipped-reg@0" \
  --row "**this model** (embedding-layer features, its default)=$OUT/visible-reg-seed1@0" \
  --row "the same recipe, pretraining seed 0=$OUT/visible-reg-seed0@0" \
  --notes "$(cat experiments/release/barcodemae-4x256-bold.notes.md)"

# 5. The checkpoint as the retriever of `barcodemae identify`, beside kmer:6 (val to judge, test to report).
for splits in "val val_unseen" "test test_unseen"; do
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=1 python benchmarks/bench_identify.py --data_file "$DATA" --models kmer:6 \
    checkpoints/barcodemae-4x256-bold --sections identify --query_splits $splits
done
echo "total: ${SECONDS}s"
