"""The platform database's schema revisions (Alembic), configured here in code (no alembic.ini).

Every package declares its tables on the one metadata of ``govshare.platformdb``; this wiring package imports
them all, so ``metadata`` here is the whole schema at the code's head revision. ``versions/`` holds the
revisions: ``0001_baseline`` is the schema as ``create_all`` made it before migrations.

- ``ensure_current`` is what the server and every command opening the platform database call first: a database
  at the code's head revision is used; any other (behind, ahead or unknown, or tables without a revision) is
  refused with a coded error naming both revisions and the command to run, and nothing is written to it. An
  empty database is created at head directly (``create_all`` from the metadata with the append-only guards and
  first rows, then stamped: Alembic's cookbook, and the same schema as every revision from the baseline up,
  tests/test_migrations.py) — outside production. In production an empty database is refused too
  (``DB_NOT_CREATED``): a server pointed at the wrong, empty database must not start a new platform there
  with an audit trail of its own; ``govshare db upgrade`` creates it.
- ``upgrade`` is ``govshare db upgrade [REV]``: creates an empty database at head, adopts a database made by the
  old ``create_all`` (stamped at the baseline once its tables and columns are checked to be exactly the
  baseline's, refused otherwise: ``DB_SCHEMA_UNKNOWN``), then applies the revisions up to REV.

On PostgreSQL each of these holds a transaction-scoped advisory lock, so several processes starting at once
on one database never create or upgrade it twice: one does, the others wait and find it done.
SQLite and PostgreSQL only: MariaDB is a source database, never the platform's.

May import ``govshare``, ``catalog``, ``policies``, ``admin``, ``audit``, ``applications``, ``corrections``, ``oversight``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

import admin.tables  # noqa: F401 - every owner of a table, so the metadata is the whole schema
import applications.tables  # noqa: F401
import audit.chain
import audit.tables  # noqa: F401
import catalog.freshness
import catalog.store
import catalog.tables  # noqa: F401
import corrections.tables  # noqa: F401
import govshare.keys  # noqa: F401
import oversight.tables  # noqa: F401
import policies.tables  # noqa: F401
from govshare.errors import GovshareError
from govshare.platformdb import ENGINES, SEED_ROWS, guard_statements, metadata

HERE = Path(__file__).resolve().parent
BASELINE = "0001_baseline"
UPGRADE_COMMAND = "govshare db upgrade"
_LOCK = 7406723151  # pg_advisory_xact_lock key: one process at a time sets up or upgrades the schema

# Alembic tells its context on every connection at INFO; what was done is told by ``upgrade``'s ``say``.
logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)

__all__ = ["BASELINE", "ENGINES", "Status", "ensure_current", "head", "history", "metadata", "status", "upgrade"]


def config(connection=None, on_step: Callable | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = connection
    cfg.attributes["on_step"] = on_step
    return cfg


@functools.cache
def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())


def head() -> str:
    return scripts().get_current_head()


def history() -> list[tuple[str, str | None, str]]:
    """(revision, the one before, its first doc line), oldest first."""
    return [
        (s.revision, s.down_revision, (s.doc or "").splitlines()[0] if s.doc else "")
        for s in reversed(list(scripts().walk_revisions()))
    ]


@dataclass(frozen=True)
class Status:
    current: tuple[str, ...]  # the revisions in alembic_version (none: unversioned or empty)
    tables: tuple[str, ...]  # the tables there are, alembic_version aside

    @property
    def empty(self) -> bool:
        return not self.current and not self.tables

    @property
    def at_head(self) -> bool:
        return self.current == (head(),)

    @property
    def known(self) -> bool:
        return all(_known(r) for r in self.current)


def _known(revision: str) -> bool:
    try:
        return scripts().get_revision(revision) is not None
    except CommandError:
        return False


def _status(sync_conn) -> Status:
    current = MigrationContext.configure(sync_conn).get_current_heads()
    tables = tuple(sorted(t for t in inspect(sync_conn).get_table_names() if t != "alembic_version"))
    return Status(tuple(current), tables)


def _check_dialect(engine: AsyncEngine) -> None:
    if engine.dialect.name not in ENGINES:
        raise ValueError(f"the platform database must be SQLite or PostgreSQL, not {engine.dialect.name}")


async def _locked(conn) -> None:
    if conn.dialect.name == "postgresql":
        await conn.execute(text(f"SELECT pg_advisory_xact_lock({_LOCK})"))


async def status(engine: AsyncEngine) -> Status:
    _check_dialect(engine)
    async with engine.connect() as conn:
        return await conn.run_sync(_status)


def refusal(state: Status) -> GovshareError:
    """The coded error for a database at another revision than the code's."""
    if not state.current:
        return GovshareError("DB_UNVERSIONED", expected=head(), command=UPGRADE_COMMAND)
    found = ",".join(state.current)
    if not state.known:
        return GovshareError("DB_REVISION_UNKNOWN", found=found, expected=head(), command="govshare db history")
    return GovshareError("DB_REVISION_MISMATCH", found=found, expected=head(), command=UPGRADE_COMMAND)


