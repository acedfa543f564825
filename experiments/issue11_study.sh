#!/usr/bin/env bash
# The recipe study of RESULTS.md ("The recipe study"), CPU part, and the released checkpoint; the GPU part (the
# 4x256 screen of every recipe, two seeds, and the paper-size runs) is scripts/gpu_session.sh.
#   bash experiments/issue11_study.sh ../shared/data/bold_insecta_coi.csv.gz outputs/issue11
# The released weights are those of experiments/mae_vs_mlm.sh's run mae-seed1 (already in checkpoints/); step 3
# rewrites their config (pooling_layer 0) and model card from the probes of step 2. About 1 h 10 min on 2 busy cores.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/bold_insecta_coi.csv.gz}
OUT=${2:-outputs/issue11}
mkdir -p "$OUT"
SECONDS=0

# 1. The masked-profile objective (ours) at 2x128 on the CPU, probes every 200 steps on a smaller subsample.
OMP_NUM_THREADS=1 python experiments/feature_study.py --data_file "$DATA" --output_dir "$OUT/cpu_study" \
  --sizes 2x128 --seeds 0 --recipes profile visible_profile paper --max_steps 600 --probe_steps 200 --batch_size 64 \
  --parallel 2 --probe_keys 2000 --probe_queries 500 -- --logging_steps 25
echo "CPU study: ${SECONDS}s"

# 2. The full protocol: the untrained encoders (seeds 0, 1) and the released weights at layer 0 and at the last layer.
python - <<'EOF'
from accelerate.utils import set_seed
from barcodemae.training import recipe_config
from modeling_barcodemae import BarcodeMAEForPreTraining
from tokenization_barcodemae import BarcodeMAETokenizer
for seed in (0, 1):  # the encoder train.py starts from with --seed
    set_seed(seed)
    model = BarcodeMAEForPreTraining(recipe_config("small"))
    model.barcodemae.save_pretrained(f"outputs/untrained-4x256-s{seed}")
    BarcodeMAETokenizer().save_pretrained(f"outputs/untrained-4x256-s{seed}")
EOF
OMP_NUM_THREADS=1 python evaluate_probes.py --data_file "$DATA" --output_dir "$OUT/protocol_main" --no_plots \
  --models outputs/untrained-4x256-s0 outputs/untrained-4x256-s1 checkpoints/barcodemae-4x256-bold@0 \
  checkpoints/barcodemae-4x256-bold@-1 kmer:6
echo "protocol: ${SECONDS}s"

# 3. The released checkpoint: pooling_layer 0, and a model card with the table above.
python experiments/release_checkpoint.py --encoder checkpoints/barcodemae-4x256-bold --pooling_layer 0 \
  --results "$OUT/protocol_main/results.json" --training experiments/release/barcodemae-4x256-bold.training.json \
  --row "kmer:6=kmer:6" --row "untrained encoder, seed 0=outputs/untrained-4x256-s0" \
  --row "untrained encoder, seed 1=outputs/untrained-4x256-s1" \
  --row "**this model** (pooling_layer 0, the default)=checkpoints/barcodemae-4x256-bold@0" \
  --row "this model, last layer (pooling_layer -1)=checkpoints/barcodemae-4x256-bold@-1" \
  --notes "$(cat experiments/release/barcodemae-4x256-bold.notes.md)"
echo "total: ${SECONDS}s"
