"""The policy console: server-rendered pages for security staff (no script, no outside host).

/console/login, /console/rules, /console/grants, /console/deny, /console/explain, /console/history.
Every change is a POST carrying the session's CSRF token, the version it was made on (a change made
meanwhile by someone else is refused, not overwritten) and a written reason. Chinese by default,
English with ?lang=en.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from admin import accounts, operations, reports
from admin.auth import (
    LANG_COOKIE,
    LOGIN_CSRF_COOKIE,
    Signed,
    clear_session_cookie,
    console_language,
    csrf_ok,
    same_origin,
    set_session_cookie,
    sign_in,
    sign_in_wait,
    signed_in,
)
from admin.labels import label
from admin.runtime import runtime as runtime_of
from govshare.clock import CHINA
from govshare.errors import AuthError, CatalogError, GovshareError
from govshare.i18n import message
from policies import documents
from policies.explain import describe_cover

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.globals["describe_cover"] = describe_cover


def _china(moment: datetime | None, seconds: bool = False) -> str:
    if moment is None:
        return ""
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _local_input(moment: datetime | None) -> str:
    """A time for <input type=datetime-local>, in Beijing time."""
    return "" if moment is None else moment.astimezone(CHINA).strftime("%Y-%m-%dT%H:%M")


def _with_language(request: Request, lang: str) -> str:
    """This page, with the same question, in the other language."""
    return request.url.path + "?" + request.url.include_query_params(lang=lang).query


def _render(
    request: Request, template: str, lang: str, status: int = 200, signed: Signed | None = None, **context
) -> HTMLResponse:
    runtime = runtime_of(request)
    page = _templates.get_template(template).render(
        t=lambda key, **params: label(key, lang, **params),
        lang=lang,
        staff=signed.staff if signed else None,
        csrf=signed.staff.csrf_token if signed else "",
        path=request.url.path,
        catalog=runtime.catalog,
        china=_china,
        local_input=_local_input,
        message=lambda code, **p: message(code, lang, **p),
        policy_version=runtime.policy.policies.version,  # the number /healthz, the log and explain name
        switch_language=_with_language(request, "zh-CN" if lang == "en" else "en"),
        **context,
    )
    response = HTMLResponse(
        page,
        status_code=status,
        headers={
            "Content-Security-Policy": "default-src 'self'; style-src 'self'; script-src 'none'; frame-ancestors 'none'; "
            "form-action 'self'; base-uri 'none'",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store",
        },
    )
    if request.query_params.get("lang"):
        response.set_cookie(LANG_COOKIE, lang, path="/console", samesite="strict", httponly=True, secure=True)
    return response


def _language(request: Request) -> str:
    return console_language(request, runtime_of(request).settings.language)


def _signed_page(handler, editors: bool):
    async def page(request: Request) -> Response:
        lang = _language(request)
        signed = await signed_in(request)
        if signed is None:
            return RedirectResponse("/console/login", status_code=303)
        if signed.staff.department and not editors:  # a department's catalog staff: its catalog page only
            return _render(
                request,
                "error.html",
                lang,
                403,
                signed,
                code="STAFF_OFFICE_ONLY",
                params={"department": signed.staff.department},
            )
        form = None
        if request.method == "POST":
            form = await request.form()
            if not csrf_ok(request, signed, form.get("csrf_token")):
                return _render(request, "error.html", lang, 403, signed, code="CSRF_FAILED")
        return await handler(request, signed, lang, form)

    return page


def staff_only(handler):
    """Pages for the coordinating authority's office (staff without a department); every POST must carry the
    session's CSRF token. A department's catalog staff is refused (403 STAFF_OFFICE_ONLY)."""
    return _signed_page(handler, editors=False)


def catalog_staff(handler):
    """Pages for every signed-in staff member, a department's catalog staff too (the catalog pages)."""
    return _signed_page(handler, editors=True)


