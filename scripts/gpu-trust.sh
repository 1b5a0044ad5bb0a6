#!/usr/bin/env bash
# Fresh suite sessions on one GPU for docs/TRUST.md: A/A sessions of unchanged code interleaved
# with sessions of injected regressions (ampcore inject). Each session is its own pytest process
# (fresh CUDA context, allocator and host state) training bert amp-bf16 on the seed profile,
# saved with --benchmark-autosave into one storage per (step mode, what ran). The storages are
# packed into OUT/trust.tgz after every session, so a call cut short still returns what
# finished; no session starts once DEADLINE seconds have passed since the script began.
# Usage: scripts/gpu-trust.sh DATA_DIR BERT_MODEL OUT_DIR DEADLINE SESSION...
#   SESSION  MODE:KIND, MODE off (eager) or on (captured), KIND an injection or aa (none)
#   e.g.  scripts/gpu-trust.sh .gpu/data .gpu/models/bert-base-cased-config $OUT 300 \
#         off:aa off:host-overhead off:aa off:extra-sync
# Wheels for packages the machine lacks (datasets, dill, multiprocess) may sit in .whl/ (and an
# alternative set in .whl/alt/, tried when the first does not import).
set -uo pipefail
data=$1 bert=$2 out=$3 deadline=$4; shift 4
began=$(date +%s)
source "$(dirname "$0")/gpu-env.sh"
site=/tmp/ampcore-site
install_site "$site" .whl || exit 1
export PYTHONPATH=$site PATH=$site/bin:$PATH
python3 -c "import datasets" 2>/dev/null || { echo "datasets from .whl does not import; trying .whl/alt"; install_site "$site" .whl/alt || exit 1; }
python3 -c "import torch, transformers, datasets, pyarrow; print('torch', torch.__version__, 'transformers', transformers.__version__, 'datasets', datasets.__version__, 'pyarrow', pyarrow.__version__)"
random_init=$(ls "$bert"/*.safetensors "$bert"/*.bin 2>/dev/null | grep -q . || echo --amp-allow-random-init)
store=/tmp/trust
mkdir -p "$store" "$out"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv,noheader
for session in "$@"; do
  mode=${session%%:*} kind=${session#*:}
  if (( $(date +%s) - began > deadline )); then echo "deadline: not started: $session"; continue; fi
  start=$(date +%s)
  AMPCORE_INJECT=$([[ $kind == aa ]] || echo "$kind") timeout 150 python3 -m pytest benchmarks \
    -p no:cacheprovider -q -k train --amp-profile "${AMPCORE_PROFILE:-seed}" --amp-workloads bert \
    --amp-precisions amp-bf16 --amp-data-dir "$data" --amp-bert-model "$bert" $random_init \
    --amp-cuda-graphs "$mode" --benchmark-autosave --benchmark-storage "file://$store/$mode-$kind" \
    > "$store/log-$mode-$kind-$start.txt" 2>&1
  echo "$mode $kind rc=$? $(( $(date +%s) - start )) s"
  tar -czf "$out/trust.tgz" -C "$store" .
done
python3 scripts/trust-table.py "$store"
