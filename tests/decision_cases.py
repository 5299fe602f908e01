"""Decision case files (tests/cases/*.toml): read, validated and run against the policy engine in-process.

A case file is self-contained, as Apache Ranger's policy-engine tests and pycasbin's examples are: its catalog
excerpt, its grants, staff allow and deny rules, the request time, and requests with the decisions expected.
The format is documented in tests/README.md ("Decision case files"). Anything malformed (an unknown key, a
missing expectation, a catalog or policy the platform would refuse) raises CaseFileError naming the file and
the case; nothing is skipped.
"""

from __future__ import annotations

import re
import tempfile
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path

import tomli_w

from catalog.loader import load_catalog
from catalog.model import Catalog
from govshare.errors import CatalogError
from policies import documents
from policies.engine import PolicyEngine
from policies.model import AccessDecision, Allow, Deny, Grant, GrantKind, ItemDecision, PolicySet, Restriction
from policies.store import rule_grant

CASES_DIR = Path(__file__).parent / "cases"
REASONS = {*Allow, *Deny}
EVERY_ROW = "all"

_TOP = {"description", "at", "http", "catalog", "grant", "rule", "deny", "case"}
_CATALOG = {"departments", "resources"}
_GRANT = {
    "id",
    "kind",
    "consumer",
    "resource",
    "items",
    "purposes",
    "valid_from",
    "valid_until",
    "row_scope",
    "masks",
    "legal_basis",
    "revoked_at",
}
_CASE = {"why", "department", "purpose", "resource", "at", "items", "rows", "grants_used"}
_ITEM = {"reason", "mask", "by", "covers", "params"}
_COVER = {"by", "mask", "rows"}
_KINDS = {"grant": GrantKind.GRANT, "legal_basis": GrantKind.LEGAL_BASIS, "deemed": GrantKind.DEEMED}


class CaseFileError(Exception):
    """A case file that cannot be run as written."""


class CaseFailed(AssertionError):
    """A case whose decision is not the one expected."""


Scopes = tuple[tuple[tuple[str, tuple[str, ...]], ...], ...] | None  # as AccessDecision.scopes: None is every row


@dataclass(frozen=True)
class Cover:
    by: str | None  # None: the item's share type (written ``by = ""``)
    mask: str | None
    rows: tuple[tuple[str, tuple[str, ...]], ...]  # one scope; (): every row


@dataclass(frozen=True)
class Expected:
    reason: str
    mask: str | None
    by: str | None  # None: not checked
    covers: tuple[Cover, ...] | None  # None: not checked
    params: dict[str, str]


@dataclass(frozen=True)
class Case:
    file: str
    why: str
    department: str
    purpose: str
    resource: str
    at: datetime
    items: dict[str, Expected]
    rows: Scopes
    grants_used: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.file}: {self.why}"


@dataclass
class CaseFile:
    path: Path
    description: str
    at: datetime
    http: bool
    catalog: Catalog
    policies: PolicySet
    grants: tuple[Grant, ...]  # the file's [[grant]]s (``policies`` adds its allow rules)
    document: documents.PolicyDocument  # its [[rule]]s and [[deny]] rules
    cases: list[Case] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------------
# Reading


class _Problems:
    def __init__(self, path: Path) -> None:
        self.path, self.found = path, []

    def add(self, where: str, text: str) -> None:
        self.found.append(f"{where}: {text}")

    def raise_any(self) -> None:
        if self.found:
            raise CaseFileError(f"{_shown(self.path)} is malformed:\n  " + "\n  ".join(self.found))


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(CASES_DIR.parent.parent))
    except ValueError:
        return str(path)


def _keys(table, allowed: set[str], required: set[str], where: str, problems: _Problems) -> bool:
    if not isinstance(table, dict):
        problems.add(where, "expected a table")
        return False
    for key in sorted(set(table) - allowed):
        problems.add(where, f"unknown key {key!r} (known: {', '.join(sorted(allowed))})")
    for key in sorted(required - set(table)):
        problems.add(where, f"missing key {key!r}")
    return not (set(table) - allowed) and not (required - set(table))


