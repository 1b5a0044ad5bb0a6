#!/usr/bin/env bash
# Fresh eager processes of bert seed amp-bf16 on one GPU, for docs/TRUST.md's fresh-process
# rows: scripts/process-drift.py runs COUNT processes one after another (none after DEADLINE s),
# then prints the drift of one process and of K merged (--processes K). With LANES=N the
# processes are split over N GPUs, COUNT each, lane i on GPU i (host-bound eager processes
# side by side: say so beside the figures). Packed into OUT/drift.tgz at the end.
# Usage: [LANES=N] scripts/gpu/gpu-process-drift.sh DATA_DIR BERT_MODEL OUT_DIR COUNT DEADLINE
set -uo pipefail
data=$1 bert=$2 out=$3 count=$4 deadline=$5
source "$(dirname "$0")/gpu-env.sh"
site=/tmp/ampcore-site
install_site "$site" .whl || exit 1
export PYTHONPATH=$site PATH=$site/bin:$PATH
python3 -c "import datasets" 2>/dev/null || { install_site "$site" .whl/alt || exit 1; }
random_init=$(ls "$bert"/*.safetensors "$bert"/*.bin 2>/dev/null | grep -q . || echo --allow-random-init)
store=/tmp/process-drift
mkdir -p "$store" "$out"
lanes=${LANES:-1}
for (( i = 0; i < lanes; i++ )); do
  CUDA_VISIBLE_DEVICES=$i AMPCORE_CACHE_DIR=/tmp/ampcore-cache-lane$i HF_HOME=/tmp/hf-home-lane$i \
    python3 scripts/process-drift.py run "$store/lane$i" "$count" "$deadline" -- --workload bert \
    --precision amp-bf16 --cuda-graphs off --profile seed --data-dir "$data" --bert-model "$bert" \
    $random_init > "$store/lane$i.log" 2>&1 &
done
wait
tar -czf "$out/drift.tgz" -C "$store" .
python3 scripts/process-drift.py table "$store" 3 5