def _home(staff: accounts.Staff) -> str:
    return "/console/catalog" if staff.department else "/console/rules"


async def home(request: Request) -> Response:
    signed = await signed_in(request)
    return RedirectResponse(_home(signed.staff) if signed else "/console/login", status_code=303)


# --- signing in and out --------------------------------------------------------------------------------


async def login_page(
    request: Request, error: str | None = None, params: dict | None = None, status: int = 200
) -> Response:
    lang = _language(request)
    token = secrets.token_urlsafe(24)
    response = _render(request, "login.html", lang, status, login_csrf=token, error=error, params=params or {})
    response.set_cookie(LOGIN_CSRF_COOKIE, token, path="/", secure=True, httponly=True, samesite="strict")
    return response


async def login_post(request: Request) -> Response:
    runtime = runtime_of(request)
    form = await request.form()
    if not same_origin(request) or not accounts.same_token(
        form.get("csrf_token"), request.cookies.get(LOGIN_CSRF_COOKIE)
    ):
        return await login_page(request, "CSRF_FAILED", status=403)
    username = str(form.get("username", ""))
    try:
        wait = await sign_in_wait(request, username)
    except GovshareError as refused:  # RATE_LIMIT_UNAVAILABLE: the limits' storage is down and they fail closed
        response = await login_page(request, refused.code, refused.params, status=refused.http_status)
        response.headers.update(refused.headers)
        return response
    if wait is not None:
        response = await login_page(request, "STAFF_SIGN_IN_RATE_LIMITED", {"seconds": wait}, status=429)
        response.headers["Retry-After"] = str(wait)
        return response
    try:
        token, staff = await sign_in(runtime.engine, runtime.settings, username, str(form.get("password", "")))
    except AuthError as exc:
        return await login_page(request, exc.code, exc.params, status=401)
    response = RedirectResponse(_home(staff), status_code=303)
    set_session_cookie(response, token, int(runtime.settings.staff_session_hours * 3600))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


@catalog_staff
async def logout(request: Request, signed: Signed, lang: str, form) -> Response:
    async with runtime_of(request).engine.begin() as conn:
        await accounts.sign_out(conn, signed.token)
    response = RedirectResponse("/console/login", status_code=303)
    clear_session_cookie(response)
    return response


# --- allow rules ---------------------------------------------------------------------------------------


def _filters(request: Request) -> dict[str, str]:
    return {k: request.query_params.get(k, "").strip() for k in ("department", "resource", "purpose")}


@staff_only
async def rules_page(request: Request, signed: Signed, lang: str, form) -> Response:
    version, document = await operations.document_in_force(runtime_of(request))
    filters = _filters(request)
    shown = [r for r in document.rules if operations.matches(r, **filters)]
    return _render(
        request,
        "rules.html",
        lang,
        signed=signed,
        version=version,
        rules=shown,
        filters=filters,
        total=len(document.rules),
    )


def _pairs(text: str, field: str, lists: bool) -> dict:
    """'item=a,b' lines (row scope) or 'item=kind' lines (masks)."""
    found = {}
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise documents.PolicyInvalid(
                [documents.Problem(field, field, "POLICY_MALFORMED", {"detail": f"'{line.strip()}': item=value"})]
            )
        found[name.strip()] = [v.strip() for v in value.split(",") if v.strip()] if lists else value.strip()
    return found


def _names(text: str) -> list[str]:
    return [n.strip() for n in (text or "").replace("，", ",").replace("\n", ",").split(",") if n.strip()]


