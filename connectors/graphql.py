"""The upstream connector: another govshare (the provincial or national platform) over GraphQL (Art 9).

It asks with the platform's own credentials and purpose, never the caller's; reads are idempotent, so
connection failures are retried; masks are applied here as for any source. The remote platform makes
its own decisions: a remote refusal or error makes the whole source answer unavailable, never partial.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from connectors.base import SourceQuery, SourceRefused, SourceUnavailable, shown
from connectors.breaker import Breaker, CircuitOpen
from govshare.logs import logger

log = logger(__name__)  # govshare.<module>: one logging configuration covers it

SCHEME = "govshare+"
REMOTE_PAGE = 100  # govshare's default max_page_size
RETRY_STATUSES = {502, 503, 504}
# Codes of a remote answer that say the upstream failed (count towards its breaker); any other code is a refusal.
FAILURES = {"SOURCE_UNAVAILABLE", "INTERNAL_ERROR", "AUDIT_UNAVAILABLE", "?"}


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


def _plain(value: Any) -> Any:  # a value as JSON carries it
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class GraphQLConnector:
    def __init__(self, url: str, *, timeout: float, breaker: Breaker, credentials: Credentials | None) -> None:
        self.url = url
        self.endpoint = url[len(SCHEME) :]
        self.breaker = breaker
        self.credentials = credentials
        self._client = httpx.AsyncClient(timeout=timeout, transport=httpx.AsyncHTTPTransport(retries=2))

    def _document(self, query: SourceQuery) -> tuple[str, dict[str, dict[str, Any]], list[str]]:
        """The upstream query, its filter, and the columns asked for (the selected ones, then those the views'
        conditions read). A union of several row scopes, or a filter asked only of some rows, cannot be said in
        an upstream filter: such a query is refused rather than fetched whole and cut here."""
        if len(query.scopes) > 1 or any(c.within for c in query.where):
            raise SourceRefused(f"{self.url}: an upstream platform cannot be asked for a union of row scopes")
        if any(c.views for c in query.order_by):
            # The upstream answers in its key's order; where that key is hidden from the caller, the order would
            # give the hidden characters away, and sorting one page here would not hide which page a row is on.
            raise SourceRefused(f"{self.url}: an upstream platform cannot order rows by a pseudonym")
        names = list(
            dict.fromkeys(
                [c.name for c in query.columns]
                + [condition.column for c in query.columns for view in c.views or () for condition in view.where]
            )
        )
        type_name = query.table[0].upper() + query.table[1:]
        fields = " ".join(f"c{i}: {name}" for i, name in enumerate(names))
        filters: dict[str, dict[str, Any]] = {}
        for condition in (*query.where, *(query.scopes[0] if query.scopes else ())):
            ops = filters.setdefault(condition.column, {})
            if condition.op in ops:  # a filter and the scope on the same column and operator: both must hold
                if condition.op != "in":
                    raise SourceRefused(f"{self.url}: two {condition.op} conditions on {condition.column}")
                ops["in"] = [v for v in ops["in"] if v in set(_plain(condition.value))]
            else:
                ops[condition.op] = _plain(condition.value)
        document = (
            f"query Upstream($filter: {type_name}Filter, $first: Int, $after: String) "
            f"{{ page: {query.table}List(filter: $filter, first: $first, after: $after) "
            f"{{ items {{ {fields} }} pageInfo {{ hasNextPage endCursor }} }} }}"
        )
        return document, filters, names

    async def _post(self, document: str, variables: dict[str, object]) -> dict[str, Any]:
        credentials = self.credentials
        if credentials is None:
            raise SourceUnavailable(f"no credentials configured for {self.url}")
        headers = {
            "Authorization": f"Bearer {credentials.key}",
            "X-Purpose": credentials.purpose,
            "X-Operator": credentials.operator,
        }
        for attempt in range(2):
            response = await self._client.post(
                self.endpoint, json={"query": document, "variables": variables}, headers=headers
            )
            if response.status_code not in RETRY_STATUSES:
                break
            await asyncio.sleep(0.2 * (attempt + 1))
        if response.status_code != 200:
            raise SourceUnavailable(f"{self.endpoint} answered HTTP {response.status_code}")
        body: dict[str, Any] = response.json()
        if body.get("errors"):
            codes = sorted({e.get("extensions", {}).get("code", "?") for e in body["errors"]})
            if not set(codes) & FAILURES:  # it answered, and refused what was asked: the upstream is well
                raise SourceRefused(f"{self.endpoint} refused: {', '.join(codes)}")
            raise SourceUnavailable(f"{self.endpoint} failed: {', '.join(codes)}")
        page: dict[str, Any] = body["data"]["page"]
        return page

    async def fetch(self, query: SourceQuery) -> list[dict[str, object]]:
        try:
            self.breaker.before_call()
        except CircuitOpen:
            raise SourceUnavailable(query.table) from None
        document, filters, names = self._document(query)
        wanted = query.limit if query.limit is not None else REMOTE_PAGE
        rows: list[dict[str, Any]] = []
        offset = query.offset
        try:
            while len(rows) < wanted:
                variables: dict[str, object] = {
                    "filter": filters or None,
                    "first": min(REMOTE_PAGE, wanted - len(rows)),
                    "after": base64.urlsafe_b64encode(f"o:{offset}".encode()).decode() if offset else None,
                }
                page = await self._post(document, variables)
                rows += page["items"]
                offset += len(page["items"])
                if not page["pageInfo"]["hasNextPage"]:
                    break
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            self.breaker.failed()
            log.warning("upstream %s failed on %s: %s", self.endpoint, query.table, exc)
            raise SourceUnavailable(query.table) from exc
        except SourceRefused as exc:
            self.breaker.succeeded()
            log.warning("upstream %s: %s", self.endpoint, exc)
            raise
        except SourceUnavailable as exc:
            self.breaker.failed()
            log.warning("upstream %s: %s", self.endpoint, exc)
            raise
        self.breaker.succeeded()
        types = {c.name: c.type for c in query.columns}

        def raw(row: dict[str, Any]) -> dict[str, object]:
            values = {name: row[f"c{i}"] for i, name in enumerate(names)}
            for name, value in values.items():
                if value is not None and types.get(name) == "date":
                    values[name] = datetime.date.fromisoformat(value)
            return values

        answer = []
        for row in map(raw, rows):
            answer.append({c.key: shown(c, row) for c in query.columns})
        return answer

    async def close(self) -> None:
        await self._client.aclose()