def _moment(value, where: str, problems: _Problems) -> datetime | None:
    if not isinstance(value, datetime) or value.tzinfo is None:
        problems.add(where, f"expected a TOML date-time with an offset (2026-03-01T09:00:00+08:00), got {value!r}")
        return None
    return value


def _texts(value, where: str, problems: _Problems) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        problems.add(where, f"expected a non-empty list of names, got {value!r}")
        return ()
    return tuple(value)


def _api_name(code: str) -> str:
    tail = code.split(".", 1)[-1]
    return re.sub(r"[-_]([a-z0-9])", lambda m: m.group(1).upper(), tail)


def _catalog(raw: dict, problems: _Problems) -> Catalog | None:
    """The excerpt, completed with what decisions never read, through the catalog loader (all its checks)."""
    if not _keys(raw, _CATALOG, {"departments", "resources"}, "catalog", problems):
        return None
    departments = raw["departments"]
    if not isinstance(departments, dict) or not departments:
        problems.add("catalog.departments", "expected a table of department code = [its purposes]")
        return None
    resources = raw["resources"]
    if not isinstance(resources, list) or not all(isinstance(r, dict) for r in resources):
        problems.add("catalog.resources", "expected [[catalog.resources]] tables")
        return None
    files: dict[str, dict] = {}
    for code, purposes in departments.items():
        if not isinstance(purposes, list) or not all(isinstance(p, str) for p in purposes):
            problems.add(f"catalog.departments.{code}", f"expected a list of purpose codes, got {purposes!r}")
            continue
        files[code] = {
            "department": {"code": code, "name": code},
            "purposes": [{"code": p, "name": p} for p in purposes],
            "resources": [],
        }
    for index, resource in enumerate(resources):
        where = f"catalog.resources[{index}] ({resource.get('code', '?')})"
        provider = resource.get("provider")
        if provider not in files:
            problems.add(where, f"'provider' must be one of catalog.departments, got {provider!r}")
            continue
        entry = {k: v for k, v in resource.items() if k != "provider"}
        code = str(entry.get("code", ""))
        items = entry.get("items")
        if isinstance(items, list) and all(isinstance(i, dict) for i in items):
            entry["items"] = [{"label": i.get("name", ""), "type": "string", **i} for i in items]
            if items:
                entry.setdefault("key", items[0].get("name", ""))
        entry.setdefault("api_name", _api_name(code))
        entry.setdefault("name", code)
        entry.setdefault("table", re.sub(r"\W", "_", _api_name(code)))
        entry.setdefault("update_cycle", "daily")
        # The national guide's fields (docs/catalog-fields.md), which no decision reads.
        class_digit = {"base": 1, "theme": 2}.get(str(entry.get("classification")), 3)
        entry.setdefault("resource_code", f"{class_digit}07001/{index + 1:06d}")
        entry.setdefault("abstract", entry["name"])
        entry.setdefault("publish_date", "2026-01-01")
        entry.setdefault("share_condition", "(case file)")
        if entry.get("share_type") == "not_shared":
            entry.setdefault("legal_basis", "(case file)")
        files[provider]["resources"].append(entry)
        files[provider]["department"]["source"] = "sqlite:///case-file-source.db"
        files[provider]["department"]["org_code"] = "11371300004191019X"  # a valid credit code (GB 32100)
    if problems.found:
        return None
    with tempfile.TemporaryDirectory(prefix="govshare-case-") as folder:
        for code, document in files.items():
            document = {k: v for k, v in document.items() if v}
            (Path(folder) / f"{code}.toml").write_text(tomli_w.dumps(document), encoding="utf-8")
        try:
            return load_catalog(Path(folder))
        except CatalogError as exc:
            for p in exc.problems:
                problems.add(
                    f"catalog ({Path(p.file).stem}{', ' + p.resource if p.resource else ''})",
                    f"{p.field or ''} {p.code} {p.detail}".strip(),
                )
            return None


