"""The govshare server: wires authentication, the generated schema, the data path and the audit.

POST /graphql answers queries (``Authorization: Bearer <key>``, ``X-Purpose``, ``X-Operator``), and so does GET
/graphql?query=… (queries only, GraphQL over HTTP); GET /graphql from a browser serves GraphiQL from local assets;
/healthz says which catalog and policies are in force (alive: no dependency is asked), /readyz whether this process
can answer (platform database at the code's revision, Redis where configured, a catalog loaded), /metrics the metrics
in Prometheus's format (govshare/metrics.py: who may read them).
/console is the policy console for security staff, /admin/graphql its API for scripts (admin/).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import strawberry
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SpanExporter
from redis.asyncio import Redis
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from strawberry.extensions import SchemaExtension
from uvicorn.config import STARTUP_FAILURE

import migrations
from admin import console
from admin.api import AdminEndpoint
from admin.auth import session_delete, session_post
from audit.checkpoints import Checkpointer
from audit.records import AuditWriter, RequestRecords
from audit.tracing import end_http_server_span, make_tracer, request_span, span
from catalog import freshness
from catalog import store as catalog_store
from catalog.conformance import check_sources, without_nonconforming
from catalog.model import Catalog
from catalog.search import FormIndex
from connectors.graphql import load_credentials
from connectors.registry import Connectors
from corrections.process import Disputes, open_disputes
from govshare import metrics
from govshare.bodies import BodyLimit
from govshare.collector import Collector
from govshare.config import Settings, load_settings
from govshare.errors import AuditError, AuthError, ConfigError, GovshareError, error_entry, http_error
from govshare.graphql_http import (
    NO_STORE,
    BrowserOrigins,
    Execution,
    GraphQLEndpoint,
    Operation,
    method_not_allowed,
    prefers_html,
    response_media_type,
)
from govshare.i18n import message, normalize_language
from govshare.keys import Caller, authenticate, hash_key, platform_secret
from govshare.logs import configure as configure_logs
from govshare.logs import hide_query_strings, show_query_strings
from govshare.notify import PolicyNotifier
from govshare.platformdb import make_engine, make_sync_engine, read_versions_sync
from govshare.ratelimit import CostBudget, RateLimiter
from govshare.subjects import SubjectKey
from migrations import ensure_current
from policies.engine import PolicyEngine, Unenforced
from policies.model import PolicySet
from policies.store import load_policy_set
from policies.trusted import TrustedDocuments
from policies.trusted import admit as admit_document
from policies.trusted import load as load_trusted_documents
from resolvers.context import RequestContext
from resolvers.freshness import entries as freshness_entries
from schema.builder import Schema, build_schema
from schema.documents import check_document

log = logging.getLogger("govshare")
KEY_CACHE_SIZE = 10000
# Seconds a request waits at most on the platform database, for its key's lookup and again for its access records'
# commit: one that stops answering (hung, or behind a network that drops packets) refuses the request
# (PLATFORM_DATABASE_UNREACHABLE, AUDIT_UNAVAILABLE) rather than hold it until the connection dies.
PLATFORM_WAIT = 10.0


class OperationAttributes(SchemaExtension):
    """Names the operation on the request's span once it is parsed (no span per resolver)."""

    def on_execute(self):
        context = self.execution_context
        current = trace.get_current_span()
        current.set_attribute("graphql.operation.name", context.operation_name or "")
        if context.operation_type is not None:
            current.set_attribute("graphql.operation.type", context.operation_type.value)
        yield


@dataclass(frozen=True)
class Snapshot:
    """The catalog, policies and schema in force, built together off the request path and swapped in as one
    reference: a request reads the snapshot it started with to its end and never waits for the next one."""

    catalog: Catalog
    policy: PolicyEngine
    schema: strawberry.Schema
    # time.monotonic() when the platform database last confirmed these versions (every refresh_seconds).
    checked_at: float
    # Valid application keys seen under these versions (key digest -> caller); unknown and revoked keys are never
    # kept. The only mutable part: a cache, emptied by the next change of either version.
    callers: dict[str, Caller] = field(default_factory=dict)
    # How the last change came into force here: cause ("check", "notification", "local"), policy version, time.
    reload: dict | None = None
    # The trusted documents registered for each application (policies/trusted.py), read with the policies.
    documents: TrustedDocuments = field(default_factory=TrustedDocuments)
    # The form search's full-text index of the same catalog (catalog/search.py), rebuilt when the catalog changes.
    forms: FormIndex | None = None
    # The open data-error reports (corrections/), read with the policies: every report and answer bumps their version.
    disputes: Disputes = field(default_factory=dict)

    @property
    def versions(self) -> tuple[int, int]:
        return self.policy.version


