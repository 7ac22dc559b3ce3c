"""Fixtures of the field node tests: a fresh encrypted node per test, logged in, and its Flask app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from field_node.app import create_app
from field_node.node import Node
from field_node.services import Registry

OPERATOR, PASSWORD = "rahima", "correct horse battery"


def member(**kw: Any) -> dict[str, Any]:
    base = {"full_name_en": "Rahima Khatun", "full_name_bn": "রহিমা খাতুন", "sex": "female", "date_of_birth": "1980-02-03"}
    base.update(kw)
    return base


@pytest.fixture
def node_dir(tmp_path: Path) -> Path:
    d = tmp_path / "node"
    Node.create(d, union_id="1", hub_url="http://127.0.0.1:9", operator=OPERATOR, password=PASSWORD)
    return d


@pytest.fixture
def node(node_dir: Path) -> Iterator[Node]:
    n = Node(node_dir)
    n.login(OPERATOR, PASSWORD)
    yield n
    n.close()


@pytest.fixture
def registry(node: Node) -> Registry:
    return Registry(node)


@pytest.fixture
def app(node: Node) -> Any:
    return create_app({"NODE": node, "TESTING": True})


@pytest.fixture
def api(app: Any) -> Any:
    """A test client with a bearer token; ``api.h`` holds the header."""
    client = app.test_client()
    token = client.post("/api/v1/session", json={"username": OPERATOR, "password": PASSWORD}).get_json()["token"]
    client.h = {"Authorization": f"Bearer {token}"}
    return client
