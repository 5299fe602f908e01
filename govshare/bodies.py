"""Request bodies bounded before they are read: an ASGI middleware in front of every endpoint.

A request whose ``Content-Length`` is over the limit for its path is answered HTTP 413 ``BODY_TOO_LARGE``
before the application runs (before authentication, before a byte of the body is read); a body without a
length (chunked) is counted as the application reads it and stopped at the limit, answered the same way.
The connection is closed after the answer, so the rest of the body is never read.
"""

from __future__ import annotations

from collections.abc import Callable

from govshare.errors import GovshareError, http_error
from govshare.i18n import normalize_language


class BodyTooLarge(Exception):
    """Raised inside the application's ``receive`` when the body goes over the limit."""


class BodyLimit:
    def __init__(self, app, *, limit_for: Callable[[str], int], language: str) -> None:
        """``limit_for(path)`` is the limit in bytes for a path; ``language`` the default message language."""
        self.app = app
        self.limit_for = limit_for
        self.language = language

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        headers = {k.lower(): v for k, v in scope["headers"] if k.lower() in (b"content-length", b"accept-language")}
        lang = normalize_language(headers.get(b"accept-language", b"").decode("latin-1"), self.language)
        declared = headers.get(b"content-length", b"").strip()
        if declared.isdigit() and int(declared) > limit:
            await _too_large(scope, receive, send, limit, lang)
            return

        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return event

        async def watched_send(event) -> None:
            nonlocal started
            if event["type"] == "http.response.start":
                started = True
            await send(event)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            await _too_large(scope, receive, send, limit, lang)


async def _too_large(scope, receive, send, limit: int, lang: str) -> None:
    refusal = GovshareError("BODY_TOO_LARGE", http_status=413, headers={"Connection": "close"}, limit=limit)
    await http_error(refusal, lang)(scope, receive, send)
