"""Encryption at rest, wrapped keys, and the persisted login throttle."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from field_node.errors import LoginThrottledError, NodeLockedError, WrongPasswordError
from field_node.keyring import FREE_ATTEMPTS
from field_node.node import Node
from field_node.services import Registry

from .conftest import OPERATOR, PASSWORD, member

PEOPLE = [
    member(
        full_name_en="Shahnaz Parvin Choudhury",
        full_name_bn="শাহনাজ পারভীন",
        nid="19801234567890123",
        mobile="01712398765",
        date_of_birth="1980-02-03",
    ),
    member(
        full_name_en="Mofizul Haque Talukder",
        full_name_bn="মফিজুল হক",
        nid="4567891234",
        mobile="01898765432",
        sex="male",
        date_of_birth="1975-07-08",
        relation_to_head="spouse",
    ),
]


def _all_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data_dir.iterdir()) if p.is_file())


def test_database_and_journal_files_hold_no_plaintext(node_dir: Path) -> None:
    node = Node(node_dir)
    node.login(OPERATOR, PASSWORD)
    Registry(node).create_household({"village": "Kamalpur"}, PEOPLE, actor=OPERATOR)
    # Look while the WAL still holds the writes, and again after a checkpoint folded them into the db.
    files_open = {p.name for p in node_dir.iterdir()}
    assert "node.db-wal" in files_open
    raw_open = _all_bytes(node_dir)
    node.close()
    raw_closed = _all_bytes(node_dir)
    secrets = [b"Kamalpur"]
    for p in PEOPLE:
        for key in ("full_name_en", "full_name_bn", "nid", "mobile"):
            secrets.append(p[key].encode("utf-8"))
        secrets.append(p["full_name_en"].split()[0].encode())
    for raw in (raw_open, raw_closed):
        assert len(raw) > 10_000
        for s in secrets:
            assert s not in raw, s
        assert b"SQLite format 3" not in raw
    # and the data is really there, behind the key
    again = Node(node_dir)
    again.login(OPERATOR, PASSWORD)
    assert [p["full_name_en"] for p in Registry(again).search_persons("শাহনাজ")] == ["Shahnaz Parvin Choudhury"]
    again.close()


def test_keyring_holds_no_key_material_in_clear(node_dir: Path) -> None:
    ring = json.loads((node_dir / "keyring.json").read_text())
    entry = ring["operators"][OPERATOR]
    assert set(entry) == {"salt", "n", "r", "p", "nonce", "wrapped_key"}
    assert entry["n"] >= 2**14 and entry["r"] == 8 and entry["p"] == 1
    assert PASSWORD not in (node_dir / "keyring.json").read_text()


def test_wrong_password_fails_clearly_and_keeps_the_node_locked(node_dir: Path) -> None:
    node = Node(node_dir)
    with pytest.raises(WrongPasswordError, match="wrong operator name or password"):
        node.login(OPERATOR, "not the password")
    with pytest.raises(WrongPasswordError):
        node.login("nobody", PASSWORD)
    assert node.locked
    with pytest.raises(NodeLockedError, match="locked"):
        Registry(node).search_persons("x")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_failed_logins_are_throttled_and_survive_a_restart(node_dir: Path) -> None:
    clock = Clock()
    node = Node(node_dir, clock=clock)
    for _ in range(FREE_ATTEMPTS):
        with pytest.raises(WrongPasswordError):
            node.login(OPERATOR, "guess")
    # now locked out: even the right password is refused until the window passes
    with pytest.raises(LoginThrottledError) as exc:
        node.login(OPERATOR, PASSWORD)
    first_window = exc.value.retry_after
    assert first_window > 0
    restarted = Node(node_dir, clock=clock)  # a new process reads the persisted counters
    with pytest.raises(LoginThrottledError):
        restarted.login(OPERATOR, PASSWORD)
    clock.now += first_window + 0.1
    with pytest.raises(WrongPasswordError):
        restarted.login(OPERATOR, "guess again")
    with pytest.raises(LoginThrottledError) as exc2:
        restarted.login(OPERATOR, PASSWORD)
    assert exc2.value.retry_after > first_window  # the window doubles
    # another operator name is not affected
    with pytest.raises(WrongPasswordError):
        restarted.login("karim", "x")
    clock.now += exc2.value.retry_after + 0.1
    assert restarted.login(OPERATOR, PASSWORD) == OPERATOR
    restarted.close()
    # success resets the counter
    assert OPERATOR not in json.loads((node_dir / "login-throttle.json").read_text())


def test_password_change_rewraps_without_reencrypting(node_dir: Path) -> None:
    before = hashlib.sha256((node_dir / "node.db").read_bytes()).hexdigest()
    node = Node(node_dir)
    node.change_password(OPERATOR, PASSWORD, "a new long password")
    assert hashlib.sha256((node_dir / "node.db").read_bytes()).hexdigest() == before
    fresh = Node(node_dir)
    with pytest.raises(WrongPasswordError):
        fresh.login(OPERATOR, PASSWORD)
    assert fresh.login(OPERATOR, "a new long password") == OPERATOR
    fresh.add_operator("karim", "karims password", by=OPERATOR, by_password="a new long password")
    fresh.close()
    other = Node(node_dir)
    assert other.login("karim", "karims password") == "karim"
    assert other.node_id and len(other.config["signing_key"]) == 64  # the signing key lives inside the db
    other.close()
    assert other.node_id.encode() not in (node_dir / "keyring.json").read_bytes()
