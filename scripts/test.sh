#!/usr/bin/env bash
# Installs everything the tests need (into .venv) and runs the whole suite: lint, types, tests.
# Usage: bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/pytest -n "${NSP_TEST_WORKERS:-2}" "$@"
