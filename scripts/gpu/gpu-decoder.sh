#!/usr/bin/env bash
# Where each precision pays on one GPU, for docs/PERFORMANCE.md: the llama suite (fp32,
# amp-bf16, fp8 with its speedup and loss-parity tests), bert in amp-bf16 and fp8, and the wide
# llama in amp-bf16 and fp8; each its own fresh pytest session saved with --benchmark-autosave.
# torchao (the fp8 extra) comes from a wheel in .whl/ (like the packages the machine lacks) or
# in the directory WHEELS names.
# Usage: scripts/gpu/gpu-decoder.sh DATA_DIR BERT_MODEL OUT_DIR DEADLINE [STEP...]
#   STEP  llama, bert or wide (default: all three, in that order); none starts after DEADLINE s
set -uo pipefail
data=$1 bert=$2 out=$3 deadline=$4; shift 4
steps=${*:-llama bert wide}
began=$(date +%s)
source "$(dirname "$0")/gpu-env.sh" ampcore-decoder
site=/tmp/ampcore-decoder-site
install_site "$site" .whl ${WHEELS:+"$WHEELS"} || exit 1
export PYTHONPATH=$site PATH=$site/bin:$PATH
python3 -c "import torch, torchao, transformers; print('torch', torch.__version__, 'torchao', torchao.__version__, 'transformers', transformers.__version__)"
mkdir -p "$out"
store=/tmp/decoder
common=(-p no:cacheprovider -q --amp-profile seed --amp-data-dir "$data" --amp-require-cuda
        --benchmark-autosave)
for step in $steps; do
  if (( $(date +%s) - began > deadline )); then echo "deadline: not started: $step"; continue; fi
  start=$(date +%s)
  case $step in
    llama) args=(--amp-workloads llama --amp-precisions fp32,amp-bf16,fp8) ;;
    bert) args=(-k train --amp-workloads bert --amp-precisions amp-bf16,fp8 --amp-bert-model "$bert"
                --amp-allow-random-init) ;;
    wide) args=(-k train --amp-workloads llama --amp-precisions amp-bf16,fp8
                --amp-llama-model llama-wide) ;;
  esac
  python3 -m pytest benchmarks "${common[@]}" "${args[@]}" --benchmark-storage "file://$store/$step" \
    --amp-summary "$out/summary-$step.md" > "$out/log-$step.txt" 2>&1
  echo "$step rc=$? $(( $(date +%s) - start )) s"
  tail -n 3 "$out/log-$step.txt"
  tar -czf "$out/decoder.tgz" -C "$store" .
done
