"""The coordinator's evaluation of departments in the console (Art 23, 25, 27), for the coordinating authority's
office only: /console/evaluation (the ranking, a period, the weights, the Art 27 violations the platform sees, the
consumers' feedback), its charts (/console/evaluation/chart/{name}.svg, SVG shown as an image: no script), each
figure's records (/console/evaluation/{department}/{figure}) and the ranking as CSV or .xlsx
(/console/evaluation/export.csv|.xlsx) for the report the coordinator sends up.

Every view computes the evaluation afresh from the platform's records (``oversight.evaluation.run``) for the
period the query string names (``from``, ``to``: days; by default the last full month), so the page, its charts,
its drill-downs and its exports agree.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from admin.auth import Signed
from admin.console import _render, staff_only
from admin.labels import label
from admin.runtime import runtime as runtime_of
from govshare.clock import CHINA
from govshare.errors import GovshareError
from oversight import charts, evaluation, exports, feedback

_DOWNLOAD = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
CHARTS = ("scores", "applications")


def _period(request: Request) -> tuple[date, date]:
    q = request.query_params
    today = runtime_of(request).clock().astimezone(CHINA).date()
    start, end = evaluation.default_period(today)
    if q.get("from", "").strip():
        start = evaluation.parse_day(q["from"], "from")
    if q.get("to", "").strip():
        end = evaluation.parse_day(q["to"], "to")
    evaluation.bounds(start, end)
    return start, end


async def _evaluate(request: Request) -> evaluation.Evaluation:
    runtime = runtime_of(request)
    start, end = _period(request)
    weights = evaluation.load_weights(runtime.settings.expand(runtime.settings.evaluation_weights_file))
    return await evaluation.run(
        runtime.engine, runtime.settings, start=start, end=end, now=runtime.clock(), weights=weights
    )


def _query(found: evaluation.Evaluation, lang: str, **more: str) -> str:
    return urlencode({"from": found.start.isoformat(), "to": found.end.isoformat(), "lang": lang, **more})


NOT_FOUND = (
    "DEPARTMENT_NOT_FOUND",
    "EVALUATION_CHART_UNKNOWN",
    "EVALUATION_FIGURE_UNKNOWN",
    "EVALUATION_FORMAT_UNKNOWN",
)
CONFIGURATION = ("EVALUATION_WEIGHT_UNKNOWN", "EVALUATION_WEIGHT_INVALID", "EVALUATION_WEIGHTS_UNREADABLE")


def _refused(request: Request, signed: Signed, lang: str, exc: GovshareError) -> Response:
    # A page that names nothing is 404, the platform's own weights file at fault is 500, the rest the request's (400).
    status = 404 if exc.code in NOT_FOUND else 500 if exc.code in CONFIGURATION else 400
    return _render(request, "error.html", lang, status, signed, code=exc.code, params=exc.params)


@staff_only
async def evaluation_page(request: Request, signed: Signed, lang: str, form) -> Response:
    try:
        found = await _evaluate(request)
    except GovshareError as exc:
        return _refused(request, signed, lang, exc)
    async with runtime_of(request).engine.connect() as conn:
        summaries = await feedback.summary(conn, start=found.start, end=found.end)
    return _render(
        request,
        "evaluation.html",
        lang,
        signed=signed,
        found=found,
        figures=evaluation.FIGURES,
        figure_label=lambda key: evaluation.label(key, lang),
        art27=evaluation.ART27,
        query=_query(found, lang),
        charts=CHARTS,
        summaries=summaries,
    )


def chart_of(found: evaluation.Evaluation, name: str, lang: str) -> str:
    names = [card.name for card in found.cards]
    if name == "scores":
        return charts.chart(
            "horizontal",
            label("evaluation_chart_scores", lang),
            names,
            {label("evaluation_score", lang): [c.score for c in found.cards]},
        )
    keys = ("applications_in_time", "applications_deemed", "applications_late")
    series = {evaluation.label(k, lang): [c.figure(k).value for c in found.cards] for k in keys}
    return charts.chart("stacked", label("evaluation_chart_applications", lang), names, series)


@staff_only
async def evaluation_chart(request: Request, signed: Signed, lang: str, form) -> Response:
    name = request.path_params["name"]
    try:
        if name not in CHARTS:
            raise GovshareError("EVALUATION_CHART_UNKNOWN", chart=name[:40])
        found = await _evaluate(request)
    except GovshareError as exc:
        return _refused(request, signed, lang, exc)
    return Response(chart_of(found, name, lang), media_type=charts.SVG_MEDIA_TYPE, headers=charts.SVG_HEADERS)


@staff_only
async def evaluation_records(request: Request, signed: Signed, lang: str, form) -> Response:
    department, key = request.path_params["department"], request.path_params["figure"]
    try:
        if key not in evaluation.FIGURES:
            raise GovshareError("EVALUATION_FIGURE_UNKNOWN", figure=key[:40], known=", ".join(evaluation.FIGURES))
        found = await _evaluate(request)
        card = found.card(department)
    except GovshareError as exc:
        return _refused(request, signed, lang, exc)
    return _render(
        request,
        "evaluation_records.html",
        lang,
        signed=signed,
        found=found,
        card=card,
        figure=card.figure(key),
        figure_label=evaluation.label(key, lang),
        query=_query(found, lang),
    )


@staff_only
async def evaluation_export(request: Request, signed: Signed, lang: str, form) -> Response:
    suffix = request.path_params["suffix"]
    try:
        if suffix not in ("csv", "xlsx"):
            raise GovshareError("EVALUATION_FORMAT_UNKNOWN", format=suffix[:10])
        found = await _evaluate(request)
    except GovshareError as exc:
        return _refused(request, signed, lang, exc)
    header, rows = evaluation.table(found, lang)
    if suffix == "csv":
        body, media = exports.csv_bytes(header, rows), exports.CSV_MEDIA_TYPE
    else:
        period = f"{found.start.isoformat()} – {found.end.isoformat()}"
        body = exports.xlsx_bytes(
            [
                (label("evaluation_heading", lang) + " " + period, header, rows),
                (label("evaluation_weights", lang), *evaluation.weights_table(found, lang)),
            ]
        )
        media = exports.XLSX_MEDIA_TYPE
    name = f"evaluation-{found.start.isoformat()}-{found.end.isoformat()}.{suffix}"
    return Response(
        body, media_type=media, headers={**_DOWNLOAD, "Content-Disposition": f'attachment; filename="{name}"'}
    )


routes = [
    Route("/console/evaluation", evaluation_page, methods=["GET"]),
    Route("/console/evaluation/chart/{name:str}.svg", evaluation_chart, methods=["GET"]),
    Route("/console/evaluation/export.{suffix:str}", evaluation_export, methods=["GET"]),
    Route("/console/evaluation/{department:str}/{figure:str}", evaluation_records, methods=["GET"]),
]
