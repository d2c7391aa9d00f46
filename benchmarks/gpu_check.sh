#!/usr/bin/env bash
# The one GPU run: every check of benchmarks/gpu_check.py, report in benchmarks/results/gpu.json.
#   bash benchmarks/gpu_check.sh            on a CUDA machine (about 8 minutes on one H200)
#   bash benchmarks/gpu_check.sh --dry-run  the same code paths on the CPU, tiny shapes (CI runs this)
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${CAFFECONF_VENV:-.venv}/bin/python" benchmarks/gpu_check.py "$@"
