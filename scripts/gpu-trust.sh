#!/usr/bin/env bash
# Fresh suite sessions on one GPU for docs/TRUST.md: A/A sessions of unchanged code, then one
# session per injected regression, in eager and in captured steps. Each session is its own
# pytest process (fresh CUDA context, allocator and host state), saved with --benchmark-autosave
# into one storage per (step mode, what ran); the storages are packed into OUT/trust.tgz after
# every session, so a run cut short still returns what finished.
# Usage: scripts/gpu-trust.sh DATA_DIR BERT_MODEL OUT_DIR "EAGER_AA" "EAGER_KINDS" "CAPTURED_AA" "CAPTURED_KINDS"
#   e.g.  scripts/gpu-trust.sh .gpu/data .gpu/models/bert-base-cased-config $OUT 5 \
#         "host-overhead extra-sync" 3 "attention-fallback"
# Wheels for packages the machine lacks (datasets, dill, multiprocess) may sit in .whl/.
set -uo pipefail
data=$1 bert=$2 out=$3 eager_aa=$4 eager_kinds=$5 captured_aa=$6 captured_kinds=$7
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export AMPCORE_CACHE_DIR=/tmp/ampcore-cache HF_HOME=/tmp/hf-home
site=/tmp/ampcore-site
python3 -m pip install -q --no-index --no-deps --no-compile --no-build-isolation --target "$site" \
    $(ls .whl/*.whl 2>/dev/null) . || exit 1
export PYTHONPATH=$site PATH=$site/bin:$PATH
random_init=$(ls "$bert"/*.safetensors "$bert"/*.bin 2>/dev/null | grep -q . || echo --amp-allow-random-init)
store=/tmp/trust
session() {  # MODE NAME [KIND]
  local mode=$1 name=$2 kind=${3:-} start=$(date +%s)
  AMPCORE_INJECT=$kind timeout 120 python3 -m pytest benchmarks -p no:cacheprovider -q -k train \
    --amp-profile seed --amp-workloads bert --amp-precisions amp-bf16 --amp-data-dir "$data" \
    --amp-bert-model "$bert" $random_init --amp-cuda-graphs "$mode" --benchmark-autosave \
    --benchmark-storage "file://$store/$mode-$name" > "$store/log-$mode-$name-$(date +%s%N).txt" 2>&1
  echo "$mode $name ${kind:--} rc=$? $(( $(date +%s) - start )) s"
  tar -czf "$out/trust.tgz" -C "$store" .
}
mkdir -p "$store" "$out"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,temperature.gpu --format=csv,noheader
for i in $(seq 1 "$eager_aa"); do session off aa; done
for kind in $eager_kinds; do session off "$kind" "$kind"; done
for i in $(seq 1 "$captured_aa"); do session on aa; done
for kind in $captured_kinds; do session on "$kind" "$kind"; done
