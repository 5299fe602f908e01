"""What security staff can do, once: the console (admin/console.py), the admin GraphQL API (admin/api.py) and
the `govshare` command (cli.py) all call these, so a change made any way is validated, versioned and announced
the same way.

``runtime`` is a ``Platform`` (``admin.runtime``): the server's Runtime (server.py), or a command's
``CommandRuntime`` (below). It holds the platform database, the catalog and policy engine in force, and
``changed()``, which brings a change into force in this process and announces it to the others
(govshare/notify.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from admin.runtime import Platform
from catalog import freshness, workflow
from catalog import store as catalog_store
from catalog.conformance import check_sources, without_nonconforming
from catalog.model import Catalog
from corrections import process as corrections
from corrections.tables import data_error_reports
from govshare.config import Settings
from govshare.errors import CatalogError, GovshareError, NotFoundError, Problem
from govshare.notify import PolicyNotifier
from govshare.platformdb import read_versions
from policies import documents, trusted
from policies.engine import PolicyEngine
from policies.explain import Explanation, explain
from policies.model import Grant, PolicySet
from policies.store import load_policy_set
from policies.tables import grants


class Author(Protocol):
    """Who makes a change: a signed-in staff member (admin.accounts.Staff) or a command's ``--by``."""

    username: str


@dataclass(frozen=True)
class Operator:
    """The author of a change made by command (``--by``)."""

    username: str


