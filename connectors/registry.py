"""All sources of a server process: one connector per source URL, and the source-result cache they share."""

from __future__ import annotations

from connectors.base import SourceQuery
from connectors.breaker import Breaker
from connectors.cache import SourceCache, cache_key
from connectors.graphql import Credentials, GraphQLConnector, is_upstream
from connectors.sql import SqlConnector


class Connectors:
    """One connector per source URL, opened on first use, and the source-result cache they share."""

    def __init__(self, *, timeout: float, cache_url: str = "memory://", breaker_failures: int = 3,
                 breaker_reset_seconds: float = 10.0, upstream_credentials: dict[str, Credentials] | None = None) -> None:
        self.timeout = timeout
        self.cache = SourceCache(cache_url)
        self._breaker = {"failures": breaker_failures, "reset_seconds": breaker_reset_seconds}
        self._credentials = upstream_credentials or {}
        self._by_url: dict[str, SqlConnector | GraphQLConnector] = {}

    def get(self, url: str) -> SqlConnector | GraphQLConnector:
        connector = self._by_url.get(url)
        if connector is None:
            breaker = Breaker(**self._breaker)
            if is_upstream(url):
                connector = GraphQLConnector(url, timeout=self.timeout, breaker=breaker,
                                             credentials=self._credentials.get(url))
            else:
                connector = SqlConnector(url, timeout=self.timeout, breaker=breaker)
            self._by_url[url] = connector
        return connector

    async def fetch(self, url: str, query: SourceQuery, *, ttl: int = 0) -> list[dict[str, object]]:
        """Rows of ``query`` from the source at ``url``; from the cache when it holds them (``ttl`` 0: never)."""
        key = cache_key(url, query) if ttl > 0 else None
        if key is not None:
            cached = await self.cache.get(key)
            if cached is not None:
                return cached
        rows = await self.get(url).fetch(query)
        if key is not None:
            await self.cache.set(key, rows, ttl)
        return rows

    async def close(self) -> None:
        for connector in self._by_url.values():
            await connector.close()
        self._by_url.clear()
        await self.cache.close()
