#!/usr/bin/env bash
# Where eager round times drift from (docs/TRUST.md): scripts/eager-drift.py in fresh
# processes, the variants interleaved, then one table.
# Usage: scripts/gpu/gpu-drift.sh DATA_DIR BERT_MODEL OUT_DIR REPEATS VARIANT...
#   VARIANT  plain; teardown (TEARDOWN_CUPTI=1: the profiler releases CUPTI when it stops);
#            pinned (the process bound to 4 of its CPUs)
set -uo pipefail
data=$1 bert=$2 out=$3 repeats=$4; shift 4
source "$(dirname "$0")/gpu-env.sh" ampcore-drift
site=/tmp/ampcore-drift-site
install_site "$site" .whl || exit 1
export PYTHONPATH=$site PATH=$site/bin:$PATH
mkdir -p "$out"
cpus=$(python3 -c "import os; print(','.join(map(str, sorted(os.sched_getaffinity(0))[:4])))")
for ((i = 1; i <= repeats; i++)); do
  for variant in "$@"; do
    case $variant in
      plain) prefix=() ;;
      teardown) prefix=(env TEARDOWN_CUPTI=1) ;;
      pinned) prefix=(taskset -c "$cpus") ;;
    esac
    "${prefix[@]}" python3 scripts/eager-drift.py "$data" "$bert" --label "$variant" \
      >> "$out/drift.jsonl" 2>> "$out/drift.log" || echo "$variant $i failed" | tee -a "$out/drift.log"
  done
done
python3 scripts/eager-drift.py --table "$out/drift.jsonl"