class CommandRuntime:
    """A `govshare` command's Platform: the catalog and policies read from the platform database as a server
    reads them (a resource whose source does not conform is left out, as the server leaves it unpublished), and
    every change announced on the channel the servers listen to, so it is in force in each of them at once
    (within refresh_seconds if the announcement is lost)."""

    def __init__(
        self, settings: Settings, engine: AsyncEngine, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.settings, self.engine, self.clock = settings, engine, clock
        self.catalog = Catalog()
        self.policy = PolicyEngine(self.catalog, PolicySet())

    async def refresh(self) -> None:
        """The catalog and policies in force now; CATALOG_NOT_LOADED before any catalog is."""
        async with self.engine.connect() as conn:
            catalog_version, _ = await read_versions(conn)
            catalog = self.catalog
            if catalog_version != catalog.version or catalog_version == 0:
                catalog = await catalog_store.current(conn)
                if catalog is None:
                    raise GovshareError("CATALOG_NOT_LOADED")
                catalog = without_nonconforming(catalog, await check_sources(catalog, self.settings))
            policies = await load_policy_set(conn, silence_approves=self.settings.silence_approves)
        self.catalog, self.policy = catalog, PolicyEngine(catalog, policies, previous=self.policy)

    async def changed(self) -> None:
        """A change was committed: announce the policy version now in the database (govshare/notify.py)."""
        if not self.settings.policy_notify_url:
            return
        async with self.engine.connect() as conn:
            _, version = await read_versions(conn)
        notifier = PolicyNotifier(self.settings.policy_notify_url)
        try:
            await notifier.publish(version)
        finally:
            await notifier.close()


async def document_in_force(runtime: Platform) -> tuple[int, documents.PolicyDocument]:
    async with runtime.engine.connect() as conn:
        return await documents.current_document(conn)


async def _save(runtime: Platform, change, staff: Author, reason: str, based_on: int | None) -> int | None:
    """Apply ``change`` to the document in force and save it; None when nothing changed."""
    _require_reason(reason)
    await runtime.refresh()  # validate against the catalog in force now
    async with runtime.engine.begin() as conn:
        _, document = await documents.current_document(conn)
        version = await documents.save(
            conn, runtime.catalog, change(document), author=staff.username, reason=reason, based_on=based_on
        )
    if version is not None:
        await runtime.changed()
    return version


def _require_reason(reason: str) -> None:
    if not reason or not reason.strip():  # before anything else: a change without a reason is not looked at
        raise GovshareError("REASON_REQUIRED")


def rule_from(entry: dict) -> documents.Rule:
    """An allow rule from plain fields (form or API input); form problems raise PolicyInvalid."""
    return documents.from_data({"rules": [entry]}, None).rules[0]


def deny_from(entry: dict) -> documents.DenyRule:
    return documents.from_data({"deny": [entry]}, None).deny[0]


async def put_rule(
    runtime: Platform, staff: Author, entry: dict, *, reason: str, based_on: int | None = None
) -> tuple[str, int | None]:
    """Add an allow rule (no id) or change the one with ``entry['id']``: (rule id, new version)."""
    _require_reason(reason)
    rule = rule_from(entry)
    if entry.get("id"):
        await _require_rule(runtime, rule.id, deny=False)
    return rule.id, await _save(runtime, lambda doc: documents.with_rule(doc, rule), staff, reason, based_on)


async def put_deny(
    runtime: Platform, staff: Author, entry: dict, *, reason: str, based_on: int | None = None
) -> tuple[str, int | None]:
    _require_reason(reason)
    rule = deny_from(entry)
    if entry.get("id"):
        existing = await _require_rule(runtime, rule.id, deny=True)
        if isinstance(existing, documents.DenyRule) and existing.overdue and "overdue" not in entry:
            # an edit of a restriction for lagging (a form, the API) keeps the facts it was made on
            rule = replace(rule, overdue=existing.overdue)
    return rule.id, await _save(runtime, lambda doc: documents.with_deny(doc, rule), staff, reason, based_on)


async def _require_rule(runtime: Platform, rule_id: str, *, deny: bool) -> documents.Rule | documents.DenyRule:
    _, document = await document_in_force(runtime)
    found = document.deny_rule(rule_id) if deny else document.rule(rule_id)
    if found is None:
        raise GovshareError("POLICY_RULE_NOT_FOUND", rule=rule_id)
    return found


async def remove_rule(
    runtime: Platform, staff: Author, rule_id: str, *, reason: str, based_on: int | None = None
) -> int | None:
    return await _save(runtime, lambda doc: documents.without(doc, rule_id), staff, reason, based_on)


async def import_document(
    runtime: Platform, staff: Author, text: str, *, reason: str, based_on: int | None = None
) -> int | None:
    """Replace the rules in force by the TOML document ``text`` (saved only if valid): the new version, or None
    when it equals the rules in force."""
    await runtime.refresh()
    document = documents.from_toml(text, runtime.catalog)
    async with runtime.engine.begin() as conn:
        version = await documents.save(
            conn, runtime.catalog, document, author=staff.username, reason=reason, action="import", based_on=based_on
        )
    if version is not None:
        await runtime.changed()
    return version


async def rollback(
    runtime: Platform, staff: Author, version: int, *, reason: str, based_on: int | None = None
) -> int | None:
    await runtime.refresh()
    async with runtime.engine.begin() as conn:
        saved = await documents.rollback(
            conn, runtime.catalog, version, author=staff.username, reason=reason, based_on=based_on
        )
    if saved is not None:
        await runtime.changed()
    return saved


async def validate_document(runtime: Platform, text: str) -> documents.PolicyDocument:
    """Read and check ``text`` as importing it would (its form, the catalog in force, the masks beside the grants
    in force), saving nothing; PolicyInvalid names every fault."""
    await runtime.refresh()
    parsed = documents.from_toml(text, runtime.catalog)
    async with runtime.engine.connect() as conn:
        if problems := await documents.mask_conflicts(conn, runtime.catalog, parsed):
            raise documents.PolicyInvalid(problems)
    return parsed


async def lift_restriction(
    runtime: Platform, staff: Author, rule_id: str, *, reason: str, based_on: int | None = None
) -> int | None:
    """Remove the deny rule ``rule_id`` (a restriction, Art 20): RESTRICTION_ALREADY_LIFTED when an earlier
    version held it, RESTRICTION_NOT_FOUND when none did (an allow rule's id is not a restriction's)."""
    _, document = await document_in_force(runtime)
    if document.deny_rule(rule_id) is None:
        if any(v.document.deny_rule(rule_id) for v in await history(runtime)):
            raise GovshareError("RESTRICTION_ALREADY_LIFTED", restriction=rule_id)
        raise NotFoundError("RESTRICTION_NOT_FOUND", restriction=rule_id)
    return await _save(runtime, lambda doc: documents.without(doc, rule_id), staff, reason, based_on)


# Freshness (Art 16, 20): what the coordinator and the providers see, and the restriction of a lagging department.


async def freshness_states(runtime: Platform, *, provider: str = "", check: bool = False) -> list[freshness.Freshness]:
    """Every published resource's freshness now (``provider``'s only, when given), from what was recorded of its
    source; ``check`` reads every source first and records it (what a server's schedule does)."""
    await runtime.refresh()
    if check:
        recorded = await freshness.record_changes(
            runtime.engine,
            runtime.catalog,
            expand=runtime.settings.expand,
            timeout=runtime.settings.source_timeout_seconds,
            now=runtime.clock(),
        )
    else:
        async with runtime.engine.connect() as conn:
            recorded = await freshness.load(conn)
    if provider and provider not in runtime.catalog.departments:
        raise NotFoundError("DEPARTMENT_NOT_FOUND", department=provider)
    return freshness.states(
        runtime.catalog,
        recorded,
        runtime.clock(),
        realtime_minutes=runtime.settings.freshness_realtime_minutes,
        provider=provider,
    )


async def overdue(runtime: Platform, *, provider: str = "", check: bool = False) -> list[freshness.Freshness]:
    """The overdue resources (of ``provider`` only, when given)."""
    return [f for f in await freshness_states(runtime, provider=provider, check=check) if f.overdue]


async def restrict_lagging(
    runtime: Platform, staff: Author, department: str, *, reason: str, based_on: int | None = None
) -> tuple[str, int | None, list[freshness.Freshness]]:
    """Restrict ``department`` from every resource for not keeping its own up to date (Art 20), in one action: a deny
    rule with ``reason`` and the facts of each of its resources overdue now attached (DEPARTMENT_NOT_OVERDUE when none
    is). Lifted as any restriction (``lift_restriction``). Returns (rule id, new version, the overdue resources)."""
    _require_reason(reason)
    lagging = await overdue(runtime, provider=department)
    if not lagging:
        raise GovshareError("DEPARTMENT_NOT_OVERDUE", department=department)
    facts = tuple(documents.OverdueFact(**f.facts()) for f in lagging)
    rule = documents.DenyRule(
        documents.new_id("D"), department, documents.EVERY_RESOURCE, reason.strip(), overdue=facts
    )
    version = await _save(runtime, lambda doc: documents.with_deny(doc, rule), staff, reason, based_on)
    return rule.id, version, lagging


async def history(runtime: Platform) -> list[documents.Version]:
    async with runtime.engine.connect() as conn:
        return await documents.history(conn)


async def version(runtime: Platform, number: int) -> documents.Version:
    async with runtime.engine.connect() as conn:
        return await documents.version_at(conn, number)


async def explain_access(
    runtime: Platform, department: str, purpose: str, resource: str, at: datetime | None, lang: str
) -> Explanation:
    """The decision the GraphQL service would make now (or at ``at``), from the engine it uses."""
    await runtime.refresh()
    return explain(runtime.policy, department, purpose, resource, at or runtime.clock(), lang)


@dataclass(frozen=True)
class GrantInForce:
    grant: Grant
    source: str  # the application it came from, who recorded it, or "rule" for a staff rule


async def data_error_course(runtime: Platform, *, status: str = "") -> list:
    """Every data-error report's course for staff (the console), overdue ones sent to the coordinator first: never
    the record's key value or the proposed value (staff are no party to the record)."""
    async with runtime.engine.begin() as conn:
        await corrections.settle(conn, runtime.catalog, runtime.clock())
    columns = [c for c in data_error_reports.c if c.name not in ("key_sealed", "proposed_sealed")]
    query = select(*columns).order_by(data_error_reports.c.reported_at.desc(), data_error_reports.c.id)
    if status:
        query = query.where(data_error_reports.c.status == status)
    async with runtime.engine.connect() as conn:
        return list((await conn.execute(query)).all())


async def grants_in_force(
    runtime: Platform, *, department: str = "", resource: str = "", purpose: str = ""
) -> list[GrantInForce]:
    """Every grant deciding now: approved and deemed applications, direct and legal-basis grants, staff rules."""
    await runtime.refresh()
    now = runtime.clock()
    async with runtime.engine.connect() as conn:
        sources = {r.id: (r.application_id or r.created_by) for r in (await conn.execute(select(grants))).all()}
    found = [
        GrantInForce(g, sources.get(g.id) or ("rule" if g.id.startswith("P-") else g.id))
        for g in runtime.policy.policies.grants
        if g.revoked_at is None
        and g.valid_from <= now < g.valid_until
        and (not department or g.consumer == department)
        and (not resource or g.resource == resource)
        and (not purpose or purpose in g.purposes)
    ]
    return sorted(found, key=lambda f: (f.grant.consumer, f.grant.resource, f.grant.id))


def matches(rule, *, department: str = "", resource: str = "", purpose: str = "") -> bool:
    """The console's and the API's filter on rules (allow or deny) by department, resource and purpose."""
    if department and rule.department != department:
        return False
    if resource and rule.resource not in (resource, documents.EVERY_RESOURCE):
        return False
    return not (purpose and purpose not in getattr(rule, "purposes", (purpose,)))


# Trusted documents (policies/trusted.py), for the command and the admin API alike. A document is checked against
# the schema in force before it is registered; the schema is GraphQL, which this package does not speak, so the
# caller supplies the check: (file name, text) -> the names of its operations, or DOCUMENT_INVALID.
DocumentCheck = Callable[[str, str], tuple[str, ...]]


@dataclass(frozen=True)
class Registration:
    """One document of a registration: its id, name, operations, and whether it was new."""

    id: str
    name: str
    operations: tuple[str, ...]
    new: bool


async def register_documents(
    runtime: Platform,
    staff: Author,
    key_id: str,
    texts: list[tuple[str, str]],
    *,
    check: DocumentCheck,
    reason: str | None = None,
) -> list[Registration]:
    """Register ``texts`` ((name, text) each) for the application of ``key_id``, all or none: every text is checked
    before any is registered."""
    if not texts:
        raise GovshareError("BAD_REQUEST", detail="no document to register")
    checked = [(name, text, check(name, text)) for name, text in texts]
    done = []
    async with runtime.engine.begin() as conn:
        department, application = await trusted.application_of(conn, key_id)
        for name, text, names in checked:
            document_id, new = await trusted.register(
                conn,
                department=department,
                application=application,
                name=name,
                text=text,
                operations=names,
                actor=staff.username,
                reason=reason,
                now=runtime.clock(),
            )
            done.append(Registration(document_id, name, names, new))
    if any(r.new for r in done):
        await runtime.changed()
    return done


async def withdraw_document(runtime: Platform, staff: Author, key_id: str, document_id: str, *, reason: str) -> None:
    _require_reason(reason)
    async with runtime.engine.begin() as conn:
        department, application = await trusted.application_of(conn, key_id)
        await trusted.withdraw(
            conn,
            department=department,
            application=application,
            document=document_id,
            actor=staff.username,
            reason=reason,
            now=runtime.clock(),
        )
    await runtime.changed()


async def restrict_key(runtime: Platform, staff: Author, key_id: str, *, only: bool, reason: str | None = None) -> bool:
    """Restrict the key to its application's trusted documents, or lift that; whether anything changed."""
    async with runtime.engine.begin() as conn:
        changed = await trusted.restrict(
            conn, key_id, only=only, actor=staff.username, reason=reason, now=runtime.clock()
        )
    if changed:
        await runtime.changed()
    return changed


async def trusted_documents(runtime: Platform, key_id: str) -> tuple[str, list[trusted.Registered]]:
    """(application, its documents in force) of the key's application."""
    async with runtime.engine.connect() as conn:
        department, application = await trusted.application_of(conn, key_id)
        return application, await trusted.registered(conn, department=department, application=application)


# --- the catalog kept by its departments (catalog/workflow.py): the coordinating authority's review in the console


CATALOG_OFFICE = "coordinator"  # staff without a department act as the coordinating authority's office (共享主管部门)


def catalog_actor(staff: Author) -> workflow.Actor:
    """A signed-in staff member in the catalog workflow: a department's catalog staff (``catalog_editor``: keeps its
    own department's entries, never reviews), or the coordinating authority's office (reviews every department's)."""
    department = getattr(staff, "department", None)
    if department:
        return workflow.Actor(department, staff.username, ("catalog_editor",))
    return workflow.Actor(CATALOG_OFFICE, staff.username, ("coordinator",))


@dataclass(frozen=True)
class SubmissionView:
    submission: workflow.Submission
    changes: list[catalog_store.FieldChange]


async def catalog_submissions(runtime: Platform, staff: Author, *, status: str | None = None) -> list[SubmissionView]:
    """The submissions ``staff`` may see: a department's catalog staff its own department's only."""
    department = getattr(staff, "department", None) or None
    async with runtime.engine.connect() as conn:
        found = await workflow.listing(conn, department=department, status=status)
        return [SubmissionView(s, await workflow.submission_diff(conn, s)) for s in found]


async def submit_catalog_file(
    runtime: Platform, staff: Author, filename: str, content: bytes, *, reason: str, draft: bool
) -> str:
    """A catalog file uploaded in the console (TOML, or an .xlsx workbook by its name) as a submission."""
    if not reason.strip():
        raise GovshareError("REASON_REQUIRED")
    name = Path(filename or "catalog.toml").name
    workbook = content if name.lower().endswith(".xlsx") else None
    text = ""
    if workbook is None:
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CatalogError([Problem(name, None, None, "TOML_SYNTAX", str(exc))]) from exc
    async with runtime.engine.begin() as conn:
        return await workflow.submit(
            conn,
            runtime.settings,
            catalog_actor(staff),
            source=name,
            text=text,
            reason=reason,
            now=runtime.clock(),
            draft=draft,
            workbook=workbook,
        )


async def send_submission(runtime: Platform, staff: Author, submission_id: str) -> None:
    async with runtime.engine.begin() as conn:
        await workflow.send(conn, runtime.settings, catalog_actor(staff), submission_id, now=runtime.clock())


async def approve_submission(runtime: Platform, staff: Author, submission_id: str, *, reason: str) -> int:
    async with runtime.engine.begin() as conn:
        version = await workflow.approve(
            conn, runtime.settings, catalog_actor(staff), submission_id, reason=reason, now=runtime.clock()
        )
    await runtime.changed()
    return version


async def return_submission(runtime: Platform, staff: Author, submission_id: str, *, reason: str) -> None:
    async with runtime.engine.begin() as conn:
        await workflow.return_(conn, catalog_actor(staff), submission_id, reason=reason, now=runtime.clock())


async def retire_resource(runtime: Platform, staff: Author, code: str, *, reason: str) -> int:
    async with runtime.engine.begin() as conn:
        version = await workflow.retire(conn, catalog_actor(staff), code, reason=reason, now=runtime.clock())
    await runtime.changed()
    return version


async def catalog_history(
    runtime: Platform, resource: str | None = None, *, department: str | None = None
) -> list[catalog_store.Version]:
    """The catalog's versions; with ``department`` (a department's catalog staff) only those of its own changes and
    the whole-catalog loads, as a department key sees them over GraphQL."""
    if resource is not None and department is not None:
        known = runtime.catalog.resources.get(resource)
        if known is None or known.provider != department:
            return []
    async with runtime.engine.connect() as conn:
        return catalog_store.versions_of(await catalog_store.versions(conn, resource), department)


async def catalog_diff(
    runtime: Platform, before: int, after: int, *, department: str | None = None
) -> list[catalog_store.FieldChange]:
    """What changed between two versions; with ``department`` only that department's entries."""
    async with runtime.engine.connect() as conn:
        return catalog_store.diff(
            catalog_store.department_view(await catalog_store.document(conn, before), department),
            catalog_store.department_view(await catalog_store.document(conn, after), department),
        )
