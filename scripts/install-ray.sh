#!/usr/bin/env bash
# Installs Ray (pinned) into the project-local virtual environment .venv,
# for the RayIo backend and its tests (`make test-ray`).
set -euo pipefail
cd "$(dirname "$0")/.."
RAY_VERSION=2.60.0
if [[ -x .venv/bin/python ]] && .venv/bin/python -c "import ray, sys; sys.exit(ray.__version__ != '$RAY_VERSION')" 2>/dev/null; then
  exit 0
fi
echo "install-ray: installing ray==$RAY_VERSION into .venv"
python3 -m venv .venv
.venv/bin/pip install -q "ray[default]==$RAY_VERSION"
