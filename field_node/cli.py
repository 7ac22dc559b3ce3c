"""`field-node` command line."""

from __future__ import annotations

import click


@click.group(help="Field node: offline registration for a union parishad or upazila office.")
def main() -> None:
    pass
