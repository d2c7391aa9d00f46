#!/usr/bin/env bash
# One entry point that sets itself up on a fresh machine (Python 3.10+ only):
#   bash scripts/dev.sh demo   validate and compile the bundled GoogLeNet config, then run its deploy variant
#   bash scripts/dev.sh test   run the whole test suite
#   bash scripts/dev.sh train-demo   train LeNet on scikit-learn's 8x8 digits, check it with OpenCV
# It creates (or reuses) .venv and installs caffeconf with what each job needs; for the tests it
# also installs Graphviz and Chromium (Debian packages, when run as root) and the YAML language
# server (npm, from tests/lsp/package-lock.json) when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${CAFFECONF_VENV:-.venv}
PY=${PYTHON:-python3}

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PY" -m venv "$VENV" 2>/dev/null; then
      # Debian/Ubuntu ship venv separately (python3-venv); install it when we can.
      rm -rf "$VENV"
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      fi
      "$PY" -m venv "$VENV"
    fi
  fi
  local stamp="$VENV/.caffeconf-$1-$(sha1sum pyproject.toml | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # Pinned so that pip takes this machine's local CPU wheel when there is one; from PyPI on
    # Linux the same pin is a CUDA build of several GB (PyTorch's own CPU index is not reachable here).
    "$VENV/bin/python" -m pip install -q "torch==2.13.0"
    "$VENV/bin/python" -m pip install -q -e ".[$1]"
    touch "$stamp"
  fi
}

ensure_system_tools() {
  local missing=()
  command -v dot >/dev/null || missing+=(graphviz)
  command -v chromium >/dev/null || missing+=(chromium)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
        || echo "note: could not install ${missing[*]}; the tests that need them will be skipped" >&2
    else
      echo "note: ${missing[*]} missing; the tests that need them will be skipped" >&2
    fi
  fi
  if command -v npm >/dev/null && [ ! -x tests/lsp/node_modules/.bin/yaml-language-server ]; then
    (cd tests/lsp && npm ci --silent --no-audit --no-fund)
  fi
}

case "${1:-}" in
  demo)
    ensure_venv run
    out=${2:-build}
    mkdir -p "$out"
    "$VENV/bin/caffeconf" validate configs/googlenet.yaml
    "$VENV/bin/caffeconf" compile configs/googlenet.yaml -o "$out/googlenet_train_val.prototxt" \
      --source-map "$out/googlenet.map.json"
    "$VENV/bin/caffeconf" compile configs/googlenet.yaml --stage deploy -o "$out/googlenet_deploy.prototxt"
    "$VENV/bin/caffeconf" inspect configs/googlenet.yaml --stage deploy --depth 1
    "$VENV/bin/caffeconf" run "$out/googlenet_deploy.prototxt" --batch 1 \
      --write-weights "$out/googlenet_random.caffemodel"
    echo "wrote $out/googlenet_train_val.prototxt, $out/googlenet.map.json, $out/googlenet_deploy.prototxt," \
      "$out/googlenet_random.caffemodel"
    ;;
  train-demo)
    ensure_venv "run,test,train"
    exec bash scripts/train_demo.sh
    ;;
  test)
    ensure_venv "run,test,train"
    ensure_system_tools
    shift
    # pytest's own exit code stands: 5 (no tests collected) fails CI too.
    exec "$VENV/bin/python" -m pytest -q "$@"
    ;;
  *)
    echo "usage: bash scripts/dev.sh demo [OUTDIR] | test [pytest args] | train-demo" >&2
    exit 2
    ;;
esac
