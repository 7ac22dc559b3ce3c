"""End-to-end tests start real ``central-hub`` and ``field-node`` processes on loopback (SQLite, temp
dirs). They need no outside service, so they always run, in CI too; ``-m "not e2e"`` leaves them out."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: starts real hub and node processes on loopback (runs in CI)")
