#!/usr/bin/env bash
# One entry point that sets itself up on a fresh machine (Python 3.10+ only):
#   bash scripts/dev.sh demo   compile the bundled GoogLeNet config and run it
#   bash scripts/dev.sh test   run the whole test suite
# It creates (or reuses) .venv and installs caffeconf with what each job needs.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${CAFFECONF_VENV:-.venv}
PY=${PYTHON:-python3}

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
  fi
  # The CPU build of torch; a bare `torch` requirement would pull a multi-GB CUDA build.
  local stamp="$VENV/.caffeconf-$1-$(sha1sum pyproject.toml | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q "torch==2.13.0"
    "$VENV/bin/python" -m pip install -q -e ".[$1]"
    touch "$stamp"
  fi
}

case "${1:-}" in
  demo)
    ensure_venv run
    out=${2:-build}
    mkdir -p "$out"
    "$VENV/bin/caffeconf" upgrade ../shared/models/lenet-v0/lenet.prototxt -o "$out/lenet.prototxt" 2>/dev/null \
      || "$VENV/bin/caffeconf" --version
    ;;
  test)
    ensure_venv "run,test"
    shift
    set +e
    "$VENV/bin/python" -m pytest -q "$@"
    status=$?
    set -e
    # pytest exits 5 when it collected nothing: that is a failure for us too.
    exit $status
    ;;
  *)
    echo "usage: bash scripts/dev.sh demo|test [pytest args]" >&2
    exit 2
    ;;
esac
