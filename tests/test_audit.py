"""Every access recorded: durable, append-only records written before the response, and spans without key values."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from audit.tables import access_records


async def _records(api, request_id: str) -> list:
    async with api.app.state.runtime.engine.connect() as conn:
        return (
            await conn.execute(
                select(access_records).where(access_records.c.request_id == request_id).order_by(access_records.c.id)
            )
        ).all()


async def test_each_resource_access_leaves_one_record_with_who_what_why(api, world):
    # hrss may not look a person up by the ID number it sees masked: it lists its county instead.
    query = """query Check { personList(first: 1) { items { name phone } }
                 enterpriseList(first: 3) { items { name legalRepIdNumber } } }"""
    response = await api.post(
        query, department="hrss", purpose="hrss.insurance-enrolment", headers={"X-Operator": "officer-0042"}
    )
    assert response.status_code == 200
    records = await _records(api, response.headers["X-Request-Id"])
    by_resource = {r.resource: r for r in records}  # root fields run concurrently: any order
    assert len(records) == 2 and set(by_resource) == {"police.person", "market.enterprise"}
    person, enterprise = by_resource["police.person"], by_resource["market.enterprise"]
    for record in records:
        assert record.department == "hrss" and record.application == "hrss-demo"
        assert record.operator == "officer-0042" and record.purpose == "hrss.insurance-enrolment"
        assert len(record.trace_id) == 32 and record.at is not None
    assert person.operation == "list" and person.row_count == 1
    assert person.items_returned == ["name"] and person.items_denied == {"phone": "NOT_SHARED"}
    assert person.outcome == "partial" and len(person.grants_used) == 1
    assert enterprise.operation == "list" and enterprise.row_count == 3
    assert enterprise.items_returned == ["name"] and enterprise.items_denied == {"legalRepIdNumber": "NO_GRANT"}
    assert enterprise.grants_used == []


async def test_masked_items_and_refusals_are_recorded(api, world):
    response = await api.post(
        "{ personList(first: 2) { items { idNumber } } }", department="hrss", purpose="hrss.insurance-enrolment"
    )
    (record,) = await _records(api, response.headers["X-Request-Id"])
    assert record.items_masked == ["idNumber"] and record.outcome == "allowed"

    response = await api.post(
        "{ personList { items { name } } }", department="land", purpose="land.property-registration"
    )
    (record,) = await _records(api, response.headers["X-Request-Id"])
    assert record.outcome == "denied" and record.items_denied == {"name": "NO_GRANT"} and record.row_count == 0

    response = await api.post("{ personList { items { name } } }", department="land")
    (record,) = await _records(api, response.headers["X-Request-Id"])
    assert record.outcome == "denied" and record.error_code == "PURPOSE_REQUIRED" and record.purpose is None


async def test_access_records_are_append_only(api):
    await api.post(
        "{ enterpriseList(first: 1) { items { name } } }", department="land", purpose="land.property-registration"
    )
    engine = api.app.state.runtime.engine
    for statement in (update(access_records).values(department="nobody"), delete(access_records)):
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(statement)
    async with engine.connect() as conn:
        assert (
            await conn.execute(text("SELECT COUNT(*) FROM access_records WHERE department = 'nobody'"))
        ).scalar() == 0


async def test_no_data_leaves_when_the_record_cannot_be_written(api, world, monkeypatch):
    def broken(rows):  # the writer's transaction, in its thread: the platform database fails the commit
        raise OSError("disk I/O error")

    monkeypatch.setattr(api.app.state.runtime.audit, "_transaction", broken)
    code = world.showcase["enterprise"]
    name = world.row("market", "SELECT name FROM enterprise WHERE credit_code = ?", code)["name"]
    response = await api.post(
        "query($c: String!) { enterprise(creditCode: $c) { name } }",
        department="land",
        purpose="land.property-registration",
        variables={"c": code},
    )
    assert response.status_code == 500
    assert response.json()["errors"][0]["extensions"]["code"] == "AUDIT_UNAVAILABLE"
    assert name not in response.text and "data" not in response.json()


async def test_spans_per_operation_and_access_carry_the_facts_but_no_key_values(api, world):
    api.spans.clear()
    person_id = world.showcase["person_luozhuang"]
    response = await api.post(
        "query Applicant($id: String!) { person(idNumber: $id) { idNumber name } }",
        department="market",
        purpose="market.licence-review",
        variables={"id": person_id},
    )
    assert response.status_code == 200
    spans = api.spans.get_finished_spans()
    # the request's (SERVER), the operation's and the access's; none per field
    assert sorted(s.name for s in spans) == ["POST /graphql", "govshare.access", "graphql.operation"]
    server = next(s for s in spans if s.name == "POST /graphql")
    operation = next(s for s in spans if s.name == "graphql.operation")
    access = next(s for s in spans if s.name == "govshare.access")
    assert operation.parent.span_id == server.context.span_id
    assert operation.attributes["graphql.operation.name"] == "Applicant"
    assert operation.attributes["graphql.operation.type"] == "query"
    assert access.parent.span_id == operation.context.span_id
    assert access.attributes["govshare.resource"] == "police.person"
    assert access.attributes["govshare.department"] == "market"
    assert access.attributes["govshare.purpose"] == "market.licence-review"
    assert list(access.attributes["govshare.items_returned"]) == ["idNumber", "name"]
    assert access.attributes["govshare.row_count"] == 1
    assert access.attributes["govshare.request_id"] == response.headers["X-Request-Id"]
    for span in spans:
        for value in span.attributes.values():
            values = value if isinstance(value, tuple) else (value,)
            assert all(person_id not in str(v) for v in values)
    (record,) = await _records(api, response.headers["X-Request-Id"])
    assert record.trace_id == format(access.context.trace_id, "032x")


async def test_providers_read_the_records_of_their_own_resources_only(own_api, own_world):
    await own_api.query(
        "{ enterpriseList(first: 1) { items { name } } }",
        "land",
        "land.property-registration",
        headers={"X-Operator": "clerk-1"},
    )
    await own_api.query("{ personList(first: 1) { items { gender } } }", "land", "land.property-registration")
    query = "{ usageRecords { department resource operator purpose itemsReturned outcome } }"
    market = (await own_api.query(query, "market", None))["data"]["usageRecords"]
    assert [r["resource"] for r in market] == ["market.enterprise"]
    assert market[0] == {
        "department": "land",
        "resource": "market.enterprise",
        "operator": "clerk-1",
        "purpose": "land.property-registration",
        "itemsReturned": ["name"],
        "outcome": "allowed",
    }
    police = (await own_api.query(query, "police", None))["data"]["usageRecords"]
    assert [r["resource"] for r in police] == ["police.person"]
    assert (await own_api.query(query, "hrss", None))["data"]["usageRecords"] == []
    everything = (await own_api.query(query, "bigdata", None))["data"]["usageRecords"]  # the auditor
    assert {r["resource"] for r in everything} == {"market.enterprise", "police.person"}
