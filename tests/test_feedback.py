"""Consumers' feedback (Art 24, oversight/feedback.py) over GraphQL: only the department holding a grant reports on
it, every input is checked with its code, a second report of a month replaces the first (both kept as process
records), and only the consumer, the grant's provider, the coordinator and auditors read it."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from audit.tables import process_records
from oversight import feedback
from tests.conftest import grant_in_force
from tests.test_applications import _submit

RECORD = """mutation($grant: ID!, $period: String!, $matters: Int!, $documents: Int!, $note: String!) {
  recordFeedback(grant: $grant, period: $period, mattersHandled: $matters, documentsSpared: $documents, note: $note) {
    id grant application consumer provider resource period mattersHandled documentsSpared note revision } }"""
READ = "query($grant: ID) { consumerFeedback(grant: $grant) { id grant consumer provider mattersHandled documentsSpared revision } }"


async def _record(api, department: str, grant: str, period: str = "2026-11", matters=5, documents=3, note="办件提速"):
    variables = {"grant": grant, "period": period, "matters": matters, "documents": documents, "note": note}
    return await api.query(RECORD, department, None, variables=variables)


def _code(answer: dict) -> str:
    assert answer["data"] is None, answer
    return answer["errors"][0]["extensions"]["code"]


async def test_the_holder_reports_a_second_report_replaces_and_both_are_on_the_trail(own_api):
    grant = await grant_in_force(own_api, "land", ["name", "address"], ["land.property-registration"])
    first = await _record(own_api, "land", grant)
    assert "errors" not in first, first
    shown = first["data"]["recordFeedback"]
    assert (shown["grant"], shown["consumer"], shown["provider"], shown["resource"]) == (
        grant,
        "land",
        "police",
        "police.person",
    )
    assert (shown["mattersHandled"], shown["documentsSpared"], shown["revision"]) == (5, 3, 1)
    again = (await _record(own_api, "land", grant, matters=7, documents=4))["data"]["recordFeedback"]
    assert again["id"] == shown["id"] and (again["mattersHandled"], again["documentsSpared"], again["revision"]) == (
        7,
        4,
        2,
    )
    listed = (await own_api.query(READ, "land", None))["data"]["consumerFeedback"]
    assert [(f["id"], f["mattersHandled"]) for f in listed] == [(shown["id"], 7)]  # replaced, not counted twice
    runtime = own_api.app.state.runtime
    async with runtime.engine.connect() as conn:
        steps = (
            await conn.execute(select(process_records).where(process_records.c.kind == "feedback").order_by("seq"))
        ).all()
        sums = await feedback.summary(conn, start=date(2026, 11, 1), end=date(2026, 11, 30), provider="police")
    assert [(s.grant_id, s.department, s.detail["matters_handled"], s.detail["revision"]) for s in steps] == [
        (grant, "land", 5, 1),
        (grant, "land", 7, 2),
    ]
    assert [(s.grant_ref, s.consumer, s.months, s.matters_handled, s.documents_spared) for s in sums] == [
        (grant, "land", 1, 7, 4)
    ]


async def test_another_departments_grant_is_refused_and_nothing_is_written(own_api):
    grant = await grant_in_force(own_api, "land", ["name"], ["land.property-registration"])
    for department in ("market", "police", "bigdata"):  # another consumer, the provider, the coordinator
        assert _code(await _record(own_api, department, grant)) == "FEEDBACK_GRANT_NOT_FOUND"
    assert _code(await _record(own_api, "land", "G-000000")) == "FEEDBACK_GRANT_NOT_FOUND"
    assert (await own_api.query(READ, "bigdata", None))["data"]["consumerFeedback"] == []


async def test_every_input_is_checked_with_its_code(own_api):
    grant = await grant_in_force(own_api, "land", ["name"], ["land.property-registration"])  # from 2026-01-01
    for overrides, code in [
        ({"period": "2026-13"}, "FEEDBACK_PERIOD_INVALID"),
        ({"period": "2026-1"}, "FEEDBACK_PERIOD_INVALID"),
        ({"period": "2099-01"}, "FEEDBACK_PERIOD_INVALID"),  # after this month
        ({"period": "2025-12"}, "FEEDBACK_PERIOD_INVALID"),  # before the grant
        ({"matters": -1}, "FEEDBACK_COUNT_INVALID"),
        ({"documents": 2_000_000_000}, "FEEDBACK_COUNT_INVALID"),
        ({"note": "长" * 2001}, "FEEDBACK_NOTE_TOO_LONG"),
        ({"note": "bell\x07"}, "FEEDBACK_NOTE_INVALID"),
    ]:
        answer = await _record(own_api, "land", grant, **overrides)
        assert _code(answer) == code, overrides
    english = await own_api.query(
        RECORD,
        "land",
        None,
        variables={"grant": grant, "period": "2026-13", "matters": 1, "documents": 1, "note": ""},
        headers={"Accept-Language": "en"},
    )
    assert "YYYY-MM" in english["errors"][0]["message"] and "month" in english["errors"][0]["message"]
    assert (await own_api.query(READ, "land", None))["data"]["consumerFeedback"] == []


async def test_an_application_silence_approved_is_reported_on_from_its_deadline(own_api):
    runtime = own_api.app.state.runtime
    application = await _submit(runtime)  # land's, due 4 March 2026, never answered: approved by silence
    await runtime.refresh()
    assert _code(await _record(own_api, "land", application, period="2026-02")) == "FEEDBACK_PERIOD_INVALID"
    shown = (await _record(own_api, "land", application, period="2026-03"))["data"]["recordFeedback"]
    assert (shown["grant"], shown["application"], shown["provider"]) == (application, application, "police")


async def test_who_reads_feedback_the_consumer_the_provider_the_coordinator_not_others(own_api):
    land_grant = await grant_in_force(own_api, "land", ["name"], ["land.property-registration"])
    market_grant = await grant_in_force(own_api, "market", ["name"], ["market.licence-review"])
    assert "errors" not in await _record(own_api, "land", land_grant)
    assert "errors" not in await _record(own_api, "market", market_grant)

    def seen(answer: dict) -> set[tuple[str, str]]:
        return {(f["consumer"], f["grant"]) for f in answer["data"]["consumerFeedback"]}

    both = {("land", land_grant), ("market", market_grant)}
    assert seen(await own_api.query(READ, "land", None)) == {("land", land_grant)}
    assert seen(await own_api.query(READ, "market", None)) == {("market", market_grant)}
    assert seen(await own_api.query(READ, "police", None)) == both  # the provider of police.person
    assert seen(await own_api.query(READ, "bigdata", None)) == both  # the coordinator (and auditor)
    assert seen(await own_api.query(READ, "hrss", None)) == set()  # neither consumer nor provider
    # Naming another's grant reads nothing of it.
    assert seen(await own_api.query(READ, "land", None, variables={"grant": market_grant})) == set()
