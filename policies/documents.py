"""The policy rules security staff own, as versioned documents: allow rules and deny rules.

A document is the whole set of staff rules; every change (from the console, the admin API or the CLI)
saves a new complete version with who, when and why, after validating it against the catalog in force.
The latest version is in force. Versions are never changed: a rollback saves an earlier version's
rules again as a new version. Versions live in ``policy_versions`` (append-only, hash-chained).

- an allow rule (规则) grants a department some items of a resource for some purposes, for a period,
  optionally limited to rows (row scope), masked, or on a legal basis (which alone may name
  not-shared items, Art 5 last paragraph); it decides like a grant and is cited by its id;
- a deny rule (禁止规则) restricts a department from a resource (or all, "*"), optionally for a period,
  e.g. for not keeping its own data up to date (Art 20); it overrides every allow.

Grants that come from share applications stay in ``grants`` with their own process records.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import secrets
import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

import tomli_w
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from audit.chain import chain_heads
from catalog.model import Catalog, Resource, ShareType, typed_value
from connectors.masking import MASK_FORMS, is_mask, parse_mask
from govshare.errors import GovshareError, NotFoundError, problem_entry
from govshare.i18n import message
from govshare.platformdb import bump_policy_version
from policies import disclosure
from policies.tables import policy_versions

EVERY_RESOURCE = "*"
ACTIONS = ("change", "import", "rollback")
HEADER = "# govshare 策略规则 (policy rules): govshare policy validate|import FILE\n"


@dataclass(frozen=True)
class Rule:
    """An allow rule."""

    id: str
    department: str
    resource: str
    items: tuple[str, ...]
    purposes: tuple[str, ...]
    valid_from: datetime
    valid_until: datetime
    row_scope: dict[str, tuple[str, ...]] = field(default_factory=dict)
    masks: dict[str, str] = field(default_factory=dict)
    legal_basis: str | None = None
    note: str = ""


@dataclass(frozen=True)
class OverdueFact:
    """A resource of the restricted department that was overdue when the restriction was made (Art 20): its update
    cycle, its source's last change and when the next one was due (ISO 8601 UTC text, catalog/freshness.py)."""

    resource: str
    update_cycle: str
    last_change: str
    due_by: str


@dataclass(frozen=True)
class DenyRule:
    id: str
    department: str
    resource: str  # a resource code or "*"
    reason: str  # told to the department whose request it refuses
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    # A restriction for not keeping its data up to date (Art 20) carries the facts it was made on.
    overdue: tuple[OverdueFact, ...] = ()


@dataclass(frozen=True)
class PolicyDocument:
    rules: tuple[Rule, ...] = ()
    deny: tuple[DenyRule, ...] = ()

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def deny_rule(self, rule_id: str) -> DenyRule | None:
        return next((r for r in self.deny if r.id == rule_id), None)


@dataclass(frozen=True)
class Problem:
    """One fault in a document: which rule, which field, and a coded reason."""

    rule: str  # the rule's id, or "rules[3]" / "deny[0]" when it has none
    field: str | None
    code: str
    params: dict[str, Any] = dataclasses.field(default_factory=dict)  # here `field` names the field above

    def render(self, lang: str = "zh-CN") -> str:
        where = self.rule + (f" · {self.field}" if self.field else "")
        return f"{where}: [{self.code}] {message(self.code, lang, **self.params)}"


