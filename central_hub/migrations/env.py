"""Alembic environment for the hub. Run programmatically by ``central_hub.db.upgrade`` (which hands in
an open connection); the ``alembic`` command works too with ``-x url=...``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from central_hub.schema import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    from central_hub.db import sqlalchemy_url

    engine = create_engine(sqlalchemy_url(str(url)))
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