def _grant(raw: dict, index: int, catalog: Catalog, problems: _Problems) -> Grant | None:
    where = f"grant[{index}] ({raw.get('id', '?') if isinstance(raw, dict) else '?'})"
    if not _keys(
        raw, _GRANT, {"id", "consumer", "resource", "items", "purposes", "valid_from", "valid_until"}, where, problems
    ):
        return None
    start, until = (
        _moment(raw["valid_from"], f"{where}.valid_from", problems),
        _moment(raw["valid_until"], f"{where}.valid_until", problems),
    )
    revoked = _moment(raw["revoked_at"], f"{where}.revoked_at", problems) if "revoked_at" in raw else None
    kind = raw.get("kind", "legal_basis" if raw.get("legal_basis") else "grant")
    if kind not in _KINDS:
        problems.add(f"{where}.kind", f"expected one of {', '.join(_KINDS)}, got {kind!r}")
        return None
    items, purposes = (
        _texts(raw["items"], f"{where}.items", problems),
        _texts(raw["purposes"], f"{where}.purposes", problems),
    )
    scope, masks = raw.get("row_scope", {}), raw.get("masks", {})
    if not isinstance(scope, dict) or not all(isinstance(v, list) for v in scope.values()):
        problems.add(f"{where}.row_scope", "expected a table of item = [values]")
        return None
    if not isinstance(masks, dict) or not all(isinstance(v, str) for v in masks.values()):
        problems.add(f"{where}.masks", "expected a table of item = mask")
        return None
    if start is None or until is None or not items or not purposes:
        return None
    # The store's own check against the catalog (not the undone-mask check: a case may hold policies written past
    # it, to check what the query service does with them).
    for place, code, params in documents.grant_problems(
        catalog,
        department=raw["consumer"],
        resource=raw["resource"],
        items=items,
        purposes=purposes,
        valid_from=start,
        valid_until=until,
        row_scope=scope,
        masks=masks,
        legal_basis=raw.get("legal_basis"),
    ):
        problems.add(f"{where}.{place}", f"{code} {params}")
    return Grant(
        id=raw["id"],
        kind=_KINDS[kind],
        consumer=raw["consumer"],
        resource=raw["resource"],
        items=items,
        purposes=purposes,
        valid_from=start,
        valid_until=until,
        row_scope={k: tuple(v) for k, v in scope.items()},
        masks=dict(masks),
        legal_basis=raw.get("legal_basis"),
        revoked_at=revoked,
    )


def _scope(value, where: str, problems: _Problems):
    """``"all"`` (every row: ``()``) or one scope, a table of item = [values] that must all hold."""
    if value == EVERY_ROW:
        return ()
    if (
        not isinstance(value, dict)
        or not value
        or not all(isinstance(v, list) and v and all(isinstance(x, str) for x in v) for v in value.values())
    ):
        problems.add(where, f'expected "all" or a scope like {{ countyCode = ["371311"] }}, got {value!r}')
        return ()
    return normal_scope(value.items())


def normal_scope(pairs) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """A scope in one order whatever order it was written or granted in."""
    return tuple(sorted((item, tuple(sorted(values))) for item, values in pairs))


def _scopes(value, where: str, problems: _Problems) -> Scopes:
    """``"all"`` (every row: None) or a list of scopes, the rows being their union."""
    if value == EVERY_ROW:
        return None
    if not isinstance(value, list) or not value:
        problems.add(where, f'expected "all" or a list of scopes like [{{ countyCode = ["371311"] }}], got {value!r}')
        return None
    return tuple(sorted(_scope(s, f"{where}[{n}]", problems) for n, s in enumerate(value)))


def _expected(value, where: str, problems: _Problems) -> Expected | None:
    if isinstance(value, str):
        value = {"reason": value}
    if not _keys(value, _ITEM, {"reason"}, where, problems):
        return None
    if value["reason"] not in REASONS:
        problems.add(f"{where}.reason", f"{value['reason']!r} is not a decision code ({', '.join(sorted(REASONS))})")
        return None
    covers = None
    if "covers" in value:
        covers = []
        raw_covers = value["covers"]
        if not isinstance(raw_covers, list):
            problems.add(f"{where}.covers", "expected a list of { by, mask, rows } tables")
            return None
        for n, raw in enumerate(raw_covers):
            if _keys(raw, _COVER, {"by"}, f"{where}.covers[{n}]", problems):
                rows = _scope(raw.get("rows", EVERY_ROW), f"{where}.covers[{n}].rows", problems)
                covers.append(Cover(raw["by"] or None, raw.get("mask"), rows))
        covers = tuple(covers)
    params = value.get("params", {})
    if not isinstance(params, dict):
        problems.add(f"{where}.params", "expected a table")
        params = {}
    return Expected(value["reason"], value.get("mask"), value.get("by"), covers, params)


