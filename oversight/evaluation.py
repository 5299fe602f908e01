"""The coordinator's evaluation of departments (Art 23, 25, 27): a scorecard per department over a period, each
figure counted from the platform's own records and carrying the records it was counted from (``Evidence``), a
weighted total score and a ranking.

The period is the days ``start`` … ``end`` (inclusive, China time). What each figure counts (``FIGURES``):

- ``catalog_published``: the department's resources published in the catalog in force (at evaluation time);
- ``catalog_nonconforming``: of those, the ones whose source fails the conformance test (Art 14) now: a missing
  table or column or a wrong type (``catalog.conformance.check_sources``; an unreachable source is an outage, not a
  mismatch); Art 27 (一);
- ``resources_overdue``: its published resources overdue on their update cycle now (``catalog.freshness``, from the
  last change the platform recorded; the platform keeps only the latest change of each source, so an earlier
  period's lateness cannot be reconstructed); Art 27 (二);
- share applications to its resources whose answer was due in the period (``applications_due``): answered by the
  provider by the deadline (``applications_in_time``), approved by its silence (``applications_deemed``), answered
  after the deadline or still unanswered past it where silence cannot approve (``applications_late``), refused, each
  with its reason (``applications_refused``);
- data-error reports on its resources whose answer was due in the period (``corrections_due``): answered by the
  deadline (``corrections_in_time``), answered late or still unanswered past it (``corrections_overdue``);
- accesses in the period that read data (outcome allowed or partial): of its resources by other departments
  (``usage_as_provider``), and by it of other departments' resources (``usage_as_consumer``);
- ``feedback_reports``: the months of feedback it reported in the period on the grants it holds (Art 24);
- ``restrictions``: the deny rules (Art 20) against it in force at some moment of the period, in any policy version
  in force then (a restriction lifted since still counts);
- the Art 27 violations the platform can see besides (一) and (二) above: ``art27_data_corrected`` (三: reports its
  answer confirmed, ``corrected``, in the period: the data it provided was wrong), ``art27_purpose_refused`` (四:
  its accesses refused in the period because the declared purpose was not one its grants name: attempts, the only
  trace of a use beyond purpose the platform sees), ``art27_refusal_overruled`` (五: its refusals, of applications
  due in the period, that the coordinator's decision overruled: data it did not share although it should have).
  Not visible to the platform, so not counted: what a consumer does with data after it has it (Art 22: passing it to
  third parties, using it for another purpose under an approved one), collecting again from citizens what the
  platform provides (五, second half), and (六).

The score is the sum of each figure times its weight (``DEFAULT_WEIGHTS``; a TOML file of ``[weights]`` overrides them,
``evaluation_weights_file``); departments are ranked by score, highest first, equal scores sharing a rank.
"""

from __future__ import annotations

import math
import tomllib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from applications.tables import applications
from audit.tables import access_records, process_records
from catalog import freshness, store
from catalog.conformance import check_sources
from catalog.model import Catalog
from corrections.tables import data_error_reports
from govshare.clock import CHINA
from govshare.config import Settings
from govshare.errors import GovshareError
from oversight.tables import consumer_feedback
from policies import documents

