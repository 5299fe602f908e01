"""Spans are not the audit: an exporter that is down changes nothing for the caller or the access records.

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
import threading

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http import trace_exporter as otlp
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from sqlalchemy import select

from audit.tables import access_records
from server import create_app
from tests.conftest import Api

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
