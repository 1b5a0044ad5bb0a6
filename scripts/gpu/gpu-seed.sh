#!/usr/bin/env bash
# The seed profile on a GPU machine without network: the commands behind docs/PERFORMANCE.md
# and docs/BENCHMARKS.md. Usage: scripts/gpu/gpu-seed.sh DATA_DIR BERT_MODEL OUT_DIR [STEPS...]
#   DATA_DIR   directory with imdb/train.parquet and mnist/MNIST/raw/*.gz
#   BERT_MODEL a local bert directory (config + tokenizer; weights optional)
#   STEPS      any of: suite run compile (default: all three)
# Wheels for packages the machine lacks (datasets, dill, multiprocess) may sit in .whl/.
set -uo pipefail
data=$1 bert=$2 out=$3; shift 3
steps=${*:-suite run compile}
mkdir -p "$out"
source "$(dirname "$0")/gpu-env.sh"
site=/tmp/ampcore-site
install_site "$site" .whl || exit 1
export PYTHONPATH=$site PATH=$site/bin:$PATH
random_init=$(ls "$bert"/*.safetensors "$bert"/*.bin 2>/dev/null | grep -q . || echo --allow-random-init)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv
python3 -c "import torch, transformers, datasets, torchvision; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__, 'datasets', datasets.__version__, 'torchvision', torchvision.__version__)"
common=(--data-dir "$data" --bert-model "$bert" $random_init --profile seed --no-progress)
# GPU clocks, power and load once a second, to tell throttling from host-side noise.
nvidia-smi dmon -s pucv -d 1 > "$out/dmon.log" 2>&1 &
dmon=$!
for step in $steps; do
  start=$(date +%s)
  case $step in
    suite)
      python3 -m pytest benchmarks -p no:cacheprovider --amp-profile seed --amp-data-dir "$data" \
        --amp-bert-model "$bert" ${random_init:+--amp-allow-random-init} --benchmark-autosave \
        --benchmark-storage "file://$out/bench" --amp-summary "$out/summary.md" \
        --benchmark-columns=median,iqr,min,max,rounds 2>&1 | tee "$out/suite.log" | tail -60 ;;
    run)
      python3 -m ampcore run --workload bert --precision amp-bf16 fp32 "${common[@]}" --json "$out/run-eager.json" ;;
    compile)
      python3 -m ampcore run --workload bert --precision amp-bf16 --compile "${common[@]}" --json "$out/run-compile.json" ;;
  esac
  echo "step $step took $(( $(date +%s) - start )) s"
done
kill $dmon 2>/dev/null
