#!/usr/bin/env bash
# The full protocol (barcodemae evaluate = python evaluate_probes.py, as RESULTS.md runs it) for the non-learned
# encoders at 660 nt, one thread, one encoder at a time. Run from a snapshot of the working tree (/tmp/fair_snapshot)
# so that edits made meanwhile do not reach the running code.
set -euo pipefail
DATA=/work/shared/data/bold_insecta_coi.csv.gz
OUT=/work/main/results/fair_protocol_2026-12-08
cd /tmp/fair_snapshot
. /work/venv/bin/activate
for model in kmer:6+aa:3 aa:3 kmer:6; do
  name=${model//[:+]/_}
  SECONDS=0
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python evaluate_probes.py --data_file "$DATA" \
    --output_dir "$OUT/protocol_$name" --cache_dir /tmp/fair_cache --no_plots --no_progress --max_length 660 \
    --models "$model" > "$OUT/protocol_$name.log" 2>&1
  echo "$model: ${SECONDS} s" >> "$OUT/timings.txt"
done
