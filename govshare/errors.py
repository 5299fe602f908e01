"""Error families, each with stable machine-readable codes (English identifiers), and the one way a refusal
reaches a caller: ``error_entry`` (a GraphQL error's ``message`` and ``extensions``), ``graphql_error`` (the
same, raised by a resolver or reported by a validation rule) and ``http_error`` (the same as a whole HTTP
answer: ``{"errors": [entry]}`` with the refusal's status and headers).

The human message is rendered per language by ``govshare.i18n``; the code never changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from graphql import GraphQLError
from starlette.responses import Response

from govshare import metrics
from govshare.i18n import message


class ConfigError(Exception):
    """A setting that cannot be used. For operators; English, or, where it carries a ``code`` (a stable English
    identifier with ``params``), in either language through ``govshare.i18n`` (``str()`` is the English text)."""

    def __init__(self, text: str = "", *, code: str | None = None, **params: object) -> None:
        self.code, self.params = code, params
        if code is not None and not text:
            from govshare.i18n import message

            text = message(code, "en", **params)
        super().__init__(text)

    def text(self, lang: str) -> str:
        """The message in ``lang`` (zh-CN or en), prefixed by its code where it has one."""
        if self.code is None:
            return str(self)
        from govshare.i18n import message

        return f"[{self.code}] {message(self.code, lang, **self.params)}"


class GovshareError(Exception):
    """A refusal or failure a caller sees: a stable ``code``, the parameters of its message, the HTTP status when it
    answers a whole request (``http_status``, by family), the HTTP headers it needs then (``Retry-After``, ...)
    and further members of the error's ``extensions`` beside ``code`` and ``reason``."""

    http_status = 400

    def __init__(
        self,
        code: str,
        *,
        http_status: int | None = None,
        headers: dict[str, str] | None = None,
        extensions: dict[str, Any] | None = None,
        **params: object,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.params = params
        if http_status is not None:
            self.http_status = http_status
        self.headers = headers or {}
        self.extensions = extensions or {}

    @classmethod
    def of(cls, code: str, params: Mapping[str, object]) -> GovshareError:
        """The refusal ``code`` with a message's parameters computed elsewhere (a problem's ``params()``)."""
        error = cls(code)
        error.params = dict(params)
        return error

    def details(self, lang: str) -> dict[str, Any]:
        """The members of ``extensions`` beside ``code`` and ``reason`` (a refusal with problems lists them)."""
        return dict(self.extensions)

    def __str__(self) -> str:  # English text for logs and the CLI's default
        return message(self.code, "en", **self.params)


class AuthError(GovshareError):
    """The caller could not be identified (HTTP 401)."""

    http_status = 401


class RequestError(GovshareError):
    """The request itself is unusable: bad purpose, bad filter, bad input."""


class NotFoundError(GovshareError):
    """A named department, resource, key or grant does not exist."""

    http_status = 404


class SourceError(GovshareError):
    """A department's source could not answer."""


class AuditError(GovshareError):
    """An access record could not be written; no data may be returned."""

    http_status = 500


class AuditKeyError(GovshareError):
    """The audit checkpoints cannot be signed or verified as configured (a server refuses to start)."""


@dataclass(frozen=True)
class Problem:
    """One fault found in a catalog file."""

    file: str
    resource: str | None
    field: str | None
    code: str
    detail: str = ""
    # Where in a spreadsheet (catalog/xlsx.py): the sheet and the cell (``D7``), or the row (``7``) for a whole row
    sheet: str = ""
    cell: str = ""

    def render(self, lang: str = "en") -> str:
        where = self.file
        if self.sheet:
            where += f" · {self.sheet}!{self.cell}" if self.cell else f" · {self.sheet}"
        if self.resource:
            where += f" · {self.resource}"
        if self.field:
            where += f" · {self.field}"
        return f"{where}: {message(self.code, lang, detail=self.detail)}"


class CatalogError(GovshareError):
    """A catalog that was refused as a whole; ``problems`` says where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("CATALOG_INVALID", count=len(problems))
        self.problems = problems

    def __str__(self) -> str:
        return "\n".join(p.render("en") for p in self.problems)

    def details(self, lang: str) -> dict[str, Any]:
        """Every fault in ``extensions.problems`` (file, resource, field, code, reason; a workbook's also its sheet and
        cell), as a catalog file sent through the API is told why it was refused."""
        problems = [
            problem_entry(
                p.code,
                {"detail": p.detail},
                lang,
                file=p.file,
                resource=p.resource,
                field=p.field,
                **({"sheet": p.sheet, "cell": p.cell} if p.sheet else {}),
            )
            for p in self.problems
        ]
        return {**super().details(lang), "problems": problems}


def problem_entry(code: str, params: dict[str, Any], lang: str, **where: object) -> dict[str, Any]:
    """One fault of a whole that was refused (a policy document, an application), as ``extensions.problems``
    lists it: where it is (``rule``, ``field``), its code and its message as ``reason``."""
    return {**where, "code": code, "reason": message(code, lang, **params)}


def internal_error() -> GovshareError:
    """What a caller is told of a failure that is none of ours to explain: INTERNAL_ERROR, nothing of its text (the
    failure itself is logged where it is caught)."""
    return GovshareError("INTERNAL_ERROR", http_status=500)


def error_entry(error: GovshareError, lang: str) -> dict[str, Any]:
    """The GraphQL error for ``error``: its message in ``lang``, and ``extensions`` with the code, the same
    message as ``reason``, and the error's details."""
    text = message(error.code, lang, **error.params)
    return {"message": text, "extensions": {"code": error.code, "reason": text, **error.details(lang)}}


def graphql_error(error: GovshareError, lang: str, node: Any = None) -> GraphQLError:
    """``error_entry`` as a GraphQLError, for a resolver to raise or a validation rule to report."""
    entry = error_entry(error, lang)
    return GraphQLError(entry["message"], node, extensions=entry["extensions"])


def http_error(
    error: GovshareError, lang: str, headers: dict[str, str] | None = None, *, media_type: str = "application/json"
) -> Response:
    """``error`` answering a whole HTTP request: ``{"errors": [entry]}`` with its status and headers (as
    ``media_type``: application/json, or application/graphql-response+json where the client asked for it)."""
    metrics.request_outcome("failed" if error.http_status >= 500 else "refused", error.code)
    return Response(
        msgspec.json.encode({"errors": [error_entry(error, lang)]}),
        status_code=error.http_status,
        media_type=media_type,
        headers={**error.headers, **(headers or {})},
    )
