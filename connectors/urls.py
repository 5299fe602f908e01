"""Source URLs: the catalog names an engine (sqlite, postgresql, mysql/mariadb); the server reads through
its async driver, and set-up tools (the demo builder, schema inspection) through its sync driver."""

from __future__ import annotations

from sqlalchemy.engine import make_url

# backend -> (async driver, sync driver)
DRIVERS = {
    "sqlite": ("aiosqlite", "pysqlite"),
    "postgresql": ("asyncpg", "psycopg"),
    "mysql": ("aiomysql", "pymysql"),
    "mariadb": ("aiomysql", "pymysql"),
}


def _with_driver(url: str, position: int) -> str:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in DRIVERS:
        raise ValueError(f"unsupported source engine {backend!r} (supported: {', '.join(DRIVERS)})")
    parsed = parsed.set(drivername=f"{backend}+{DRIVERS[backend][position]}")
    if backend in ("mysql", "mariadb") and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed.render_as_string(hide_password=False)


def async_url(url: str) -> str:
    """The URL to read with. A SQLite source is opened read-write but never created: a missing file is an
    unavailable source, not a new empty one."""
    parsed = make_url(_with_driver(url, 0))
    if (
        parsed.get_backend_name() == "sqlite"
        and parsed.database not in (None, "", ":memory:")
        and not parsed.database.startswith("file:")
    ):
        parsed = parsed.set(database=f"file:{parsed.database}").update_query_dict({"mode": "rw", "uri": "true"})
    return parsed.render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    return _with_driver(url, 1)