class Runtime:
    """What the server holds between requests: the snapshot in force (catalog, policies, schema, key cache), and
    the pools. Requests only read the snapshot; the background check, change announcements and ``changed()``
    build the next one and swap it in."""

    def __init__(
        self,
        settings: Settings,
        *,
        span_exporter: SpanExporter | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.monotonic = monotonic
        # Signs the chains' heads every audit_checkpoint_records records or audit_checkpoint_seconds; refuses a
        # production key or checkpoint file under var/ (AuditKeyError) before anything starts.
        self.checkpoints = Checkpointer(settings)
        self.engine = make_engine(settings.platform_url)
        self.audit = AuditWriter(self.engine, on_written=self.checkpoints.counted)
        # The check of the versions (``refresh``) reads them in a thread on a connection of its own: through the
        # async driver each of its round trips waits for the event loop, and under 32 clients the check took over
        # 0.5 s, so the key cache (confirmed for 2 x refresh_seconds) lapsed and keys were looked up again.
        self._versions_engine = make_sync_engine(self.engine)
        self.pseudonym_secret = platform_secret(
            Path(settings.expand(settings.pseudonym_secret_file)), create=not settings.production
        )
        # The key of the data-subject index (govshare.subjects): outside the database, like the pseudonym secret.
        self.subject_key = SubjectKey(
            platform_secret(
                Path(settings.expand(settings.subject_key_file)), create=not settings.production, name="subject key"
            )
        )
        self.connectors = Connectors(
            timeout=settings.source_timeout_seconds,
            cache_url=settings.cache_url,
            breaker_failures=settings.breaker_failures,
            breaker_reset_seconds=settings.breaker_reset_seconds,
            pool_size=settings.source_pool_size,
            upstream_credentials=load_credentials(Path(settings.expand(settings.upstream_credentials))),
            subject_key=self.subject_key,
        )
        self.tracer, self.tracer_provider = make_tracer(settings, span_exporter)
        counted = settings.rate_limit_url, settings.rate_limit_unavailable
        self.rate_limiter = RateLimiter(settings.rate_limit, *counted) if settings.rate_limit else None
        self.cost_budget = CostBudget(settings.cost_budget, *counted) if settings.cost_budget else None
        # Staff sign-ins (admin/auth.py), by client address and by user name.
        self.sign_in_limits = {
            kind: RateLimiter(limit, *counted)
            for kind, limit in (
                ("address", settings.staff_sign_ins_per_address),
                ("user", settings.staff_sign_ins_per_user),
            )
            if limit
        }
        empty = Catalog()
        self.snapshot = Snapshot(
            empty, PolicyEngine(empty, PolicySet()), self._schema(empty), float("-inf"), forms=FormIndex(empty)
        )
        # Held by whoever builds the next snapshot (one at a time); a request never waits on it.
        self._building = asyncio.Lock()
        self.notifier = PolicyNotifier(settings.policy_notify_url)
        # What was last recorded of every source's last change (catalog/freshness.py), by resource: read at start and
        # after every check of the sources (keep_freshness), swapped as one reference; answers read it, never a source.
        self.freshness: Mapping[str, freshness.Recorded] = {}

    def _schema(self, catalog: Catalog, previous: strawberry.Schema | None = None) -> strawberry.Schema:
        """The schema of ``catalog``; following ``previous`` (the schema in force), only what changed is rebuilt."""
        return build_schema(
            catalog,
            self.settings,
            extensions=[OperationAttributes],
            previous=previous if isinstance(previous, Schema) else None,
        )

    @staticmethod
    def _forms(catalog: Catalog, previous: FormIndex | None = None) -> FormIndex:
        """The form search's index of ``catalog``; following ``previous`` (the index in force), only the resources
        changed are indexed again."""
        index = FormIndex(catalog, previous=previous)
        for code, item in index.unknown:  # the synonyms file names an item this catalog does not publish
            log.warning("catalog/synonyms.toml: %s has no published item %s; its synonyms are not searched", code, item)
        return index

    # The snapshot's parts, for the admin package and the tests (a request keeps the snapshot it started with).
    @property
    def catalog(self) -> Catalog:
        return self.snapshot.catalog

    @property
    def policy(self) -> PolicyEngine:
        return self.snapshot.policy

    @property
    def schema(self) -> strawberry.Schema:
        return self.snapshot.schema

    def check_document(self, name: str, text: str) -> tuple[str, ...]:
        """A document to register as trusted, checked against the schema in force (schema/documents.py): the names
        of its operations, or DOCUMENT_INVALID."""
        return check_document(self.schema._schema, name, text, self.settings, self.settings.language)

    async def start(self) -> None:
        # A database at another schema revision than this code is refused, untouched (migrations/).
        await ensure_current(self.engine, production=self.settings.production)
        await self.refresh()
        if self.catalog.version == 0:
            log.warning(message("CATALOG_NOT_LOADED", "en"))
        async with self.engine.connect() as conn:
            self.freshness = await freshness.load(conn)

    async def check_freshness(self) -> Mapping[str, freshness.Recorded]:
        """Read every published resource's last change from its source, record it, and hold the result: run by
        the schedule (keep_freshness), never on the way of a query."""
        catalog = self.catalog
        self.freshness = await freshness.record_changes(
            self.engine,
            catalog,
            expand=self.settings.expand,
            timeout=self.settings.source_timeout_seconds,
            now=self.clock(),
        )
        return self.freshness

    async def keep_freshness(self) -> None:
        """The sources' last changes, read now and every freshness_check_seconds."""
        while True:
            try:
                await self.check_freshness()
            except Exception:  # a database hiccup must not end the loop; the last record stays in force
                log.exception("recording the sources' last changes failed")
            await asyncio.sleep(self.settings.freshness_check_seconds)

    async def refresh(self, *, cause: str = "check") -> Snapshot:
        """Check the platform database's catalog and policy versions now; when either changed (in any process),
        build the next snapshot and swap it in. Run by the background check every refresh_seconds, on a change
        announcement and by ``changed()``; never on the way of a query."""
        async with self._building:
            started = self.monotonic()
            current = self.snapshot
            catalog_version, policy_version = await asyncio.to_thread(self._read_versions)
            if (catalog_version, policy_version) == current.versions:
                self.snapshot = replace(current, checked_at=started)
                metrics.in_force(catalog_version, policy_version, None)
                return self.snapshot
            # Something changed, perhaps a key was revoked: the keys seen so far are forgotten now, not once the
            # build (which may check every source for seconds) is done.
            self.snapshot = current = replace(current, callers={})
            async with self.engine.connect() as conn:
                catalog = current.catalog
                if catalog_version != catalog.version:
                    catalog = await catalog_store.current(conn, catalog) or Catalog()
                policies = await load_policy_set(conn, silence_approves=self.settings.silence_approves)
                documents = await load_trusted_documents(conn)
                disputes = await open_disputes(conn, self.pseudonym_secret)
            if catalog is not current.catalog:
                # Checking every source may take source_timeout_seconds: the new policies (a grant revoked, a deny
                # rule) come into force on the catalog in force first, the new catalog once its sources are checked.
                # The same policies as in force (a change of the catalog alone): the engine in force is that engine.
                interim = (
                    current.policy
                    if policies == current.policy.policies
                    else await asyncio.to_thread(PolicyEngine, current.catalog, policies, current.policy)
                )
                self.snapshot = current = replace(
                    current, policy=interim, documents=documents, disputes=disputes, checked_at=started
                )
                catalog = without_nonconforming(catalog, await check_sources(catalog, self.settings))
            # Building the engine and the schema takes long for many rules: in a thread, so requests go on meanwhile.
            # Each follows the one in force: what a change of the catalog left as it was is kept, not made again.
            policy, schema, forms = await asyncio.to_thread(
                lambda: (
                    PolicyEngine(catalog, policies, previous=current.policy),
                    current.schema if catalog is current.catalog else self._schema(catalog, current.schema),
                    current.forms if catalog is current.catalog else self._forms(catalog, current.forms),
                )
            )
            self.snapshot = Snapshot(
                catalog,
                policy,
                schema,
                started,
                reload={"cause": cause, "policy_version": policies.version, "at": time.time()},
                documents=documents,
                forms=forms,
                disputes=disputes,
            )
            metrics.in_force(catalog.version, policies.version, cause)
            if catalog is not current.catalog:
                log.info(
                    "catalog version %s in force: %d published resources", catalog.version, len(catalog.published())
                )
            log.info("policy version %s in force (%s): %d rules", policies.version, cause, policy.rule_count)
            return self.snapshot

    def _read_versions(self) -> tuple[int, int]:
        """The versions in force (the check's thread)."""
        if self._versions_engine is None:  # AuditWriter refuses such a database first; said for the type checker
            raise ConfigError("the platform database is in memory: no thread can read its versions")
        with self._versions_engine.connect() as conn:
            return read_versions_sync(conn)

    def stale_limit(self) -> float:
        """How long a snapshot may go unconfirmed before queries are refused: policy_stale_seconds, and never less
        than two of this process's own checks (0: never refused)."""
        settings = self.settings
        if settings.refresh_seconds <= 0 or settings.policy_stale_seconds <= 0:
            return 0.0
        return max(settings.policy_stale_seconds, 2 * settings.refresh_seconds)

    def unconfirmed(self, snapshot: Snapshot) -> bool:
        """No check has confirmed ``snapshot``'s versions for longer than ``stale_limit()``."""
        limit = self.stale_limit()
        return limit > 0 and self.monotonic() - snapshot.checked_at > limit

    async def authenticate(self, snapshot: Snapshot, authorization: str | None) -> Caller:
        """The caller behind ``authorization``: from ``snapshot``'s key cache while its versions were confirmed
        within 2 x refresh_seconds, otherwise looked up. A cache no check has confirmed for that long (the database
        unreachable, the check stuck) is not trusted: a key revoked meanwhile must not go on being answered."""
        digest = hash_key(authorization) if authorization else ""
        confirmed = self.monotonic() - snapshot.checked_at <= 2 * self.settings.refresh_seconds
        caller = snapshot.callers.get(digest) if confirmed else None
        if caller is None:
            try:
                async with asyncio.timeout(PLATFORM_WAIT), self.engine.connect() as conn:
                    caller = await authenticate(conn, authorization)
            except (SQLAlchemyError, OSError) as exc:  # OSError: TimeoutError too
                # The platform database down (restarting, cut off): the caller is told so and may retry, rather than
                # being told of an internal error (and the log holding a traceback per request of the outage).
                log.warning(
                    "looking up a key: the platform database: %s",
                    (str(exc).splitlines() or [type(exc).__name__])[0][:300],
                )
                raise GovshareError(
                    "PLATFORM_DATABASE_UNREACHABLE", http_status=503, headers={"Retry-After": "1"}
                ) from None
            if len(snapshot.callers) >= KEY_CACHE_SIZE:
                snapshot.callers.clear()
            snapshot.callers[digest] = caller
        return caller

    async def keep_fresh(self) -> None:
        """The background check: changes made by other processes come into force every refresh_seconds. Each check
        starts refresh_seconds after the last one started, not after it ended: a check slowed by load would otherwise
        push the next one out, and the key cache (confirmed for 2 x refresh_seconds) lapse between them."""
        due = self.monotonic() + self.settings.refresh_seconds
        while True:
            await asyncio.sleep(max(0.0, due - self.monotonic()))
            due = self.monotonic() + self.settings.refresh_seconds
            try:
                await self.refresh()
            except Exception:  # a database hiccup must not end the loop (meanwhile keys are looked up each time)
                log.exception("refreshing the catalog and policies failed")

    async def changed(self) -> None:
        """This process changed grants, applications or policy rules: the change is in force here before the
        response that made it is sent, and announced to the other processes."""
        snapshot = await self.refresh(cause="local")
        await self.notifier.publish(snapshot.policy.policies.version)

    async def stop(self) -> None:
        await self.notifier.close()
        await self.audit.close()
        await self.connectors.close()
        await self.engine.dispose()
        if self._versions_engine is not None:
            self._versions_engine.dispose()
        self.tracer_provider.shutdown()


# What may be recorded from the caller's own headers (access records are append-only): an operator id of at most
# 64 printable ASCII characters, and a purpose shaped like a purpose code that fits its column.
HEADER_RULES = {
    "X-Operator": (re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,62}[\x21-\x7e])?"), "HEADER_OPERATOR_RULE"),
    "X-Purpose": (re.compile(r"(?=.{1,80}\Z)[a-z][a-z0-9_-]*(?:\.[a-z0-9][a-z0-9_-]*)+"), "HEADER_PURPOSE_RULE"),
}


