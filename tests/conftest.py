"""Shared test switches.

Tests that need the real PostgreSQL server or a real headless Chromium use the ``pg_url`` and
``chromium_path`` fixtures. Outside CI they skip with a reason when the service is missing; with
``CI=true`` a missing service is a failure, never a skip (DEVELOPERS.md non-negotiable 2).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def unavailable(reason: str) -> None:
    """Skip outside CI; fail inside CI, where every real part must be exercised."""
    if IN_CI:
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


PG_ADMIN_URL = os.environ.get("NSP_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def pg_server() -> str:
    """Admin URL of a reachable PostgreSQL server (skips/fails as above when there is none)."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - psycopg is a hard dependency
        unavailable(f"psycopg is not importable: {exc}")
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("select 1")
    except Exception as exc:
        unavailable(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    name = f"nsp_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    base = pg_server.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", (name,))
            conn.execute(f'drop database if exists "{name}"')


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Path of Debian's chromium binary (skips/fails as above when missing)."""
    path = os.environ.get("NSP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        unavailable("Debian's chromium is not installed (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        unavailable(f"playwright is not importable: {exc}")
    return str(path)


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[object]:
    """A real headless Chromium driven by playwright, shared by the browser tests of one worker."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("NSP_LONG") == "1":
        return
    skip_slow = pytest.mark.skip(reason="long mode: set NSP_LONG=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)
