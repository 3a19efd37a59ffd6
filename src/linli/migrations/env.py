"""Alembic environment: runs on the connection handed over by linli.migrate."""

from __future__ import annotations

from alembic import context

from linli.models import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # invoked by the alembic CLI: use the configured database
    from linli.db import make_engine
    from linli.settings import get_settings

    engine = make_engine(get_settings().database_url)
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(
        connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True
    )
    with context.begin_transaction():
        context.run_migrations()