def _invalid_header(request: Request) -> tuple[str, str] | None:
    """(header, rule) for the first of X-Operator, X-Purpose that is sent and does not keep its rule."""
    for header, (pattern, rule) in HEADER_RULES.items():
        values = request.headers.getlist(header)
        if len(values) > 1 or (values and values[0] and not pattern.fullmatch(values[0])):
            return header, rule
    return None


class QueryEndpoint(GraphQLEndpoint):
    """POST /graphql: a department application's key (with its rate limit, cost budget and headers), and the data
    path's context; the access records are written before the answer leaves."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def language(self, request: Request) -> str:
        return normalize_language(request.headers.get("accept-language"), self.runtime.settings.language)

    async def handle(self, request: Request) -> Response:
        # The request's SERVER span (audit/tracing.py), in the caller's trace when it sent a traceparent; the
        # operation's span below is its child.
        with request_span(self.runtime.tracer, request, "/graphql") as server_span:
            response = await super().handle(request)
            end_http_server_span(server_span, response.status_code)
            server_span.set_attribute("govshare.request_id", response.headers.get("x-request-id", ""))
            return response

    async def authenticate(self, request: Request, lang: str) -> tuple[Snapshot, Caller]:
        runtime, settings = self.runtime, self.runtime.settings
        snapshot = runtime.snapshot  # this request's catalog, policies, schema and key cache, to its end
        if runtime.unconfirmed(snapshot):  # fail closed: these policies may have changed since anyone looked
            log.error("policies unconfirmed for over %s s: refusing queries", runtime.stale_limit())
            raise GovshareError(
                "POLICY_UNCONFIRMED",
                http_status=503,
                headers={"Retry-After": "1"},
                seconds=runtime.stale_limit(),
            )
        try:
            caller = await runtime.authenticate(snapshot, request.headers.get("authorization"))
        except AuthError as exc:
            exc.headers["WWW-Authenticate"] = 'Bearer realm="govshare"'
            raise
        # Requests per key, then the work (rows x items) already answered to it in this window.
        for limiter, code, params in (
            (runtime.rate_limiter, "RATE_LIMITED", {"limit": settings.rate_limit}),
            (runtime.cost_budget, "COST_BUDGET_EXCEEDED", {"budget": settings.cost_budget}),
        ):
            wait = await limiter.admit(caller.key_id) if limiter is not None else None
            if wait is not None:
                log.warning("application key %s (%s) refused: %s", caller.key_id, caller.department, code)
                raise GovshareError(code, http_status=429, headers={"Retry-After": str(wait)}, seconds=wait, **params)
        invalid = _invalid_header(request)
        if invalid is not None:  # refused before anything is recorded
            header, rule = invalid
            raise GovshareError(
                "HEADER_INVALID", extensions={"header": header}, header=header, rule=message(rule, lang)
            )
        if settings.requires_operator and not request.headers.get("x-operator"):
            # Art 22: whoever handles the data answers for it. Refused for the whole request (whatever it selects:
            # resources, links, _entities, applications), before the document is read or anything recorded.
            log.warning("application key %s (%s) refused: OPERATOR_REQUIRED", caller.key_id, caller.department)
            raise GovshareError("OPERATOR_REQUIRED", extensions={"header": "X-Operator"})
        return snapshot, caller

    async def admit(self, principal: tuple[Snapshot, Caller], operation: Operation, lang: str) -> Operation:
        """Trusted documents (policies/trusted.py), from the snapshot's registered set: a document id becomes its
        registered text; a key restricted to trusted documents is refused anything else, before anything is read or
        recorded (no data was accessed: a log line, as for the other request-level refusals)."""
        snapshot, caller = principal
        try:
            query = admit_document(
                snapshot.documents,
                caller,
                required=self.runtime.settings.trusted_documents_required,
                query=operation.query,
                document_id_sent=operation.document_id,
            )
        except GovshareError as refusal:
            log.warning(
                "application key %s (%s, %s) refused: %s",
                caller.key_id,
                caller.department,
                caller.application,
                refusal.code,
            )
            raise
        return operation if query is operation.query else replace(operation, query=query)

    @contextlib.asynccontextmanager
    async def execution(
        self, request: Request, principal: tuple[Snapshot, Caller], lang: str, request_id: str
    ) -> AsyncIterator[Execution]:
        runtime, settings = self.runtime, self.runtime.settings
        snapshot, caller = principal
        with span(runtime.tracer, "graphql.operation") as operation_span:
            ctx = RequestContext(
                caller=caller,
                purpose=request.headers.get("x-purpose") or None,
                operator=request.headers.get("x-operator") or None,
                lang=lang,
                request_id=request_id,
                trace_id=format(operation_span.get_span_context().trace_id, "032x"),
                now=runtime.clock(),
                catalog=snapshot.catalog,
                policy=snapshot.policy if settings.enforce else Unenforced(snapshot.policy),
                connectors=runtime.connectors,
                settings=settings,
                tracer=runtime.tracer,
                platform=runtime.engine,
                pseudonym_secret=runtime.pseudonym_secret,
                subject_key=runtime.subject_key,
                forms=snapshot.forms,
                freshness=runtime.freshness,
                disputes=snapshot.disputes,
            )
            operation_span.set_attributes(
                {
                    "govshare.request_id": ctx.request_id,
                    "govshare.department": caller.department,
                    "govshare.application": caller.application,
                    "govshare.purpose": ctx.purpose or "",
                }
            )
            if settings.enforce:
                ctx.audit = RequestRecords(runtime.audit, ctx.records)
            execution = Execution(snapshot.schema, ctx, ctx.item_errors, ctx.extensions)
            yield execution
            if runtime.cost_budget is not None:  # what was read is spent, whether or not it could be sent
                await runtime.cost_budget.charge(caller.key_id, ctx.cost)
            # The records are written before a single value is sent; if they cannot be, nothing is sent
            # (AuditError: AUDIT_UNAVAILABLE, HTTP 500).
            if ctx.audit is not None:
                try:
                    async with asyncio.timeout(PLATFORM_WAIT):
                        await ctx.audit.written()
                except TimeoutError:  # the records handed over are written when the database answers again
                    log.error(
                        "access records not committed within %s s: the platform database does not answer", PLATFORM_WAIT
                    )
                    raise AuditError("AUDIT_UNAVAILABLE") from None
                metrics.decisions(ctx.records)
            # Per resource the operation read, its freshness as recorded (no source is asked): extensions.freshness.
            if freshness := freshness_entries(ctx):
                execution.extensions["freshness"] = freshness
            if ctx.changed:  # an application or grant changed: in force here for the next request, and announced
                await runtime.changed()


class GraphQLGet:
    """GET /graphql: GraphiQL (from local assets) for a browser that prefers a page; otherwise GraphQL over HTTP's
    GET form, queries only, answered by the query endpoint exactly as a POST (same checks, decisions, records)."""

    def __init__(self, endpoint: QueryEndpoint) -> None:
        self.endpoint = endpoint

    async def handle(self, request: Request) -> Response:
        settings = self.endpoint.runtime.settings
        if prefers_html(request.headers.get("accept")):
            return FileResponse(settings.web_dir / "graphiql.html", media_type="text/html; charset=utf-8")
        if len(request.scope["query_string"]) > settings.max_query_string_bytes:
            lang = self.endpoint.language(request)
            refusal = GovshareError("URI_TOO_LONG", http_status=414, limit=settings.max_query_string_bytes)
            return http_error(
                refusal, lang, {**NO_STORE}, media_type=response_media_type(request.headers.get("accept"))
            )
        return await self.endpoint.handle(request)


async def healthz(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    snapshot = runtime.snapshot  # what is in force, as the background check last confirmed it
    return JSONResponse(
        {
            "status": "ok",
            "catalog_version": snapshot.catalog.version,
            "policy_version": snapshot.policy.policies.version,
            "last_reload": snapshot.reload,
            "notifications": {"connected": runtime.notifier.connected, "received": runtime.notifier.received},
            "published_resources": len(snapshot.catalog.published()),
        }
    )


READY_TIMEOUT = 2.0  # seconds each check of /readyz may take: a proxy's health check must not hang on it


async def _redis_check(url: str) -> None:
    client = Redis.from_url(url, socket_connect_timeout=READY_TIMEOUT, socket_timeout=READY_TIMEOUT)
    try:
        await client.ping()
    finally:
        await client.aclose()


async def _readiness(runtime: Runtime) -> tuple[dict[str, GovshareError | None], dict[str, GovshareError]]:
    """Each check of /readyz: None when it holds, else why not (a coded error); and beside them what is down but
    does not stop this process answering (a Redis only the cache, the announcements or rate limits counted open use:
    the cache falls back to the sources, policy changes arrive by the database check, the limits let requests by)."""
    settings = runtime.settings
    checks: dict[str, GovshareError | None] = {}
    degraded: dict[str, GovshareError] = {}
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            state = await migrations.status(runtime.engine)
        # A migration pending (or the database moved to a revision this code does not know): not ready to answer.
        checks["platform_database"] = None if state.at_head else migrations.refusal(state)
    except Exception as exc:  # unreachable, or not answering in time: what exactly goes to the log, not the body
        log.warning("readiness: the platform database: %s", (str(exc).splitlines() or [type(exc).__name__])[0][:300])
        checks["platform_database"] = GovshareError("PLATFORM_DATABASE_UNREACHABLE")
    redis: dict[str, list[str]] = {}
    for name in ("rate_limit_url", "cache_url", "policy_notify_url"):
        url = getattr(settings, name)
        if url.startswith(("redis://", "rediss://")):
            redis.setdefault(url, []).append(name)
    for url, names in redis.items():
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                await _redis_check(url)
        except Exception as exc:
            log.warning("readiness: the Redis of %s: %s", ", ".join(names), exc)
            error = GovshareError("REDIS_UNREACHABLE", settings=", ".join(names))
            if "rate_limit_url" in names and settings.rate_limit_unavailable == "closed":
                checks["redis"] = error  # every request would be refused RATE_LIMIT_UNAVAILABLE
                degraded.pop("redis", None)
                break
            degraded["redis"] = error
    if redis and "redis" not in checks and "redis" not in degraded:
        checks["redis"] = None
    # A writer whose thread has ended refuses every query (nothing may be answered unrecorded): take it out of service.
    checks["access_records"] = None if runtime.audit.available else AuditError("AUDIT_UNAVAILABLE")
    snapshot = runtime.snapshot
    checks["catalog"] = None if snapshot.catalog.version else GovshareError("CATALOG_NOT_LOADED")
    unconfirmed = runtime.unconfirmed(snapshot)
    checks["policies"] = GovshareError("POLICY_UNCONFIRMED", seconds=runtime.stale_limit()) if unconfirmed else None
    return checks, degraded


async def readyz(request: Request) -> Response:
    """Whether this process can answer queries now: 200, or 503 NOT_READY naming each check that fails with its code
    (for a proxy's health check: take this process out of service until it is ready again)."""
    runtime: Runtime = request.app.state.runtime
    lang = normalize_language(request.headers.get("accept-language"), runtime.settings.language)
    checks, degraded = await _readiness(runtime)
    failed = {name: error for name, error in checks.items() if error is not None}
    states = {name: "ok" if error is None else error.code for name, error in checks.items()}
    states |= {name: error.code for name, error in degraded.items()}
    if not failed:
        body: dict[str, object] = {"status": "ready", "checks": states}
        if degraded:  # ready all the same; what is down is said, with its message, for whoever watches
            body["degraded"] = [{"check": name, **error_entry(error, lang)} for name, error in degraded.items()]
        return JSONResponse(body, headers=NO_STORE)
    metrics.request_outcome("failed", "NOT_READY")
    entries = [{"check": name, **error_entry(error, lang)} for name, error in failed.items()]
    text = message("NOT_READY", lang, checks=", ".join(failed))
    body = {
        "status": "not_ready",
        "checks": states,
        "errors": [{"message": text, "extensions": {"code": "NOT_READY", "checks": entries}}],
    }
    return JSONResponse(body, status_code=503, headers={"Retry-After": "1", **NO_STORE})


async def metrics_page(request: Request) -> Response:
    """The metrics in Prometheus's text format, to the scrapers ``metrics_token`` (or loopback) admits."""
    settings: Settings = request.app.state.runtime.settings
    refused = metrics.metrics_allowed(
        settings.metrics_token,
        request.headers.get("authorization"),
        request.client.host if request.client else None,
        (name for name, _ in request.scope["headers"]),
    )
    if refused is not None:
        lang = normalize_language(request.headers.get("accept-language"), settings.language)
        if refused == "METRICS_TOKEN_REQUIRED":
            refusal = GovshareError(refused, http_status=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        else:
            refusal = GovshareError(refused, http_status=403)
        return http_error(refusal, lang, {**NO_STORE})
    body, content_type = await asyncio.to_thread(metrics.exposition)  # files of every worker, off the event loop
    return Response(body, headers={"Content-Type": content_type, **NO_STORE})


def _snapshot_parts(snapshot: Snapshot) -> tuple[object, ...]:
    """What a new snapshot replaces, whose old reference cycles the collector must then free."""
    return (snapshot.catalog, snapshot.policy, snapshot.schema, snapshot.forms, snapshot.documents, snapshot.disputes)


def create_app(settings: Settings | None = None, **runtime_options) -> Starlette:
    settings = settings or load_settings()
    if not settings.enforce:
        if settings.production:
            raise ConfigError("enforce = False is for the bench only; a production server refuses it")
        log.warning("ENFORCEMENT IS OFF: no decisions, no masks, no access records (bench only)")
    runtime = Runtime(settings, **runtime_options)

    async def keep_checkpoints() -> None:
        # Every audit_checkpoint_seconds, or as soon as audit_checkpoint_records records were written here.
        checkpoints = runtime.checkpoints
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(checkpoints.due.wait(), settings.audit_checkpoint_seconds or None)
            try:
                async with runtime.engine.connect() as conn:
                    await checkpoints.write(conn)
            except Exception:
                log.exception("writing the audit checkpoint to %s failed", checkpoints.path)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        # GET /graphql carries the query (ID numbers and all) in its URL: uvicorn's access lines leave it out. Installed
        # once the server has configured its loggers (uvicorn does that before the lifespan starts).
        hidden_queries = hide_query_strings(("/graphql",))
        await runtime.start()
        # The start-up heap frozen out of every full collection (govshare/collector.py): no 70-200 ms pause every
        # thousand requests; the first full collection after a new snapshot frees the old one.
        collector = Collector(lambda: _snapshot_parts(runtime.snapshot))
        collector.start()
        tasks = [asyncio.create_task(runtime.keep_fresh())] if settings.refresh_seconds > 0 else []
        if settings.freshness_check_seconds > 0:
            tasks.append(asyncio.create_task(runtime.keep_freshness()))
        if settings.policy_notify_url:
            tasks.append(asyncio.create_task(runtime.notifier.listen(lambda: runtime.refresh(cause="notification"))))
        if settings.audit_checkpoint_seconds > 0 or settings.audit_checkpoint_records > 0:
            tasks.append(asyncio.create_task(keep_checkpoints()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            # Every record handed over is written before the last checkpoint is taken: one still queued (its client
            # gone, or its transaction slow) would otherwise follow the checkpoint, uncovered.
            await runtime.audit.close()
            if settings.audit_checkpoint_seconds > 0 or settings.audit_checkpoint_records > 0:
                try:  # a server that stops leaves no record of its own uncovered
                    async with runtime.engine.connect() as conn:
                        await runtime.checkpoints.write(conn)
                except Exception:
                    log.exception("writing the audit checkpoint to %s failed", runtime.checkpoints.path)
            await runtime.stop()
            collector.stop()
            show_query_strings(hidden_queries)

    query_endpoint = QueryEndpoint(runtime)
    # Browser applications of the listed origins only (cors_origins; none: no CORS at all), on /graphql only.
    cors = (
        [
            Middleware(
                BrowserOrigins,
                origins=settings.origins(),
                paths=["/graphql"],
                max_age=settings.cors_max_age_seconds,
                language=settings.language,
            )
        ]
        if settings.origins()
        else []
    )

    def other_methods(allowed: str, reason: str) -> Callable[[Request], Awaitable[Response]]:
        """Any other method on an endpoint: 405 METHOD_NOT_ALLOWED, coded and with the right ``Allow``, instead of
        Starlette's English text naming the first route's methods only."""

        async def refuse(request: Request) -> Response:
            lang = normalize_language(request.headers.get("accept-language"), settings.language)
            refused = method_not_allowed(reason, lang)
            return http_error(refused, lang, {"Allow": allowed, **NO_STORE})

        return refuse

    refused_methods = ["PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]
    app = Starlette(
        routes=[
            Route("/", lambda request: RedirectResponse("/graphql")),
            Route("/graphql", query_endpoint.handle, methods=["POST"]),
            Route("/graphql", GraphQLGet(query_endpoint).handle, methods=["GET"]),
            Route("/graphql", other_methods("GET, HEAD, POST", "METHOD_GET_OR_POST_ONLY"), methods=refused_methods),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_page),
            Mount("/static", StaticFiles(directory=settings.web_dir, check_dir=False), name="static"),
            # Policy administration for security staff (admin/): the console, the admin API and its sessions.
            *console.routes,
            Mount(
                "/console/static",
                StaticFiles(directory=Path(console.__file__).with_name("static")),
                name="console-static",
            ),
            Route("/admin/session", session_post, methods=["POST"]),
            Route("/admin/session", session_delete, methods=["DELETE"]),
            # GET is refused there with a code (405): the admin API is for scripts that POST, and a console session
            # is a cookie, which a GET from another site would carry.
            Route("/admin/graphql", AdminEndpoint().handle, methods=["GET", "POST"]),
            Route("/admin/graphql", other_methods("POST", "METHOD_POST_ONLY"), methods=refused_methods),
        ],
        lifespan=lifespan,
        # Every body is bounded before it is read (policy documents for the admin API may be larger).
        middleware=[
            # Outermost: every request is counted, the refusals of the middleware below too.
            Middleware(metrics.RequestMetrics),
            *cors,
            Middleware(
                BodyLimit,
                language=settings.language,
                limit_for=lambda path: (
                    settings.max_admin_body_bytes if path == "/admin/graphql" else settings.max_body_bytes
                ),
            ),
        ],
    )
    app.state.runtime = runtime
    return app


def worker_app(settings: Settings) -> Starlette:
    """The app of one `govshare serve --workers N` process (uvicorn's app factory, called in the worker) with the
    settings the command resolved, which reach it pickled with uvicorn's configuration: no file or variable is read
    again, so every worker (and one started later in place of a dead one) runs with the same."""
    configure_logs(settings.log_format)  # the command's own configuration (cli.main), which a worker does not run
    try:
        return create_app(settings)
    except Exception:
        # As a failed start-up (uvicorn's exit status for it): the supervisor stops rather than start it again and again.
        log.exception("worker process %d could not build the app", os.getpid())
        raise SystemExit(STARTUP_FAILURE) from None
