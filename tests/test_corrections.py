"""Data corrections (校核纠错) end to end over GraphQL: report → answer, overdue → coordinator, the dispute in other
consumers' answers, and the attacks a report must not open (existence, other departments, the key value)."""

from __future__ import annotations

import datetime

from sqlalchemy import select

from audit.chain import verify
from audit.tables import access_records, process_records
from corrections.tables import data_error_reports
from tests.conftest import _api, absent, grant_in_force

REPORT = """mutation($resource: String!, $key: String!, $item: String!, $proposed: String!, $reason: String!) {
  reportDataError(resource: $resource, key: $key, item: $item, proposed: $proposed, reason: $reason) {
    id resource item key proposed reason reporter status deadline deadlineProvisional history { kind } } }"""
ANSWER = """mutation($id: ID!, $outcome: String!, $reason: String!) {
  answerDataError(id: $id, outcome: $outcome, reason: $reason) { id status answer history { kind reason } } }"""
REPORTS = "{ dataErrorReports { id key proposed reason status answer reporter } }"
INBOX = "{ dataErrorInbox { id key proposed status deadline } }"
MARKET = "market.licence-review"
HRSS = "hrss.insurance-enrolment"
LAND = "land.property-registration"
# A valid-looking ID number that no demo person has (the demo's are generated with their check digits).
NOBODY = "371311190001010000"


def report_vars(key: str, item: str = "name", resource: str = "police.person", **extra) -> dict:
    return {
        "resource": resource,
        "key": key,
        "item": item,
        "proposed": extra.get("proposed", "张三丰"),
        "reason": extra.get("reason", "与申请人出示的居民身份证不一致"),
    }


async def report(api, department: str, purpose: str | None, key: str, **kwargs) -> dict:
    return await api.query(REPORT, department, purpose, variables=report_vars(key, **kwargs))


def codes(result: dict) -> list[str]:
    return [e["extensions"]["code"] for e in result.get("errors", [])]


