"""The service's metrics (prometheus-client), what ``GET /metrics`` shows of them, and who may read it.

Labels are low-cardinality only: fixed words of this module, the error and decision codes this code defines (any
other text counts as ``OTHER``), and the department codes the catalog names as providers of a source. Never a value,
a key, a path, a header or any text a request carried.

One process keeps its metrics in memory. ``govshare serve --workers N`` gives every worker the directory named by
``PROMETHEUS_MULTIPROC_DIR`` (made by the command as it starts, removed as it stops: ``multiprocess_directory``;
one left by a command killed with SIGKILL is removed by the next start);
prometheus-client then writes each worker's values to files there and ``exposition`` sums them over the workers,
whichever one is scraped. The supervisor marks a dead worker's files (``mark_process_dead``) so that its gauges go,
while its counters stay in the sums.

Who may read /metrics (``metrics_allowed``): with the setting ``metrics_token`` set, a scraper that sends it as
``Authorization: Bearer <token>``; without it, only a client on this machine's loopback that did not come through a
proxy (no ``Forwarded``, ``X-Forwarded-For`` or ``X-Real-IP`` header). Refusals are coded (401
``METRICS_TOKEN_REQUIRED``, 403 ``METRICS_NOT_ALLOWED``).

Imports nothing of ours.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import functools
import hmac
import ipaddress
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
DIRECTORY_PREFIX = "govshare-metrics-"  # then the command's process id: tempfile's directory/govshare-metrics-PID-…
CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
DEPARTMENT = re.compile(r"[a-z][a-z0-9_-]{1,39}")  # a catalog department code (catalog/loader.py)
# The endpoint label: the first path segment, when it is one of these; everything else is "other".
ENDPOINTS = frozenset({"graphql", "admin", "console", "healthz", "readyz", "metrics", "static"})
BREAKER_STATES = {"closed": 0, "half-open": 1, "open": 2}
PROXY_HEADERS = (b"forwarded", b"x-forwarded-for", b"x-real-ip")
SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "govshare_requests",
    "HTTP requests answered, by endpoint, outcome (answered, partial, refused, failed) and request-level error code",
    ["endpoint", "outcome", "code"],
)
DECISIONS = Counter(
    "govshare_decisions",
    "Data items decided for the access records written: ALLOWED, MASKED, or the denial's reason code",
    ["reason"],
)
SOURCE_SECONDS = Histogram(
    "govshare_source_seconds",
    "Source queries (cache misses), by providing department and outcome (ok, refused, failed)",
    ["source", "outcome"],
    buckets=SECONDS,
)
BREAKER = Gauge(
    "govshare_source_breaker_state",
    "The source's circuit breaker after its last query: 0 closed, 1 half-open, 2 open (worst over live workers)",
    ["source"],
    multiprocess_mode="livemax",
)
CACHE = Counter(
    "govshare_source_cache", "Source-result cache lookups: hit, miss, joined (an identical miss)", ["result"]
)
RECORD_SECONDS = Histogram(
    "govshare_access_record_write_seconds",
    "Transactions of the access-record writer, by outcome (ok, failed)",
    ["outcome"],
    buckets=SECONDS,
)
RECORDS_WRITTEN = Counter("govshare_access_records_written", "Access records written to the platform database")
RECORD_QUEUE = Gauge(
    "govshare_access_record_queue_depth",
    "Requests waiting for the access-record writer (summed over live workers)",
    multiprocess_mode="livesum",
)
POLICY_VERSION = Gauge("govshare_policy_version", "The policy version in force", multiprocess_mode="liveall")
CATALOG_VERSION = Gauge("govshare_catalog_version", "The catalog version in force", multiprocess_mode="liveall")
RELOADS = Counter(
    "govshare_reloads",
    "Catalog and policy changes brought into force, by cause (check, notification, local)",
    ["cause"],
)


@functools.cache
def _child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, kept: the labels' values are a bounded set, and looking a child up again costs
    several times its increment."""
    return metric.labels(*labels)


# What the request being answered ended with, set by whoever refuses it (request_outcome); read by RequestMetrics.
_outcome: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("govshare_outcome", default=None)


def _code(code: str) -> str:
    return code if CODE.fullmatch(code) else "OTHER"


def request_outcome(outcome: str, code: str = "") -> None:
    """Say how the request being answered ended (``refused``/``failed`` with its code, ``partial``): the last say wins."""
    holder = _outcome.get()
    if holder is not None:
        holder[:] = [outcome, _code(code) if code else ""]


