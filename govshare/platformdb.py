"""The platform database's foundations: the one metadata every package declares its tables on, the engines,
the UTC time column, the append-only guard, and the change counter every process watches.

Each package owns its tables (``audit/tables.py``: access and process records and the chain heads;
``policies/tables.py``: grants, policy versions and trusted documents; ``applications/tables.py``: applications and work
calendars; ``admin/tables.py``: staff accounts and sessions; ``govshare/keys.py``: application keys;
``catalog/store.py``: catalog versions). The schema's revisions are ``migrations/`` (Alembic): a server or
command refuses a database at another revision than its code (``migrations.ensure_current``).

SQLite under ``var/`` by default, or PostgreSQL; no other engine (MariaDB is a source database only). Records
and policy versions are append-only: the database itself refuses UPDATE and DELETE on them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, Table, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.types import TypeDecorator

ENGINES = ("sqlite", "postgresql")

metadata = MetaData()


class UTCDateTime(TypeDecorator):
    """A moment: an aware datetime in, stored in UTC, an aware UTC datetime out, on SQLite (which keeps no offset)
    as on PostgreSQL. A naive datetime is refused: the moment it means is unknown."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"a naive datetime cannot be stored as a moment: {value.isoformat()}")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# One row: bumped by every change to grants, keys, applications or the policy rules, so every process sees the
# change. Shared: the keys (govshare), the policies and the applications bump it, the server watches it.
policy_version = Table(
    "policy_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)

# Rows a new database starts with, by table, in the order given (the chain heads are declared by audit.chain).
SEED_ROWS: dict[str, list[dict]] = {"policy_version": [{"id": 1, "version": 0}]}

# The table recording each archive of a hash chain (audit.chain.audit_archives): the append-only guard lets a row of an
# archived table be deleted only where a recorded archive covers its chain position (``append_only(archived=...)``).
ARCHIVES_TABLE = "audit_archives"

# Each append-only table, with (chain, column) where its rows may be removed once archived (None: never).
_APPEND_ONLY: dict[str, tuple[str, str] | None] = {}


def append_only(table: Table, *, archived: tuple[str, str] | None = None) -> Table:
    """Declare ``table`` append-only: the database refuses UPDATE and DELETE on it (``guard_statements``). With
    ``archived=(chain, column)`` a DELETE is let through for a row whose ``column`` (the position of a record of
    ``chain``) lies in an archive recorded in ``audit_archives``: what ``govshare audit archive`` removes, in the
    transaction that records the archive. Every other DELETE, and every UPDATE, is refused as before."""
    _APPEND_ONLY.setdefault(table.name, archived)
    return table


def append_only_tables() -> tuple[str, ...]:
    return tuple(_APPEND_ONLY)


def guard_statements(dialect: str, tables: tuple[str, ...] | None = None) -> list[str]:
    """The DDL that makes ``tables`` (default: every append-only table) refuse UPDATE and DELETE."""
    tables = append_only_tables() if tables is None else tables
    if dialect == "sqlite":
        return [statement for table in tables for statement in table_guard(dialect, table, _APPEND_ONLY.get(table))]
    if dialect == "postgresql":
        return [*GUARD_FUNCTIONS] + [
            statement for table in tables for statement in table_guard(dialect, table, _APPEND_ONLY.get(table))
        ]
    raise ValueError(f"the platform database must be SQLite or PostgreSQL, not {dialect}")


# PostgreSQL's trigger functions: one refusing everything, one letting through the DELETE of an archived row (its
# arguments: the chain and the column holding the row's position in it).
GUARD_FUNCTIONS = (
    """CREATE OR REPLACE FUNCTION govshare_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION '% are append-only', TG_TABLE_NAME; END $$ LANGUAGE plpgsql""",
    f"""CREATE OR REPLACE FUNCTION govshare_append_only_unless_archived() RETURNS trigger AS $$
       BEGIN
         IF TG_OP = 'DELETE' AND EXISTS (
              SELECT 1 FROM {ARCHIVES_TABLE} a WHERE a.chain = TG_ARGV[0]
                AND (to_jsonb(OLD) ->> TG_ARGV[1])::bigint BETWEEN a.first_seq AND a.last_seq) THEN
           RETURN OLD;
         END IF;
         RAISE EXCEPTION '% are append-only', TG_TABLE_NAME;
       END $$ LANGUAGE plpgsql""",  # noqa: S608 - names declared in code
)


def table_guard(dialect: str, table: str, archived: tuple[str, str] | None = None) -> list[str]:
    """The triggers guarding one table (the PostgreSQL functions of ``GUARD_FUNCTIONS`` must exist)."""
    if dialect == "sqlite":
        refuse = f"BEGIN SELECT RAISE(ABORT, '{table} are append-only'); END"
        unless = ""
        if archived is not None:
            chain, column = archived
            unless = (
                f" WHEN NOT EXISTS (SELECT 1 FROM {ARCHIVES_TABLE} WHERE chain = '{chain}'"  # noqa: S608 - names declared in code
                f" AND OLD.{column} BETWEEN first_seq AND last_seq)"
            )
        return [
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table}\n       {refuse}",
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table}{unless}\n       {refuse}",
        ]
    if dialect == "postgresql":
        if archived is None:
            function = "govshare_append_only()"
        else:
            function = f"govshare_append_only_unless_archived('{archived[0]}', '{archived[1]}')"
        return [
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {function}"
        ]
    raise ValueError(f"the platform database must be SQLite or PostgreSQL, not {dialect}")


def _sqlite_pragmas(engine: Engine) -> None:
    # WAL lets readers go on while an access record is appended; foreign keys are off by default.
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):  # pragma: no cover - exercised by every test
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()


def make_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url)
    if parsed.get_backend_name() == "sqlite":
        _sqlite_pragmas(engine.sync_engine)
    return engine


def make_sync_engine(engine: AsyncEngine) -> Engine | None:
    """A synchronous engine on the same platform database (None for an in-memory one, which it cannot share)."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return None
    driver = {"sqlite": "pysqlite", "postgresql": "psycopg"}[url.get_backend_name()]
    sync = create_engine(url.set(drivername=f"{url.get_backend_name()}+{driver}"), pool_size=1)
    if url.get_backend_name() == "sqlite":
        _sqlite_pragmas(sync)
    return sync


async def bump_policy_version(conn) -> None:
    await conn.execute(
        policy_version.update().where(policy_version.c.id == 1).values(version=policy_version.c.version + 1)
    )


VERSIONS = text(
    "SELECT (SELECT COALESCE(MAX(version), 0) FROM catalog_versions), (SELECT version FROM policy_version WHERE id = 1)"
)


async def read_versions(conn) -> tuple[int, int]:
    """(catalog version, policy version) in force."""
    row = (await conn.execute(VERSIONS)).one()
    return int(row[0]), int(row[1] or 0)


def read_versions_sync(conn) -> tuple[int, int]:
    """``read_versions`` on a synchronous connection (a thread's: the server's check of the versions)."""
    row = conn.execute(VERSIONS).one()
    return int(row[0]), int(row[1] or 0)
