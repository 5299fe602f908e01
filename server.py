"""The govshare server: wires authentication, the generated schema, the data path and the audit.

POST /graphql answers queries (``Authorization: Bearer <key>``, ``X-Purpose``, ``X-Operator``);
GET /graphql serves GraphiQL from local assets; /healthz says which catalog and policies are in force.
/console is the policy console for security staff, /admin/graphql its API for scripts (admin/).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Callable

import msgspec
import strawberry
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SpanExporter
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from strawberry.extensions import SchemaExtension

from admin import console
from admin.api import admin_graphql
from admin.auth import session_delete, session_post
from audit.checkpoints import Checkpointer
from audit.records import AuditWriter
from audit.tracing import make_tracer
from catalog import store as catalog_store
from catalog.conformance import check_sources, without_nonconforming
from catalog.model import Catalog
from connectors.graphql import load_credentials
from connectors.registry import Connectors
from govshare.bodies import BodyLimit
from govshare.config import Settings, load_settings
from govshare.errors import AuditError, AuthError, ConfigError
from govshare.i18n import message, normalize_language
from govshare.keys import Caller, authenticate, hash_key, platform_secret
from govshare.ratelimit import CostBudget, RateLimiter
from govshare.notify import PolicyNotifier
from govshare.platformdb import make_engine, read_versions
from migrations import ensure_current
from policies.engine import PolicyEngine, Unenforced
from policies.model import PolicySet
from policies.store import load_policy_set
from resolvers.context import RequestContext
from schema.builder import build_schema

log = logging.getLogger("govshare")
KEY_CACHE_SIZE = 10000


class OperationAttributes(SchemaExtension):
    """Names the operation on the request's span once it is parsed (no span per resolver)."""

    def on_execute(self):
        context = self.execution_context
        span = trace.get_current_span()
        span.set_attribute("graphql.operation.name", context.operation_name or "")
        if context.operation_type is not None:
            span.set_attribute("graphql.operation.type", context.operation_type.value)
        yield