class PolicyInvalid(GovshareError):
    """A document refused as a whole; the rules in force stay as they were."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("POLICY_INVALID", count=len(problems))
        self.problems = problems

    def entries(self, lang: str) -> list[dict[str, Any]]:
        """The problems as the admin API lists them (``message`` is the reason, as the API has always named it)."""
        entries = [problem_entry(p.code, p.params, lang, rule=p.rule, field=p.field) for p in self.problems]
        return [{**entry, "message": entry["reason"]} for entry in entries]

    def details(self, lang: str) -> dict[str, Any]:
        return {**super().details(lang), "problems": self.entries(lang)}

    def __str__(self) -> str:
        return "\n".join(p.render("en") for p in self.problems)


@dataclass(frozen=True)
class Version:
    version: int
    at: datetime
    author: str
    reason: str
    action: str
    restored_version: int | None
    digest: str
    document: PolicyDocument


# --- the text forms ---------------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def to_data(document: PolicyDocument) -> dict[str, Any]:
    """Plain JSON-ready data, times as ISO 8601 UTC text; the stored and hashed form."""

    def when(moment: datetime | None) -> str | None:
        return None if moment is None else _utc(moment).isoformat().replace("+00:00", "Z")

    rules = []
    for r in document.rules:
        entry: dict[str, Any] = {
            "id": r.id,
            "department": r.department,
            "resource": r.resource,
            "items": list(r.items),
            "purposes": list(r.purposes),
            "valid_from": when(r.valid_from),
            "valid_until": when(r.valid_until),
        }
        if r.row_scope:
            entry["row_scope"] = {k: list(v) for k, v in r.row_scope.items()}
        if r.masks:
            entry["masks"] = dict(r.masks)
        if r.legal_basis:
            entry["legal_basis"] = r.legal_basis
        if r.note:
            entry["note"] = r.note
        rules.append(entry)
    deny = []
    for d in document.deny:
        entry = {"id": d.id, "department": d.department, "resource": d.resource, "reason": d.reason}
        if d.valid_from is not None:
            entry["valid_from"] = when(d.valid_from)
        if d.valid_until is not None:
            entry["valid_until"] = when(d.valid_until)
        if d.overdue:
            entry["overdue"] = [dataclasses.asdict(fact) for fact in d.overdue]
        deny.append(entry)
    return {"rules": rules, "deny": deny}


def canonical(document: PolicyDocument) -> str:
    return json.dumps(to_data(document), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def digest(document: PolicyDocument) -> str:
    return hashlib.sha256(canonical(document).encode()).hexdigest()


def to_toml(document: PolicyDocument) -> str:
    """The export form: TOML with real datetimes; ``from_toml`` reads it back to the same document."""
    data = to_data(document)

    def times(entry: dict[str, Any]) -> dict[str, Any]:
        return {k: (datetime.fromisoformat(v) if k in ("valid_from", "valid_until") else v) for k, v in entry.items()}

    body = {"rule": [times(r) for r in data["rules"]], "deny": [times(d) for d in data["deny"]]}
    return HEADER + tomli_w.dumps({k: v for k, v in body.items() if v})


def from_toml(text: str, catalog: Catalog) -> PolicyDocument:
    """Parse and validate; raises PolicyInvalid naming every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyInvalid([Problem("-", None, "POLICY_SYNTAX", {"detail": str(exc)})]) from exc
    unknown = set(data) - {"rule", "deny"}
    if unknown:
        raise PolicyInvalid([Problem("-", name, "POLICY_UNKNOWN_FIELD", {"field": name}) for name in sorted(unknown)])
    return from_data({"rules": data.get("rule", []), "deny": data.get("deny", [])}, catalog)


def from_data(data: Mapping[str, Any], catalog: Catalog | None) -> PolicyDocument:
    """Read a document from plain data (stored JSON, parsed TOML or the admin API) and validate it against
    ``catalog`` (None: only its form, for reading versions saved under an earlier catalog)."""
    problems: list[Problem] = []
    rules: list[Rule] = []
    deny: list[DenyRule] = []
    for index, entry in enumerate(_list(data.get("rules"), "rules", problems)):
        rule = _read_rule(entry, f"rules[{index}]", problems)
        if rule is not None:
            rules.append(rule)
    for index, entry in enumerate(_list(data.get("deny"), "deny", problems)):
        deny_rule = _read_deny(entry, f"deny[{index}]", problems)
        if deny_rule is not None:
            deny.append(deny_rule)
    document = PolicyDocument(tuple(rules), tuple(deny))
    seen: set[str] = set()
    for rule_id in [r.id for r in rules] + [d.id for d in deny]:
        if rule_id in seen:
            problems.append(Problem(rule_id, "id", "POLICY_DUPLICATE_ID", {"id": rule_id}))
        seen.add(rule_id)
    if catalog is not None:
        problems += validate(document, catalog)
    if problems:
        raise PolicyInvalid(problems)
    return document


