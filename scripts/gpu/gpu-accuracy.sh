#!/usr/bin/env bash
# Accuracy parity and the accuracy gate on one GPU, for docs/TRUST.md: a pretrained bert-family
# model fine-tuned on the seed profile with N training seeds in fp32 and amp-bf16, then the same
# seeds in amp-bf16 with the accuracy-loss injection, every run saved by `ampcore run --json`;
# scripts/tables/accuracy_matrix.py judges them with the suite's parity rule and compare's gate.
# Usage: scripts/gpu/gpu-accuracy.sh DATA_DIR BERT_MODEL OUT_DIR [SEEDS [WHAT...]]
#   WHAT  clean, injected (accuracy-loss: master weights rounded to bfloat16) and/or injected:BITS
#         (accuracy-loss:BITS, master weights kept to BITS mantissa bits, a smaller loss the more
#         bits; saved as injected-BITS.json); default: clean injected
# Wheels for packages the machine lacks (datasets, dill, multiprocess) may sit in .whl/.
set -uo pipefail
data=$1 bert=$2 out=$3 seeds=${4:-10}; shift 3; shift $(( $# > 0 ? 1 : 0 ))
whats=${*:-clean injected}
source "$(dirname "$0")/gpu-env.sh" ampcore-accuracy
site=/tmp/ampcore-accuracy-site
install_site "$site" .whl || exit 1
export PYTHONPATH=$site PATH=$site/bin:$PATH
mkdir -p "$out"
common=(--workload bert --profile seed --data-dir "$data" --bert-model "$bert" --seeds "$seeds" --no-progress)
for what in $whats; do
  start=$(date +%s)
  if [[ $what == clean ]]; then
    python3 -m ampcore run "${common[@]}" --precision fp32 amp-bf16 --json "$out/$what.json" > "$out/$what.log" 2>&1
  else
    kind=accuracy-loss; [[ $what == injected:* ]] && kind=accuracy-loss:${what#injected:}
    name=${what/:/-}
    python3 -m ampcore run "${common[@]}" --precision amp-bf16 --inject "$kind" --json "$out/$name.json" > "$out/$name.log" 2>&1
  fi
  echo "$what rc=$? $(( $(date +%s) - start )) s"
  tail -n 12 "$out/$what.log"
done
