#!/usr/bin/env bash
# Fail the install if any CUDA/nvidia package slipped in: Dossier runs on the CPU build of torch.
set -euo pipefail
py=${1:-python3}
cuda=$("$py" -m pip list --disable-pip-version-check 2>/dev/null | grep -iE '^(nvidia-|cuda-|triton )' || true)
if [ -n "$cuda" ]; then
    echo "error: CUDA packages were installed; Dossier needs the CPU build of torch:" >&2
    echo "$cuda" >&2
    exit 1
fi
"$py" -c 'import torch, sys; sys.exit("error: torch is a CUDA build" if torch.version.cuda else 0)'