def _list(value: object, name: str, problems: list[Problem]) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        problems.append(Problem(name, None, "POLICY_MALFORMED", {"detail": f"'{name}' must be a list of tables"}))
        return []
    return value


RULE_FIELDS = {
    "id",
    "department",
    "resource",
    "items",
    "purposes",
    "valid_from",
    "valid_until",
    "row_scope",
    "masks",
    "legal_basis",
    "note",
}
DENY_FIELDS = {"id", "department", "resource", "reason", "valid_from", "valid_until", "overdue"}
OVERDUE_FIELDS = tuple(f.name for f in dataclasses.fields(OverdueFact))


def _text(
    entry: dict[str, Any], name: str, where: str, problems: list[Problem], *, required: bool = True
) -> str | None:
    value = entry.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            problems.append(Problem(where, name, "POLICY_FIELD_REQUIRED", {"field": name}))
        return None
    if not isinstance(value, str):
        problems.append(Problem(where, name, "POLICY_MALFORMED", {"detail": f"'{name}' must be text"}))
        return None
    return value.strip()


def _texts(entry: dict[str, Any], name: str, where: str, problems: list[Problem]) -> tuple[str, ...]:
    value = entry.get(name)
    if value is None or value == []:
        problems.append(Problem(where, name, "POLICY_FIELD_REQUIRED", {"field": name}))
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        problems.append(Problem(where, name, "POLICY_MALFORMED", {"detail": f"'{name}' must be a list of names"}))
        return ()
    return tuple(dict.fromkeys(v.strip() for v in value))


def _time(entry: dict[str, Any], name: str, where: str, problems: list[Problem], *, required: bool) -> datetime | None:
    value = entry.get(name)
    if value is None or value == "":
        if required:
            problems.append(Problem(where, name, "POLICY_FIELD_REQUIRED", {"field": name}))
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            problems.append(Problem(where, name, "POLICY_BAD_TIME", {"value": value}))
            return None
    if isinstance(value, date) and not isinstance(value, datetime):
        problems.append(Problem(where, name, "POLICY_TIME_NO_OFFSET", {"value": str(value)}))
        return None
    if not isinstance(value, datetime):
        problems.append(Problem(where, name, "POLICY_BAD_TIME", {"value": str(value)}))
        return None
    if value.tzinfo is None:
        problems.append(Problem(where, name, "POLICY_TIME_NO_OFFSET", {"value": value.isoformat()}))
        return None
    return _utc(value)


def _mapping(
    entry: dict[str, Any], name: str, where: str, problems: list[Problem], *, values_are_lists: bool
) -> dict[str, Any]:
    value = entry.get(name) or {}
    ok = isinstance(value, dict) and all(
        isinstance(k, str)
        and (isinstance(v, list) and all(isinstance(x, str) for x in v) if values_are_lists else isinstance(v, str))
        for k, v in value.items()
    )
    if not ok:
        shape = "item = [values]" if values_are_lists else "item = mask"
        problems.append(Problem(where, name, "POLICY_MALFORMED", {"detail": f"'{name}' must be a table of {shape}"}))
        return {}
    return {k: tuple(v) for k, v in value.items()} if values_are_lists else dict(value)


def _read_rule(entry: dict[str, Any], where: str, problems: list[Problem]) -> Rule | None:
    before = len(problems)
    rule_id = _text(entry, "id", where, problems, required=False) or new_id("P")
    given = entry.get("id")
    where = given if isinstance(given, str) and given.strip() else where
    for name in sorted(set(entry) - RULE_FIELDS):
        problems.append(Problem(where, name, "POLICY_UNKNOWN_FIELD", {"field": name}))
    rule = Rule(
        id=rule_id,
        department=_text(entry, "department", where, problems) or "",
        resource=_text(entry, "resource", where, problems) or "",
        items=_texts(entry, "items", where, problems),
        purposes=_texts(entry, "purposes", where, problems),
        valid_from=_time(entry, "valid_from", where, problems, required=True) or _UNREAD,
        valid_until=_time(entry, "valid_until", where, problems, required=True) or _UNREAD,
        row_scope=_mapping(entry, "row_scope", where, problems, values_are_lists=True),
        masks=_mapping(entry, "masks", where, problems, values_are_lists=False),
        legal_basis=_text(entry, "legal_basis", where, problems, required=False),
        note=_text(entry, "note", where, problems, required=False) or "",
    )
    return rule if len(problems) == before else None


