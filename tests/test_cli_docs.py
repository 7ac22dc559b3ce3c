"""Every command of both CLIs is documented: listed in the README's command table and given an example
in its own --help (the pattern of sqlite-utils' tests/test_docs.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from central_hub.cli import main as hub_main
from field_node.cli import main as node_main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _commands(group: click.Group, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    for name, cmd in sorted(group.commands.items()):
        if cmd.hidden:
            continue
        yield (*path, name)
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*path, name))


ALL = [("central-hub", hub_main, p) for p in _commands(hub_main, ())] + [
    ("field-node", node_main, p) for p in _commands(node_main, ())
]


def test_the_contract_commands_exist() -> None:
    names = {(prog, " ".join(path)) for prog, _, path in ALL}
    for needed in [
        ("central-hub", "init"),
        ("central-hub", "serve"),
        ("central-hub", "enrollment-token"),
        ("field-node", "init"),
        ("field-node", "enroll"),
        ("field-node", "serve"),
        ("field-node", "sync"),
        ("field-node", "bundle export"),
        ("field-node", "bundle import"),
    ]:
        assert needed in names


@pytest.mark.parametrize(("prog", "main", "path"), ALL, ids=[f"{p} {' '.join(c)}" for p, _, c in ALL])
def test_command_is_listed_in_the_readme(prog: str, main: click.Group, path: tuple[str, ...]) -> None:
    words = " ".join(path)
    rows = [line for line in README.splitlines() if line.startswith("|") and f"`{prog}" in line]
    listed = any(re.search(rf"(?<![\w-]){re.escape(words)}(?![\w-])", row) for row in rows)
    assert listed, f"README's command table does not list `{prog} {words}`"


@pytest.mark.parametrize(("prog", "main", "path"), ALL, ids=[f"{p} {' '.join(c)}" for p, _, c in ALL])
def test_command_help_has_an_example(prog: str, main: click.Group, path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"], prog_name=prog)
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"`{prog} {' '.join(path)} --help` has no example"