def _when(value: str) -> str | None:
    """A datetime-local value is Beijing time."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=CHINA).isoformat()
    except ValueError:
        return value  # refused by validation, with the value named


def _rule_entry(form, rule_id: str | None) -> dict:
    entry = {
        "department": form.get("department", ""),
        "resource": form.get("resource", ""),
        "items": _names(form.get("items", "")),
        "purposes": _names(form.get("purposes", "")),
        "valid_from": _when(form.get("valid_from", "")),
        "valid_until": _when(form.get("valid_until", "")),
        "row_scope": _pairs(form.get("row_scope", ""), "row_scope", True),
        "masks": _pairs(form.get("masks", ""), "masks", False),
        "legal_basis": form.get("legal_basis", "").strip() or None,
        "note": form.get("note", "").strip() or None,
    }
    if rule_id:
        entry["id"] = rule_id
    return entry


def _based_on(form) -> int | None:
    try:
        return int(form.get("based_on", ""))
    except ValueError:
        return None


async def _change(
    request: Request, signed: Signed, lang: str, form, run, back: str, template: str, **context
) -> Response:
    """Run a change; on success back to ``back``, else the form again with the problems, nothing saved."""
    try:
        await run()
    except documents.PolicyInvalid as exc:
        version, _ = await operations.document_in_force(runtime_of(request))
        return _render(
            request,
            template,
            lang,
            400,
            signed,
            version=version,
            form=form,
            problems=exc.problems,
            error=None,
            **context,
        )
    except GovshareError as exc:
        version, _ = await operations.document_in_force(runtime_of(request))
        return _render(
            request,
            template,
            lang,
            409 if exc.code == "POLICY_CONFLICT" else 400,
            signed,
            version=version,
            form=form,
            problems=[],
            error=message(exc.code, lang, **exc.params),
            error_code=exc.code,
            **context,
        )
    return RedirectResponse(back, status_code=303)


def _rule_form(rule: documents.Rule | None) -> dict:
    if rule is None:
        return {}
    return {
        "department": rule.department,
        "resource": rule.resource,
        "items": ", ".join(rule.items),
        "purposes": ", ".join(rule.purposes),
        "valid_from": _local_input(rule.valid_from),
        "valid_until": _local_input(rule.valid_until),
        "row_scope": "\n".join(f"{k}={','.join(v)}" for k, v in rule.row_scope.items()),
        "masks": "\n".join(f"{k}={v}" for k, v in rule.masks.items()),
        "legal_basis": rule.legal_basis or "",
        "note": rule.note,
    }


@staff_only
async def rule_form(request: Request, signed: Signed, lang: str, form) -> Response:
    rule_id = request.path_params.get("rule_id")
    version, document = await operations.document_in_force(runtime_of(request))
    rule = document.rule(rule_id) if rule_id else None
    if rule_id and rule is None:
        return _render(request, "error.html", lang, 404, signed, code="POLICY_RULE_NOT_FOUND", params={"rule": rule_id})
    return _render(
        request,
        "rule_form.html",
        lang,
        signed=signed,
        version=version,
        form=_rule_form(rule),
        rule_id=rule_id,
        problems=[],
        error=None,
    )


@staff_only
async def rule_save(request: Request, signed: Signed, lang: str, form) -> Response:
    rule_id = request.path_params.get("rule_id")
    runtime = runtime_of(request)

    async def run():
        await operations.put_rule(
            runtime, signed.staff, _rule_entry(form, rule_id), reason=form.get("reason", ""), based_on=_based_on(form)
        )

    return await _change(request, signed, lang, form, run, "/console/rules", "rule_form.html", rule_id=rule_id)


@staff_only
async def rule_remove(request: Request, signed: Signed, lang: str, form) -> Response:
    rule_id = request.path_params["rule_id"]
    runtime = runtime_of(request)
    kind = "deny" if request.url.path.startswith("/console/deny") else "rules"

    async def run():
        await operations.remove_rule(
            runtime, signed.staff, rule_id, reason=form.get("reason", ""), based_on=_based_on(form)
        )

    return await _change(
        request, signed, lang, form, run, f"/console/{kind}", "remove.html", rule_id=rule_id, kind=kind
    )


@staff_only
async def remove_form(request: Request, signed: Signed, lang: str, form) -> Response:
    rule_id = request.path_params["rule_id"]
    kind = "deny" if request.url.path.startswith("/console/deny") else "rules"
    version, _ = await operations.document_in_force(runtime_of(request))
    return _render(
        request,
        "remove.html",
        lang,
        signed=signed,
        version=version,
        rule_id=rule_id,
        kind=kind,
        form={},
        problems=[],
        error=None,
    )


# --- deny rules ----------------------------------------------------------------------------------------


@staff_only
async def deny_page(request: Request, signed: Signed, lang: str, form) -> Response:
    version, document = await operations.document_in_force(runtime_of(request))
    filters = _filters(request)
    shown = [r for r in document.deny if operations.matches(r, **{**filters, "purpose": ""})]
    return _render(
        request,
        "deny.html",
        lang,
        signed=signed,
        version=version,
        rules=shown,
        filters=filters,
        total=len(document.deny),
    )


def _deny_form(rule: documents.DenyRule | None) -> dict:
    if rule is None:
        return {"resource": "*"}
    return {
        "department": rule.department,
        "resource": rule.resource,
        "basis": rule.reason,
        "valid_from": _local_input(rule.valid_from),
        "valid_until": _local_input(rule.valid_until),
    }


@staff_only
async def deny_form(request: Request, signed: Signed, lang: str, form) -> Response:
    rule_id = request.path_params.get("rule_id")
    version, document = await operations.document_in_force(runtime_of(request))
    rule = document.deny_rule(rule_id) if rule_id else None
    if rule_id and rule is None:
        return _render(request, "error.html", lang, 404, signed, code="POLICY_RULE_NOT_FOUND", params={"rule": rule_id})
    return _render(
        request,
        "deny_form.html",
        lang,
        signed=signed,
        version=version,
        form=_deny_form(rule),
        rule_id=rule_id,
        problems=[],
        error=None,
    )


@staff_only
async def deny_save(request: Request, signed: Signed, lang: str, form) -> Response:
    rule_id = request.path_params.get("rule_id")
    runtime = runtime_of(request)
    entry = {
        "department": form.get("department", ""),
        "resource": form.get("resource", "") or "*",
        "reason": form.get("basis", ""),
        "valid_from": _when(form.get("valid_from", "")),
        "valid_until": _when(form.get("valid_until", "")),
    }
    if rule_id:
        entry["id"] = rule_id

    async def run():
        await operations.put_deny(runtime, signed.staff, entry, reason=form.get("reason", ""), based_on=_based_on(form))

    return await _change(request, signed, lang, form, run, "/console/deny", "deny_form.html", rule_id=rule_id)


# --- freshness (Art 16, 20) -------------------------------------------------------------------------------


async def _freshness_page(request: Request, signed: Signed, lang: str, status: int = 200, **context) -> Response:
    runtime = runtime_of(request)
    department = request.query_params.get("department", "").strip()
    try:
        states = await operations.freshness_states(runtime, provider=department)
    except GovshareError as exc:
        return _render(request, "error.html", lang, 404, signed, code=exc.code, params=exc.params)
    version, _ = await operations.document_in_force(runtime)
    lagging = sorted({s.provider for s in states if s.overdue})
    context.setdefault("form", {})
    context.setdefault("problems", [])
    context.setdefault("error", None)
    return _render(
        request,
        "freshness.html",
        lang,
        status,
        signed,
        states=sorted(states, key=lambda s: (not s.overdue, s.resource)),
        lagging=lagging,
        department=department,
        version=version,
        **context,
    )


@staff_only
async def freshness_page(request: Request, signed: Signed, lang: str, form) -> Response:
    return await _freshness_page(request, signed, lang)


@staff_only
async def restrict_lagging(request: Request, signed: Signed, lang: str, form) -> Response:
    """Restrict a department with overdue resources (Art 20) in one action; lifted on the deny rules page."""
    runtime = runtime_of(request)
    try:
        await operations.restrict_lagging(
            runtime,
            signed.staff,
            form.get("department", ""),
            reason=form.get("reason", ""),
            based_on=_based_on(form),
        )
    except GovshareError as exc:
        return await _freshness_page(
            request,
            signed,
            lang,
            409 if exc.code == "POLICY_CONFLICT" else 400,
            form=form,
            error=message(exc.code, lang, **exc.params),
            error_code=exc.code,
        )
    return RedirectResponse("/console/deny", status_code=303)


# --- grants, explain, history ----------------------------------------------------------------------------


@staff_only
async def grants_page(request: Request, signed: Signed, lang: str, form) -> Response:
    filters = _filters(request)
    found = await operations.grants_in_force(runtime_of(request), **filters)
    return _render(request, "grants.html", lang, signed=signed, grants=found, filters=filters)


@staff_only
async def corrections_page(request: Request, signed: Signed, lang: str, form) -> Response:
    status = request.query_params.get("status", "")
    status = status if status in ("open", "escalated", "corrected", "rejected") else ""
    reports = await operations.data_error_course(runtime_of(request), status=status)
    providers = {code: r.provider for code, r in runtime_of(request).catalog.resources.items()}
    return _render(
        request, "corrections.html", lang, signed=signed, reports=reports, chosen=status, providers=providers
    )


@staff_only
async def explain_page(request: Request, signed: Signed, lang: str, form) -> Response:
    q = request.query_params
    asked = {k: q.get(k, "").strip() for k in ("department", "purpose", "resource", "at")}
    result, error = None, None
    if asked["department"] and asked["resource"]:
        at = None
        if asked["at"]:
            try:
                at = datetime.fromisoformat(asked["at"]).replace(tzinfo=CHINA)
            except ValueError:
                error = message("POLICY_BAD_TIME", lang, value=asked["at"])
        if error is None:
            result = await operations.explain_access(
                runtime_of(request), asked["department"], asked["purpose"], asked["resource"], at, lang
            )
    return _render(request, "explain.html", lang, signed=signed, asked=asked, result=result, error=error)


@staff_only
async def history_page(request: Request, signed: Signed, lang: str, form) -> Response:
    versions = await operations.history(runtime_of(request))
    return _render(
        request,
        "history.html",
        lang,
        signed=signed,
        versions=versions,
        version=versions[0].version if versions else 0,
        problems=[],
        error=None,
    )


@staff_only
async def diff_page(request: Request, signed: Signed, lang: str, form) -> Response:
    runtime = runtime_of(request)
    try:
        a, b = int(request.query_params.get("from", "")), int(request.query_params.get("to", ""))
        before, after = await operations.version(runtime, a), await operations.version(runtime, b)
    except ValueError:
        return _render(request, "error.html", lang, 400, signed, code="BAD_REQUEST", params={"detail": "from, to"})
    except GovshareError as exc:
        return _render(request, "error.html", lang, 404, signed, code=exc.code, params=exc.params)
    return _render(
        request,
        "diff.html",
        lang,
        signed=signed,
        before=before,
        after=after,
        changes=documents.diff(before.document, after.document),
        text=documents.text_diff(before.document, after.document, f"v{a}", f"v{b}"),
    )


@staff_only
async def rollback_post(request: Request, signed: Signed, lang: str, form) -> Response:
    runtime = runtime_of(request)
    target = int(request.path_params["version"])

    async def run():
        await operations.rollback(
            runtime, signed.staff, target, reason=form.get("reason", ""), based_on=_based_on(form)
        )

    versions = await operations.history(runtime)
    return await _change(request, signed, lang, form, run, "/console/history", "history.html", versions=versions)


# --- the catalog kept by its departments: review, history, diff -------------------------------------------


async def _catalog_view(
    request: Request, signed: Signed, lang: str, status: int = 200, *, error: str | None = None, **context
) -> Response:
    """The catalog page: the office sees every department's submissions and reviews them; a department's catalog
    staff sees its own department's, uploads a catalog file, sends a draft and retires its published resources."""
    runtime = runtime_of(request)
    chosen = request.query_params.get("status") or ""
    found = await operations.catalog_submissions(runtime, signed.staff, status=chosen or None)
    department = signed.staff.department
    own = (
        sorted(
            (r for r in runtime.catalog.published() if r.provider == department),
            key=lambda r: r.code,
        )
        if department
        else []
    )
    context.setdefault("catalog_problems", [])
    context.setdefault("form", {})
    return _render(
        request,
        "catalog.html",
        lang,
        status,
        signed,
        submissions=found,
        chosen=chosen,
        error=error,
        problems=[],
        shown=_shown,
        department=department,
        own_resources=own,
        **context,
    )


