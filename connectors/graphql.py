"""The upstream connector: another govshare (the provincial or national platform) over GraphQL (Art 9).

It asks with the platform's own credentials and purpose, never the caller's; reads are idempotent, so
connection failures are retried; masks are applied here as for any source. The remote platform makes
its own decisions: a remote refusal or error makes the whole source answer unavailable, never partial.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path

import httpx

from connectors.base import SourceUnavailable
from connectors.breaker import Breaker, CircuitOpen
from connectors.masking import parse_mask

log = logging.getLogger(__name__)

SCHEME = "govshare+"
REMOTE_PAGE = 100  # govshare's default max_page_size
RETRY_STATUSES = {502, 503, 504}


@dataclass(frozen=True)
class Credentials:
    key: str
    purpose: str
    operator: str = "govshare-platform"


def load_credentials(path: Path) -> dict[str, Credentials]:
    """``{source URL: Credentials}`` from a TOML file of tables named by source URL."""
    if not path.exists():
        return {}
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    return {url: Credentials(**entry) for url, entry in document.items()}


def is_upstream(url: str) -> bool:
    return url.startswith(SCHEME)


def _plain(value):
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class GraphQLConnector:
    def __init__(self, url: str, *, timeout: float, breaker: Breaker, credentials: Credentials | None) -> None:
        self.url = url
        self.endpoint = url[len(SCHEME):]
        self.breaker = breaker
        self.credentials = credentials
        self._client = httpx.AsyncClient(timeout=timeout, transport=httpx.AsyncHTTPTransport(retries=2))

    def _document(self, query) -> tuple[str, dict]:
        type_name = query.table[0].upper() + query.table[1:]
        fields = " ".join(f"c{i}: {column.name}" for i, column in enumerate(query.columns))
        filters: dict = {}
        for condition in query.where:
            filters.setdefault(condition.column, {})[condition.op] = _plain(condition.value)
        document = (f"query Upstream($filter: {type_name}Filter, $first: Int, $after: String) "
                    f"{{ page: {query.table}List(filter: $filter, first: $first, after: $after) "
                    f"{{ items {{ {fields} }} pageInfo {{ hasNextPage endCursor }} }} }}")
        return document, filters

    async def _post(self, document: str, variables: dict) -> dict:
        credentials = self.credentials
        if credentials is None:
            raise SourceUnavailable(f"no credentials configured for {self.url}")
        headers = {"Authorization": f"Bearer {credentials.key}", "X-Purpose": credentials.purpose,
                   "X-Operator": credentials.operator}
        for attempt in range(2):
            response = await self._client.post(self.endpoint, json={"query": document, "variables": variables}, headers=headers)
            if response.status_code not in RETRY_STATUSES:
                break
            await asyncio.sleep(0.2 * (attempt + 1))
        if response.status_code != 200:
            raise SourceUnavailable(f"{self.endpoint} answered HTTP {response.status_code}")
        body = response.json()
        if body.get("errors"):
            codes = sorted({e.get("extensions", {}).get("code", "?") for e in body["errors"]})
            raise SourceUnavailable(f"{self.endpoint} refused or failed: {', '.join(codes)}")
        return body["data"]["page"]

    async def fetch(self, query, *, cache=None, ttl: int = 0) -> list[dict[str, object]]:
        try:
            self.breaker.before_call()
        except CircuitOpen:
            raise SourceUnavailable(query.table) from None
        document, filters = self._document(query)
        wanted = query.limit if query.limit is not None else REMOTE_PAGE
        rows: list[dict] = []
        offset = query.offset
        try:
            while len(rows) < wanted:
                variables = {"filter": filters or None, "first": min(REMOTE_PAGE, wanted - len(rows)),
                             "after": base64.urlsafe_b64encode(f"o:{offset}".encode()).decode() if offset else None}
                page = await self._post(document, variables)
                rows += page["items"]
                offset += len(page["items"])
                if not page["pageInfo"]["hasNextPage"]:
                    break
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            self.breaker.failed()
            log.warning("upstream %s failed on %s: %s", self.endpoint, query.table, exc)
            raise SourceUnavailable(query.table) from exc
        except SourceUnavailable as exc:
            self.breaker.failed()
            log.warning("upstream %s: %s", self.endpoint, exc)
            raise
        self.breaker.succeeded()
        masks = dict(query.masks)

        def value(column, raw):
            if raw is not None and column.type == "date":
                raw = datetime.date.fromisoformat(raw)
            return parse_mask(masks[column.key]).apply(raw) if column.key in masks else raw

        return [{c.key: value(c, row[f"c{i}"]) for i, c in enumerate(query.columns)} for row in rows]

    async def close(self) -> None:
        await self._client.aclose()