def _read_deny(entry: dict[str, Any], where: str, problems: list[Problem]) -> DenyRule | None:
    before = len(problems)
    rule_id = _text(entry, "id", where, problems, required=False) or new_id("D")
    given = entry.get("id")
    where = given if isinstance(given, str) and given.strip() else where
    for name in sorted(set(entry) - DENY_FIELDS):
        problems.append(Problem(where, name, "POLICY_UNKNOWN_FIELD", {"field": name}))
    rule = DenyRule(
        id=rule_id,
        department=_text(entry, "department", where, problems) or "",
        resource=_text(entry, "resource", where, problems, required=False) or EVERY_RESOURCE,
        reason=_text(entry, "reason", where, problems) or "",
        valid_from=_time(entry, "valid_from", where, problems, required=False),
        valid_until=_time(entry, "valid_until", where, problems, required=False),
        overdue=_overdue(entry.get("overdue"), where, problems),
    )
    return rule if len(problems) == before else None


def _overdue(value: object, where: str, problems: list[Problem]) -> tuple[OverdueFact, ...]:
    """A deny rule's ``overdue`` facts: a list of tables, each with exactly the OverdueFact fields as text."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(
        isinstance(e, dict) and set(e) == set(OVERDUE_FIELDS) and all(isinstance(v, str) for v in e.values())
        for e in value
    ):
        problems.append(
            Problem(where, "overdue", "POLICY_MALFORMED", {"detail": "overdue: " + ", ".join(OVERDUE_FIELDS)})
        )
        return ()
    return tuple(OverdueFact(**entry) for entry in value)


_UNREAD = datetime.min.replace(tzinfo=UTC)  # a required time that could not be read: the rule is dropped


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


# --- validation against the catalog ------------------------------------------------------------------

MAX_SCOPE_VALUES = 200  # values one row scope may list: each is bound in every place the scope is asked


def scope_value_problems(target: Resource, name: str, values: Collection[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """Row-scope values that are not values of their item's type (``3`` for an integer, ``2026-01-01`` for a date),
    repeated, or too many (a statement binds each of them once per item the scope decides)."""
    item = target.item(name)
    found: list[tuple[str, str, dict[str, Any]]] = []
    if len(values) > MAX_SCOPE_VALUES or len(set(values)) != len(values):
        found.append(
            ("row_scope", "GRANT_SCOPE_TOO_WIDE", {"item": name, "limit": MAX_SCOPE_VALUES, "count": len(values)})
        )
    if item is None:
        return found
    for value in values:
        try:
            typed_value(item.type, value)
        except ValueError:
            found.append(("row_scope", "GRANT_SCOPE_VALUE_TYPE", {"item": name, "value": value, "type": item.type}))
    return found


def grant_problems(
    catalog: Catalog,
    *,
    department: str,
    resource: str,
    items: Collection[str],
    purposes: Collection[str],
    valid_from: datetime,
    valid_until: datetime,
    row_scope: Mapping[str, Collection[str]],
    masks: Mapping[str, str],
    legal_basis: str | None,
) -> list[tuple[str, str, dict[str, Any]]]:
    """What is wrong with a grant or allow rule, as (field, code, params): the one check for both."""
    found: list[tuple[str, str, dict[str, Any]]] = []
    if department not in catalog.departments:
        found.append(("department", "DEPARTMENT_NOT_FOUND", {"department": department}))
    target = catalog.resources.get(resource)
    if target is None:
        found.append(("resource", "RESOURCE_NOT_FOUND", {"resource": resource}))
        return found
    if target.provider == department:
        found.append(("department", "GRANT_FOR_PROVIDER", {"department": department, "resource": resource}))
    if not items:
        found.append(("items", "GRANT_NO_ITEMS", {}))
    for place, names in (("items", items), ("row_scope", row_scope), ("masks", masks)):
        for name in names:
            if target.item(name) is None:
                found.append((place, "ITEM_NOT_FOUND", {"resource": resource, "item": name}))
    if not purposes:
        found.append(("purposes", "GRANT_NO_PURPOSES", {}))
    if department in catalog.departments:
        for code in purposes:
            if catalog.purpose_for(department, code) is None:
                found.append(("purposes", "PURPOSE_NOT_FOUND", {"department": department, "purpose": code}))
    for name, mask in masks.items():
        if (masked := target.item(name)) is None:
            continue
        if not is_mask(mask):
            found.append(("masks", "GRANT_BAD_MASK", {"mask": mask, "item": name, "kinds": MASK_FORMS}))
        elif not parse_mask(mask).applies_to(masked.type):  # a masked value keeps its item's type
            found.append(("masks", "GRANT_MASK_WRONG_TYPE", {"item": name, "mask": mask, "type": masked.type}))
        elif name not in items:
            found.append(("masks", "GRANT_MASK_NOT_COVERED", {"item": name}))
    for name, values in row_scope.items():
        if not values or not all(isinstance(v, str) and v for v in values):
            found.append(("row_scope", "GRANT_EMPTY_SCOPE", {"item": name}))
        # A scope on a column the consumer can neither read nor filter by would tell it that column's values.
        elif (scoped := target.item(name)) is not None and name not in items and not scoped.filterable:
            found.append(("row_scope", "GRANT_SCOPE_NOT_FILTERABLE", {"item": name}))
        else:
            found += scope_value_problems(target, name, values)
    if valid_until <= valid_from:
        found.append(("valid_until", "GRANT_BAD_PERIOD", {}))
    not_shared = [
        n
        for n in items
        if (granted := target.item(n)) is not None and target.share_type_of(granted) == ShareType.NOT_SHARED
    ]
    if legal_basis is None and not_shared:
        found.append(("items", "GRANT_NOT_SHARED_ITEMS", {"items": ", ".join(not_shared)}))
    return found


def validate(document: PolicyDocument, catalog: Catalog) -> list[Problem]:
    problems: list[Problem] = []
    for rule in document.rules:
        for place, code, params in grant_problems(
            catalog,
            department=rule.department,
            resource=rule.resource,
            items=rule.items,
            purposes=rule.purposes,
            valid_from=rule.valid_from,
            valid_until=rule.valid_until,
            row_scope=rule.row_scope,
            masks=rule.masks,
            legal_basis=rule.legal_basis,
        ):
            problems.append(Problem(rule.id, place, code, params))
    for deny in document.deny:
        if deny.department not in catalog.departments:
            problems.append(Problem(deny.id, "department", "DEPARTMENT_NOT_FOUND", {"department": deny.department}))
        if not deny.reason.strip():
            problems.append(Problem(deny.id, "reason", "POLICY_FIELD_REQUIRED", {"field": "reason"}))
        if deny.resource != EVERY_RESOURCE and deny.resource not in catalog.resources:
            problems.append(Problem(deny.id, "resource", "RESOURCE_NOT_FOUND", {"resource": deny.resource}))
        if deny.valid_from and deny.valid_until and deny.valid_until <= deny.valid_from:
            problems.append(Problem(deny.id, "valid_until", "GRANT_BAD_PERIOD", {}))
    return problems


async def mask_conflicts(conn: AsyncConnection, catalog: Catalog, document: PolicyDocument) -> list[Problem]:
    """The masks that putting ``document`` in force in place of the rules in force would undo, beside the grants
    and pending applications in the platform database (policies/disclosure.py): GRANT_MASK_UNDONE, on the rule
    whose mask is undone, or else on the rule that reveals what another's mask hides."""
    from policies.store import load_policy_set, rule_grant  # the store reads this module's documents

    policies = await load_policy_set(conn)
    _, in_force = await current_document(conn)
    stored = [g for g in policies.grants if in_force.rule(g.id) is None]
    changed = {r.id for r in document.rules if in_force.rule(r.id) != r} | {
        r.id for r in in_force.rules if document.rule(r.id) is None
    }
    problems: list[Problem] = []
    for found in disclosure.newly_undone(
        catalog,
        stored + [rule_grant(r) for r in in_force.rules],
        stored + [rule_grant(r) for r in document.rules],
        now=datetime.now(UTC),
    ):
        rule = (
            found.grant if document.rule(found.grant) else next((o for o in found.others if o in changed), found.grant)
        )
        problems.append(Problem(rule, "masks" if rule == found.grant else "items", disclosure.CODE, found.params()))
    return problems


