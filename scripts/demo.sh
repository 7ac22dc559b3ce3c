#!/usr/bin/env bash
# Installs the project into .venv and runs the main job (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m sync_protocol.simulation --seeds 20 --nodes 10 --ops 300 "$@"