async def test_report_answer_corrected_and_the_dispute_in_other_consumers_answers(own_api, own_world):
    person = own_world.showcase["person_luozhuang"]  # 罗庄区: hrss reads it, ID number masked
    filed = await report(own_api, "market", MARKET, person, resource="person")  # by API name
    assert "errors" not in filed, filed
    created = filed["data"]["reportDataError"]
    assert created["resource"] == "police.person" and created["status"] == "open" and created["key"] == person
    assert created["reporter"] == "market" and created["history"] == [{"kind": "data_error_reported"}]
    report_id = created["id"]

    # The reporter and the provider see it whole; the provider's inbox has it with its deadline.
    assert (await own_api.query(REPORTS, "market", None))["data"]["dataErrorReports"][0]["key"] == person
    inbox = (await own_api.query(INBOX, "police", None))["data"]["dataErrorInbox"]
    assert [(r["id"], r["key"], r["proposed"]) for r in inbox] == [(report_id, person, "张三丰")]
    # The coordinator sees its course without the key value or the proposed value; others see nothing at all.
    coordinator = await own_api.query(REPORTS, "bigdata", None)
    assert [(r["id"], r["key"], r["proposed"]) for r in coordinator["data"]["dataErrorReports"]] == [
        (report_id, None, None)
    ]
    assert absent(person, coordinator)
    assert (await own_api.query(INBOX, "bigdata", None))["data"]["dataErrorInbox"] == []  # not overdue yet
    for other in ("hrss", "land"):
        for query in (REPORTS, INBOX):
            seen = await own_api.query(query, other, None)
            assert not next(iter(seen["data"].values())) and absent(person, seen)

    # Other consumers' answers carrying that record's name say it is disputed: the key only where it is shown.
    hrss = await own_api.query(
        '{ personList(filter: {countyCode: {eq: "371311"}}, first: 200) { items { idNumber name } } }', "hrss", HRSS
    )
    assert hrss["extensions"]["disputes"] == [
        {"resource": "police.person", "item": "name", "reportId": report_id, "since": hrss_since(hrss)}
    ]
    assert absent(person, hrss)  # hrss sees the ID number masked: the dispute does not give it away
    lookup = await own_api.query(f'{{ person(idNumber: "{person}") {{ name }} }}', "market", MARKET)
    assert [(d["reportId"], d["key"]) for d in lookup["extensions"]["disputes"]] == [(report_id, person)]
    entity = await own_api.query(
        "query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { name } } }",
        "market",
        MARKET,
        variables={"r": [{"__typename": "Person", "idNumber": person}]},
    )
    assert [d["reportId"] for d in entity["extensions"]["disputes"]] == [report_id]  # Apollo Federation's path too
    # Not the item disputed, or not that record: no dispute.
    other_item = await own_api.query(f'{{ person(idNumber: "{person}") {{ address }} }}', "market", MARKET)
    lanshan = own_world.showcase["person_lanshan"]
    other_record = await own_api.query(f'{{ person(idNumber: "{lanshan}") {{ name }} }}', "market", MARKET)
    assert "disputes" not in other_item.get("extensions", {}) and "disputes" not in other_record.get("extensions", {})

    # Only the provider's reviewer answers: another department cannot even learn the report exists.
    for department, code in (("hrss", "DATA_ERROR_NOT_FOUND"), ("market", "DATA_ERROR_NOT_YOUR_RESOURCE")):
        refused = await own_api.query(
            ANSWER, department, None, variables={"id": report_id, "outcome": "rejected", "reason": "x"}
        )
        assert codes(refused) == [code] and refused["data"]["answerDataError"] is None
    invalid = await own_api.query(ANSWER, "police", None, variables={"id": report_id, "outcome": "ok", "reason": "x"})
    assert codes(invalid) == ["DATA_ERROR_OUTCOME_INVALID"]
    answered = await own_api.query(
        ANSWER, "police", None, variables={"id": report_id, "outcome": "corrected", "reason": "已按户籍档案更正"}
    )
    assert answered["data"]["answerDataError"]["status"] == "corrected"
    assert [s["kind"] for s in answered["data"]["answerDataError"]["history"]] == [
        "data_error_reported",
        "data_error_refused_action",
        "data_error_refused_action",
        "data_error_corrected",
    ]
    again = await own_api.query(
        ANSWER, "police", None, variables={"id": report_id, "outcome": "rejected", "reason": "x"}
    )
    assert codes(again) == ["DATA_ERROR_ANSWERED"]

    # The reporter sees the outcome; answers no longer carry the dispute.
    mine = (await own_api.query(REPORTS, "market", None))["data"]["dataErrorReports"]
    assert [(r["status"], r["answer"]) for r in mine] == [("corrected", "已按户籍档案更正")]
    after = await own_api.query(
        '{ personList(filter: {countyCode: {eq: "371311"}}, first: 200) { items { name } } }', "hrss", HRSS
    )
    assert "disputes" not in after.get("extensions", {})

    # The report was an access (recorded as such); the process records never hold the key or the proposed value.
    runtime = own_api.app.state.runtime
    async with runtime.engine.connect() as conn:
        accesses = (await conn.execute(select(access_records).where(access_records.c.operation == "report"))).all()
        steps = (await conn.execute(select(process_records).where(process_records.c.kind.like("data_error%")))).all()
        stored = (await conn.execute(select(data_error_reports))).one()
        _, broken = await verify(conn, "process")  # the report's steps are in the process records' hash chain
    assert broken is None
    assert [(a.department, a.purpose, a.outcome) for a in accesses] == [("market", MARKET, "allowed")]
    assert all(person not in repr(tuple(s)) and "张三丰" not in repr(tuple(s)) for s in steps)
    assert person not in stored.key_sealed and "张三丰" not in stored.proposed_sealed  # sealed at rest
    assert all(person not in str(s.attributes) for s in own_api.spans.get_finished_spans())


def hrss_since(result: dict) -> str:
    return result["extensions"]["disputes"][0]["since"]


