"""Traces: the request's SERVER span joins the caller's W3C trace, carries the HTTP conventions and never a key
value; and spans are not the audit: an exporter that is down, the caller's sampling flag or a sampler that samples
nothing changes nothing for the caller or the access records.

The first test: an exporter that is down.

The server is configured as in production (``trace_exporter = "otlp"``: a batch span processor exporting from its
own thread), with the OTLP exporter it builds replaced by one that refuses (the real exporter, to a port nobody
listens on), raises or hangs. A batch of one span makes the processor export during the test, and the test waits
until the exporter has been called and has failed (or, for the hanging one, is still inside its call) before it
asks again: the requests after it must be answered and recorded all the same.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import threading

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http import trace_exporter as otlp
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import select

from audit.tables import access_records
from audit.tracing import caller_context, make_tracer
from audit.tracing import span as traced
from connectors.base import SourceUnavailable
from server import create_app
from tests.conftest import Api, _api, grant_in_force

DEAD_ENDPOINT = "http://127.0.0.1:9/v1/traces"  # the discard port: nothing listens on it here
WAIT = 30  # seconds an event may take before the test fails rather than hanging
QUERY = "{ enterpriseList(first: 2) { items { name } } }"


class DeadExporter(SpanExporter):
    """Stands in for the OTLP exporter the server builds; says when it was called and what became of the call."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.real = otlp.OTLPSpanExporter(endpoint=DEAD_ENDPOINT, timeout=1) if behaviour == "refused" else None
        self.calls = 0
        self.results: list[SpanExportResult] = []  # what the real exporter answered
        self.failures = 0  # export calls that have returned a failure or raised
        self.changed = threading.Condition()
        self.entered = threading.Event()  # an export call has begun
        self.inside = False  # an export call is under way
        self.release = threading.Event()  # lets a hanging call return

    def export(self, spans):
        if self.release.is_set():  # the test is over: what is left in the queue at shutdown fails at once
            return SpanExportResult.FAILURE
        self.calls += 1
        self.inside = True
        self.entered.set()
        try:
            if self.behaviour == "raises":
                raise ConnectionResetError("the collector went away")
            if self.behaviour == "hangs":
                self.release.wait(WAIT)
                return SpanExportResult.FAILURE
            result = self.real.export(spans)
            self.results.append(result)
            return result
        finally:
            self.inside = False
            with self.changed:
                self.failures += 1
                self.changed.notify_all()

    def wait_for_failures(self, count: int) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.failures >= count, WAIT)

    def shutdown(self) -> None:
        self.release.set()
        if self.real is not None:
            self.real.shutdown()


async def _waited(event: threading.Event) -> bool:
    return await asyncio.to_thread(event.wait, WAIT)