@catalog_staff
async def catalog_page(request: Request, signed: Signed, lang: str, form) -> Response:
    return await _catalog_view(request, signed, lang)


def _refused(exc: GovshareError, lang: str) -> str:
    if exc.code == "FORBIDDEN":  # the workflow's refusal of a review by a department (recorded as refused_action)
        return message("CATALOG_REVIEW_OFFICE_ONLY", lang)
    return message(exc.code, lang, **exc.params)


@catalog_staff
async def catalog_decide(request: Request, signed: Signed, lang: str, form) -> Response:
    runtime = runtime_of(request)
    submission_id, step = request.path_params["submission_id"], request.path_params["step"]
    try:
        if step == "approve":
            await operations.approve_submission(runtime, signed.staff, submission_id, reason=form.get("reason", ""))
        elif step == "return":
            await operations.return_submission(runtime, signed.staff, submission_id, reason=form.get("reason", ""))
        elif step == "send":
            await operations.send_submission(runtime, signed.staff, submission_id)
        else:
            return _render(request, "error.html", lang, 404, signed, code="BAD_REQUEST", params={"detail": step})
    except GovshareError as exc:
        status = 404 if exc.code == "CATALOG_SUBMISSION_NOT_FOUND" else 403 if exc.code == "FORBIDDEN" else 400
        return await _catalog_view(request, signed, lang, status, error=_refused(exc, lang))
    return RedirectResponse("/console/catalog", status_code=303)


