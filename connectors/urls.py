"""Source URLs: the catalog names an engine; the server reads through its async driver."""

from __future__ import annotations

from sqlalchemy.engine import make_url

ASYNC_DRIVERS = {"sqlite": "aiosqlite"}


def async_url(url: str) -> str:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in ASYNC_DRIVERS:
        raise ValueError(f"no async driver configured for {backend!r} sources (supported: {', '.join(ASYNC_DRIVERS)})")
    return parsed.set(drivername=f"{backend}+{ASYNC_DRIVERS[backend]}").render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername=parsed.get_backend_name()).render_as_string(hide_password=False)