# Every figure, in the scorecard's order, with its default weight: positive where more is better.
DEFAULT_WEIGHTS: dict[str, float] = {
    "catalog_published": 1.0,
    "catalog_nonconforming": -3.0,
    "resources_overdue": -3.0,
    "applications_due": 0.0,
    "applications_in_time": 2.0,
    "applications_deemed": -2.0,
    "applications_late": -3.0,
    "applications_refused": 0.0,
    "corrections_due": 0.0,
    "corrections_in_time": 2.0,
    "corrections_overdue": -3.0,
    "usage_as_provider": 0.01,
    "usage_as_consumer": 0.01,
    "feedback_reports": 1.0,
    "restrictions": -5.0,
    "art27_data_corrected": -2.0,
    "art27_purpose_refused": -1.0,
    "art27_refusal_overruled": -3.0,
}
FIGURES = tuple(DEFAULT_WEIGHTS)
# What each figure is called, in Chinese and English (the console, the exports and the GraphQL descriptions).
LABELS: dict[str, tuple[str, str]] = {
    "catalog_published": ("已发布资源", "Resources published"),
    "catalog_nonconforming": ("与数据源不符的资源", "Resources not conforming to their source"),
    "resources_overdue": ("逾期未更新的资源", "Resources overdue on their update cycle"),
    "applications_due": ("应答复的共享申请", "Share applications due"),
    "applications_in_time": ("按期答复", "Answered in time"),
    "applications_deemed": ("逾期视为同意", "Deemed approved (no answer)"),
    "applications_late": ("逾期答复或未答复", "Answered late or not at all"),
    "applications_refused": ("不予共享（附理由）", "Refused, with reasons"),
    "corrections_due": ("应答复的数据纠错", "Data-error reports due"),
    "corrections_in_time": ("纠错按期答复", "Data-error reports answered in time"),
    "corrections_overdue": ("纠错逾期", "Data-error reports overdue"),
    "usage_as_provider": ("被使用次数（提供方）", "Accesses as provider"),
    "usage_as_consumer": ("使用次数（使用方）", "Accesses as consumer"),
    "feedback_reports": ("使用效果反馈（月次）", "Feedback reported (months)"),
    "restrictions": ("受到的限制（第二十条）", "Restrictions in force (Art 20)"),
    "art27_data_corrected": ("经核实有误的数据（第二十七条第三项）", "Data confirmed wrong (Art 27 iii)"),
    "art27_purpose_refused": ("超出用途的访问被拒（第二十七条第四项）", "Accesses refused beyond purpose (Art 27 iv)"),
    "art27_refusal_overruled": ("不予共享被协调推翻（第二十七条第五项）", "Refusals overruled (Art 27 v)"),
}


def label(key: str, lang: str = "zh-CN") -> str:
    zh, en = LABELS[key]
    return en if lang == "en" else zh


# Which Art 27 item each figure shows (the violations table).
ART27 = {
    "catalog_nonconforming": "一",
    "resources_overdue": "二",
    "art27_data_corrected": "三",
    "art27_purpose_refused": "四",
    "art27_refusal_overruled": "五",
}
MAX_WEIGHT = 1000.0
MAX_DAYS = 1096
READ = ("allowed", "partial")
ANSWERS = ("approved", "refused")  # the provider's own answers (process records)


@dataclass(frozen=True)
class Evidence:
    """One record a figure counted: its kind (resource, application, data_error, access, deny_rule, feedback), id,
    when, and a line saying what it is."""

    kind: str
    id: str
    at: datetime | None
    detail: str


@dataclass(frozen=True)
class Figure:
    key: str
    weight: float
    evidence: tuple[Evidence, ...]

    @property
    def value(self) -> int:
        return len(self.evidence)

    @property
    def points(self) -> float:
        return round(self.value * self.weight, 4)


@dataclass(frozen=True)
class Scorecard:
    department: str
    name: str
    figures: tuple[Figure, ...]
    score: float
    rank: int

    def figure(self, key: str) -> Figure:
        return next(f for f in self.figures if f.key == key)


@dataclass(frozen=True)
class Evaluation:
    start: date
    end: date
    computed_at: datetime
    weights: Mapping[str, float]
    cards: tuple[Scorecard, ...] = field(default=())

    def card(self, department: str) -> Scorecard:
        found = next((c for c in self.cards if c.department == department), None)
        if found is None:
            raise GovshareError("DEPARTMENT_NOT_FOUND", department=department)
        return found


# --- weights ---------------------------------------------------------------------------------------------


def validate_weights(values: Mapping[str, Any]) -> dict[str, float]:
    """The defaults with ``values`` over them; an unknown figure or a weight that is not a finite number within
    ±MAX_WEIGHT is refused with its code."""
    weights = dict(DEFAULT_WEIGHTS)
    for key, value in values.items():
        if key not in DEFAULT_WEIGHTS:
            raise GovshareError("EVALUATION_WEIGHT_UNKNOWN", key=str(key)[:80], known=", ".join(FIGURES))
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise GovshareError("EVALUATION_WEIGHT_INVALID", key=key, value=str(value)[:40], limit=MAX_WEIGHT)
        if abs(value) > MAX_WEIGHT:
            raise GovshareError("EVALUATION_WEIGHT_INVALID", key=key, value=str(value), limit=MAX_WEIGHT)
        weights[key] = float(value)
    return weights


def load_weights(path: str | Path | None) -> dict[str, float]:
    """The weights of a TOML file's ``[weights]`` table over the defaults ("" or None: the defaults)."""
    if not path:
        return dict(DEFAULT_WEIGHTS)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise GovshareError("EVALUATION_WEIGHTS_UNREADABLE", path=str(path), detail=str(exc)[:200]) from None
    unexpected = sorted(set(data) - {"weights"})
    if unexpected or not isinstance(data.get("weights", {}), dict):
        raise GovshareError("EVALUATION_WEIGHTS_UNREADABLE", path=str(path), detail="expected one [weights] table")
    return validate_weights(data.get("weights", {}))