# --- versions in the platform database ---------------------------------------------------------------


def _version(row: Row[Any]) -> Version:
    return Version(
        version=row.seq,
        at=row.at,
        author=row.author,
        reason=row.reason,
        action=row.action,
        restored_version=row.restored_version,
        digest=row.digest,
        document=from_data(row.document, None),
    )


async def current(conn: AsyncConnection) -> Version | None:
    row = (await conn.execute(select(policy_versions).order_by(policy_versions.c.seq.desc()).limit(1))).first()
    return None if row is None else _version(row)


async def current_document(conn: AsyncConnection) -> tuple[int, PolicyDocument]:
    latest = await current(conn)
    return (0, PolicyDocument()) if latest is None else (latest.version, latest.document)


async def version_at(conn: AsyncConnection, version: int) -> Version:
    row = (await conn.execute(select(policy_versions).where(policy_versions.c.seq == version))).first()
    if row is None:
        raise NotFoundError("POLICY_VERSION_NOT_FOUND", version=version)
    return _version(row)


async def history(conn: AsyncConnection) -> list[Version]:
    rows = (await conn.execute(select(policy_versions).order_by(policy_versions.c.seq.desc()))).all()
    return [_version(r) for r in rows]


async def save(
    conn: AsyncConnection,
    catalog: Catalog,
    document: PolicyDocument,
    *,
    author: str,
    reason: str,
    action: str = "change",
    based_on: int | None = None,
    restored_version: int | None = None,
) -> int | None:
    """Validate ``document`` and save it as the new version in force, in the caller's transaction.

    ``based_on``: the version the change was made from; if another change came in between, the change
    is refused (POLICY_CONFLICT) rather than silently undoing it. Returns the new version, or None when
    the document equals the one in force (nothing saved).
    """
    if not reason or not reason.strip():
        raise GovshareError("REASON_REQUIRED")
    if not author or not author.strip():
        raise GovshareError("POLICY_AUTHOR_REQUIRED")
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    problems = validate(document, catalog)
    ids = [r.id for r in document.rules] + [d.id for d in document.deny]
    problems += [
        Problem(i, "id", "POLICY_DUPLICATE_ID", {"id": i}) for i in sorted({i for i in ids if ids.count(i) > 1})
    ]
    if problems:
        raise PolicyInvalid(problems)
    # Take the chain head first: concurrent savers, in any process, queue here.
    await conn.execute(chain_heads.update().where(chain_heads.c.chain == "policy").values(seq=chain_heads.c.seq))
    latest = await current(conn)
    in_force = 0 if latest is None else latest.version
    if based_on is not None and based_on != in_force:
        raise GovshareError("POLICY_CONFLICT", version=based_on, current=in_force)
    if problems := await mask_conflicts(conn, catalog, document):
        raise PolicyInvalid(problems)
    if latest is not None and latest.digest == digest(document):
        return None
    if latest is None and not document.rules and not document.deny:
        return None
    from audit.chain import append  # the chain code is shared with the records

    await append(
        conn,
        "policy",
        [
            {
                "at": datetime.now(UTC),
                "author": author.strip(),
                "reason": reason.strip(),
                "action": action,
                "restored_version": restored_version,
                "document": to_data(document),
                "digest": digest(document),
            }
        ],
    )
    await bump_policy_version(conn)
    return in_force + 1