async def ensure_current(engine: AsyncEngine, *, production: bool = False) -> None:
    """Use the database only at the code's head revision; create an empty one there (outside production)."""
    _check_dialect(engine)
    async with engine.connect() as conn:
        state = await conn.run_sync(_status)
        if state.at_head:
            return
        if not state.empty:
            raise refusal(state)
        if production:
            raise GovshareError("DB_NOT_CREATED", command=UPGRADE_COMMAND)
    async with engine.begin() as conn:
        await _locked(conn)
        state = await conn.run_sync(_status)  # another process may have made it meanwhile
        if state.empty:
            await conn.run_sync(_create_at_head)
        elif not state.at_head:
            raise refusal(state)


def _create_at_head(sync_conn) -> None:
    metadata.create_all(sync_conn)
    for statement in guard_statements(sync_conn.dialect.name):
        sync_conn.execute(text(statement))
    for name, rows in SEED_ROWS.items():
        table = metadata.tables[name]
        keys = [c.name for c in table.primary_key.columns]
        for row in rows:
            present = sync_conn.execute(
                select(*table.primary_key.columns).where(*(table.c[k] == row[k] for k in keys))
            ).first()
            if present is None:
                sync_conn.execute(table.insert().values(**row))
    MigrationContext.configure(sync_conn).stamp(scripts(), "head")


def _baseline_differences(sync_conn) -> list[str]:
    """How the tables differ from the baseline revision's (table and column names, nullability)."""
    baseline = scripts().get_revision(BASELINE).module.metadata
    found = inspect(sync_conn)
    names = set(found.get_table_names()) - {"alembic_version"}
    differences = [f"+{t}" for t in sorted(names - set(baseline.tables))]
    differences += [f"-{t}" for t in sorted(set(baseline.tables) - names)]
    for name in sorted(names & set(baseline.tables)):
        have = {c["name"]: c["nullable"] for c in found.get_columns(name)}
        want = {c.name: c.nullable for c in baseline.tables[name].columns}
        differences += [f"+{name}.{c}" for c in sorted(set(have) - set(want))]
        differences += [f"-{name}.{c}" for c in sorted(set(want) - set(have))]
        differences += [f"{name}.{c} nullable={have[c]}" for c in sorted(set(have) & set(want)) if have[c] != want[c]]
    if not _guarded(sync_conn, scripts().get_revision(BASELINE).module.APPEND_ONLY):
        differences.append("append-only triggers missing")
    return differences


def _guarded(sync_conn, tables) -> bool:
    if sync_conn.dialect.name == "sqlite":
        names = {r[0] for r in sync_conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))}
        return all(f"{t}_no_{a}" in names for t in tables for a in ("update", "delete"))
    names = {r[0] for r in sync_conn.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"))}
    return all(f"{t}_append_only" in names for t in tables)


async def upgrade(
    engine: AsyncEngine, revision: str = "head", *, say: Callable[[str, dict], None] = lambda c, p: None
) -> Status:
    """``govshare db upgrade [REV]``: create, adopt or upgrade the database up to ``revision``; ``say(code,
    params)`` is told each thing done. Returns the state it leaves."""
    _check_dialect(engine)
    async with engine.begin() as conn:
        await _locked(conn)
        await conn.run_sync(_upgrade, revision, say)
    return await status(engine)


def _upgrade(sync_conn, revision: str, say) -> None:
    state = _status(sync_conn)
    target = head() if revision == "head" else revision
    if state.current and not state.known:
        raise refusal(state)
    if state.empty and target == head():
        _create_at_head(sync_conn)
        say("DB_CREATED", {"revision": target})
        return
    if not state.current and not state.empty:
        differences = _baseline_differences(sync_conn)
        if differences:
            raise GovshareError("DB_SCHEMA_UNKNOWN", baseline=BASELINE, differences=", ".join(differences))
        MigrationContext.configure(sync_conn).stamp(scripts(), BASELINE)
        say("DB_ADOPTED", {"revision": BASELINE})
        state = _status(sync_conn)
    if state.current == (target,):
        say("DB_NOTHING_TO_DO", {"revision": target})
        return

    def on_step(*, ctx, step, heads, run_args):
        say(
            "DB_UPGRADE_STEP",
            {
                "source": ",".join(step.down_revision_ids) or "base",
                "target": ",".join(step.up_revision_ids),
                "doc": (step.up_revision.doc or "").splitlines()[0] if step.up_revision.doc else "",
            },
        )

    try:
        command.upgrade(config(sync_conn, on_step), revision)
    except CommandError as exc:
        raise GovshareError(
            "DB_REVISION_UNKNOWN", found=revision, expected=head(), command="govshare db history"
        ) from exc
