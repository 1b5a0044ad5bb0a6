# Sourced by the scripts/gpu/gpu-*.sh: the offline environment of a GPU machine without network,
# and the install of this project (plus wheels of what the machine lacks) into a target dir.
# Usage: source scripts/gpu/gpu-env.sh NAME   (caches under /tmp/NAME-cache)
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export AMPCORE_CACHE_DIR=/tmp/${1:-ampcore}-cache HF_HOME=/tmp/hf-home

# install_site SITE [WHEEL_DIR...]: a fresh SITE holding the project and every wheel of each
# WHEEL_DIR, without network or dependency resolution; put it on PYTHONPATH.
install_site() {
  local site=$1; shift
  local wheels=() dir wheel
  for dir in "$@"; do
    for wheel in "$dir"/*.whl; do [[ -e $wheel ]] && wheels+=("$wheel"); done
  done
  rm -rf "$site"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-build-isolation \
    --target "$site" ${wheels[@]+"${wheels[@]}"} .
}