@pytest.mark.parametrize("behaviour", ["refused", "raises", "hangs"])
async def test_a_dead_trace_exporter_changes_nothing(own_world, monkeypatch, caplog, behaviour):
    exporter = DeadExporter(behaviour)
    built: list[str] = []

    def build(endpoint, **_):
        built.append(endpoint)
        return exporter

    monkeypatch.setattr(otlp, "OTLPSpanExporter", build)
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1")  # export as soon as a span ends, not in 5 s
    settings = dataclasses.replace(own_world.settings, trace_exporter="otlp", otlp_endpoint=DEAD_ENDPOINT)
    caplog.set_level(logging.ERROR, logger="opentelemetry")

    async def ask():
        response = await asyncio.wait_for(
            api.post(QUERY, department="land", purpose="land.property-registration"), WAIT
        )
        assert response.status_code == 200, response.text
        assert len(response.json()["data"]["enterpriseList"]["items"]) == 2 and "errors" not in response.json()
        return response

    # Not tests.conftest._api: it hands the app an in-memory exporter, which takes the place of the configured one.
    app = create_app(settings)
    await app.state.runtime.start()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://govshare.test") as client:
        api = Api(client, own_world, None, app)
        try:
            assert built == [DEAD_ENDPOINT]  # the server's own OTLP set-up, with this exporter in it
            responses = [await ask()]
            assert await _waited(exporter.entered), "the span processor never exported during the test"
            if behaviour == "hangs":
                responses += [await ask() for _ in range(5)]
                assert exporter.inside and exporter.calls == 1  # answered while the export still hangs
            else:
                assert await asyncio.to_thread(exporter.wait_for_failures, 1)
                begun = exporter.calls
                responses += [await ask() for _ in range(5)]
                # Their spans were exported too, and failed: more calls ended than had begun before them.
                assert await asyncio.to_thread(exporter.wait_for_failures, begun + 1)
            async with app.state.runtime.engine.connect() as conn:
                recorded = {r.request_id: r.outcome for r in (await conn.execute(select(access_records))).all()}
            assert {recorded.get(r.headers["X-Request-Id"]) for r in responses} == {"allowed"}
        finally:
            exporter.release.set()  # else stopping the server waits for the hanging export
            await app.state.runtime.stop()
    if behaviour == "refused":  # nothing listens there: the real exporter's every call failed
        assert exporter.results and set(exporter.results) == {SpanExportResult.FAILURE}
    if behaviour == "raises":  # the exporter's exception was raised, and contained by the span processor
        assert any("Exception while exporting" in r.getMessage() for r in caplog.records)


# --- the caller's trace, the request span, and what no span may carry ---------------------------------------------

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
LOOKUP = "query Applicant($id: String!) { person(idNumber: $id) { idNumber name } }"


async def _records(api, request_id: str) -> list:
    async with api.app.state.runtime.engine.connect() as conn:
        query = select(access_records).where(access_records.c.request_id == request_id).order_by(access_records.c.id)
        return (await conn.execute(query)).all()


def _by_name(spans) -> dict:
    named = {s.name: s for s in spans}
    assert len(named) == len(spans), [s.name for s in spans]
    return named


def _said(span) -> list[str]:
    """Every text a span carries to a collector: name, attributes, events, links, status, resource, trace state."""

    def texts(attributes):
        for key, value in (attributes or {}).items():
            yield key
            yield from (str(v) for v in (value if isinstance(value, tuple) else (value,)))

    said = [span.name, span.status.description or "", *texts(span.attributes), *texts(span.resource.attributes)]
    for event in span.events:
        said += [event.name, *texts(event.attributes)]
    for link in span.links:
        said += list(texts(link.attributes))
    said += [f"{k}={v}" for k, v in span.context.trace_state.items()]
    return said


def _assert_never_said(spans, secrets: list[str]) -> None:
    assert spans
    for span in spans:
        assert span.events == (), (span.name, [e.name for e in span.events])  # no exception, no stack trace
        said = _said(span)
        assert not [s for s in said if "Traceback" in s or "stacktrace" in s]
        for secret in secrets:
            leaks = [s for s in said if secret in s]
            assert not leaks, (span.name, secret, leaks)


async def test_the_request_span_is_the_servers_with_the_http_conventions_and_no_query_string(api, world):
    api.spans.clear()
    response = await api.client.post(
        "/graphql?id=371311197811261792",  # a query string is never recorded, whatever it holds
        json={"query": "{ enterpriseList(first: 1) { items { name } } }"},
        headers={
            "Authorization": f"Bearer {world.keys['land']}",
            "X-Purpose": "land.property-registration",
            "User-Agent": "dept-app/1.0",
        },
    )
    assert response.status_code == 200, response.text
    spans = _by_name(api.spans.get_finished_spans())
    assert set(spans) == {"POST /graphql", "graphql.operation", "govshare.access"}
    server, operation, access = spans["POST /graphql"], spans["graphql.operation"], spans["govshare.access"]
    assert server.kind is SpanKind.SERVER and server.parent is None
    assert operation.kind is SpanKind.INTERNAL and operation.parent.span_id == server.context.span_id
    assert access.parent.span_id == operation.context.span_id
    assert dict(server.attributes) == {
        "http.request.method": "POST",
        "url.scheme": "http",
        "url.path": "/graphql",
        "http.route": "/graphql",
        "server.address": "govshare.test",
        "server.port": 80,
        "client.address": "127.0.0.1",
        "user_agent.original": "dept-app/1.0",
        "network.protocol.version": "1.1",
        "http.response.status_code": 200,
        "govshare.request_id": response.headers["X-Request-Id"],
    }
    assert server.status.status_code is StatusCode.UNSET
    _assert_never_said(spans.values(), ["371311197811261792", "id="])


