"""Alembic's environment: always on the connection ``migrations.config`` hands over (never a URL of its own)."""

from __future__ import annotations

from alembic import context

from migrations import metadata

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("the platform migrations run on a connection: use govshare db upgrade")

context.configure(
    connection=connection, target_metadata=metadata, on_version_apply=context.config.attributes.get("on_step")
)
with context.begin_transaction():
    context.run_migrations()
