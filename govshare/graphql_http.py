"""GraphQL over HTTP: the one handler behind /graphql (server.py) and POST /admin/graphql (admin/api.py).

It follows the GraphQL-over-HTTP specification (https://graphql.github.io/graphql-over-http/):

- a POST carries one operation as ``application/json`` (any other or no ``Content-Type``: 415
  UNSUPPORTED_MEDIA_TYPE), ``{"query", "variables", "operationName", "extensions"}`` (``query`` a string, the
  others null or of their type: BAD_REQUEST; a list, a batch, BATCH_NOT_SUPPORTED);
- a GET (where the endpoint allows it) carries the same parameters in the URL (``variables`` and ``extensions``
  JSON-encoded) and runs queries only: a mutation is 405 METHOD_NOT_ALLOWED with ``Allow: POST``;
- the answer is ``application/graphql-response+json`` when the client's ``Accept`` prefers it, else
  ``application/json`` (the default, also for no ``Accept``, ``*/*`` or an ``Accept`` naming neither). A request
  that never executes (unreadable, refused, a document that does not parse or validate, variables of the wrong
  type, an operation that cannot be chosen) is answered without ``data``: with its 4xx (or 5xx) status, except
  that the GraphQL request errors (parse, validation, variables, the operation's choice) are HTTP 200 under
  ``application/json``, as the specification's legacy rules ask;
- several operations need ``operationName`` (OPERATION_NAME_REQUIRED), and it must name one of them
  (OPERATION_NOT_FOUND);
- every answer carries ``Cache-Control: no-store`` (it holds personal data) and the request's id in
  ``X-Request-Id``.

The handler reads the body (bounded before it is read, govshare.bodies), lets the endpoint say who is asking, reads
the operation, lets the endpoint admit it (``admit``), runs it with the endpoint's schema and context value, and
answers ``{"data", "errors"}`` encoded by msgspec. Every error that is not a refusal of ours is masked:
INTERNAL_ERROR, logged, never its text; nothing escapes the handler but govshare.bodies' own BODY_TOO_LARGE (an
exception escaping an ASGI application is answered by Starlette, 500 text/plain, and re-raised, and uvicorn then
closes the connection: the client's next request on it was reset).

Errors the resolvers report beside the executor's (one per denied data item) name the path of their field
without list indices; before the answer is sent each such path is anchored in the data (``anchor``): at the
first element of each list that has the field, or at the nearest field there is (an empty list, a null), so
that every ``path`` is a path of the response.

An endpoint supplies only its language, its authentication and its execution (schema and context value, and what
must happen before the answer may leave, such as the access records). May import: nothing of ours but govshare.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import strawberry
from graphql import GraphQLError, OperationDefinitionNode
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from govshare import metrics
from govshare.errors import GovshareError, error_entry, http_error, internal_error
from govshare.i18n import Phrase, message, normalize_language

log = logging.getLogger("govshare.graphql_http")

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
HTML = "text/html"
# Headers of every GraphQL answer: nothing of it may be kept by a browser or a proxy.
NO_STORE = {"Cache-Control": "no-store"}


# ---------------------------------------------------------------------------------------------------------------
# Media types


def _media_ranges(accept: str) -> list[tuple[str, float]]:
    """The media ranges of an ``Accept`` header with their q-values (RFC 9110 §12.5.1); a malformed q counts as 0."""
    ranges = []
    for part in accept.split(","):
        media, *params = part.split(";")
        media = media.strip().lower()
        if "/" not in media:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
                q = q if 0.0 <= q <= 1.0 else 0.0
        ranges.append((media, q))
    return ranges


def _quality(ranges: list[tuple[str, float]], media_type: str) -> tuple[float, int]:
    """(q, specificity) of ``media_type`` under ``ranges``: the most specific range that matches decides."""
    kind = media_type.split("/")[0]
    best: tuple[float, int] = (0.0, -1)
    for media, q in ranges:
        specificity = 2 if media == media_type else 1 if media == f"{kind}/*" else 0 if media == "*/*" else -1
        if specificity > best[1]:
            best = (q, specificity)
    return best


def response_media_type(accept: str | None) -> str:
    """The media type of the answer: ``application/graphql-response+json`` when ``accept`` prefers it (a higher
    q-value; on a tie, when it names it and application/json only through a wildcard or as well), else
    ``application/json``: for no ``Accept``, for ``*/*`` and for an ``Accept`` that accepts neither (the
    specification lets a server disregard it then rather than answer 406)."""
    if not accept:
        return JSON
    ranges = _media_ranges(accept)
    graphql, plain = _quality(ranges, GRAPHQL_RESPONSE), _quality(ranges, JSON)
    if graphql[0] > 0 and (graphql[0] > plain[0] or (graphql[0] == plain[0] and graphql[1] == 2)):
        return GRAPHQL_RESPONSE
    return JSON


def prefers_html(accept: str | None) -> bool:
    """The client (a browser opening the address) prefers a page to a GraphQL answer."""
    if not accept:
        return False
    ranges = _media_ranges(accept)
    html = _quality(ranges, HTML)
    return html[0] > 0 and html > max(_quality(ranges, GRAPHQL_RESPONSE), _quality(ranges, JSON))


def _content_type_ok(content_type: str | None) -> bool:
    """A POST body's ``Content-Type`` is application/json, in UTF-8 (the default) if a charset is named."""
    if not content_type:
        return False
    media, *params = content_type.split(";")
    if media.strip().lower() != JSON:
        return False
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


# ---------------------------------------------------------------------------------------------------------------
# The operation a request carries


@dataclass(frozen=True)
class Operation:
    """One GraphQL operation as a request carries it."""

    query: str | None  # None: only a document id was sent (``admit`` resolves it or refuses)
    variables: dict[str, Any]
    operation_name: str | None
    extensions: dict[str, Any] = field(default_factory=dict)
    # GET: queries only (a mutation must not run on a request a link or an image can make).
    read_only: bool = False
    # A persisted document's id as sent (``documentId``, or Apollo's ``extensions.persistedQuery.sha256Hash``).
    document_id: str | None = None


def _not_json(exc: Exception, name: str | None = None) -> Phrase:
    """What BAD_REQUEST says of JSON that cannot be read (the body, or the GET parameter ``name``): where the parser
    stopped (line, column), in the caller's language; text not in UTF-8 or nested deeper than the parser goes has no
    such place."""
    if isinstance(exc, json.JSONDecodeError):
        located = "REQUEST_BODY_NOT_JSON" if name is None else "REQUEST_PARAM_NOT_JSON"
        return Phrase(located, name=name, line=exc.lineno, column=exc.colno)
    return Phrase("REQUEST_BODY_UNREADABLE" if name is None else "REQUEST_PARAM_UNREADABLE", name=name)


def _operation(payload: Mapping[str, Any], *, read_only: bool = False) -> Operation:
    """The operation of the request's parameters, each checked for its type (BAD_REQUEST naming the parameter).
    ``query`` may be left out where a document id names the document (``admit`` resolves it or refuses)."""
    document_id = document_id_of(payload)
    query = payload.get("query")
    if query is not None or document_id is None:  # without a document id, the text is the document
        if not isinstance(query, str):
            raise GovshareError("BAD_REQUEST", detail=Phrase("REQUEST_QUERY_MISSING"))
        if not query.strip():
            raise GovshareError("BAD_REQUEST", detail=Phrase("REQUEST_QUERY_EMPTY"))
    operation_name = payload.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise GovshareError("BAD_REQUEST", detail=Phrase("REQUEST_NOT_STRING", name="operationName"))
    maps = {}
    for name in ("variables", "extensions"):
        value = payload.get(name)
        value = {} if value is None else value
        if not isinstance(value, dict):
            raise GovshareError("BAD_REQUEST", detail=Phrase("REQUEST_NOT_OBJECT", name=name))
        maps[name] = value
    return Operation(query, maps["variables"], operation_name or None, maps["extensions"], read_only, document_id)


def read_operation(body: bytes) -> Operation:
    """The operation a POST body carries: BAD_REQUEST when it is not a JSON object with a ``query`` string,
    ``variables`` and ``extensions`` (when sent, and not null) objects and ``operationName`` a string,
    BATCH_NOT_SUPPORTED for a list (each operation is decided and recorded on its own)."""
    if not body.strip():
        raise GovshareError("BAD_REQUEST", detail=Phrase("REQUEST_BODY_EMPTY"))
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested deeper than the parser goes
        raise GovshareError("BAD_REQUEST", detail=_not_json(exc)) from None
    if isinstance(payload, list):
        raise GovshareError("BATCH_NOT_SUPPORTED")
    if not isinstance(payload, dict):
        raise GovshareError("BAD_REQUEST", detail=Phrase("REQUEST_NOT_JSON_OBJECT"))
    return _operation(payload)


def document_id_of(params: Mapping[str, Any]) -> str | None:
    """The persisted document a request names, in either common form: ``documentId`` (GraphQL over HTTP's
    persisted documents) or ``extensions.persistedQuery.sha256Hash`` (Apollo); BAD_REQUEST when the forms are
    malformed or name two different documents. What the id means is the endpoint's (``admit``)."""
    named = []
    if "documentId" in params and params["documentId"] is not None:
        named.append(params["documentId"])
    extensions = params.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise GovshareError("BAD_REQUEST", detail=Phrase("REQUEST_NOT_OBJECT", name="extensions"))
    persisted = (extensions or {}).get("persistedQuery")
    if persisted is not None:
        if not isinstance(persisted, dict) or "sha256Hash" not in persisted:
            raise GovshareError("BAD_REQUEST", detail=Phrase("REQUEST_PERSISTED_NO_HASH"))
        named.append(persisted["sha256Hash"])
    if any(not isinstance(name, str) for name in named):
        raise GovshareError("BAD_REQUEST", detail=Phrase("REQUEST_DOCUMENT_ID_NOT_STRING"))
    if len({name.removeprefix("sha256:").lower() for name in named}) > 1:
        raise GovshareError("BAD_REQUEST", detail=Phrase("REQUEST_TWO_DOCUMENTS"))
    return named[0] if named else None


def read_get_operation(params: list[tuple[str, str]]) -> Operation:
    """The operation a GET's URL carries (``query``, ``operationName``; ``variables`` and ``extensions`` as JSON
    text), each parameter at most once; queries only."""
    payload: dict[str, Any] = {}
    for name, value in params:
        if name not in ("query", "variables", "operationName", "extensions", "documentId"):
            continue
        if name in payload:
            raise GovshareError("BAD_REQUEST", detail=Phrase("REQUEST_PARAM_REPEATED", name=name))
        if name in ("variables", "extensions"):
            try:
                payload[name] = json.loads(value) if value else None
            except (ValueError, RecursionError) as exc:
                raise GovshareError("BAD_REQUEST", detail=_not_json(exc, name)) from None
        else:
            payload[name] = value
    return _operation(payload, read_only=True)


class OperationChoice(SchemaExtension):
    """A document of several operations needs ``operationName`` (strawberry would run the first one): refused with
    OPERATION_NAME_REQUIRED before it is validated."""

    def on_validate(self):
        context = self.execution_context
        document = context.graphql_document
        # Last of the extensions: a document an earlier one refused (production's bound on what it reaches) stays
        # refused as that, whatever its operations.
        if document is not None and not context.pre_execution_errors and context._provided_operation_name is None:
            count = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
            if count > 1:
                raise GovshareError("OPERATION_NAME_REQUIRED", count=count)
        yield


# ---------------------------------------------------------------------------------------------------------------
# Error paths


def anchor(path: list[Any], data: Any) -> list[Any]:
    """``path`` (response keys, list indices left out) as a path of ``data``: at each list, the first element in
    which the rest of the path goes furthest (all the way where one has it), and where the data ends (an empty
    list, a null, a field that is not there) at the last field it reaches. Indices already in ``path`` are kept."""
    found, _ = _walk(list(path), data)
    return found or list(path[:1])


def document_position(path: Any, data: Any) -> tuple[int, ...]:
    """Where ``path`` (an anchored path) is in ``data``: at each step, the place of its response key among its
    object's keys, or its list index; errors sorted by it come in the answer's own order."""
    position: list[int] = []
    value = data
    for step in path:
        if isinstance(value, dict) and step in value:
            position.append(list(value).index(step))
            value = value[step]
        elif isinstance(value, list) and isinstance(step, int) and 0 <= step < len(value):
            position.append(step)
            value = value[step]
        else:
            break
    return tuple(position)


def _walk(rest: list[Any], value: Any) -> tuple[list[Any], bool]:
    """(the longest prefix of ``rest`` that ``value`` has, with the list indices chosen; whether it is all of it)."""
    if not rest:
        return [], True
    if isinstance(value, list):
        if isinstance(rest[0], int):
            if 0 <= rest[0] < len(value):
                below, whole = _walk(rest[1:], value[rest[0]])
                return [rest[0], *below], whole
            return [], False
        best: list[Any] | None = None
        for index, element in enumerate(value):
            below, whole = _walk(rest, element)
            if whole:
                return [index, *below], True
            if below and (best is None or len(below) + 1 > len(best)):
                best = [index, *below]
        return best or [], False
    if isinstance(value, dict) and rest[0] in value:
        below, whole = _walk(rest[1:], value[rest[0]])
        return [rest[0], *below], whole
    return [], False


# ---------------------------------------------------------------------------------------------------------------
# The handler


@dataclass
class Execution:
    """What an endpoint runs one operation with."""

    schema: strawberry.Schema
    context: Any
    # Errors the resolvers reported beside the executor's (one per denied data item); their paths are anchored in
    # the data before they are sent (``anchor``).
    errors: list[dict[str, Any]] = field(default_factory=list)
    # The answer's top-level ``extensions``: what the resolvers put there (``disputes``) and what the endpoint adds by
    # the time the execution is left (the query endpoint's ``freshness`` of the resources the operation touched). Sent
    # only with an executed operation, and only when not empty.
    extensions: dict[str, Any] = field(default_factory=dict)


class Schema(strawberry.Schema):
    """A schema whose errors are left to the handler: it masks and logs the unexpected ones (never with the query
    text, which may hold ID numbers); refusals and malformed documents are not logged at all. A document of several
    operations needs ``operationName`` (OperationChoice)."""

    def process_errors(self, errors, execution_context=None) -> None:
        pass

    def get_extensions(self, sync: bool = False) -> list[SchemaExtension]:
        return [*super().get_extensions(sync), OperationChoice()]


def masked(error: GraphQLError, lang: str) -> dict[str, Any]:
    """The error as the caller may see it: a refusal of ours as it is, a fault in the document GRAPHQL_INVALID,
    anything else INTERNAL_ERROR without a word of its own text (logged here, with its traceback)."""
    entry = error.formatted
    extensions = entry.get("extensions") or {}
    if "code" in extensions:
        return entry
    original = error.original_error
    if isinstance(original, GovshareError):
        return {**entry, **error_entry(original, lang)}
    if error.path is None and (original is None or isinstance(original, GraphQLError)):
        # the document itself or its variables: syntax, validation, limits, values of the wrong type. The message is
        # graphql-core's own (English, naming the fault exactly); ``reason`` says what it is in the caller's language.
        reason = message("GRAPHQL_INVALID", lang)
        return {**entry, "extensions": {**extensions, "code": "GRAPHQL_INVALID", "reason": reason}}
    log.error("unexpected error at %s", "/".join(map(str, error.path or ())) or "(no path)", exc_info=original)
    return {**entry, **error_entry(internal_error(), lang)}


class RequestErrors(Exception):
    """A GraphQL request error: the operation never executed (it could not be chosen); answered without data."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("request errors")
        self.errors = errors


class GraphQLEndpoint:
    """One endpoint for GraphQL; ``handle`` is the Starlette endpoint (POST, and GET where ``allows_get``).
    Subclasses say the language, who is asking (``authenticate``, raising a GovshareError with its HTTP status to
    refuse), whether the operation may run (``admit``) and what it runs with (``execution``)."""

    # GET runs queries (GraphQL over HTTP); an endpoint whose callers are scripts that POST may refuse it.
    allows_get = True

    def language(self, request: Request) -> str:
        raise NotImplementedError

    async def authenticate(self, request: Request, lang: str) -> Any:
        raise NotImplementedError

    def execution(
        self, request: Request, principal: Any, lang: str, request_id: str
    ) -> contextlib.AbstractAsyncContextManager[Execution]:
        """Entered before the operation runs and left after it; leaving may still refuse the answer (raise)."""
        raise NotImplementedError

    async def admit(self, principal: Any, operation: Operation, lang: str) -> Operation:
        """The operation to run: refuses one the principal may not send (the query endpoint's trusted documents),
        and resolves a document id into its text. By default a document id means nothing: a request must carry its
        ``query`` (BAD_REQUEST otherwise)."""
        if operation.query is None:
            raise GovshareError("BAD_REQUEST", detail=Phrase("REQUEST_NOT_JSON_OBJECT"))
        return operation

    async def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        headers = {"X-Request-Id": request_id, **NO_STORE}
        lang = "zh-CN"
        media_type = JSON
        # At most the path's limit: govshare.bodies answers a longer one BODY_TOO_LARGE (its exception must reach it).
        body = await request.body()
        try:
            lang = self.language(request)
            media_type = response_media_type(request.headers.get("accept"))
            return await self._answer(request, body, request_id, headers, lang, media_type)
        except GovshareError as refusal:
            return http_error(refusal, lang, headers, media_type=media_type)
        except Exception:  # none of ours: nothing of it is told (the body may name a table, a host, a secret)
            log.exception("answering %s %s failed", request.method, request.url.path)
            return http_error(internal_error(), lang, headers, media_type=media_type)

    async def _answer(
        self, request: Request, body: bytes, request_id: str, headers: dict[str, str], lang: str, media_type: str
    ) -> Response:
        read_only = request.method in ("GET", "HEAD")  # Starlette routes HEAD with GET
        if read_only:
            if not self.allows_get:
                raise method_not_allowed("METHOD_POST_ONLY", lang)
        elif not _content_type_ok(request.headers.get("content-type")):
            raise GovshareError("UNSUPPORTED_MEDIA_TYPE", http_status=415, headers={"Accept-Post": JSON})
        principal = await self.authenticate(request, lang)
        operation = read_get_operation(request.query_params.multi_items()) if read_only else read_operation(body)
        operation = await self.admit(principal, operation, lang)
        try:
            async with self.execution(request, principal, lang, request_id) as execution:
                result = await self._execute(execution, operation, lang)
                # The answer the records describe: its paths anchored before the execution's end writes them.
                errors = [masked(error, lang) for error in result.errors or ()]
                executed = result.data is not None or any(e.get("path") for e in errors)
                for entry in execution.errors:
                    if "path" in entry:
                        entry["path"] = anchor(entry["path"], result.data)
                # In the answer's order, not in the order concurrent hops happened to end (which varies run to run).
                execution.errors.sort(key=lambda entry: document_position(entry.get("path") or (), result.data))
                errors += execution.errors
        except RequestErrors as failure:
            errors, executed, data, extensions = failure.errors, False, None, {}
        else:
            data, extensions = result.data, execution.extensions
        response: dict[str, Any] = {}
        if executed:
            response["data"] = data
        if errors:
            response["errors"] = errors
        if executed and extensions:
            response["extensions"] = extensions
        if not executed:  # refused as a whole, by its first error's code
            metrics.request_outcome("refused", str(errors[0].get("extensions", {}).get("code", "")) if errors else "")
        elif errors:
            metrics.request_outcome("partial")
        # A request that never executed: 400 under application/graphql-response+json, 200 under application/json
        # (the specification's rules for clients of before it).
        status = 200 if executed or media_type == JSON else 400
        # msgspec encodes a large answer several times faster than the standard library (same JSON).
        return Response(msgspec.json.encode(response), status_code=status, media_type=media_type, headers=headers)

    async def _execute(self, execution: Execution, operation: Operation, lang: str):
        try:
            return await execution.schema.execute(
                operation.query,
                variable_values=operation.variables,
                context_value=execution.context,
                operation_name=operation.operation_name,
                allowed_operation_types=(OperationType.QUERY,) if operation.read_only else None,
            )
        except InvalidOperationTypeError:  # a mutation over GET: nothing ran
            raise method_not_allowed("METHOD_MUTATION_POST_ONLY", lang) from None
        except CannotGetOperationTypeError:  # operationName names no operation of the document
            refusal = GovshareError("OPERATION_NOT_FOUND", name=operation.operation_name or "")
            raise RequestErrors([error_entry(refusal, lang)]) from None


def method_not_allowed(reason: str, lang: str) -> GovshareError:
    """405 METHOD_NOT_ALLOWED with ``Allow: POST``; ``reason`` the key of the message saying why."""
    return GovshareError("METHOD_NOT_ALLOWED", http_status=405, headers={"Allow": "POST"}, detail=message(reason, lang))


@contextlib.asynccontextmanager
async def simple_execution(schema: strawberry.Schema, context: Any) -> AsyncIterator[Execution]:
    """An execution with nothing to do before or after the operation."""
    yield Execution(schema, context)


# ---------------------------------------------------------------------------------------------------------------
# Browser applications of other origins (CORS)

# What a browser application sends beside the body: the key, the purpose, the operator, the body's type, the language.
CORS_HEADERS = ("Authorization", "X-Purpose", "X-Operator", "Content-Type", "Accept", "Accept-Language")
# What it may read of an answer beside the body.
CORS_EXPOSED = ("X-Request-Id", "Retry-After")


class BrowserOrigins(CORSMiddleware):
    """CORS for ``paths`` only (the query endpoint; never the console or the admin API, whose sessions are cookies),
    for the listed origins only: Starlette's middleware, except that an origin not listed gets no CORS header at all
    (its preflight is 403 with ``Vary`` alone), and nothing is ever allowed with credentials (the key travels in
    ``Authorization``, which a page of another origin can only send after a preflight that names its origin)."""

    def __init__(
        self, app, *, origins: Iterable[str], paths: Iterable[str], max_age: int, language: str = "zh-CN"
    ) -> None:
        super().__init__(
            app,
            allow_origins=tuple(origins),
            allow_methods=("GET", "POST"),
            allow_headers=CORS_HEADERS,
            allow_credentials=False,
            expose_headers=CORS_EXPOSED,
            max_age=max_age,
        )
        self.paths = frozenset(paths)
        self.language = language

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def preflight_response(self, request_headers: Headers) -> Response:
        """A refused preflight is a coded JSON error like every other refusal (Starlette's is English text):
        CORS_ORIGIN_NOT_ALLOWED (403, no CORS header), or CORS_PREFLIGHT_REFUSED (400: a method or header this
        endpoint does not take, with what it does take)."""
        lang = normalize_language(request_headers.get("accept-language"), self.language)
        if not self.is_allowed_origin(request_headers["origin"]):
            refused = GovshareError("CORS_ORIGIN_NOT_ALLOWED", http_status=403)
            return http_error(refused, lang, {"Vary": "Origin"})
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        refused = GovshareError(
            "CORS_PREFLIGHT_REFUSED",
            allowed_methods=", ".join(sorted(self.allow_methods)),
            allowed_headers=", ".join(CORS_HEADERS),
        )
        kept = {k: v for k, v in response.headers.items() if k.startswith("access-control-") or k == "vary"}
        return http_error(refused, lang, kept)

    async def send(self, message, send, request_headers: Headers) -> None:
        origin = request_headers.get("origin")
        if message["type"] == "http.response.start" and origin is not None and not self.is_allowed_origin(origin):
            message.setdefault("headers", [])
            headers = MutableHeaders(scope=message)
            headers["Vary"] = ", ".join([*headers.getlist("Vary"), "Origin"])
            await send(message)
            return
        await super().send(message, send, request_headers)