async def rollback(
    conn: AsyncConnection, catalog: Catalog, to_version: int, *, author: str, reason: str, based_on: int | None = None
) -> int | None:
    """Save version ``to_version``'s rules again, as a new version: history only grows."""
    earlier = await version_at(conn, to_version)
    return await save(
        conn,
        catalog,
        earlier.document,
        author=author,
        reason=reason,
        action="rollback",
        based_on=based_on,
        restored_version=to_version,
    )


# --- edits: one rule at a time, each a new version ---------------------------------------------------


async def edit(
    conn: AsyncConnection,
    catalog: Catalog,
    change: Callable[[PolicyDocument], PolicyDocument],
    *,
    author: str,
    reason: str,
    based_on: int | None = None,
) -> int | None:
    """Apply ``change`` (PolicyDocument -> PolicyDocument) to the document in force and save the result."""
    _, document = await current_document(conn)
    return await save(conn, catalog, change(document), author=author, reason=reason, based_on=based_on)


def with_rule(document: PolicyDocument, rule: Rule) -> PolicyDocument:
    """Add ``rule``, or replace the rule with its id."""
    if document.rule(rule.id) is None:
        return replace(document, rules=(*document.rules, rule))
    return replace(document, rules=tuple(rule if r.id == rule.id else r for r in document.rules))