async def test_rejected_late_after_the_report_went_overdue_to_the_coordinator(own_world):
    now = [datetime.datetime(2026, 3, 2, 9, tzinfo=datetime.UTC)]  # a Monday
    async for api in _api(own_world, clock=lambda: now[0]):
        person = own_world.showcase["person_lanshan"]
        filed = (await report(api, "market", MARKET, person))["data"]["reportDataError"]
        # 5 working days: due at the end of Monday 9 March (China time), whatever the hour it was filed.
        assert filed["deadline"].startswith("2026-03-09T16:00:00") and not filed["deadlineProvisional"]

        now[0] = datetime.datetime(2026, 3, 9, 15, 59, tzinfo=datetime.UTC)
        assert [r["status"] for r in (await api.query(INBOX, "police", None))["data"]["dataErrorInbox"]] == ["open"]
        assert (await api.query(INBOX, "bigdata", None))["data"]["dataErrorInbox"] == []

        now[0] = datetime.datetime(2026, 3, 10, 1, tzinfo=datetime.UTC)
        overdue = await api.query(INBOX, "bigdata", None)
        assert [(r["id"], r["status"], r["key"]) for r in overdue["data"]["dataErrorInbox"]] == [
            (filed["id"], "escalated", None)
        ]
        assert absent(person, overdue)
        # Still disputed while unanswered; the provider may still answer, and the late answer is marked.
        still = await api.query(f'{{ person(idNumber: "{person}") {{ name }} }}', "market", MARKET)
        assert [d["reportId"] for d in still["extensions"]["disputes"]] == [filed["id"]]
        rejected = await api.query(
            ANSWER, "police", None, variables={"id": filed["id"], "outcome": "rejected", "reason": "经核查登记无误"}
        )
        assert rejected["data"]["answerDataError"]["status"] == "rejected"
        assert [s["kind"] for s in rejected["data"]["answerDataError"]["history"]] == [
            "data_error_reported",
            "data_error_escalated",
            "data_error_rejected",
        ]
        async with api.app.state.runtime.engine.connect() as conn:
            steps = (
                await conn.execute(
                    select(process_records)
                    .where(process_records.c.kind.like("data_error%"))
                    .order_by(process_records.c.id)
                )
            ).all()
        assert steps[1].at == datetime.datetime(2026, 3, 9, 16, tzinfo=datetime.UTC)  # escalated at the deadline
        assert steps[1].detail["to"] == "coordinator" and steps[2].detail["late"] is True
        assert (await api.query(INBOX, "bigdata", None))["data"]["dataErrorInbox"] == []
        mine = (await api.query(REPORTS, "market", None))["data"]["dataErrorReports"]
        assert [(r["status"], r["answer"]) for r in mine] == [("rejected", "经核查登记无误")]


async def test_a_report_cannot_tell_whether_a_record_exists(own_api, own_world):
    luozhuang, lanshan = own_world.showcase["person_luozhuang"], own_world.showcase["person_lanshan"]
    # land may read names in 罗庄区 only.
    await grant_in_force(own_api, "land", ["idNumber", "name"], [LAND], scope={"countyCode": ["371311"]})
    outside = await report(own_api, "land", LAND, lanshan)  # exists, outside the scope
    nobody = await report(own_api, "land", LAND, NOBODY)  # does not exist
    malformed = await report(own_api, "land", LAND, "no such key")
    assert codes(outside) == codes(nobody) == codes(malformed) == ["REPORT_RECORD_NOT_FOUND"]
    assert outside["errors"] == nobody["errors"] == malformed["errors"]
    assert "errors" not in await report(own_api, "land", LAND, luozhuang)  # in scope: accepted
    # With the key granted everywhere, a lookup sees every row, and the name is null outside 罗庄区 (its error
    # ITEM_OUT_OF_SCOPE): a report must still answer exactly as for a record that does not exist.
    await grant_in_force(own_api, "land", ["idNumber", "householdId"], [LAND])
    lookup = await own_api.query(f'{{ person(idNumber: "{lanshan}") {{ name }} }}', "land", LAND)
    assert codes(lookup) == ["ITEM_OUT_OF_SCOPE"]
    outside, nobody = await report(own_api, "land", LAND, lanshan), await report(own_api, "land", LAND, NOBODY)
    assert codes(outside) == ["REPORT_RECORD_NOT_FOUND"] and outside["errors"] == nobody["errors"]

    # A denied item: the same refusal for a record that exists and one that does not.
    phone = await report(own_api, "market", MARKET, luozhuang, item="phone")
    phone_nobody = await report(own_api, "market", MARKET, NOBODY, item="phone")
    assert codes(phone) == ["NOT_SHARED"] and phone["errors"] == phone_nobody["errors"]
    # A masked key (hrss sees ID numbers masked) can be neither looked up nor reported on: no guess is confirmed.
    guess, guess_nobody = await report(own_api, "hrss", HRSS, luozhuang), await report(own_api, "hrss", HRSS, NOBODY)
    assert codes(guess) == ["FILTER_NOT_ALLOWED"] and guess["errors"] == guess_nobody["errors"]
    # A masked item: an answer to what it proposes would tell the value.
    await grant_in_force(own_api, "land", ["address"], [LAND], masks={"address": "nullify"})
    masked = await report(own_api, "land", LAND, luozhuang, item="address")
    assert codes(masked) == ["REPORT_ITEM_MASKED"]
    # No purpose, or one not registered for the department: refused as a lookup would be.
    assert codes(await report(own_api, "market", None, luozhuang)) == ["PURPOSE_REQUIRED"]
    assert codes(await report(own_api, "market", HRSS, luozhuang)) == ["PURPOSE_NOT_REGISTERED"]
    # A reason repeating the key value is refused (the coordinator reads reasons, never keys).
    leaky = await report(own_api, "market", MARKET, luozhuang, reason=f"{luozhuang} 的姓名有误")
    assert codes(leaky) == ["REPORT_REASON_HAS_KEY"]

    runtime = own_api.app.state.runtime
    async with runtime.engine.connect() as conn:
        stored = (await conn.execute(select(data_error_reports))).all()
        tried = (
            await conn.execute(
                select(access_records.c.department, access_records.c.outcome, access_records.c.error_code).where(
                    access_records.c.operation == "report"
                )
            )
        ).all()
    assert [r.reporter for r in stored] == ["land"]  # only the report on a record land may read was filed
    # Every attempt that read (or was refused reading) the record is an access record.
    assert ("land", "denied", "REPORT_RECORD_NOT_FOUND") in tried and ("hrss", "denied", "FILTER_NOT_ALLOWED") in tried
    assert ("market", "denied", "NOT_SHARED") in tried and ("land", "denied", "REPORT_ITEM_MASKED") in tried


