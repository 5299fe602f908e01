"""Share applications (Art 17-21): refused at once with a reason per field, answered by the provider within
10 working days, or approved by silence at the deadline whether or not anything ran."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from applications.process import ApplicationInvalid, approve, history, refuse, settle, submit
from applications.tables import applications
from applications.workdays import CHINA, WorkCalendar
from audit.tables import access_records
from govshare.errors import GovshareError
from govshare.keys import Caller
from policies.tables import grants
from tests.conftest import _api, errors_by_item

SUBMITTED = datetime(2026, 2, 12, 2, tzinfo=UTC)  # Thu 12 Feb 2026, 10:00 in Beijing
DEADLINE = datetime(2026, 3, 5, tzinfo=CHINA)  # end of Wed 4 Mar: Spring Festival does not count
LAND = Caller("k-land", "land", "land-app")
POLICE = Caller("k-police", "police", "police-app")
MARKET = Caller("k-market", "market", "market-app")
QUERY = '{ personList(filter: {countyCode: {eq: "371302"}}, first: 5) { items { name address } } }'


def application(**overrides):
    values = dict(
        resource="police.person",
        items=["name", "address"],
        purpose="land.property-registration",
        users="不动产登记窗口工作人员",
        share_mode="online_query",
        row_scope={"countyCode": ["371302"]},
        valid_from=datetime(2026, 1, 1, tzinfo=CHINA),
        valid_until=datetime(2027, 1, 1, tzinfo=CHINA),
        acknowledged=True,
        now=SUBMITTED,
    )
    return values | overrides


async def _submit(runtime, caller=LAND, **overrides) -> str:
    async with runtime.engine.begin() as conn:
        return await submit(conn, runtime.catalog, WorkCalendar(), runtime.settings, caller, **application(**overrides))


@pytest.mark.parametrize(
    "overrides, field, code",
    [
        ({"resource": "police.nothing"}, "resource", "RESOURCE_NOT_FOUND"),
        ({"resource": "market.enterprise", "items": ["name"], "row_scope": {}}, "resource", "NOTHING_TO_APPLY"),
        ({"items": ["name", "shoeSize"]}, "items", "ITEM_NOT_FOUND"),
        ({"purpose": "market.licence-review"}, "purpose", "PURPOSE_NOT_REGISTERED"),
        ({"valid_until": datetime(2026, 1, 1, tzinfo=UTC)}, "validUntil", "END_IN_PAST"),
        ({"valid_until": datetime(2031, 1, 1, tzinfo=UTC)}, "validUntil", "END_TOO_FAR"),
        ({"acknowledged": False}, "acknowledged", "ACKNOWLEDGEMENT_REQUIRED"),
        ({"users": " "}, "users", "FIELD_REQUIRED_USERS"),
        ({"share_mode": "fax"}, "shareMode", "SHARE_MODE_INVALID"),
    ],
)
async def test_invalid_applications_are_refused_with_a_reason_per_field(own_api, overrides, field, code):
    runtime = own_api.app.state.runtime
    with pytest.raises(ApplicationInvalid) as refused:
        await _submit(runtime, **overrides)
    assert (field, code) in [(p.field, p.code) for p in refused.value.problems]
    async with runtime.engine.connect() as conn:
        assert (await conn.execute(select(applications))).all() == []


async def test_deadline_counts_working_days_and_the_provider_answers(own_api, own_world):
    runtime = own_api.app.state.runtime
    application_id = await _submit(runtime)
    async with runtime.engine.connect() as conn:
        row = (await conn.execute(select(applications).where(applications.c.id == application_id))).one()
    assert row.deadline_at.replace(tzinfo=UTC) == DEADLINE and row.status == "pending" and not row.deadline_provisional

    async with runtime.engine.begin() as conn:
        with pytest.raises(GovshareError) as refused:
            await approve(conn, runtime.catalog, runtime.settings, MARKET, application_id, now=SUBMITTED)
        assert refused.value.code == "NOT_YOUR_RESOURCE"
    async with runtime.engine.begin() as conn:  # police narrows the items to the name
        grant_id = await approve(
            conn,
            runtime.catalog,
            runtime.settings,
            POLICE,
            application_id,
            now=SUBMITTED + timedelta(days=3),
            items=["name"],
        )
    async with runtime.engine.connect() as conn:
        granted = (await conn.execute(select(grants).where(grants.c.id == grant_id))).one()
        steps = [r.kind for r in await history(conn, application_id)]
    assert granted.application_id == application_id and granted.items == ["name"]
    assert steps == ["submitted", "refused_action", "approved"]

    await runtime.refresh()
    result = await own_api.query(QUERY, "land", "land.property-registration")
    assert errors_by_item(result) == {"address": "NO_GRANT"}
    assert all(i["name"] for i in result["data"]["personList"]["items"])


async def test_a_refusal_needs_a_reason(own_api):
    runtime = own_api.app.state.runtime
    application_id = await _submit(runtime)
    async with runtime.engine.begin() as conn:
        with pytest.raises(GovshareError) as refused:
            await refuse(conn, runtime.catalog, runtime.settings, POLICE, application_id, now=SUBMITTED, reason=" ")
        assert refused.value.code == "REASON_REQUIRED"
        await refuse(
            conn, runtime.catalog, runtime.settings, POLICE, application_id, now=SUBMITTED, reason="超出履职需要"
        )
    async with runtime.engine.connect() as conn:
        (refused,) = [r for r in await history(conn, application_id) if r.kind == "refused"]
    assert refused.reason == "超出履职需要" and refused.department == "police"


async def test_silence_approves_at_the_deadline_without_any_job(own_world):
    before, after = DEADLINE - timedelta(minutes=1), DEADLINE + timedelta(minutes=1)
    async for api in _api(own_world, clock=lambda: before):
        application_id = await _submit(api.app.state.runtime)
        await api.app.state.runtime.refresh()
        assert errors_by_item(await api.query(QUERY, "land", "land.property-registration")) == {
            "name": "APPLICATION_PENDING",
            "address": "APPLICATION_PENDING",
        }
    async for api in _api(own_world, clock=lambda: after):
        runtime = api.app.state.runtime
        response = await api.post(QUERY, department="land", purpose="land.property-registration")
        result = response.json()
        assert "errors" not in result and all(i["name"] for i in result["data"]["personList"]["items"])
        async with runtime.engine.connect() as conn:  # the access is traceable to the application it rests on
            (record,) = (
                await conn.execute(
                    select(access_records).where(access_records.c.request_id == response.headers["X-Request-Id"])
                )
            ).all()
        assert record.grants_used == [application_id]
        async with runtime.engine.begin() as conn:  # an answer after the deadline is too late
            with pytest.raises(GovshareError) as late:
                await refuse(
                    conn, runtime.catalog, runtime.settings, POLICE, application_id, now=after, reason="迟到的拒绝"
                )
            assert late.value.code == "APPLICATION_DEEMED_APPROVED"
        async with runtime.engine.connect() as conn:
            row = (await conn.execute(select(applications).where(applications.c.id == application_id))).one()
            granted = (await conn.execute(select(grants).where(grants.c.id == row.grant_id))).one()
            steps = [(r.kind, r.at.replace(tzinfo=UTC)) for r in await history(conn, application_id)]
        assert row.status == "deemed_approved" and granted.kind == "deemed"
        assert steps[-1] == ("deemed_approved", DEADLINE)


async def test_without_silence_approval_an_overdue_application_grants_nothing(own_world):
    settings = dataclasses.replace(own_world.settings, silence_approves=False)
    async for api in _api(own_world, settings=settings, clock=lambda: DEADLINE + timedelta(days=1)):
        runtime = api.app.state.runtime
        await _submit(runtime)
        async with runtime.engine.begin() as conn:
            assert await settle(conn, runtime.catalog, DEADLINE + timedelta(days=1), settings) == []
        await runtime.refresh()
        assert errors_by_item(await api.query(QUERY, "land", "land.property-registration")) == {
            "name": "NO_GRANT",
            "address": "NO_GRANT",
        }


async def test_a_provisional_deadline_is_counted_again_when_the_schedule_is_loaded(own_api):
    from applications.process import recompute_deadlines
    from applications.workdays import load_calendar, parse_schedule, store_schedule

    runtime = own_api.app.state.runtime
    submitted = datetime(2026, 12, 21, 2, tzinfo=UTC)  # Mon 21 Dec 2026; 2027 has no schedule yet
    application_id = await _submit(runtime, now=submitted, valid_until=datetime(2027, 6, 1, tzinfo=CHINA))

    async def row():
        async with runtime.engine.connect() as conn:
            return (await conn.execute(select(applications).where(applications.c.id == application_id))).one()

    before = await row()
    assert before.deadline_provisional and before.deadline_at.replace(tzinfo=UTC) == datetime(2027, 1, 5, tzinfo=CHINA)
    async with runtime.engine.begin() as conn:
        await store_schedule(conn, parse_schedule('year = 2027\nholidays = ["2027-01-01"]\n'), loaded_by="admin")
        assert await recompute_deadlines(conn, await load_calendar(conn), runtime.settings) == 1
    after = await row()
    assert not after.deadline_provisional and after.deadline_at.replace(tzinfo=UTC) == datetime(
        2027, 1, 6, tzinfo=CHINA
    )


COORDINATOR = Caller("k-bigdata", "bigdata", "bigdata-app", roles=("applicant", "coordinator", "auditor"))
AUDITOR = Caller("k-audit", "bigdata", "audit-app", roles=("auditor",))


async def test_roles_decide_who_may_act_and_refusals_are_recorded(own_api):
    from applications.process import decide_coordination

    runtime = own_api.app.state.runtime
    with pytest.raises(GovshareError) as refused:
        await _submit(runtime, caller=Caller("k-ro", "land", "read-only", roles=("auditor",)))
    assert refused.value.code == "FORBIDDEN"
    application_id = await _submit(runtime)
    for caller, action in ((AUDITOR, "approve"), (POLICE, "coordinate")):
        async with runtime.engine.begin() as conn:
            with pytest.raises(GovshareError) as refused:
                if action == "approve":
                    await approve(conn, runtime.catalog, runtime.settings, caller, application_id, now=SUBMITTED)
                else:
                    await decide_coordination(
                        conn, runtime.catalog, caller, application_id, now=SUBMITTED, approve=True, reason="x"
                    )
        assert refused.value.code == "FORBIDDEN"
    async with runtime.engine.connect() as conn:
        steps = [(r.kind, r.reason, r.actor) for r in await history(conn, application_id)]
    assert steps[1:] == [("refused_action", "FORBIDDEN", "k-audit"), ("refused_action", "FORBIDDEN", "k-police")]


async def test_refused_then_coordinated_and_the_decision_is_final(own_api):
    from applications.process import decide_coordination, request_coordination

    runtime = own_api.app.state.runtime
    application_id = await _submit(runtime)
    async with runtime.engine.begin() as conn:
        await refuse(
            conn, runtime.catalog, runtime.settings, POLICE, application_id, now=SUBMITTED, reason="无需该信息"
        )
        await request_coordination(
            conn, runtime.catalog, LAND, application_id, now=SUBMITTED, reason="办理不动产登记确需核验"
        )
        grant_id = await decide_coordination(
            conn, runtime.catalog, COORDINATOR, application_id, now=SUBMITTED, approve=True, reason="属履职必需"
        )
    async with runtime.engine.begin() as conn:
        with pytest.raises(GovshareError) as final:
            await decide_coordination(
                conn, runtime.catalog, COORDINATOR, application_id, now=SUBMITTED, approve=False, reason="改变主意"
            )
    assert final.value.code == "APPLICATION_ANSWERED"
    async with runtime.engine.connect() as conn:
        steps = [r.kind for r in await history(conn, application_id)]
    assert steps == ["submitted", "refused", "coordination_requested", "coordination_approved"]
    await runtime.refresh()
    result = await own_api.query(QUERY, "land", "land.property-registration")
    assert "errors" not in result, result
    assert grant_id.startswith("G-")


async def test_not_shared_data_is_never_approved_by_silence(own_world):
    later = DEADLINE + timedelta(days=30)
    async for api in _api(own_world, clock=lambda: later):
        runtime = api.app.state.runtime
        await _submit(runtime, items=["name", "phone"])
        await runtime.refresh()
        codes = errors_by_item(
            await api.query(
                '{ personList(filter: {countyCode: {eq: "371302"}}) { items { phone } } }',
                "land",
                "land.property-registration",
            )
        )
        assert codes == {"phone": "NOT_SHARED"}


async def test_revocation_by_provider_or_coordinator_only_and_expiry_recorded(own_api):
    from applications.process import record_expiries, revoke

    runtime = own_api.app.state.runtime
    application_id = await _submit(runtime, valid_until=datetime(2026, 6, 1, tzinfo=CHINA))
    async with runtime.engine.begin() as conn:
        grant_id = await approve(conn, runtime.catalog, runtime.settings, POLICE, application_id, now=SUBMITTED)
    async with runtime.engine.begin() as conn:
        with pytest.raises(GovshareError) as refused:
            await revoke(conn, runtime.catalog, MARKET, grant_id, now=SUBMITTED, reason="x")
    assert refused.value.code == "NOT_YOUR_RESOURCE"
    async with runtime.engine.begin() as conn:
        expired = await record_expiries(conn, datetime(2026, 6, 2, tzinfo=UTC))
    assert grant_id in expired
    async with runtime.engine.begin() as conn:
        assert grant_id not in await record_expiries(conn, datetime(2026, 6, 3, tzinfo=UTC))  # once
        await revoke(conn, runtime.catalog, COORDINATOR, grant_id, now=SUBMITTED, reason="核查发现超范围使用")
    async with runtime.engine.connect() as conn:
        steps = [r.kind for r in await history(conn, application_id)]
    assert steps == ["submitted", "approved", "refused_action", "expired", "revoked"]


async def test_across_national_day_the_deemed_grant_starts_at_the_deadline(own_api):
    from policies.store import load_policy_set

    runtime = own_api.app.state.runtime
    submitted = datetime(2026, 9, 30, 2, tzinfo=UTC)  # Wed 30 Sep; 1-7 Oct off, Sat 10 Oct worked
    application_id = await _submit(runtime, now=submitted)
    async with runtime.engine.connect() as conn:
        row = (await conn.execute(select(applications).where(applications.c.id == application_id))).one()
        policies = await load_policy_set(conn)
    assert row.deadline_at.replace(tzinfo=UTC) == datetime(2026, 10, 21, tzinfo=CHINA)
    (deemed,) = [g for g in policies.grants if g.id == application_id]
    assert deemed.kind == "deemed" and deemed.valid_from == datetime(2026, 10, 21, tzinfo=CHINA)