class Runtime:
    """What the server holds between requests: the catalog, policies and schema in force, and the pools."""

    def __init__(self, settings: Settings, *, span_exporter: SpanExporter | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.settings = settings
        self.clock = clock
        # Signs the chains' heads every audit_checkpoint_records records or audit_checkpoint_seconds; refuses a
        # production key or checkpoint file under var/ (AuditKeyError) before anything starts.
        self.checkpoints = Checkpointer(settings)
        self.engine = make_engine(settings.platform_url)
        self.audit = AuditWriter(self.engine, on_written=self.checkpoints.counted)
        self.connectors = Connectors(timeout=settings.source_timeout_seconds, cache_url=settings.cache_url,
                                     breaker_failures=settings.breaker_failures,
                                     breaker_reset_seconds=settings.breaker_reset_seconds,
                                     pool_size=settings.source_pool_size,
                                     upstream_credentials=load_credentials(Path(settings.expand(settings.upstream_credentials))))
        self.tracer, self.tracer_provider = make_tracer(settings, span_exporter)
        self.pseudonym_secret = platform_secret(Path(settings.expand(settings.pseudonym_secret_file)),
                                                create=not settings.production)
        self.rate_limiter = RateLimiter(settings.rate_limit, settings.rate_limit_url) if settings.rate_limit else None
        self.cost_budget = CostBudget(settings.cost_budget, settings.rate_limit_url) if settings.cost_budget else None
        # Staff sign-ins (admin/auth.py), by client address and by user name.
        self.sign_in_limits = {kind: RateLimiter(limit, settings.rate_limit_url) for kind, limit in (
            ("address", settings.staff_sign_ins_per_address), ("user", settings.staff_sign_ins_per_user)) if limit}
        self.catalog = Catalog()
        self.policy = PolicyEngine(self.catalog, PolicySet())
        self.schema: strawberry.Schema = build_schema(self.catalog, settings, extensions=[OperationAttributes])
        self._checked_at = float("-inf")
        self._lock = asyncio.Lock()
        self.notifier = PolicyNotifier(settings.policy_notify_url)
        # Valid application keys seen since the last catalog or policy change (key digest -> caller). Revoking a
        # key bumps the policy version, which empties this in every process within refresh_seconds (at once
        # where announced). Unknown and revoked keys are never cached: they are looked up every time.
        self._callers: dict[str, Caller] = {}
        # How the last change made elsewhere came into force here: "notification" or "check" (the backstop).
        self.last_reload: dict | None = None

    async def start(self) -> None:
        # A database at another schema revision than this code is refused, untouched (migrations/).
        await ensure_current(self.engine, production=self.settings.production)
        await self.refresh(force=True)
        if self.catalog.version == 0:
            log.warning(message("CATALOG_NOT_LOADED", "en"))

    async def refresh(self, *, force: bool = False, cause: str = "check") -> None:
        """Pick up a catalog or policy change made by any process, checking at most every refresh_seconds."""
        if not force and time.monotonic() - self._checked_at < self.settings.refresh_seconds:
            return
        async with self._lock:
            if not force and time.monotonic() - self._checked_at < self.settings.refresh_seconds:
                return
            async with self.engine.connect() as conn:
                catalog_version, policy_version = await read_versions(conn)
                if (catalog_version, policy_version) != self.policy.version:
                    catalog = self.catalog
                    if catalog_version != self.catalog.version:
                        catalog = await catalog_store.current(conn) or Catalog()
                        catalog = without_nonconforming(catalog, await check_sources(catalog, self.settings))
                    policies = await load_policy_set(conn, silence_approves=self.settings.silence_approves)
                    policy = PolicyEngine(catalog, policies)
                    if catalog is not self.catalog:
                        self.schema = build_schema(catalog, self.settings, extensions=[OperationAttributes])
                        log.info("catalog version %s in force: %d published resources", catalog.version, len(catalog.published()))
                    self.catalog, self.policy = catalog, policy
                    self._callers = {}
                    self.last_reload = {"cause": cause, "policy_version": policies.version, "at": time.time()}
                    log.info("policy version %s in force (%s): %d rules", policies.version, cause, policy.rule_count)
            self._checked_at = time.monotonic()

    async def authenticate(self, authorization: str | None) -> Caller:
        digest = hash_key(authorization) if authorization else ""
        caller = self._callers.get(digest)
        if caller is None:
            async with self.engine.connect() as conn:
                caller = await authenticate(conn, authorization)
            if len(self._callers) >= KEY_CACHE_SIZE:
                self._callers.clear()
            self._callers[digest] = caller
        return caller

    async def changed(self) -> None:
        """This process changed grants, applications or policy rules: in force here now, and announced."""
        await self.refresh(force=True, cause="local")
        await self.notifier.publish(self.policy.policies.version)

    async def stop(self) -> None:
        await self.notifier.close()
        await self.audit.close()
        await self.connectors.close()
        await self.engine.dispose()
        self.tracer_provider.shutdown()


def _error_response(status: int, code: str, lang: str, headers: dict | None = None, extensions: dict | None = None,
                    **params) -> JSONResponse:
    text = message(code, lang, **params)
    extensions = {"code": code, "reason": text, **(extensions or {})}
    return JSONResponse({"errors": [{"message": text, "extensions": extensions}]}, status_code=status, headers=headers)


def _format_errors(result, lang: str) -> list[dict]:
    formatted = []
    for error in result.errors or []:
        entry = error.formatted
        extensions = entry.setdefault("extensions", {})
        if "code" not in extensions:
            if error.path is None:  # the document itself: syntax, validation, limits
                extensions["code"] = "GRAPHQL_INVALID"
            else:  # raised by no refusal of ours: say nothing of what went wrong (it is logged)
                entry["message"] = message("INTERNAL_ERROR", lang)
                extensions["code"] = "INTERNAL_ERROR"
        formatted.append(entry)
    return formatted


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


async def graphql_post(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    lang = normalize_language(request.headers.get("accept-language"), settings.language)

    body = await request.body()  # at most max_body_bytes: BodyLimit stops a longer one
    await runtime.refresh()  # first: a revoked key must not be answered from the cache of keys
    try:
        caller = await runtime.authenticate(request.headers.get("authorization"))
    except AuthError as exc:
        return _error_response(401, exc.code, lang, headers={"WWW-Authenticate": 'Bearer realm="govshare"'})
    # Requests per key, then the work (rows x items) already answered to it in this window.
    for limiter, code, params in ((runtime.rate_limiter, "RATE_LIMITED", {"limit": settings.rate_limit}),
                                  (runtime.cost_budget, "COST_BUDGET_EXCEEDED", {"budget": settings.cost_budget})):
        wait = await limiter.admit(caller.key_id) if limiter is not None else None
        if wait is not None:
            log.warning("application key %s (%s) refused: %s", caller.key_id, caller.department, code)
            return _error_response(429, code, lang, headers={"Retry-After": str(wait)}, seconds=wait, **params)
    invalid = _invalid_header(request)
    if invalid is not None:  # refused before anything is recorded
        header, rule = invalid
        return _error_response(400, "HEADER_INVALID", lang, extensions={"header": header}, header=header,
                               rule=message(rule, lang))
    try:
        payload = json.loads(body)
        if isinstance(payload, list):  # one operation per request: each is decided and recorded on its own
            return _error_response(400, "BATCH_NOT_SUPPORTED", lang)
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            raise ValueError("expected a JSON object with a 'query' string")
        variables = payload.get("variables")
        variables = {} if variables is None else variables
        if not isinstance(variables, dict):
            raise ValueError("'variables' must be an object")
    except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested deeper than the parser goes
        return _error_response(400, "BAD_REQUEST", lang, detail=str(exc))

    with runtime.tracer.start_as_current_span("graphql.operation") as span:
        ctx = RequestContext(
            caller=caller,
            purpose=request.headers.get("x-purpose") or None,
            operator=request.headers.get("x-operator") or None,
            lang=lang,
            request_id=str(uuid.uuid4()),
            trace_id=format(span.get_span_context().trace_id, "032x"),
            now=runtime.clock(),
            catalog=runtime.catalog,
            policy=runtime.policy if settings.enforce else Unenforced(runtime.policy),
            connectors=runtime.connectors,
            settings=settings,
            tracer=runtime.tracer,
            platform=runtime.engine,
            pseudonym_secret=runtime.pseudonym_secret,
        )
        span.set_attributes({"govshare.request_id": ctx.request_id, "govshare.department": caller.department,
                             "govshare.application": caller.application, "govshare.purpose": ctx.purpose or ""})
        result = await runtime.schema.execute(
            payload["query"], variable_values=variables, context_value=ctx,
            operation_name=payload.get("operationName"),
        )
        if runtime.cost_budget is not None:  # what was read is spent, whether or not it could be sent
            await runtime.cost_budget.charge(caller.key_id, ctx.cost)
        try:
            # The records are written before a single value is sent; if they cannot be, nothing is sent.
            if settings.enforce:
                await runtime.audit.write(ctx.records)
        except AuditError as exc:
            return _error_response(500, exc.code, lang)
        if ctx.changed:  # an application or grant changed: the next request, in any process, must see it
            await runtime.changed()
    response: dict = {"data": result.data}
    errors = _format_errors(result, lang) + ctx.item_errors
    if errors:
        response["errors"] = errors
    # msgspec encodes a large answer several times faster than the standard library (same JSON).
    return Response(msgspec.json.encode(response), media_type="application/json", headers={"X-Request-Id": ctx.request_id})


async def graphql_get(request: Request) -> Response:
    settings: Settings = request.app.state.runtime.settings
    if "text/html" in request.headers.get("accept", ""):
        return FileResponse(settings.web_dir / "graphiql.html", media_type="text/html; charset=utf-8")
    lang = normalize_language(request.headers.get("accept-language"), settings.language)
    return _error_response(405, "METHOD_NOT_ALLOWED", lang, headers={"Allow": "POST"})


async def healthz(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    await runtime.refresh()
    return JSONResponse({"status": "ok", "catalog_version": runtime.catalog.version,
                         "policy_version": runtime.policy.policies.version, "last_reload": runtime.last_reload,
                         "notifications": {"connected": runtime.notifier.connected, "received": runtime.notifier.received},
                         "published_resources": len(runtime.catalog.published())})


def create_app(settings: Settings | None = None, **runtime_options) -> Starlette:
    settings = settings or load_settings()
    if not settings.enforce:
        if settings.production:
            raise ConfigError("enforce = False is for the bench only; a production server refuses it")
        log.warning("ENFORCEMENT IS OFF: no decisions, no masks, no access records (bench only)")
    runtime = Runtime(settings, **runtime_options)

    async def keep_fresh() -> None:
        # Changes made by other processes come into force without waiting for a request.
        while True:
            await asyncio.sleep(settings.refresh_seconds)
            try:
                await runtime.refresh()
            except Exception:  # a database hiccup must not end the loop; requests refresh too
                log.exception("refreshing the catalog and policies failed")

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
        await runtime.start()
        tasks = [asyncio.create_task(keep_fresh())] if settings.refresh_seconds > 0 else []
        if settings.policy_notify_url:
            tasks.append(asyncio.create_task(
                runtime.notifier.listen(lambda: runtime.refresh(force=True, cause="notification"))))
        if settings.audit_checkpoint_seconds > 0 or settings.audit_checkpoint_records > 0:
            tasks.append(asyncio.create_task(keep_checkpoints()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            if settings.audit_checkpoint_seconds > 0 or settings.audit_checkpoint_records > 0:
                try:  # a server that stops leaves no record of its own uncovered
                    async with runtime.engine.connect() as conn:
                        await runtime.checkpoints.write(conn)
                except Exception:
                    log.exception("writing the audit checkpoint to %s failed", runtime.checkpoints.path)
            await runtime.stop()

    app = Starlette(
        routes=[
            Route("/", lambda request: RedirectResponse("/graphql")),
            Route("/graphql", graphql_post, methods=["POST"]),
            Route("/graphql", graphql_get, methods=["GET"]),
            Route("/healthz", healthz),
            Mount("/static", StaticFiles(directory=settings.web_dir, check_dir=False), name="static"),
            # Policy administration for security staff (admin/): the console, the admin API and its sessions.
            *console.routes,
            Mount("/console/static", StaticFiles(directory=Path(console.__file__).with_name("static")), name="console-static"),
            Route("/admin/session", session_post, methods=["POST"]),
            Route("/admin/session", session_delete, methods=["DELETE"]),
            Route("/admin/graphql", admin_graphql, methods=["POST"]),
        ],
        lifespan=lifespan,
        # Every body is bounded before it is read (policy documents for the admin API may be larger).
        middleware=[Middleware(BodyLimit, language=settings.language, limit_for=lambda path: (
            settings.max_admin_body_bytes if path == "/admin/graphql" else settings.max_body_bytes))],
    )
    app.state.runtime = runtime
    return app