def _case(raw: dict, index: int, default_at: datetime, catalog: Catalog, file: str, problems: _Problems) -> Case | None:
    why = raw.get("why") if isinstance(raw, dict) else None
    where = f"case[{index}] {why!r}" if why else f"case[{index}]"
    if not _keys(raw, _CASE, {"why", "department", "purpose", "resource", "items"}, where, problems):
        return None
    texts = [
        k for k in ("why", "department", "purpose", "resource") if not isinstance(raw[k], str) or not raw[k].strip()
    ]
    if texts:
        problems.add(where, f"{', '.join(texts)}: expected text")
        return None
    if raw["department"] not in catalog.departments:
        problems.add(f"{where}.department", f"{raw['department']!r} is not in the catalog excerpt")
    elif catalog.purpose_for(raw["department"], raw["purpose"]) is None:
        problems.add(
            f"{where}.purpose",
            f"{raw['purpose']!r} is not registered for {raw['department']} "
            "(the query service refuses it before deciding: PURPOSE_NOT_REGISTERED)",
        )
    if raw["resource"] not in catalog.resources:
        problems.add(f"{where}.resource", f"{raw['resource']!r} is not in the catalog excerpt")
    at = _moment(raw["at"], f"{where}.at", problems) if "at" in raw else default_at
    if not isinstance(raw["items"], dict) or not raw["items"]:
        problems.add(f"{where}.items", "expected a table of item = expected decision, at least one")
        return None
    items = {name: _expected(value, f"{where}.items.{name}", problems) for name, value in raw["items"].items()}
    rows = _scopes(raw.get("rows", EVERY_ROW), f"{where}.rows", problems)
    grants_used = raw.get("grants_used", [])
    if not isinstance(grants_used, list) or not all(isinstance(g, str) for g in grants_used):
        problems.add(f"{where}.grants_used", "expected a list of grant or rule ids")
        grants_used = []
    if None in items.values() or at is None:
        return None
    return Case(
        file, why, raw["department"], raw["purpose"], raw["resource"], at, items, rows, tuple(sorted(grants_used))
    )