async def test_another_department_cannot_read_or_answer_a_report_nor_see_its_key(own_api, own_world):
    person = own_world.showcase["person_luozhuang"]
    report_id = (await report(own_api, "market", MARKET, person))["data"]["reportDataError"]["id"]
    for department in ("hrss", "land", "civil"):
        for query in (
            f'{{ dataErrorReports(id: "{report_id}") {{ id key }} }}',
            INBOX,
        ):
            seen = await own_api.query(query, department, None)
            assert not next(iter(seen["data"].values())) and absent(person, seen)
        answered = await own_api.query(
            ANSWER, department, None, variables={"id": report_id, "outcome": "corrected", "reason": "x"}
        )
        unknown = await own_api.query(
            ANSWER, department, None, variables={"id": "E-00000000", "outcome": "corrected", "reason": "x"}
        )
        # The same refusal as for a report that does not exist (the ids differ only in the message's id).
        assert codes(answered) == codes(unknown) == ["DATA_ERROR_NOT_FOUND"]
    # The coordinator cannot answer in the provider's place.
    coordinator = await own_api.query(
        ANSWER, "bigdata", None, variables={"id": report_id, "outcome": "corrected", "reason": "x"}
    )
    assert codes(coordinator) == ["DATA_ERROR_NOT_YOUR_RESOURCE"]
    assert (await own_api.query(INBOX, "police", None))["data"]["dataErrorInbox"][0]["status"] == "open"


async def test_console_lists_the_reports_course_without_key_or_proposed_value(own_world):
    """Staff (no party to any record) see every report's course, overdue ones sent to the coordinator."""
    import httpx

    from admin import accounts
    from tests.test_console import ORIGIN, PASSWORD, Console

    now = [datetime.datetime(2026, 3, 2, 9, tzinfo=datetime.UTC)]
    async for api in _api(own_world, clock=lambda: now[0]):
        runtime = api.app.state.runtime
        async with runtime.engine.begin() as conn:
            await accounts.create_account(conn, runtime.settings, "wang.fang", PASSWORD, "王芳")
        person = own_world.showcase["person_lanshan"]
        filed = (await report(api, "market", MARKET, person))["data"]["reportDataError"]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url=ORIGIN) as client:
            console = Console(client)
            await console.sign_in()
            page = await client.get("/console/corrections")
            assert page.status_code == 200 and f'id="report-{filed["id"]}"' in page.text and "待答复" in page.text
            assert person not in page.text and "张三丰" not in page.text
            now[0] = datetime.datetime(2026, 3, 12, tzinfo=datetime.UTC)  # past the deadline: nothing else ran
            overdue = await client.get("/console/corrections?status=escalated&lang=en")
            assert f'id="report-{filed["id"]}"' in overdue.text and "Overdue, with the coordinator" in overdue.text
            assert f'id="report-{filed["id"]}"' not in (await client.get("/console/corrections?status=open")).text