async def test_a_refused_request_has_its_server_span_an_error_only_from_500(api, world, monkeypatch):
    api.spans.clear()
    unauthenticated = await api.post(QUERY, key="not-a-key", purpose="land.property-registration")
    assert unauthenticated.status_code == 401
    (server,) = api.spans.get_finished_spans()  # refused before any operation ran
    assert server.name == "POST /graphql" and server.attributes["http.response.status_code"] == 401
    assert server.status.status_code is StatusCode.UNSET and "error.type" not in server.attributes
    _assert_never_said([server], ["not-a-key"])

    def broken(rows):  # the writer's transaction, in its thread: the platform database fails the commit
        raise OSError("disk I/O error")

    monkeypatch.setattr(api.app.state.runtime.audit, "_transaction", broken)
    api.spans.clear()
    failed = await api.post(QUERY, department="land", purpose="land.property-registration")
    assert failed.status_code == 500
    spans = _by_name(api.spans.get_finished_spans())
    server, operation = spans["POST /graphql"], spans["graphql.operation"]
    assert server.attributes["http.response.status_code"] == 500 and server.attributes["error.type"] == "500"
    assert server.status.status_code is StatusCode.ERROR
    assert operation.status.status_code is StatusCode.ERROR and operation.status.description == "AUDIT_UNAVAILABLE"
    _assert_never_said(spans.values(), [world.keys["land"]])


async def test_the_spans_and_the_record_join_the_callers_trace(api, world):
    api.spans.clear()
    person_id = world.showcase["person_luozhuang"]
    response = await api.post(
        LOOKUP,
        department="market",
        purpose="market.licence-review",
        variables={"id": person_id},
        headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "tracestate": "dept=app1,other=x"},
    )
    assert response.status_code == 200 and response.json()["data"]["person"]["idNumber"] == person_id
    spans = _by_name(api.spans.get_finished_spans())
    server = spans["POST /graphql"]
    assert server.parent is not None and server.parent.is_remote
    assert format(server.parent.span_id, "016x") == PARENT_ID
    assert {format(s.context.trace_id, "032x") for s in spans.values()} == {TRACE_ID}
    assert dict(server.context.trace_state.items()) == {"dept": "app1", "other": "x"}
    (record,) = await _records(api, response.headers["X-Request-Id"])
    assert (record.trace_id, record.outcome) == (TRACE_ID, "allowed")


async def test_a_caller_that_samples_nothing_changes_nothing_for_the_records(api, world):
    api.spans.clear()
    person_id = world.showcase["person_luozhuang"]
    response = await api.post(
        LOOKUP,
        department="market",
        purpose="market.licence-review",
        variables={"id": person_id},
        headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-00"},
    )
    assert response.status_code == 200 and response.json()["data"]["person"]["idNumber"] == person_id
    assert api.spans.get_finished_spans() == ()  # the caller said not to sample, and the default sampler follows
    (record,) = await _records(api, response.headers["X-Request-Id"])
    assert (record.trace_id, record.outcome, record.resource) == (TRACE_ID, "allowed", "police.person")
    assert (record.operation, record.row_count, list(record.items_returned)) == ("lookup", 1, ["idNumber", "name"])


