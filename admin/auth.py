"""Who is asking, on the console and the admin API: a security staff session, never an application key.

Browsers carry the session in a ``__Host-`` cookie (Secure, HttpOnly, SameSite=Strict, Path=/) and must
send the session's CSRF token with every change (a form field or the X-CSRF-Token header); a request
whose Origin is another site is refused as well. Scripts sign in at POST /admin/session and send the
token as ``Authorization: Bearer``; a header is never sent by a browser on its own, so it needs no CSRF
token.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from admin import accounts
from admin.runtime import runtime as runtime_of
from govshare.errors import AuthError, GovshareError, http_error
from govshare.keys import authenticate

log = logging.getLogger("govshare.admin")
SESSION_COOKIE = "__Host-govshare-console"
LOGIN_CSRF_COOKIE = "__Host-govshare-login"
LANG_COOKIE = "govshare-console-lang"


@dataclass(frozen=True)
class Signed:
    staff: accounts.Staff
    token: str
    via: str  # cookie | bearer


def console_language(request: Request, default: str) -> str:
    """zh-CN unless English is asked for (?lang=en, remembered in a cookie)."""
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or default
    return "en" if asked.lower().startswith("en") else "zh-CN"


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def signed_in(request: Request) -> Signed | None:
    runtime = runtime_of(request)
    bearer = _bearer(request)
    token, via = (bearer, "bearer") if bearer else (request.cookies.get(SESSION_COOKIE), "cookie")
    if not token:
        return None
    async with runtime.engine.connect() as conn:
        staff = await accounts.session(conn, token)
    return None if staff is None else Signed(staff, token, via)


async def is_application_key(request: Request) -> bool:
    """Whether the Bearer token is a department application key (which must never administer policies)."""
    bearer = _bearer(request)
    if not bearer:
        return False
    async with runtime_of(request).engine.connect() as conn:
        try:
            await authenticate(conn, f"Bearer {bearer}")
            return True
        except AuthError:
            return False


def same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:  # not sent on same-origin form posts by every browser; the CSRF token still decides
        return True
    expected = f"{request.url.scheme}://{request.url.netloc}"
    return origin == expected


def csrf_ok(request: Request, signed: Signed, submitted: str | None) -> bool:
    if signed.via == "bearer":
        return True
    return same_origin(request) and accounts.same_token(
        submitted or request.headers.get("x-csrf-token"), signed.staff.csrf_token
    )


def set_session_cookie(response: Response, token: str, max_age: int) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, path="/", secure=True, httponly=True, samesite="strict")


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")


async def sign_in_wait(request: Request, username: str) -> int | None:
    """None when this sign-in attempt is within the limits per client address and per user name; otherwise
    the seconds to wait. Counted before the password is looked at, whatever its outcome."""
    limits = runtime_of(request).sign_in_limits
    address = request.client.host if request.client else ""
    for kind, key in (("address", address), ("user", username[:64].lower())):
        if kind in limits:
            wait = await limits[kind].admit(f"sign-in:{kind}:{key}")
            if wait is not None:
                log.warning("staff sign-ins over the limit per %s (%r)", kind, key)
                return wait
    return None


async def session_post(request: Request) -> Response:
    """POST /admin/session {"username", "password"} -> {"token", "csrfToken", "expiresAt"} for scripts."""
    runtime = runtime_of(request)
    lang = console_language(request, runtime.settings.language)
    try:
        body = json.loads(await request.body())
        username, password = body["username"], body["password"]
        if not isinstance(username, str) or not isinstance(password, str):
            raise TypeError
    except (ValueError, KeyError, TypeError, RecursionError):
        return http_error(GovshareError("BAD_REQUEST", detail='expected {"username": ..., "password": ...}'), lang)
    try:
        wait = await sign_in_wait(request, username)
    except GovshareError as refused:  # RATE_LIMIT_UNAVAILABLE: the limits' storage is down and they fail closed
        return http_error(refused, lang)
    if wait is not None:
        return http_error(
            GovshareError(
                "STAFF_SIGN_IN_RATE_LIMITED", http_status=429, headers={"Retry-After": str(wait)}, seconds=wait
            ),
            lang,
        )
    try:
        token, staff = await sign_in(runtime.engine, runtime.settings, username, password)
    except AuthError as exc:
        return http_error(exc, lang)
    return JSONResponse(
        {
            "token": token,
            "csrfToken": staff.csrf_token,
            "expiresAt": staff.session_expires.isoformat(),
            "username": staff.username,
        }
    )


async def session_delete(request: Request) -> Response:
    signed = await signed_in(request)
    runtime = runtime_of(request)
    if signed is None:
        return http_error(AuthError("STAFF_UNAUTHENTICATED"), console_language(request, runtime.settings.language))
    async with runtime.engine.begin() as conn:
        await accounts.sign_out(conn, signed.token)
    return Response(status_code=204)


async def sign_in(engine, settings, username: str, password: str, now=None):
    """accounts.sign_in, with a failed attempt logged (it is counted by accounts.sign_in itself)."""
    try:
        return await accounts.sign_in(engine, settings, username, password, now)
    except AuthError:
        log.warning("failed staff sign-in for %r", username[:64])
        raise
