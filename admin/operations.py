"""What security staff can do, once: the console (admin/console.py) and the admin GraphQL API (admin/api.py)
both call these, so a change made either way is validated, versioned and announced the same way.

``runtime`` is what admin/ sees of the server's runtime (``admin.runtime.AdminRuntime``): the platform database,
the catalog and policy engine in force, and ``changed()`` which brings a change into force in this process and
announces it to the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from admin.accounts import Staff
from govshare.errors import GovshareError
from govshare.platformdb import grants
from policies import documents
from policies.model import Grant
from policies.explain import Explanation, explain


async def document_in_force(runtime) -> tuple[int, documents.PolicyDocument]:
    async with runtime.engine.connect() as conn:
        return await documents.current_document(conn)


async def _save(runtime, change, staff: Staff, reason: str, based_on: int | None) -> int | None:
    """Apply ``change`` to the document in force and save it; None when nothing changed."""
    if not reason or not reason.strip():  # before anything else: a change without a reason is not looked at
        raise GovshareError("REASON_REQUIRED")
    await runtime.refresh()  # validate against the catalog in force now
    async with runtime.engine.begin() as conn:
        _, document = await documents.current_document(conn)
        version = await documents.save(conn, runtime.catalog, change(document), author=staff.username,
                                       reason=reason, based_on=based_on)
    if version is not None:
        await runtime.changed()
    return version


def rule_from(entry: dict) -> documents.Rule:
    """An allow rule from plain fields (form or API input); form problems raise PolicyInvalid."""
    return documents.from_data({"rules": [entry]}, None).rules[0]


def deny_from(entry: dict) -> documents.DenyRule:
    return documents.from_data({"deny": [entry]}, None).deny[0]


async def put_rule(runtime, staff: Staff, entry: dict, *, reason: str, based_on: int | None = None) -> tuple[str, int | None]:
    """Add an allow rule (no id) or change the one with ``entry['id']``: (rule id, new version)."""
    rule = rule_from(entry)
    if entry.get("id"):
        await _require_rule(runtime, rule.id, deny=False)
    return rule.id, await _save(runtime, lambda doc: documents.with_rule(doc, rule), staff, reason, based_on)


async def put_deny(runtime, staff: Staff, entry: dict, *, reason: str, based_on: int | None = None) -> tuple[str, int | None]:
    rule = deny_from(entry)
    if entry.get("id"):
        await _require_rule(runtime, rule.id, deny=True)
    return rule.id, await _save(runtime, lambda doc: documents.with_deny(doc, rule), staff, reason, based_on)


async def _require_rule(runtime, rule_id: str, *, deny: bool) -> None:
    _, document = await document_in_force(runtime)
    found = document.deny_rule(rule_id) if deny else document.rule(rule_id)
    if found is None:
        raise GovshareError("POLICY_RULE_NOT_FOUND", rule=rule_id)


async def remove_rule(runtime, staff: Staff, rule_id: str, *, reason: str, based_on: int | None = None) -> int | None:
    return await _save(runtime, lambda doc: documents.without(doc, rule_id), staff, reason, based_on)


async def import_document(runtime, staff: Staff, text: str, *, reason: str, based_on: int | None = None) -> int | None:
    await runtime.refresh()
    document = documents.from_toml(text, runtime.catalog)
    async with runtime.engine.begin() as conn:
        version = await documents.save(conn, runtime.catalog, document, author=staff.username, reason=reason,
                                       action="import", based_on=based_on)
    if version is not None:
        await runtime.changed()
    return version


async def rollback(runtime, staff: Staff, version: int, *, reason: str, based_on: int | None = None) -> int | None:
    await runtime.refresh()
    async with runtime.engine.begin() as conn:
        saved = await documents.rollback(conn, runtime.catalog, version, author=staff.username, reason=reason,
                                         based_on=based_on)
    if saved is not None:
        await runtime.changed()
    return saved


async def history(runtime) -> list[documents.Version]:
    async with runtime.engine.connect() as conn:
        return await documents.history(conn)


async def version(runtime, number: int) -> documents.Version:
    async with runtime.engine.connect() as conn:
        return await documents.version_at(conn, number)


async def explain_access(runtime, department: str, purpose: str, resource: str, at: datetime | None,
                         lang: str) -> Explanation:
    """The decision the GraphQL service would make now (or at ``at``), from the engine it uses."""
    await runtime.refresh()
    return explain(runtime.policy, department, purpose, resource, at or runtime.clock(), lang)


@dataclass(frozen=True)
class GrantInForce:
    grant: Grant
    source: str  # the application it came from, who recorded it, or "rule" for a staff rule


async def grants_in_force(runtime, *, department: str = "", resource: str = "", purpose: str = "") -> list[GrantInForce]:
    """Every grant deciding now: approved and deemed applications, direct and legal-basis grants, staff rules."""
    await runtime.refresh()
    now = runtime.clock()
    async with runtime.engine.connect() as conn:
        sources = {r.id: (r.application_id or r.created_by) for r in (await conn.execute(select(grants))).all()}
    found = [
        GrantInForce(g, sources.get(g.id) or ("rule" if g.id.startswith("P-") else g.id))
        for g in runtime.policy.policies.grants
        if g.revoked_at is None and g.valid_from <= now < g.valid_until
        and (not department or g.consumer == department) and (not resource or g.resource == resource)
        and (not purpose or purpose in g.purposes)
    ]
    return sorted(found, key=lambda f: (f.grant.consumer, f.grant.resource, f.grant.id))


def matches(rule, *, department: str = "", resource: str = "", purpose: str = "") -> bool:
    """The console's and the API's filter on rules (allow or deny) by department, resource and purpose."""
    if department and rule.department != department:
        return False
    if resource and rule.resource not in (resource, documents.EVERY_RESOURCE):
        return False
    if purpose and purpose not in getattr(rule, "purposes", (purpose,)):
        return False
    return True
