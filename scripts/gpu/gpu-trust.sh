#!/usr/bin/env bash
# Fresh suite sessions on one GPU for docs/TRUST.md: A/A sessions of unchanged code interleaved
# with sessions of injected regressions (ampcore inject). Each session is its own pytest process
# (fresh CUDA context, allocator and host state) training bert amp-bf16 on the seed profile,
# saved with --benchmark-autosave into one storage per (step mode, what ran). The storages are
# packed into OUT/trust.tgz after every session, so a call cut short still returns what
# finished; no session starts once DEADLINE seconds have passed since the script began.
# With LANES=N (a machine of N GPUs) the sessions are dealt round-robin to N lanes, lane i
# running its share one after another on GPU i (CUDA_VISIBLE_DEVICES=i), with its own caches
# and storage (STORE/laneI/...) and packed into OUT/trust-laneI.tgz; the lanes' storages are
# merged afterwards with python -m ampcore.history.merge. A captured session times the GPU's work, so
# lanes on separate GPUs do not disturb what it measures; eager sessions are host-bound and
# belong in one lane.
# Usage: [LANES=N] scripts/gpu/gpu-trust.sh DATA_DIR BERT_MODEL OUT_DIR DEADLINE SESSION...
#   SESSION  MODE:KIND, MODE off (eager) or on (captured), KIND an injection or aa (none);
#            a KIND with an argument (gpu-work:340) is stored as gpu-work_340
#   e.g.  scripts/gpu/gpu-trust.sh .gpu/data .gpu/models/bert-base-cased-config $OUT 300 \
#         off:aa off:host-overhead off:aa off:extra-sync
# AMPCORE_PRECISIONS (default amp-bf16) and AMPCORE_PROFILE (default seed) choose what each
# session trains: fp32,amp-bf16 measures the speedup's noise between sessions too.
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
lane() {  # LANE STRIDE SESSION...: this lane's share of the sessions, one after another
  local index=$1 stride=$2 n=0 session mode kind start dir=$store tgz=$out/trust.tgz tag=; shift 2
  if (( stride > 1 )); then
    dir=$store/lane$index tgz=$out/trust-lane$index.tgz tag=-lane$index
    export CUDA_VISIBLE_DEVICES=$index AMPCORE_CACHE_DIR=/tmp/ampcore-cache-lane$index HF_HOME=/tmp/hf-home-lane$index
  fi
  mkdir -p "$dir"
  for session in "$@"; do
    (( n++ % stride == index )) || continue
    mode=${session%%:*} kind=${session#*:} name=${session#*:}; name=${name//:/_}
    if (( $(date +%s) - began > deadline )); then echo "deadline: not started: $session"; continue; fi
    start=$(date +%s)
    AMPCORE_INJECT=$([[ $kind == aa ]] || echo "$kind") timeout 150 python3 -m pytest benchmarks \
      -p no:cacheprovider -q -k train --amp-profile "${AMPCORE_PROFILE:-seed}" --amp-workloads bert \
      --amp-precisions "${AMPCORE_PRECISIONS:-amp-bf16}" --amp-data-dir "$data" --amp-bert-model "$bert" $random_init \
      --amp-cuda-graphs "$mode" --benchmark-autosave --benchmark-storage "file://$dir/$mode-$name" \
      > "$dir/log-$mode-$name-$start$tag.txt" 2>&1
    echo "lane $index: $mode $kind rc=$? $(( $(date +%s) - start )) s"
    tar -czf "$tgz" -C "$dir" .
  done
}
lanes=${LANES:-1}
for (( i = 0; i < lanes; i++ )); do lane "$i" "$lanes" "$@" & done
wait
(( lanes > 1 )) && python3 -m ampcore.history.merge "$store"/merged "$store"/lane* && store=$store/merged
python3 -m scripts.tables.trust_table "$store"
