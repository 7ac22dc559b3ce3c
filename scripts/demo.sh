#!/usr/bin/env bash
# Installs the project into .venv and runs the demo: a hub and three field nodes on loopback (see docs/e2e.md).
# `scripts/demo.sh --simulation [options]` runs the seeded protocol simulation instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [[ "${1:-}" == "--simulation" ]]; then
  shift
  exec .venv/bin/python -m sync_protocol.simulation --seeds 20 --nodes 10 --ops 300 "$@"
fi
exec .venv/bin/python scripts/demo.py "$@"
