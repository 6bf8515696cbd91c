#!/usr/bin/env bash
# Every GPU check of the trainer in one run (evals/bench/gpu_check.py), ~10 minutes on one H100/H200.
# Needs the project installed (pip install -e .) and ../shared/data beside the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
timeout 600 python -m evals.bench.gpu_check "$@"
