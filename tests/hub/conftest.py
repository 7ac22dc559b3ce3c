"""Hub fixtures: the store contract runs against SQLite and PostgreSQL (``pg_url``: a fresh database)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from central_hub.store import SqlHubStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'hub.db'}"


@pytest.fixture
def sql_store(db_url: str) -> Iterator[SqlHubStore]:
    store = SqlHubStore(db_url)
    store.migrate()
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def sqlite_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path / 'hub.db'}"