async def test_in_production_a_report_names_nothing_outside_the_departments_view(own_world):
    from tests.conftest import production

    person = own_world.showcase["person_luozhuang"]
    async for api in _api(own_world, production(own_world.settings)):
        refusals = [
            await report(api, "market", MARKET, person, item="phone"),  # not shared: not in market's view
            await report(api, "market", MARKET, person, resource="civil.subsidy"),  # not readable by market
            await report(api, "market", MARKET, person, resource="civil.nothing"),  # no such resource
            await report(api, "market", MARKET, person, item="shoeSize"),  # no such item
            await report(api, "market", MARKET, NOBODY),  # no such record
        ]
        assert all(codes(r) == ["REPORT_RECORD_NOT_FOUND"] for r in refusals), [codes(r) for r in refusals]
        assert all(r["errors"] == refusals[0]["errors"] for r in refusals)
        for name in ("phone", "civil.subsidy", "NOT_SHARED", "NO_GRANT"):
            assert all(absent(name, r) for r in refusals), name
        filed = await report(api, "market", MARKET, person)
        assert filed["data"]["reportDataError"]["status"] == "open"
        disputed = await api.query(f'{{ person(idNumber: "{person}") {{ name }} }}', "market", MARKET)
        assert [d["item"] for d in disputed["extensions"]["disputes"]] == ["name"]


async def test_a_deadline_counted_without_the_years_schedule_is_counted_again_once_it_is_loaded(own_world):
    from applications.workdays import load_calendar, parse_schedule, store_schedule
    from corrections.process import recompute_deadlines

    now = [datetime.datetime(2027, 1, 4, 2, tzinfo=datetime.UTC)]  # Monday 4 January 2027: no schedule known yet
    async for api in _api(own_world, clock=lambda: now[0]):
        filed = (await report(api, "market", MARKET, own_world.showcase["person_lanshan"]))["data"]["reportDataError"]
        assert filed["deadlineProvisional"] is True
        assert filed["deadline"].startswith("2027-01-11T16:00:00")  # weekdays only: the end of Monday 11th, China
        runtime = api.app.state.runtime
        schedule = 'year = 2027\nholidays = ["2027-01-05", "2027-01-06"]\nsource = "test"\n'
        async with runtime.engine.begin() as conn:
            await store_schedule(conn, parse_schedule(schedule), loaded_by="test")
            assert await recompute_deadlines(conn, await load_calendar(conn), runtime.settings) == 1
        (again,) = (await api.query(INBOX, "police", None))["data"]["dataErrorInbox"]
        assert again["deadline"].startswith("2027-01-13T16:00:00")  # two holidays later: the end of Wednesday 13th


async def test_disputes_follow_links_and_a_refused_hop_says_none(own_world):
    import dataclasses

    linked = "{ enterpriseList(first: 10) { items { legalRepresentative { name } } } }"
    async for api in _api(own_world):
        listed = await api.query("{ enterpriseList(first: 1) { items { legalRepIdNumber } } }", "market", MARKET)
        person = listed["data"]["enterpriseList"]["items"][0]["legalRepIdNumber"]
        report_id = (await report(api, "market", MARKET, person))["data"]["reportDataError"]["id"]
        answered = await api.query(linked, "market", MARKET)
        assert [(d["reportId"], d["key"]) for d in answered["extensions"]["disputes"]] == [(report_id, person)]
    async for api in _api(own_world, dataclasses.replace(own_world.settings, max_link_rows=3)):
        refused = await api.query(linked, "market", MARKET)
        assert codes(refused) == ["LINK_TOO_LARGE"] and "disputes" not in refused.get("extensions", {})
