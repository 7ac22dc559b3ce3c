#!/usr/bin/env bash
# Creates .venv and installs the project with its test dependencies, plus Debian's chromium for the
# browser tests when this user may install packages. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing Debian's chromium for the browser tests" >&2
        (apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
            || (apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends chromium >/dev/null)) \
            || echo "setup: could not install chromium; browser tests will skip (and fail when CI=true)" >&2
    else
        echo "setup: chromium missing and not root; run 'apt-get install chromium' (browser tests skip outside CI)" >&2
    fi
fi
# Compile the Bangla/English message catalogues when the packages ship any.
for d in field_node/translations central_hub/translations; do
    if ls "$d"/*/LC_MESSAGES/messages.po >/dev/null 2>&1; then .venv/bin/pybabel compile -d "$d" >/dev/null; fi
done