# --- the period ------------------------------------------------------------------------------------------


def bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """The moments [from, to) of the days ``start`` … ``end`` in China; a bad period is refused."""
    if end < start:
        raise GovshareError("EVALUATION_PERIOD_INVALID", start=start.isoformat(), end=end.isoformat())
    if (end - start).days + 1 > MAX_DAYS:
        raise GovshareError("EVALUATION_PERIOD_TOO_LONG", days=MAX_DAYS)
    begin = datetime.combine(start, time(), CHINA).astimezone(UTC)
    finish = datetime.combine(end + timedelta(days=1), time(), CHINA).astimezone(UTC)
    return begin, finish


def _months(start: date, end: date) -> tuple[str, str]:
    return start.strftime("%Y-%m"), end.strftime("%Y-%m")


# --- counting --------------------------------------------------------------------------------------------

Found = dict[str, dict[str, list[Evidence]]]  # department → figure → evidence


def _providers(catalog: Catalog) -> dict[str, str]:
    return {code: r.provider for code, r in catalog.resources.items()}


def _catalog(found: Found, catalog: Catalog, conformance: Mapping[str, Sequence[Any]]) -> None:
    for resource in sorted(catalog.published(), key=lambda r: r.code):
        entry = found[resource.provider]
        entry["catalog_published"].append(
            Evidence("resource", resource.code, None, f"{resource.name} · {resource.update_cycle}")
        )
        mismatches = [m for m in conformance.get(resource.code, ()) if m.kind != "unreachable"]
        if mismatches:
            detail = "; ".join(f"{m.kind}: {m.detail}" for m in mismatches)
            entry["catalog_nonconforming"].append(Evidence("resource", resource.code, None, detail))


def _overdue(
    found: Found, catalog: Catalog, recorded: Mapping[str, freshness.Recorded], now: datetime, minutes: int
) -> None:
    for state in freshness.states(catalog, recorded, now, realtime_minutes=minutes):
        if state.overdue:
            detail = f"{state.update_cycle} · last change {state.last_change.isoformat() if state.last_change else ''}"
            found[state.provider]["resources_overdue"].append(
                Evidence("resource", state.resource, state.due_by, detail)
            )


async def _applications(
    conn: AsyncConnection,
    found: Found,
    providers: Mapping[str, str],
    begin: datetime,
    finish: datetime,
    now: datetime,
    silence_approves: bool,
) -> None:
    rows = (
        await conn.execute(
            select(applications)
            .where(applications.c.deadline_at >= begin, applications.c.deadline_at < finish)
            .order_by(applications.c.deadline_at, applications.c.id)
        )
    ).all()
    steps: dict[str, list[Any]] = defaultdict(list)
    if rows:
        for step in (
            await conn.execute(
                select(process_records)
                .where(process_records.c.application_id.in_([r.id for r in rows]))
                .order_by(process_records.c.seq)
            )
        ).all():
            steps[step.application_id].append(step)
    for row in rows:
        provider = providers.get(row.resource)
        if provider is None:
            continue
        entry, history = found[provider], steps[row.id]
        what = f"{row.consumer} → {row.resource} · {row.status}"
        entry["applications_due"].append(Evidence("application", row.id, row.deadline_at, what))
        answer = next((s for s in history if s.kind in ANSWERS), None)
        deemed = any(s.kind == "deemed_approved" for s in history) or (
            silence_approves and row.status == "pending" and row.deemable and row.deadline_at <= now
        )
        if answer is not None:
            late = answer.at > row.deadline_at
            entry["applications_late" if late else "applications_in_time"].append(
                Evidence("application", row.id, answer.at, f"{what} · {answer.kind} {answer.at.isoformat()}")
            )
            if answer.kind == "refused":
                entry["applications_refused"].append(Evidence("application", row.id, answer.at, answer.reason or ""))
                decision = next((s for s in history if s.kind == "coordination_approved"), None)
                if decision is not None:  # the coordinator's final decision approved what the provider refused
                    entry["art27_refusal_overruled"].append(
                        Evidence("application", row.id, decision.at, decision.reason or "")
                    )
        elif deemed:
            entry["applications_deemed"].append(Evidence("application", row.id, row.deadline_at, what))
        elif row.status == "pending" and row.deadline_at <= now:
            entry["applications_late"].append(Evidence("application", row.id, None, f"{what} · unanswered"))


