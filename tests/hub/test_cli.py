"""The `central-hub` commands: help with examples, init (schema + admin), tokens, staff, nodes."""

from __future__ import annotations

from click.testing import CliRunner

from central_hub.cli import main
from central_hub.store import SqlHubStore


def test_every_command_has_help_with_an_example() -> None:
    runner = CliRunner()
    top = runner.invoke(main, ["--help"])
    assert top.exit_code == 0 and "Example" in top.output
    assert {"init", "serve", "enrollment-token", "add-staff"} <= set(main.commands)
    for name in main.commands:
        out = runner.invoke(main, [name, "--help"])
        assert out.exit_code == 0, name
        assert "Example" in out.output, name


def test_init_token_and_staff(sqlite_url: str, db_url: str) -> None:
    runner = CliRunner()
    for url in {sqlite_url, db_url}:
        result = runner.invoke(main, ["init", "--db", url], env={"HUB_ADMIN_PASSWORD": "admin-pass-1"})
        assert result.exit_code == 0, result.output
        assert "created account admin" in result.output
        again = runner.invoke(main, ["init", "--db", url], env={"HUB_ADMIN_PASSWORD": "other-pass-2"})
        assert again.exit_code == 0 and "left unchanged" in again.output
        store = SqlHubStore(url)
        admin = store.get_staff("admin")
        assert admin is not None and admin.role == "admin" and "admin-pass-1" not in admin.password_hash
        assert admin.password_hash.startswith("scrypt:32768:8:1$")  # full-strength scrypt outside the tests
        token = runner.invoke(main, ["enrollment-token", "--db", url, "--union", "1"])
        assert token.exit_code == 0
        issued = store.get_token(token.output.strip())
        assert issued is not None and issued.scopes == frozenset({"1"})
        bad = runner.invoke(main, ["enrollment-token", "--db", url, "--union", "999999"])
        assert bad.exit_code != 0 and "999999" in bad.output
        staff = runner.invoke(
            main,
            ["add-staff", "--db", url, "--username", "rahima", "--role", "resolver", "--scope", "district:1"],
            env={"HUB_STAFF_PASSWORD": "rahima-pass"},
        )
        assert staff.exit_code == 0, staff.output
        assert store.get_staff("rahima").scope_id == "1"  # type: ignore[union-attr]
        assert runner.invoke(main, ["list-nodes", "--db", url]).exit_code == 0
        store.close()


def test_commands_refuse_an_uninitialised_database(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = CliRunner().invoke(main, ["enrollment-token", "--db", f"sqlite:///{tmp_path / 'none.db'}", "--union", "1"])
    assert out.exit_code != 0 and "central-hub init" in out.output
