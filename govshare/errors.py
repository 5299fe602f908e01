"""Error families, each with stable machine-readable codes (English identifiers).

The human message is rendered per language by ``govshare.i18n``; the code never changes.
"""

from __future__ import annotations

from dataclasses import dataclass


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
    """A failure a caller sees, carrying a stable ``code`` and message parameters."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.params = params

    def __str__(self) -> str:  # English text for logs and the CLI's default
        from govshare.i18n import message

        return message(self.code, "en", **self.params)


class AuthError(GovshareError):
    """The caller could not be identified (HTTP 401)."""


class RequestError(GovshareError):
    """The request itself is unusable: bad purpose, bad filter, bad input."""


class NotFoundError(GovshareError):
    """A named department, resource, key or grant does not exist."""


class SourceError(GovshareError):
    """A department's source could not answer."""


class AuditError(GovshareError):
    """An access record could not be written; no data may be returned."""


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

    def render(self, lang: str = "en") -> str:
        from govshare.i18n import message

        where = self.file
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
