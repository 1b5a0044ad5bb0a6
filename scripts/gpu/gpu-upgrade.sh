#!/usr/bin/env bash
# A library upgrade compared on one GPU, the worked example of docs/UPGRADE-EXAMPLE.md: the
# seed-profile suite in a fresh session with older libraries installed from wheels (the
# baseline), then in a fresh session with the machine's own (the candidate), both saved into
# one storage, then `ampcore compare` with its defaults.
# Usage: scripts/gpu/gpu-upgrade.sh DATA_DIR BERT_MODEL OUT_DIR OLD_WHEELS_DIR
#   OLD_WHEELS_DIR  wheels of the older releases (e.g. transformers 4.57.1, tokenizers 0.22.1,
#                   huggingface-hub 0.36.0), installed ahead of the machine's own
# Wheels for packages the machine lacks (datasets, dill, multiprocess) may sit in .whl/.
# AMPCORE_WORKLOADS / AMPCORE_PRECISIONS narrow the suite (default: bert,resnet18 and
# fp32,tf32,amp-fp16,amp-bf16).
set -uo pipefail
data=$1 bert=$2 out=$3 old=$4
source "$(dirname "$0")/gpu-env.sh" ampcore-upgrade
export AMPCORE_WORKLOADS=${AMPCORE_WORKLOADS:-bert,resnet18}
export AMPCORE_PRECISIONS=${AMPCORE_PRECISIONS:-fp32,tf32,amp-fp16,amp-bf16}
store=$out/bench
mkdir -p "$out"
random_init=$(ls "$bert"/*.safetensors "$bert"/*.bin 2>/dev/null | grep -q . || echo --amp-allow-random-init)
versions='import torch, transformers, tokenizers, huggingface_hub, datasets
print("torch", torch.__version__, "transformers", transformers.__version__, "tokenizers",
      tokenizers.__version__, "huggingface_hub", huggingface_hub.__version__, "datasets",
      datasets.__version__)'
session() {  # LABEL SITE [WHEELS_DIR]: install the project (and the wheels) into SITE, run the suite
  local label=$1 site=$2 extra=${3:-}
  install_site "$site" .whl ${extra:+"$extra"} || return 1
  PYTHONPATH=$site python3 -c "$versions" | tee "$out/versions-$label.txt"
  local start=$(date +%s)
  PYTHONPATH=$site python3 -m pytest benchmarks -p no:cacheprovider -q --amp-profile seed \
    --amp-data-dir "$data" --amp-bert-model "$bert" $random_init --amp-require-cuda \
    --benchmark-autosave --benchmark-storage "file://$store" --amp-summary "$out/summary-$label.md" \
    > "$out/suite-$label.log" 2>&1
  echo "suite $label rc=$? $(( $(date +%s) - start )) s"
  tail -4 "$out/suite-$label.log"
}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv,noheader
session old /tmp/ampcore-site-old "$old"
session new /tmp/ampcore-site-new
PYTHONPATH=/tmp/ampcore-site-new python3 -m ampcore compare "$store" --markdown "$out/compare.md" \
  --json "$out/compare.json" > "$out/compare.txt" 2>&1
echo "compare rc=$?"
cat "$out/compare.txt"
