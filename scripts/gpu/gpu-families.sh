#!/usr/bin/env bash
# Model families on one GPU, for docs/WORKLOADS.md ("On an H200"): each WORKLOAD (a family
# name such as torchvision:resnet50 or hf-lm:DIR) trained by the suite in a fresh pytest
# session of its own on the seed profile, saved with --benchmark-autosave into OUT_DIR/NAME
# (NAME: the workload with ':' and '/' made '_'), its log and summary beside it. A session gets
# the time left before DEADLINE seconds (counted from the start), less a margin; none starts
# with under 60 s left, so a cut session is named, never silently short.
# AMPCORE_PRECISIONS (default fp32,amp-bf16) chooses the precisions; AMPCORE_ALLOW_RANDOM_INIT=1,
# AMPCORE_COMPILE=1 and AMPCORE_SEEDS=N (parity over N seeds: a workload that does not repeat
# on a GPU, such as the torchvision family, needs N >= 2) pass through to the suite as its
# options' environment variables.
# Wheels for packages the machine lacks (datasets, dill, multiprocess; torchao for fp8) may sit
# in .whl/.
# Usage: scripts/gpu/gpu-families.sh DATA_DIR OUT_DIR DEADLINE WORKLOAD...
#   e.g.  scripts/gpu/gpu-families.sh .gpu/data $OUT 560 torchvision:resnet50 torchvision:vit_b_16
set -uo pipefail
data=$1 out=$2 deadline=$3; shift 3
began=$(date +%s)
source "$(dirname "$0")/gpu-env.sh" ampcore-families
site=/tmp/ampcore-families-site
install_site "$site" .whl || exit 1
export PYTHONPATH=$site PATH=$site/bin:$PATH
python3 -c "import torch, torchvision, transformers, datasets; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'transformers', transformers.__version__)"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv,noheader
mkdir -p "$out"
for workload in "$@"; do
  name=${workload//[:\/]/_}
  left=$(( deadline - ($(date +%s) - began) - 15 ))
  if (( left < 60 )); then echo "deadline: not started: $workload"; continue; fi
  start=$(date +%s)
  timeout "$left" python3 -m pytest benchmarks -p no:cacheprovider -q -rs --amp-profile seed \
    --amp-workloads "$workload" --amp-precisions "${AMPCORE_PRECISIONS:-fp32,amp-bf16}" \
    --amp-data-dir "$data" --amp-require-cuda --benchmark-autosave \
    --benchmark-storage "file://$out/$name" --amp-summary "$out/summary-$name.md" \
    > "$out/log-$name.txt" 2>&1
  status=$?
  (( status == 124 )) && echo "$workload: stopped by the deadline after $left s (saved marked incomplete)"
  echo "$workload rc=$status $(( $(date +%s) - start )) s"
  tail -n 14 "$out/log-$name.txt"
done