def load_case_file(path: Path) -> CaseFile:
    problems = _Problems(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise CaseFileError(f"{_shown(path)} is not TOML: {exc}") from exc
    if not _keys(raw, _TOP, {"description", "at", "catalog", "case"}, "file", problems):
        problems.raise_any()
    at = _moment(raw["at"], "at", problems)
    http = raw.get("http", False)
    if not isinstance(http, bool):
        problems.add("http", "expected true or false")
    catalog = _catalog(raw["catalog"], problems)
    problems.raise_any()
    grants = [_grant(g, n, catalog, problems) for n, g in enumerate(_list(raw, "grant", problems))]
    try:
        document = documents.from_data(
            {"rules": _list(raw, "rule", problems), "deny": _list(raw, "deny", problems)}, catalog
        )
    except documents.PolicyInvalid as exc:
        for p in exc.problems:
            problems.add(f"rule/deny {p.rule}", f"{p.field or ''} {p.code} {p.params}".strip())
        document = documents.PolicyDocument()
    ids = [g.id for g in grants if g] + [r.id for r in document.rules] + [d.id for d in document.deny]
    for duplicate in sorted({i for i in ids if ids.count(i) > 1}):
        problems.add("grant/rule/deny", f"id {duplicate!r} is used twice")
    # As policies.store.load_policy_set reads them: grants, then the staff allow rules, deny rules as restrictions.
    policies = PolicySet(
        grants=tuple(g for g in grants if g) + tuple(map(rule_grant, document.rules)),
        restrictions=tuple(
            Restriction(d.id, d.department, d.resource, d.reason, d.valid_from, d.valid_until) for d in document.deny
        ),
        version=1,
    )
    if not isinstance(raw["case"], list) or not raw["case"]:
        problems.add("case", "expected [[case]] tables, at least one")
        problems.raise_any()
    file = path.name
    cases = [_case(c, n, at, catalog, file, problems) for n, c in enumerate(raw["case"])]
    whys = [c.why for c in cases if c]
    for duplicate in sorted({w for w in whys if whys.count(w) > 1}):
        problems.add("case", f"two cases are called {duplicate!r}")
    known = set(ids)
    for case in filter(None, cases):
        refs = (
            set(case.grants_used)
            | {e.by for e in case.items.values() if e.by}
            | {c.by for e in case.items.values() for c in e.covers or () if c.by}
        )
        for ref in sorted(refs - known):
            problems.add(f"case {case.why!r}", f"names {ref!r}, which is no grant, rule or deny rule of the file")
    if http:  # over HTTP the grants are rows of the platform database and the items fields of the schema
        for grant in filter(None, grants):
            if grant.kind == GrantKind.DEEMED:
                problems.add(f"grant {grant.id!r}", 'a "deemed" grant comes from an application: not with http = true')
        for case in filter(None, cases):
            if any(e.reason == Deny.ITEM_UNKNOWN for e in case.items.values()):
                problems.add(f"case {case.why!r}", "an unknown item is no field of the schema: not with http = true")
    if not isinstance(raw["description"], str) or not raw["description"].strip():
        problems.add("description", "must say what the file is about")
    problems.raise_any()
    return CaseFile(path, raw["description"], at, http, catalog, policies, tuple(grants), document, cases)


def _list(raw: dict, key: str, problems: _Problems) -> list:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        problems.add(key, f"expected [[{key}]] tables")
        return []
    return value


def case_files() -> list[Path]:
    return sorted(CASES_DIR.glob("*.toml"))


# ---------------------------------------------------------------------------------------------------------------
# Running


@cache
def engine_for(path: Path) -> tuple[CaseFile, PolicyEngine]:
    """One engine per file: its cases run in order against it, across their times (the memo follows the clock)."""
    loaded = load_case_file(path)
    return loaded, PolicyEngine(loaded.catalog, loaded.policies)


def decide(engine: PolicyEngine, case: Case) -> AccessDecision:
    return engine.decide(
        case.department, case.purpose, engine.catalog.resources[case.resource], list(case.items), case.at
    )


def _actual_item(decision: ItemDecision, expected: Expected) -> dict:
    found = {"reason": str(decision.reason), "mask": decision.mask}
    if expected.by is not None:
        found["by"] = decision.ref
    if expected.covers is not None:
        found["covers"] = [(c.ref, c.mask, normal_scope(c.scope)) for c in decision.covers]
    if expected.params:
        found["params"] = {k: decision.params.get(k) for k in expected.params}
    return found


def _expected_item(expected: Expected) -> dict:
    wanted = {"reason": expected.reason, "mask": expected.mask}
    if expected.by is not None:
        wanted["by"] = expected.by
    if expected.covers is not None:
        wanted["covers"] = [(c.by, c.mask, c.rows) for c in expected.covers]
    if expected.params:
        wanted["params"] = dict(expected.params)
    return wanted


def check(decision: AccessDecision, case: Case) -> None:
    """Raise CaseFailed, naming the file and the case, unless ``decision`` is the one the case expects."""
    actual = {name: _actual_item(decision.items[name], e) for name, e in case.items.items()}
    actual["(rows)"] = None if decision.scopes is None else tuple(sorted(map(normal_scope, decision.scopes)))
    actual["(grants_used)"] = tuple(sorted(decision.grants_used))
    wanted = {name: _expected_item(e) for name, e in case.items.items()}
    wanted["(rows)"] = case.rows
    wanted["(grants_used)"] = case.grants_used
    if actual != wanted:
        lines = [
            f"  {key}: expected {wanted[key]!r}\n  {' ' * len(key)}  decided {actual[key]!r}"
            for key in wanted
            if actual[key] != wanted[key]
        ]
        raise CaseFailed(f"{case.name} (at {case.at.isoformat()}):\n" + "\n".join(lines))