@catalog_staff
async def catalog_upload(request: Request, signed: Signed, lang: str, form) -> Response:
    """A catalog file (TOML or .xlsx) uploaded by a department's catalog staff: a submission (a draft if asked)."""
    runtime = runtime_of(request)
    upload = form.get("file")
    reason = str(form.get("reason", ""))
    draft = form.get("draft") == "1"
    try:
        if upload is None or isinstance(upload, str) or not upload.filename:
            raise GovshareError("CATALOG_FILE_REQUIRED")
        content = await upload.read()
        await operations.submit_catalog_file(
            runtime, signed.staff, upload.filename, content, reason=reason, draft=draft
        )
    except CatalogError as exc:
        return await _catalog_view(
            request,
            signed,
            lang,
            400,
            error=message(exc.code, lang, **exc.params),
            catalog_problems=exc.problems,
            form={"reason": reason},
        )
    except GovshareError as exc:
        status = 403 if exc.code == "CATALOG_NOT_YOUR_DEPARTMENT" else 400
        return await _catalog_view(request, signed, lang, status, error=_refused(exc, lang), form={"reason": reason})
    return RedirectResponse("/console/catalog", status_code=303)


@catalog_staff
async def catalog_retire(request: Request, signed: Signed, lang: str, form) -> Response:
    """A published resource retired with a reason (its department's catalog staff, or the office)."""
    runtime = runtime_of(request)
    try:
        await operations.retire_resource(
            runtime, signed.staff, str(form.get("resource", "")), reason=str(form.get("reason", ""))
        )
    except GovshareError as exc:
        status = 403 if exc.code == "CATALOG_NOT_YOUR_RESOURCE" else 404 if exc.code == "RESOURCE_NOT_FOUND" else 400
        return await _catalog_view(request, signed, lang, status, error=_refused(exc, lang))
    return RedirectResponse("/console/catalog", status_code=303)