def with_deny(document: PolicyDocument, rule: DenyRule) -> PolicyDocument:
    if document.deny_rule(rule.id) is None:
        return replace(document, deny=(*document.deny, rule))
    return replace(document, deny=tuple(rule if r.id == rule.id else r for r in document.deny))


def without(document: PolicyDocument, rule_id: str) -> PolicyDocument:
    if document.rule(rule_id) is None and document.deny_rule(rule_id) is None:
        raise NotFoundError("POLICY_RULE_NOT_FOUND", rule=rule_id)
    return PolicyDocument(
        tuple(r for r in document.rules if r.id != rule_id), tuple(d for d in document.deny if d.id != rule_id)
    )


# --- differences between two versions ----------------------------------------------------------------


@dataclass(frozen=True)
class RuleChange:
    rule: str
    kind: str  # "rule" | "deny"
    change: str  # added | removed | changed
    fields: dict[str, tuple[Any, Any]]  # field -> (before, after); for added/removed every field


def diff(before: PolicyDocument, after: PolicyDocument) -> list[RuleChange]:
    changes: list[RuleChange] = []
    a, b = to_data(before), to_data(after)
    for kind, key in (("rule", "rules"), ("deny", "deny")):
        old = {e["id"]: e for e in a[key]}
        new = {e["id"]: e for e in b[key]}
        for rule_id in list(old) + [i for i in new if i not in old]:
            if rule_id not in new:
                changes.append(
                    RuleChange(rule_id, kind, "removed", {k: (v, None) for k, v in old[rule_id].items() if k != "id"})
                )
            elif rule_id not in old:
                changes.append(
                    RuleChange(rule_id, kind, "added", {k: (None, v) for k, v in new[rule_id].items() if k != "id"})
                )
            elif old[rule_id] != new[rule_id]:
                names = [
                    k
                    for k in dict.fromkeys([*old[rule_id], *new[rule_id]])
                    if old[rule_id].get(k) != new[rule_id].get(k)
                ]
                changes.append(
                    RuleChange(rule_id, kind, "changed", {k: (old[rule_id].get(k), new[rule_id].get(k)) for k in names})
                )
    return changes


def text_diff(before: PolicyDocument, after: PolicyDocument, before_name: str, after_name: str) -> str:
    """A unified diff of the two export forms, for people who read diffs."""
    return "".join(
        difflib.unified_diff(
            to_toml(before).splitlines(keepends=True),
            to_toml(after).splitlines(keepends=True),
            fromfile=before_name,
            tofile=after_name,
        )
    )
