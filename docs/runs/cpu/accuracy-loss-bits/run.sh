#!/usr/bin/env bash
# One fp32 fine-tuning run of the pretrained all-MiniLM-L6-v2 on the seed profile's IMDB task,
# shortened for a CPU (sequences of 32 tokens, 1,000 held-out reviews), saved as OUT/LABEL.json.
# Usage: OUT=DIR bash run.sh LABEL INJECTION   (INJECTION: none, or e.g. accuracy-loss:11)
inj=(); [[ $2 != none ]] && inj=(--inject "$2")
start=$(date +%s)
OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 ampcore run --workload hf-text:../shared/models/all-MiniLM-L6-v2-fp16 \
  --precision fp32 --profile seed --data-dir ../shared/data --device cpu --max-length 32 \
  --eval-samples 1000 --no-progress "${inj[@]}" --json "$OUT/$1.json" > "$OUT/$1.log" 2>&1
echo "$1 rc=$? $(( $(date +%s) - start )) s" >> "$OUT/done.txt"
