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


PASSWORD = "correct horse 1"


class HubEnv:
    """An initialised hub (SQLite file), its Flask app and test client, with one staff member per role."""

    def __init__(self, url: str) -> None:
        from central_hub import accounts
        from central_hub.app import create_app

        self.store = SqlHubStore(url)
        self.store.migrate()
        for name, role, level, scope_id in (
            ("admin", "admin", "all", None),
            ("resolver", "resolver", "all", None),
            ("reviewer", "reviewer", "all", None),
            ("auditor", "auditor", "all", None),
            ("sylhet", "resolver", "division", "5"),  # Sylhet division: does not hold union 1
            ("cumilla", "resolver", "district", "1"),
        ):
            # a cheap scrypt keeps the suite fast; the login path is the same
            accounts.add_staff(self.store, name, PASSWORD, role, level, scope_id, hash_method="scrypt:1024:8:1")
        self.app = create_app({"HUB_STORE": self.store, "TESTING": True})
        self.client = self.app.test_client()
        self.hub = self.app.extensions["central_hub"]

    def token(self, username: str) -> dict[str, str]:
        resp = self.client.post("/api/v1/session", json={"username": username, "password": PASSWORD})
        assert resp.status_code == 200, resp.json
        return {"Authorization": f"Bearer {resp.json['token']}"}

    def enrol(self, node, union: str | None = "1", upazila: str | None = None) -> dict:  # type: ignore[no-untyped-def]
        from central_hub.enrolment import issue_token

        issued = issue_token(self.store, union_id=union if upazila is None else None, upazila_id=upazila)
        resp = self.client.post(
            "/sync/v1/enroll",
            json={
                "token": issued.token,
                "node_id": node.node_id,
                "public_key": node.signer.public_b64,
                "label": node.label,
            },
        )
        assert resp.status_code == 200, resp.json
        return dict(resp.json)

    def push(self, envelope: bytes):  # type: ignore[no-untyped-def]
        return self.client.post("/sync/v1/push", data=envelope, content_type="application/octet-stream")

    def pull(self, node, cursor: str | None = None, limit: int | None = None, when: int | None = None):  # type: ignore[no-untyped-def]
        from sync_protocol.auth import sign_request

        query = {}
        if cursor is not None:
            query["cursor"] = cursor
        if limit is not None:
            query["limit"] = str(limit)
        headers = sign_request(node.signer, node.node_id, "GET", "/sync/v1/pull", query, when=when)
        return self.client.get("/sync/v1/pull", query_string=query, headers=headers)

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def hub_env(sqlite_url: str) -> Iterator[HubEnv]:
    env = HubEnv(sqlite_url)
    try:
        yield env
    finally:
        env.close()
