"""The source-result cache, behind one small module: in memory by default, Redis where configured.

A cache key is a digest of the source URL and the whole source query (table, columns, labels, filters,
row scope, order, page, masks), so one department's scoped or masked rows can never answer another's
query. Values are serialized (JSON with tagged dates), never live references and never pickles.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import warnings
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiocache import RedisCache, SimpleMemoryCache
from aiocache.serializers import BaseSerializer
from sqlalchemy.engine import make_url

from govshare.logs import logger

if TYPE_CHECKING:
    from connectors.base import SourceQuery

log = logger(__name__)  # govshare.<module>: one logging configuration covers it


def _default(value: object) -> object:
    if isinstance(value, datetime.date):
        return {"__date__": value.isoformat()}
    raise TypeError(f"cannot cache a {type(value).__name__}")


def _hook(obj: dict[str, Any]) -> object:
    if "__date__" in obj and len(obj) == 1:
        return datetime.date.fromisoformat(obj["__date__"])
    return obj


class RowsSerializer(BaseSerializer):  # type: ignore[misc]  # aiocache is untyped
    DEFAULT_ENCODING = "utf-8"

    def dumps(self, value: object) -> str:
        return json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"))

    def loads(self, value: str | bytes | None) -> Any:
        return None if value is None else json.loads(value, object_hook=_hook)


def cache_key(source_url: str, query: SourceQuery) -> str:
    canonical = json.dumps([source_url, asdict(query)], default=_default, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class SourceCache:
    def __init__(self, url: str) -> None:
        """``memory://`` or ``redis://host:port/db``."""
        parsed = make_url(url.replace("memory://", "memory:///"))
        if parsed.drivername == "memory":
            self._cache = SimpleMemoryCache(serializer=RowsSerializer(), namespace="govshare:")
        elif parsed.drivername == "redis":
            self._cache = RedisCache(
                serializer=RowsSerializer(),
                namespace="govshare:src:",
                endpoint=parsed.host or "127.0.0.1",
                port=parsed.port or 6379,
                db=int(parsed.database or 0),
                password=parsed.password,
                create_connection_timeout=2,
                timeout=2,
            )
        else:
            raise ValueError(f"cache_url must be memory:// or redis://host:port/db, not {url!r}")
        self.url = url

    async def get(self, key: str) -> list[dict[str, object]] | None:
        try:
            rows: list[dict[str, object]] | None = await self._cache.get(key)
            return rows
        except Exception as exc:  # a cache outage must not fail the query: the source still answers
            log.warning("cache %s unavailable on read: %s", self.url, exc)
            return None

    async def set(self, key: str, rows: list[dict[str, object]], ttl: int) -> None:
        try:
            await self._cache.set(key, rows, ttl=ttl)
        except Exception as exc:
            log.warning("cache %s unavailable on write: %s", self.url, exc)

    async def close(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # aiocache 0.12 calls redis' deprecated close()
            await self._cache.close()
