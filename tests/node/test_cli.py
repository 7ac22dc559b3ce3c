"""The field-node command line: help with examples, init (with the interactive union picker)."""

from __future__ import annotations

from pathlib import Path

import click
from click.testing import CliRunner

from field_node.cli import main
from field_node.node import Node
from sync_protocol import geo

from .conftest import OPERATOR, PASSWORD


def _commands(group: click.Group) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            out += [[name, *sub] for sub in _commands(cmd)]
        else:
            out.append([name])
    return out


def test_every_command_has_help_with_an_example() -> None:
    runner = CliRunner()
    commands = _commands(main)
    assert {"init", "serve", "enroll", "sync", "add-operator", "passwd"} <= {c[0] for c in commands if c}
    for path in commands:
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Example" in result.output, f"field-node {' '.join(path)} --help has no example"


def test_init_with_env_credentials_and_wrong_union(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"FIELD_NODE_OPERATOR": OPERATOR, "FIELD_NODE_OPERATOR_PASSWORD": PASSWORD}
    bad = runner.invoke(
        main, ["init", "--data-dir", str(tmp_path / "x"), "--union", "99999", "--hub", "http://h"], env=env
    )
    assert bad.exit_code == 1 and "does not exist" in bad.output
    ok = runner.invoke(main, ["init", "--data-dir", str(tmp_path / "n"), "--union", "1", "--hub", "http://h/"], env=env)
    assert ok.exit_code == 0 and "Subil" in ok.output
    again = runner.invoke(
        main, ["init", "--data-dir", str(tmp_path / "n"), "--union", "1", "--hub", "http://h"], env=env
    )
    assert again.exit_code == 1 and "already" in again.output
    node = Node(tmp_path / "n")
    node.login(OPERATOR, PASSWORD)
    assert (node.union_id, node.hub_url) == ("1", "http://h")
    node.close()


def test_init_picks_the_union_interactively_and_prompts_for_the_operator(tmp_path: Path) -> None:
    def index(places: list[geo.Place], name: str) -> int:
        return [p.name_en for p in sorted(places, key=lambda p: p.name_en)].index(name) + 1

    division, district, upazila, union = geo.union_path("1")
    answers = [
        index(list(geo.divisions().values()), division.name_en),
        index([d for d in geo.districts().values() if d.parent_id == division.id], district.name_en),
        index([u for u in geo.upazilas().values() if u.parent_id == district.id], upazila.name_en),
        index([u for u in geo.unions().values() if u.parent_id == upazila.id], union.name_en),
    ]
    text = "\n".join(map(str, answers)) + f"\nkarim\n{PASSWORD}\n{PASSWORD}\n"
    result = CliRunner().invoke(
        main,
        ["init", "--data-dir", str(tmp_path / "n"), "--hub", "http://h"],
        input=text,
        env={"FIELD_NODE_OPERATOR": "", "FIELD_NODE_OPERATOR_PASSWORD": ""},
    )
    assert result.exit_code == 0, result.output
    assert union.name_bn in result.output and district.name_bn in result.output  # Bangla names shown
    node = Node(tmp_path / "n")
    node.login("karim", PASSWORD)
    assert node.union_id == "1"
    node.close()


def test_add_operator_and_passwd(tmp_path: Path, node_dir: Path) -> None:
    runner = CliRunner()
    env = {"FIELD_NODE_OPERATOR": OPERATOR, "FIELD_NODE_OPERATOR_PASSWORD": PASSWORD}
    r = runner.invoke(
        main, ["add-operator", "--data-dir", str(node_dir), "--name", "salma"], env=env, input="pw-salma\npw-salma\n"
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        main, ["passwd", "--data-dir", str(node_dir), "--name", "salma"], input="pw-salma\nnew-pw\nnew-pw\n"
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["passwd", "--data-dir", str(node_dir), "--name", "salma"], input="wrong\nx\nx\n")
    assert r.exit_code == 1 and "wrong operator name or password" in r.output
    assert Node(node_dir).login("salma", "new-pw") == "salma"
