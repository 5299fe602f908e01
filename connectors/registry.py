"""All sources of a server process: one connector per source URL, and the source-result cache they share."""

from __future__ import annotations

import asyncio
import time

from connectors.base import SourceQuery, SourceRefused
from connectors.breaker import Breaker
from connectors.cache import SourceCache, cache_key
from connectors.graphql import Credentials, GraphQLConnector, is_upstream
from connectors.sql import SqlConnector
from govshare import metrics
from govshare.subjects import SubjectKey


class Connectors:
    """One connector per source URL, opened on first use, and the source-result cache they share."""

    def __init__(
        self,
        *,
        timeout: float,
        cache_url: str = "memory://",
        breaker_failures: int = 3,
        breaker_reset_seconds: float = 10.0,
        upstream_credentials: dict[str, Credentials] | None = None,
        pool_size: int = 5,
        subject_key: SubjectKey | None = None,
    ) -> None:
        self.timeout = timeout
        self.pool_size = pool_size
        self.cache = SourceCache(cache_url)
        self._subject_key = subject_key
        self._breaker_failures, self._breaker_reset_seconds = breaker_failures, breaker_reset_seconds
        self._credentials = upstream_credentials or {}
        self._by_url: dict[str, SqlConnector | GraphQLConnector] = {}
        self._in_flight: dict[str, asyncio.Future[list[dict[str, object]]]] = {}

    def get(self, url: str) -> SqlConnector | GraphQLConnector:
        connector = self._by_url.get(url)
        if connector is None:
            breaker = Breaker(failures=self._breaker_failures, reset_seconds=self._breaker_reset_seconds)
            if is_upstream(url):
                connector = GraphQLConnector(
                    url, timeout=self.timeout, breaker=breaker, credentials=self._credentials.get(url)
                )
            else:
                connector = SqlConnector(url, timeout=self.timeout, breaker=breaker, pool_size=self.pool_size)
            self._by_url[url] = connector
        return connector

    async def fetch(self, url: str, query: SourceQuery, *, source: str, ttl: int = 0) -> list[dict[str, object]]:
        """Rows of ``query`` from the source at ``url``; from the cache when it holds them (``ttl`` 0: never).
        ``source``: the providing department's code, naming the source in the metrics (never its URL)."""
        if ttl <= 0:
            return await self._read(url, query, source)
        key = cache_key(url, query)
        cached = await self.cache.get(key)
        if cached is not None:
            metrics.cache("hit")
            return cached
        # Concurrent identical misses share one source query (single flight).
        pending = self._in_flight.get(key)
        if pending is not None:
            metrics.cache("joined")
            return await asyncio.shield(pending)
        metrics.cache("miss")
        pending = self._in_flight[key] = asyncio.ensure_future(self._fill(url, query, key, ttl, source))
        try:
            return await asyncio.shield(pending)
        finally:
            if pending.done():
                self._in_flight.pop(key, None)

    async def _read(self, url: str, query: SourceQuery, source: str) -> list[dict[str, object]]:
        """One query of the source, timed, with its breaker's state after it, for the metrics."""
        connector = self.get(url)
        started, outcome = time.perf_counter(), "failed"
        try:
            rows = await connector.fetch(query)
            outcome = "ok"
        except SourceRefused:
            outcome = "refused"
            raise
        finally:
            metrics.source_query(source, outcome, time.perf_counter() - started, connector.breaker.state)
        return self._hashed(rows, query)

    async def _fill(self, url: str, query: SourceQuery, key: str, ttl: int, source: str) -> list[dict[str, object]]:
        try:
            rows = await self._read(url, query, source)
            await self.cache.set(key, rows, ttl)
            return rows
        finally:
            self._in_flight.pop(key, None)

    def _hashed(self, rows: list[dict[str, object]], query: SourceQuery) -> list[dict[str, object]]:
        """The source's rows, each data subject's identifier replaced by its keyed hash as soon as it is read: the
        cache, the resolvers and the answer never hold the value itself."""
        subjects = [c.key for c in query.columns if c.subject]
        if not subjects:
            return rows
        if self._subject_key is None:
            raise RuntimeError("a query reads data subjects' identifiers, and these connectors have no subject key")
        digest = self._subject_key.digest
        for row in rows:
            for key in subjects:
                value = row[key]
                if value is not None:
                    row[key] = digest(value)
        return rows

    async def close(self) -> None:
        for connector in self._by_url.values():
            await connector.close()
        self._by_url.clear()
        await self.cache.close()
