"""GraphQL over HTTP: the one handler behind POST /graphql (server.py) and POST /admin/graphql (admin/api.py).

The handler reads the body (bounded before it is read, govshare.bodies), lets the endpoint say who is asking,
reads one operation from the body (a JSON object with a ``query`` string, ``variables`` an object; batches
refused), runs it with the endpoint's schema and context value, and answers ``{"data", "errors"}`` encoded by
msgspec. Every error that is not a refusal of ours is masked: INTERNAL_ERROR, logged, never its text. Every
answer carries the request's id in ``X-Request-Id``.

An endpoint supplies only its language, its authentication and its execution (schema and context value, and what
must happen before the answer may leave, such as the access records). May import: nothing of ours but govshare.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import strawberry
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response

from govshare.errors import GovshareError, error_entry, http_error, internal_error

log = logging.getLogger("govshare.graphql_http")


@dataclass(frozen=True)
class Operation:
    """One GraphQL operation as a request carries it."""

    query: str | None  # None: only a document id was sent (``admit`` resolves it or refuses)
    variables: dict[str, Any]
    operation_name: str | None
    # A persisted document's id as sent (``documentId``, or Apollo's ``extensions.persistedQuery.sha256Hash``).
    document_id: str | None = None


def read_operation(body: bytes) -> Operation:
    """The operation a POST body carries: BAD_REQUEST when it is not a JSON object with a ``query`` string and
    ``variables`` (when sent) an object, BATCH_NOT_SUPPORTED for a list (each operation is decided and recorded on
    its own)."""
    # GraphQL over HTTP's media types, its GET form and the checks on operationName belong here (issue 13).
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested deeper than the parser goes
        raise GovshareError("BAD_REQUEST", detail=str(exc)) from None
    if isinstance(payload, list):
        raise GovshareError("BATCH_NOT_SUPPORTED")
    if not isinstance(payload, dict):
        raise GovshareError("BAD_REQUEST", detail="expected a JSON object with a 'query' string")
    document_id = document_id_of(payload)
    query = payload.get("query")
    if not isinstance(query, str) and (query is not None or document_id is None):
        raise GovshareError("BAD_REQUEST", detail="expected a JSON object with a 'query' string")
    variables = payload.get("variables")
    variables = {} if variables is None else variables
    if not isinstance(variables, dict):
        raise GovshareError("BAD_REQUEST", detail="'variables' must be an object")
    return Operation(query, variables, payload.get("operationName"), document_id)


def document_id_of(params: dict[str, Any]) -> str | None:
    """The persisted document a request names, in either common form: ``documentId`` (GraphQL over HTTP's
    persisted documents) or ``extensions.persistedQuery.sha256Hash`` (Apollo); BAD_REQUEST when the forms are
    malformed or name two different documents. What the id means is the endpoint's (``admit``)."""
    named = []
    if "documentId" in params and params["documentId"] is not None:
        named.append(params["documentId"])
    extensions = params.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise GovshareError("BAD_REQUEST", detail="'extensions' must be an object")
    persisted = (extensions or {}).get("persistedQuery")
    if persisted is not None:
        if not isinstance(persisted, dict) or "sha256Hash" not in persisted:
            raise GovshareError("BAD_REQUEST", detail="'extensions.persistedQuery' needs a 'sha256Hash'")
        named.append(persisted["sha256Hash"])
    if any(not isinstance(name, str) for name in named):
        raise GovshareError("BAD_REQUEST", detail="a document id must be a string")
    if len({name.removeprefix("sha256:").lower() for name in named}) > 1:
        raise GovshareError("BAD_REQUEST", detail="'documentId' and 'extensions.persistedQuery' name two documents")
    return named[0] if named else None


@dataclass
class Execution:
    """What an endpoint runs one operation with."""

    schema: strawberry.Schema
    context: Any
    # Errors the resolvers reported beside the executor's (one per denied data item); sent as they are.
    errors: list[dict[str, Any]] = field(default_factory=list)


class Schema(strawberry.Schema):
    """A schema whose errors are left to the handler: it masks and logs the unexpected ones (never with the query
    text, which may hold ID numbers); refusals and malformed documents are not logged at all."""

    def process_errors(self, errors, execution_context=None) -> None:
        pass


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
        # the document itself or its variables: syntax, validation, limits, values of the wrong type
        return {**entry, "extensions": {**extensions, "code": "GRAPHQL_INVALID"}}
    log.error("unexpected error at %s", "/".join(map(str, error.path or ())) or "(no path)", exc_info=original)
    return {**entry, **error_entry(internal_error(), lang)}


class GraphQLEndpoint:
    """One POST endpoint for GraphQL; ``handle`` is the Starlette endpoint. Subclasses say the language, who is
    asking (``authenticate``, raising a GovshareError with its HTTP status to refuse) and what the operation runs
    with (``execution``)."""

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
            raise GovshareError("BAD_REQUEST", detail="expected a JSON object with a 'query' string")
        return operation

    async def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        headers = {"X-Request-Id": request_id}
        lang = self.language(request)
        body = await request.body()  # at most the path's limit: govshare.bodies answers a longer one BODY_TOO_LARGE
        try:
            principal = await self.authenticate(request, lang)
            operation = read_operation(body)
            operation = await self.admit(principal, operation, lang)
            async with self.execution(request, principal, lang, request_id) as execution:
                result = await execution.schema.execute(
                    operation.query,
                    variable_values=operation.variables,
                    context_value=execution.context,
                    operation_name=operation.operation_name,
                )
        except GovshareError as refusal:
            return http_error(refusal, lang, headers)
        except Exception:  # none of ours: nothing of it is told (the body may name a table, a host, a secret)
            log.exception("answering %s %s failed", request.method, request.url.path)
            return http_error(internal_error(), lang, headers)
        response: dict[str, Any] = {"data": result.data}
        errors = [masked(error, lang) for error in result.errors or ()] + execution.errors
        if errors:
            response["errors"] = errors
        # msgspec encodes a large answer several times faster than the standard library (same JSON).
        return Response(msgspec.json.encode(response), media_type="application/json", headers=headers)


@contextlib.asynccontextmanager
async def simple_execution(schema: strawberry.Schema, context: Any) -> AsyncIterator[Execution]:
    """An execution with nothing to do before or after the operation."""
    yield Execution(schema, context)