async def _corrections(
    conn: AsyncConnection, found: Found, providers: Mapping[str, str], begin: datetime, finish: datetime, now: datetime
) -> None:
    t = data_error_reports.c
    due = (
        await conn.execute(
            select(data_error_reports)
            .where(t.deadline_at >= begin, t.deadline_at < finish)
            .order_by(t.deadline_at, t.id)
        )
    ).all()
    for row in due:
        provider = providers.get(row.resource)
        if provider is None:
            continue
        entry = found[provider]
        what = f"{row.reporter} → {row.resource}.{row.item} · {row.status}"
        entry["corrections_due"].append(Evidence("data_error", row.id, row.deadline_at, what))
        if row.answered_at is not None and row.answered_at <= row.deadline_at:
            entry["corrections_in_time"].append(Evidence("data_error", row.id, row.answered_at, what))
        elif row.answered_at is not None or row.deadline_at <= now:
            entry["corrections_overdue"].append(Evidence("data_error", row.id, row.answered_at, what))
    corrected = (
        await conn.execute(
            select(data_error_reports)
            .where(t.status == "corrected", t.answered_at >= begin, t.answered_at < finish)
            .order_by(t.answered_at, t.id)
        )
    ).all()
    for row in corrected:
        if (provider := providers.get(row.resource)) is not None:
            found[provider]["art27_data_corrected"].append(
                Evidence(
                    "data_error", row.id, row.answered_at, f"{row.resource}.{row.item} · {row.answer_reason or ''}"
                )
            )


async def _accesses(
    conn: AsyncConnection, found: Found, providers: Mapping[str, str], begin: datetime, finish: datetime
) -> None:
    a = access_records.c
    query = (
        select(a.id, a.at, a.department, a.resource, a.purpose, a.outcome, a.error_code, a.items_denied, a.row_count)
        .where(a.at >= begin, a.at < finish)
        .order_by(a.id)
    )
    for row in (await conn.execute(query)).all():
        provider = providers.get(row.resource)
        what = f"{row.department} → {row.resource} · {row.purpose or ''} · {row.outcome} · {row.row_count}"
        if row.outcome in READ and provider is not None and provider != row.department:
            found[provider]["usage_as_provider"].append(Evidence("access", str(row.id), row.at, what))
            found[row.department]["usage_as_consumer"].append(Evidence("access", str(row.id), row.at, what))
        if row.error_code == "PURPOSE_NOT_APPROVED" or "PURPOSE_NOT_APPROVED" in (row.items_denied or {}).values():
            found[row.department]["art27_purpose_refused"].append(Evidence("access", str(row.id), row.at, what))


async def _feedback(conn: AsyncConnection, found: Found, start: date, end: date) -> None:
    first, last = _months(start, end)
    c = consumer_feedback.c
    rows = (
        await conn.execute(
            select(consumer_feedback).where(c.period >= first, c.period <= last).order_by(c.period, c.grant_ref)
        )
    ).all()
    for row in rows:
        what = f"{row.grant_ref} · {row.resource} · {row.period} · {row.matters_handled}/{row.documents_spared}"
        found[row.consumer]["feedback_reports"].append(Evidence("feedback", row.id, row.recorded_at, what))


def _overlaps(rule: documents.DenyRule, begin: datetime, finish: datetime) -> bool:
    return (rule.valid_from is None or rule.valid_from < finish) and (
        rule.valid_until is None or rule.valid_until > begin
    )


async def _restrictions(conn: AsyncConnection, found: Found, begin: datetime, finish: datetime) -> None:
    versions = sorted(await documents.history(conn), key=lambda v: v.version)
    seen: set[tuple[str, str]] = set()
    for index, version in enumerate(versions):
        until = versions[index + 1].at if index + 1 < len(versions) else None
        if version.at >= finish or (until is not None and until <= begin):
            continue  # not in force at any moment of the period
        for rule in version.document.deny:
            if _overlaps(rule, begin, finish) and (rule.department, rule.id) not in seen:
                seen.add((rule.department, rule.id))
                found[rule.department]["restrictions"].append(
                    Evidence("deny_rule", rule.id, rule.valid_from, f"{rule.resource} · {rule.reason}")
                )