class RequestMetrics:
    """ASGI middleware counting every HTTP request: by its endpoint, and by the outcome and code its handler said
    (``request_outcome``), or else by its status (2xx answered, 4xx refused, 5xx failed)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        holder: list[str] = []
        token = _outcome.set(holder)
        status = 500

        async def watched(event) -> None:
            nonlocal status
            if event["type"] == "http.response.start":
                status = event["status"]
            await send(event)

        try:
            await self.app(scope, receive, watched)
        finally:
            _outcome.reset(token)
            segment = scope["path"].lstrip("/").split("/", 1)[0]
            outcome, code = holder or ("answered" if status < 400 else "refused" if status < 500 else "failed", "")
            _child(REQUESTS, segment if segment in ENDPOINTS else "other", outcome, code).inc()


class Decided(Protocol):
    """What an access record (audit/records.py) says of its items."""

    items_returned: list[str]
    items_masked: list[str]
    items_denied: Mapping[str, str]


def decisions(records: Iterable[Decided]) -> None:
    """Count the items of a request's access records: returned ones ALLOWED (MASKED where masked), denied ones by
    their reason's code; one increment a reason."""
    counts: collections.Counter[str] = collections.Counter()
    for record in records:
        masked = set(record.items_masked)
        counts.update("MASKED" if item in masked else "ALLOWED" for item in record.items_returned)
        counts.update(_code(reason) for reason in record.items_denied.values())
    for reason, count in counts.items():
        _child(DECISIONS, reason).inc(count)


def _department(source: str) -> str:
    return source if DEPARTMENT.fullmatch(source) else "other"


def source_query(source: str, outcome: str, seconds: float, breaker_state: str) -> None:
    """One source query of ``source`` (a provider's department code), and its breaker's state after it."""
    label = _department(source)
    _child(SOURCE_SECONDS, label, outcome).observe(seconds)
    _child(BREAKER, label).set(BREAKER_STATES[breaker_state])


def cache(result: str) -> None:
    _child(CACHE, result).inc()


def records_written(seconds: float, count: int, ok: bool) -> None:
    """One transaction of the access-record writer (its thread): how long, how many records, whether it committed."""
    _child(RECORD_SECONDS, "ok" if ok else "failed").observe(seconds)
    if ok:
        RECORDS_WRITTEN.inc(count)


def record_queue(depth: int) -> None:
    RECORD_QUEUE.set(depth)


def in_force(catalog_version: int, policy_version: int, cause: str | None) -> None:
    """The versions now in force; ``cause`` when a change brought them (None: confirmed unchanged)."""
    CATALOG_VERSION.set(catalog_version)
    POLICY_VERSION.set(policy_version)
    if cause is not None:
        _child(RELOADS, cause if cause in ("check", "notification", "local") else "other").inc()


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus's text format, with their content type: summed over every worker's files in
    multiprocess mode, this process's own otherwise."""
    path = os.environ.get(MULTIPROCESS_VARIABLE)
    if not path:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def _loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def metrics_allowed(token: str, authorization: str | None, client: str | None, headers: Iterable[bytes]) -> str | None:
    """None when this scraper may read /metrics, else the refusal's code: with ``token`` set, the bearer token must
    be it (METRICS_TOKEN_REQUIRED); without, the client must be on loopback and not behind a proxy
    (METRICS_NOT_ALLOWED). ``headers``: the request's header names, lower-case."""
    if token:
        sent = (authorization or "").removeprefix("Bearer ").strip()
        return None if sent and hmac.compare_digest(sent.encode(), token.encode()) else "METRICS_TOKEN_REQUIRED"
    proxied = any(name in PROXY_HEADERS for name in headers)
    return None if _loopback(client) and not proxied else "METRICS_NOT_ALLOWED"


def _remove_abandoned() -> None:
    """The directories of earlier starts whose command is gone without removing its own (killed with SIGKILL)."""
    for found in Path(tempfile.gettempdir()).glob(f"{DIRECTORY_PREFIX}*-*"):
        pid = found.name[len(DIRECTORY_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(found, ignore_errors=True)
        except PermissionError:  # another user's command, alive
            continue


@contextlib.contextmanager
def multiprocess_directory() -> Iterator[str]:
    """A new, empty directory for the workers' metric files, named in ``PROMETHEUS_MULTIPROC_DIR`` for the processes
    started in the block (they read it as they import prometheus-client), and removed with its files afterwards."""
    _remove_abandoned()
    path = tempfile.mkdtemp(prefix=f"{DIRECTORY_PREFIX}{os.getpid()}-")
    previous = os.environ.get(MULTIPROCESS_VARIABLE)
    os.environ[MULTIPROCESS_VARIABLE] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(MULTIPROCESS_VARIABLE, None)
        else:
            os.environ[MULTIPROCESS_VARIABLE] = previous
        shutil.rmtree(path, ignore_errors=True)


def process_dead(pid: int) -> None:
    """A worker has died: its live gauges leave the sums (its counters stay), as prometheus-client documents."""
    path = os.environ.get(MULTIPROCESS_VARIABLE)
    if path:
        multiprocess.mark_process_dead(pid, path)
