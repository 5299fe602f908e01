"""The providers' usage reports in the console (Art 24): /console/usage, its charts (/console/usage/chart.svg, SVG
shown as an image: no script) and every table as CSV or .xlsx (/console/usage/export.csv|.xlsx). Beside the usage
tables, the consumers' feedback (``feedback``): each grant's, month by month, with the grant's usage in the month.

A department's staff sees its own department's resources only; the coordinating authority's office sees every
department's, or one it picks. The page, its charts and its exports answer the same question (``Asked``) through
the same check, so no URL shows what the page would not.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from admin.auth import Signed
from admin.labels import label
from admin.runtime import runtime as runtime_of
from catalog.model import Catalog
from govshare.clock import CHINA
from govshare.config import Settings
from govshare.errors import GovshareError
from oversight import charts, exports, feedback, usage
from oversight.usage import NONE, Figures

FEEDBACK = "feedback"
# The page's tables, in order: the usage figures' (``usage.TABLES``), then the consumers' feedback beside them.
TABLES: tuple[str, ...] = (*usage.TABLES, FEEDBACK)
# The grant's usage in the month, shown beside each month's feedback (the grants table has every figure).
FEEDBACK_FIGURES = ("accesses", "rows", "values")

# Each table's chart: its kind and the figures drawn (the table beside it has them all).
CHARTS: dict[str, tuple[charts.Kind, tuple[str, ...]]] = {
    "resources": ("stacked", ("allowed", "partial", "denied", "failed")),
    "trend": ("line", ("accesses", "partial", "denied", "masked")),
    "departments": ("horizontal", ("accesses", "denied", "masked")),
    "purposes": ("horizontal", ("accesses", "denied")),
    "grants": ("bar", ("accesses", "rows")),
    "refusals": ("horizontal", ("accesses",)),
    "denied_items": ("horizontal", ("accesses",)),
}
CHART_ROWS = 12  # the busiest rows a horizontal chart draws; the table has every row


@dataclass(frozen=True)
class Asked:
    """A report's question, checked: whose resources (None: every department's), which of them, the period."""

    provider: str | None
    resources: list[str] | None
    resource: str
    period: usage.Period

    def query(self, **more: str) -> str:
        """The question as a query string, for the chart and export links."""
        asked = {
            "provider": self.provider or "",
            "resource": self.resource,
            "from": self.period.first.isoformat(),
            "to": self.period.last.isoformat(),
            "granularity": self.period.granularity,
            **more,
        }
        return urlencode({k: v for k, v in asked.items() if v})


def ask(request: Request, signed: Signed) -> Asked:
    """The question of ``request``, within what ``signed`` may see: a department's staff its own department only
    (another asked is USAGE_NOT_YOURS, whatever the filter), the office any department or all."""
    runtime = runtime_of(request)
    catalog = runtime.catalog
    q = request.query_params
    own = signed.staff.department
    provider = q.get("provider", "").strip() or None
    if own is not None:
        if provider not in (None, own):
            raise GovshareError("USAGE_NOT_YOURS", http_status=403, resource=provider[:80])
        provider = own
    elif provider is not None and provider not in catalog.departments:
        raise GovshareError("USAGE_PROVIDER_UNKNOWN", department=provider[:40])
    resource = q.get("resource", "").strip()
    resources = usage.narrowed(usage.visible_resources(catalog, provider), resource, catalog)
    today = runtime.clock().astimezone(CHINA).date()
    when = usage.period(q.get("from", "").strip(), q.get("to", "").strip(), q.get("granularity"), today=today)
    return Asked(provider, resources, resource, when)


@dataclass(frozen=True)
class Shown:
    """A table as people read it: its title, header and rows of texts and numbers (the page's, the export's)."""

    name: str
    title: str
    header: list[str]
    rows: list[list[str | int]]
    figures: list[Figures]
    months: tuple[feedback.GrantMonth, ...] = ()  # the feedback table's rows as counted

    def keys(self) -> list[str]:
        width = len(self.header) - len(usage.FIGURES)
        return [" · ".join(str(c) for c in row[:width]) for row in self.rows]


def _named(code: str, name: str | None) -> str:
    return f"{name}（{code}）" if name else code


def key_text(column: str, value: str, catalog: Catalog, lang: str) -> str:
    """A key as a person reads it: a name with its code, a day, or a code."""
    if value == NONE:
        return label("usage_none_" + column, lang)
    if column == "resource":
        found = catalog.resources.get(value)
        return _named(value, found.name if found else None)
    if column == "department":
        department = catalog.departments.get(value)
        return _named(value, department.name if department else None)
    if column == "purpose":
        purpose = catalog.purposes.get(value)
        return _named(value, purpose.name if purpose else None)
    if column == "outcome":
        return label("usage_outcome_" + value, lang)
    return value


async def tables(
    engine, settings: Settings, catalog: Catalog, asked: Asked, lang: str, names: list[str] | None = None
) -> list[Shown]:
    """The report's tables (``names`` of them, or all of ``TABLES``), labelled in ``lang``; archived records
    included."""
    shown = []
    wanted = names or list(TABLES)
    async with engine.connect() as conn:
        counted = [name for name in wanted if name != FEEDBACK]
        made = await usage.tables(conn, counted, asked.resources, asked.period, settings=settings)
        for name in wanted:
            if name == FEEDBACK:
                shown.append(await feedback_table(conn, settings, catalog, asked, lang))
                continue
            found = made[name]
            header = [label("usage_key_" + c, lang) for c in found.key_columns]
            header += [label("usage_fig_" + f, lang) for f in usage.FIGURES]
            rows: list[list[str | int]] = [
                [key_text(c, v, catalog, lang) for c, v in zip(found.key_columns, key, strict=True)]
                + [getattr(figures, f) for f in usage.FIGURES]
                for key, figures in found.rows
            ]
            shown.append(Shown(name, label("usage_table_" + name, lang), header, rows, [f for _, f in found.rows]))
    return shown


async def feedback_table(conn, settings: Settings, catalog: Catalog, asked: Asked, lang: str) -> Shown:
    """Each grant's feedback per month of the period beside the grant's usage in the month (its days in the
    period): the feedback on the report's resources of the report's provider only (``feedback.beside_usage``)."""
    months = await feedback.beside_usage(
        conn, asked.resources, asked.period, provider=asked.provider, settings=settings
    )
    header = [label(k, lang) for k in ("usage_key_grant", "usage_key_department", "usage_key_resource")]
    header += [label(k, lang) for k in ("usage_key_month", "feedback_matters", "feedback_documents", "feedback_note")]
    header += [label("usage_fig_" + f, lang) for f in FEEDBACK_FIGURES]
    rows: list[list[str | int]] = []
    for m in months:
        reported: list[str | int] = (
            [m.feedback.matters_handled, m.feedback.documents_spared, m.feedback.note]
            if m.feedback is not None
            else ["", "", label("usage_feedback_not_reported", lang)]
        )
        rows.append(
            [
                m.grant,
                key_text("department", m.consumer, catalog, lang),
                key_text("resource", m.resource, catalog, lang),
            ]
            + [m.month, *reported]
            + [getattr(m.usage, f) for f in FEEDBACK_FIGURES]
        )
    title = label("usage_table_feedback", lang)
    return Shown(FEEDBACK, title, header, rows, [m.usage for m in months], tuple(months))


def feedback_chart(table: Shown, lang: str) -> str:
    """Per grant, over the period's months: the matters handled and documents spared it reported beside its
    accesses; the grants that reported most first (``CHART_ROWS`` of them; the table has every row)."""
    sums: dict[tuple[str, str], list[int]] = {}
    for m in table.months:
        found = sums.setdefault((m.consumer, m.grant), [0, 0, 0])
        if m.feedback is not None:
            found[0] += m.feedback.matters_handled
            found[1] += m.feedback.documents_spared
        found[2] += m.usage.accesses
    busiest = sorted(sums.items(), key=lambda kv: (-kv[1][0], -kv[1][1], -kv[1][2], kv[0]))[:CHART_ROWS][::-1]
    keys = [f"{consumer} · {grant}" for (consumer, grant), _ in busiest]
    names = ("feedback_matters", "feedback_documents", "usage_fig_accesses")
    series = {label(n, lang): [v[i] for _, v in busiest] for i, n in enumerate(names)}
    return charts.chart("horizontal", table.title, keys, series, empty=label("usage_feedback_none", lang))


def chart_of(table: Shown, lang: str) -> str:
    if table.name == FEEDBACK:
        return feedback_chart(table, lang)
    kind, drawn = CHARTS[table.name]
    keys, figures = table.keys(), table.figures
    if kind == "horizontal":  # the busiest first from the top: pygal draws the first label at the bottom
        keys, figures = keys[:CHART_ROWS][::-1], figures[:CHART_ROWS][::-1]
    series = {label("usage_fig_" + f, lang): [getattr(x, f) for x in figures] for f in drawn}
    return charts.chart(kind, table.title, keys, series, empty=label("usage_no_records", lang))


def catalog_staff(handler):
    """``admin.console.catalog_staff`` (every signed-in staff member, a department's too), looked up when a page is
    asked: the console lists this module's routes, so this module cannot import it as it loads."""

    async def page(request: Request) -> Response:
        from admin import console

        return await console.catalog_staff(handler)(request)

    return page


def _render(
    request: Request, template: str, lang: str, status: int = 200, signed: Signed | None = None, **context
) -> Response:
    from admin import console

    return console._render(request, template, lang, status, signed, **context)


def _refused(request: Request, signed: Signed, lang: str, exc: GovshareError) -> Response:
    return _render(request, "error.html", lang, exc.http_status, signed, code=exc.code, params=exc.params)


@catalog_staff
async def usage_page(request: Request, signed: Signed, lang: str, form) -> Response:
    runtime = runtime_of(request)
    try:
        asked = ask(request, signed)
    except GovshareError as exc:
        return _refused(request, signed, lang, exc)
    shown = await tables(runtime.engine, runtime.settings, runtime.catalog, asked, lang)
    visible = usage.visible_resources(runtime.catalog, asked.provider)
    choices = sorted(runtime.catalog.resources) if visible is None else visible
    return _render(
        request,
        "usage.html",
        lang,
        signed=signed,
        asked=asked,
        tables=shown,
        resource_choices=[(c, key_text("resource", c, runtime.catalog, lang)) for c in choices],
        providers=[] if signed.staff.department else sorted(runtime.catalog.departments.values(), key=lambda d: d.code),
        granularities=usage.GRANULARITIES,
        figure_names=usage.FIGURES,
    )


async def _one_table(request: Request, signed: Signed, lang: str) -> tuple[Asked, Shown]:
    asked = ask(request, signed)
    name = request.query_params.get("table", "")
    if name not in TABLES:
        raise GovshareError("USAGE_TABLE_UNKNOWN", table=name[:40], tables=", ".join(TABLES))
    runtime = runtime_of(request)
    return asked, (await tables(runtime.engine, runtime.settings, runtime.catalog, asked, lang, [name]))[0]


@catalog_staff
async def usage_chart(request: Request, signed: Signed, lang: str, form) -> Response:
    try:
        _, table = await _one_table(request, signed, lang)
    except GovshareError as exc:
        return _refused(request, signed, lang, exc)
    return Response(chart_of(table, lang), media_type=charts.SVG_MEDIA_TYPE, headers=charts.SVG_HEADERS)


def filename(asked: Asked, name: str, suffix: str) -> str:
    return f"usage-{asked.provider or 'all'}-{name}-{asked.period.first}-{asked.period.last}.{suffix}"


_DOWNLOAD = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


@catalog_staff
async def usage_export(request: Request, signed: Signed, lang: str, form) -> Response:
    suffix = request.path_params["suffix"]
    if suffix not in ("csv", "xlsx"):
        return _refused(
            request, signed, lang, GovshareError("USAGE_FORMAT_UNKNOWN", http_status=404, format=suffix[:10])
        )
    try:
        asked, table = await _one_table(request, signed, lang)
    except GovshareError as exc:
        return _refused(request, signed, lang, exc)
    if suffix == "csv":
        body, media = exports.csv_bytes(table.header, table.rows), exports.CSV_MEDIA_TYPE
    else:
        body, media = exports.xlsx_bytes([(table.title, table.header, table.rows)]), exports.XLSX_MEDIA_TYPE
    disposition = f'attachment; filename="{filename(asked, table.name, suffix)}"'
    return Response(body, media_type=media, headers={**_DOWNLOAD, "Content-Disposition": disposition})


routes = [
    Route("/console/usage", usage_page, methods=["GET"]),
    Route("/console/usage/chart.svg", usage_chart, methods=["GET"]),
    Route("/console/usage/export.{suffix:str}", usage_export, methods=["GET"]),
]