def _ranked(catalog: Catalog, found: Found, weights: Mapping[str, float]) -> tuple[Scorecard, ...]:
    unranked = []
    for code in sorted(set(catalog.departments) | set(found)):
        entry = found.get(code, {})
        figures = tuple(Figure(key, weights[key], tuple(entry.get(key, ()))) for key in FIGURES)
        score = round(sum(f.value * f.weight for f in figures), 4)
        name = catalog.departments[code].name if code in catalog.departments else code
        unranked.append((code, name, figures, score))
    scores = [u[3] for u in unranked]
    cards = [
        Scorecard(code, name, figures, score, 1 + sum(1 for s in scores if s > score))
        for code, name, figures, score in unranked
    ]
    return tuple(sorted(cards, key=lambda c: (c.rank, c.department)))


async def evaluate(
    conn: AsyncConnection,
    catalog: Catalog,
    *,
    start: date,
    end: date,
    now: datetime,
    weights: Mapping[str, float],
    conformance: Mapping[str, Sequence[Any]],
    realtime_minutes: int,
    silence_approves: bool,
) -> Evaluation:
    """Every department's scorecard over the days ``start`` … ``end`` from the platform's records in ``conn``:
    ``catalog`` is the catalog in force as stored (with any resource the conformance test left unpublished),
    ``conformance`` its sources' mismatches by resource (``check_sources``)."""
    begin, finish = bounds(start, end)
    weights = validate_weights(weights)
    now = now.astimezone(UTC)
    found: Found = defaultdict(lambda: defaultdict(list))
    providers = _providers(catalog)
    _catalog(found, catalog, conformance)
    _overdue(found, catalog, await freshness.load(conn), now, realtime_minutes)
    await _applications(conn, found, providers, begin, finish, now, silence_approves)
    await _corrections(conn, found, providers, begin, finish, now)
    await _accesses(conn, found, providers, begin, finish)
    await _feedback(conn, found, start, end)
    await _restrictions(conn, found, begin, finish)
    return Evaluation(start, end, now, dict(weights), _ranked(catalog, found, weights))


async def run(
    engine: AsyncEngine, settings: Settings, *, start: date, end: date, now: datetime, weights: Mapping[str, float]
) -> Evaluation:
    """``evaluate`` on the platform database with the catalog stored in force and its sources checked now."""
    async with engine.connect() as conn:
        catalog = await store.current(conn)
    if catalog is None:
        raise GovshareError("CATALOG_NOT_LOADED")
    conformance = await check_sources(catalog, settings)
    async with engine.connect() as conn:
        return await evaluate(
            conn,
            catalog,
            start=start,
            end=end,
            now=now,
            weights=weights,
            conformance=conformance,
            realtime_minutes=settings.freshness_realtime_minutes,
            silence_approves=settings.silence_approves,
        )


def parse_day(value: str, name: str) -> date:
    """A day given as text (``YYYY-MM-DD``), or EVALUATION_PERIOD_INVALID naming it."""
    try:
        return date.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        raise GovshareError("EVALUATION_DAY_INVALID", name=name, value=str(value)[:40]) from None


def default_period(today: date) -> tuple[date, date]:
    """The last full month before ``today``'s."""
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


# The export's other columns, in Chinese and English.
COLUMNS: dict[str, tuple[str, str]] = {
    "rank": ("排名", "Rank"),
    "department": ("部门编码", "Department"),
    "name": ("部门", "Name"),
    "score": ("总分", "Score"),
    "figure": ("指标", "Figure"),
    "key": ("编码", "Key"),
    "weight": ("权重", "Weight"),
}


def _column(key: str, lang: str) -> str:
    zh, en = COLUMNS[key]
    return en if lang == "en" else zh


def table(found: Evaluation, lang: str) -> tuple[list[str], list[list[str | int | float]]]:
    """The ranking as the report sent up holds it: rank, department, name, score, then each figure's value."""
    header = [_column(k, lang) for k in ("rank", "department", "name", "score")] + [label(k, lang) for k in FIGURES]
    rows: list[list[str | int | float]] = [
        [c.rank, c.department, c.name, c.score, *(f.value for f in c.figures)] for c in found.cards
    ]
    return header, rows


def weights_table(found: Evaluation, lang: str) -> tuple[list[str], list[list[str | int | float]]]:
    """The weights the score was computed with: figure, key, weight."""
    header = [_column(k, lang) for k in ("figure", "key", "weight")]
    return header, [[label(k, lang), k, found.weights[k]] for k in FIGURES]
