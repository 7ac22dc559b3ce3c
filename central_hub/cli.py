"""`central-hub` command line."""

from __future__ import annotations

import click


@click.group(help="Central hub: receives signed changesets from field nodes, queues conflicts for staff.")
def main() -> None:
    pass