@catalog_staff
async def catalog_history_page(request: Request, signed: Signed, lang: str, form) -> Response:
    resource = request.query_params.get("resource") or None
    versions = await operations.catalog_history(runtime_of(request), resource, department=signed.staff.department)
    return _render(request, "catalog_history.html", lang, signed=signed, versions=versions, resource=resource or "")


@catalog_staff
async def catalog_diff_page(request: Request, signed: Signed, lang: str, form) -> Response:
    try:
        a, b = int(request.query_params.get("from", "")), int(request.query_params.get("to", ""))
        changes = await operations.catalog_diff(runtime_of(request), a, b, department=signed.staff.department)
    except ValueError:
        return _render(request, "error.html", lang, 400, signed, code="BAD_REQUEST", params={"detail": "from, to"})
    except GovshareError as exc:
        return _render(request, "error.html", lang, 404, signed, code=exc.code, params=exc.params)
    return _render(request, "catalog_diff.html", lang, signed=signed, a=a, b=b, changes=changes, shown=_shown)


def _shown(value) -> str:
    """A value of a catalog field as the diff shows it (JSON for tables and lists; empty for none)."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


routes = [
    Route("/console", home),
    Route("/console/login", login_page, methods=["GET"]),
    Route("/console/login", login_post, methods=["POST"]),
    Route("/console/logout", logout, methods=["POST"]),
    Route("/console/rules", rules_page, methods=["GET"]),
    Route("/console/rules", rule_save, methods=["POST"]),
    Route("/console/rules/new", rule_form, methods=["GET"]),
    Route("/console/rules/{rule_id}", rule_form, methods=["GET"]),
    Route("/console/rules/{rule_id}", rule_save, methods=["POST"]),
    Route("/console/rules/{rule_id}/remove", remove_form, methods=["GET"]),
    Route("/console/rules/{rule_id}/remove", rule_remove, methods=["POST"]),
    Route("/console/deny", deny_page, methods=["GET"]),
    Route("/console/deny", deny_save, methods=["POST"]),
    Route("/console/deny/new", deny_form, methods=["GET"]),
    Route("/console/deny/{rule_id}", deny_form, methods=["GET"]),
    Route("/console/deny/{rule_id}", deny_save, methods=["POST"]),
    Route("/console/deny/{rule_id}/remove", remove_form, methods=["GET"]),
    Route("/console/deny/{rule_id}/remove", rule_remove, methods=["POST"]),
    Route("/console/grants", grants_page, methods=["GET"]),
    Route("/console/freshness", freshness_page, methods=["GET"]),
    Route("/console/freshness/restrict", restrict_lagging, methods=["POST"]),
    Route("/console/explain", explain_page, methods=["GET"]),
    Route("/console/corrections", corrections_page, methods=["GET"]),
    Route("/console/history", history_page, methods=["GET"]),
    Route("/console/history/diff", diff_page, methods=["GET"]),
    Route("/console/history/{version:int}/rollback", rollback_post, methods=["POST"]),
    Route("/console/catalog", catalog_page, methods=["GET"]),
    Route("/console/catalog/history", catalog_history_page, methods=["GET"]),
    Route("/console/catalog/diff", catalog_diff_page, methods=["GET"]),
    Route("/console/catalog/upload", catalog_upload, methods=["POST"]),
    Route("/console/catalog/retire", catalog_retire, methods=["POST"]),
    Route("/console/catalog/{submission_id}/{step}", catalog_decide, methods=["POST"]),
    *reports.routes,  # the providers' usage reports (admin/reports.py)
]

# The evaluation pages render through this module's helpers, so they are imported once it is defined.
from admin import evaluation  # noqa: E402

routes += evaluation.routes