async def test_a_sampler_that_samples_nothing_changes_nothing_for_the_records(world, monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")  # read when the server builds its tracer provider
    async for api in _api(world):
        person_id = world.showcase["person_luozhuang"]
        for headers, trace_id in (({"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}, TRACE_ID), ({}, None)):
            response = await api.post(
                LOOKUP,
                department="market",
                purpose="market.licence-review",
                variables={"id": person_id},
                headers=headers,
            )
            assert response.status_code == 200 and response.json()["data"]["person"]["idNumber"] == person_id
            (record,) = await _records(api, response.headers["X-Request-Id"])
            assert (record.outcome, record.row_count) == ("allowed", 1)
            assert re.fullmatch("[0-9a-f]{32}", record.trace_id) and record.trace_id != "0" * 32
            assert trace_id is None or record.trace_id == trace_id
        assert api.spans.get_finished_spans() == ()


@pytest.mark.parametrize(
    "traceparent",
    [
        "garbage",
        f"00-{'0' * 32}-{PARENT_ID}-01",  # an all-zero trace id is invalid
        f"00-{TRACE_ID}-{'0' * 16}-01",  # so is an all-zero parent id
        f"ff-{TRACE_ID}-{PARENT_ID}-01",  # version ff is forbidden
        f"00-{TRACE_ID.upper()}-{PARENT_ID}-01",  # upper-case hex is not trace context
        f"00-{TRACE_ID}-{PARENT_ID}",  # no flags
        f"00-{TRACE_ID}0-{PARENT_ID}-01",  # too long a trace id
        "00-371311197811261792371311197811-00f067aa0ba902b7-01x",
    ],
)
async def test_a_malformed_traceparent_starts_a_new_trace_and_is_no_error(api, world, traceparent):
    api.spans.clear()
    response = await api.post(
        QUERY, department="land", purpose="land.property-registration", headers={"traceparent": traceparent}
    )
    assert response.status_code == 200 and "errors" not in response.json(), response.text
    spans = _by_name(api.spans.get_finished_spans())
    server = spans["POST /graphql"]
    assert server.parent is None  # a root of its own
    trace_id = format(server.context.trace_id, "032x")
    assert trace_id != TRACE_ID and trace_id != "0" * 32
    (record,) = await _records(api, response.headers["X-Request-Id"])
    assert record.trace_id == trace_id


# Refused accesses whose refusal, exception or source error holds the ID number: none of it in a span.
REFUSED = {
    # the market key under a purpose its grant does not name: the lookup key itself is refused
    "PURPOSE_NOT_APPROVED": ("market", "market.food-safety", LOOKUP, "var"),
    # hrss's grant masks ID numbers: no lookup by one, no filter on one
    "FILTER_NOT_ALLOWED": ("hrss", "hrss.insurance-enrolment", LOOKUP, "var"),
    "FILTER_NOT_ALLOWED/inline": (
        "hrss",
        "hrss.insurance-enrolment",
        '{ personList(filter: {idNumber: {eq: "ID"}}) { items { name } } }',
        "inline",
    ),
    # hrss's row scope is one county: the refusal's own message lists the values outside it
    "OUT_OF_SCOPE": (
        "hrss",
        "hrss.insurance-enrolment",
        'query($id: String!) { personList(filter: {countyCode: {in: [$id, "371311"]}}) { items { name } } }',
        "var",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
async def test_a_refused_access_leaves_no_key_value_in_any_span(api, world, case):
    department, purpose, query, how = REFUSED[case]
    person_id = world.showcase["person_luozhuang"]
    api.spans.clear()
    response = await api.post(
        query.replace('"ID"', f'"{person_id}"'),
        department=department,
        purpose=purpose,
        variables={"id": person_id} if how == "var" else None,
    )
    assert response.status_code == 200, response.text
    code = case.split("/")[0]
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == [code]
    spans = _by_name(api.spans.get_finished_spans())
    _assert_never_said(spans.values(), [person_id, world.keys[department]])
    access = spans["govshare.access"]
    assert access.attributes["govshare.error_code"] == code and access.attributes["govshare.outcome"] == "denied"
    assert access.status.status_code is StatusCode.ERROR and access.status.description == code
    (record,) = await _records(api, response.headers["X-Request-Id"])
    assert (record.outcome, record.error_code) == ("denied", code)


@pytest.mark.parametrize("error", [SourceUnavailable, RuntimeError])
async def test_a_source_error_quoting_the_value_leaves_it_in_no_span(api, world, monkeypatch, error):
    person_id = world.showcase["person_luozhuang"]

    async def failing(url, query, **_):
        raise error(f'ERROR: canceling statement near "{person_id}" (id_number = {person_id})')

    monkeypatch.setattr(api.app.state.runtime.connectors, "fetch", failing)
    api.spans.clear()
    response = await api.post(LOOKUP, department="market", purpose="market.licence-review", variables={"id": person_id})
    code = "SOURCE_UNAVAILABLE" if error is SourceUnavailable else "INTERNAL_ERROR"
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == [code]
    assert person_id not in response.text
    spans = _by_name(api.spans.get_finished_spans())
    _assert_never_said(spans.values(), [person_id, "canceling", world.keys["market"]])
    assert spans["govshare.access"].status.description == code
    assert spans["govshare.access"].attributes["govshare.outcome"] == "failed"


async def test_a_lookup_not_found_in_scope_leaves_the_number_in_no_span(own_api, own_world):
    await grant_in_force(
        own_api, "land", ["idNumber", "name"], ["land.property-registration"], scope={"countyCode": ["371311"]}
    )
    outside = own_world.row("police", "SELECT id_number FROM person WHERE county_code = '371302' LIMIT 1")
    own_api.spans.clear()
    response = await own_api.post(
        LOOKUP,
        department="land",
        purpose="land.property-registration",
        variables={"id": outside["id_number"]},
        headers={"X-Operator": "clerk-7"},
    )
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["NOT_FOUND_IN_SCOPE"]
    spans = _by_name(own_api.spans.get_finished_spans())
    assert spans["govshare.access"].attributes["govshare.error_code"] == "NOT_FOUND_IN_SCOPE"
    _assert_never_said(spans.values(), [outside["id_number"], own_world.keys["land"]])


def test_with_no_exporter_no_span_is_recorded_yet_every_span_has_its_trace(own_world):
    """trace_exporter = none: nothing would receive a span, so none is recorded; the ids are made all the same (the
    access records and log lines carry the operation span's trace id), in the caller's trace when it sent one. With
    an exporter, spans are recorded as before."""
    tracer, provider = make_tracer(dataclasses.replace(own_world.settings, trace_exporter="none"))
    joined_context = caller_context({"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    with (
        traced(tracer, "POST /graphql", context=joined_context) as joined,
        traced(tracer, "graphql.operation") as inner,
    ):
        assert not joined.is_recording() and not inner.is_recording()
        assert {format(s.get_span_context().trace_id, "032x") for s in (joined, inner)} == {TRACE_ID}
    ids = set()
    for _ in range(2):
        with traced(tracer, "POST /graphql") as fresh:
            ids.add(fresh.get_span_context().trace_id)
    assert len(ids) == 2 and 0 not in ids  # a new trace each, never the invalid id
    provider.shutdown()
    for exporter_setting, exporter in (("none", InMemorySpanExporter()), ("console", None)):
        tracer, provider = make_tracer(
            dataclasses.replace(own_world.settings, trace_exporter=exporter_setting), exporter
        )
        with traced(tracer, "POST /graphql") as recorded:
            assert recorded.is_recording()
        provider.shutdown()
