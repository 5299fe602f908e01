"""The data path's promises: only allowed and selected columns are read, scope and filters are bound parameters
in the SQL, and each (resource, item) is decided once per request, never per row."""

from __future__ import annotations

from policies.engine import PolicyEngine
from tests.conftest import StatementLog


async def test_source_query_reads_only_allowed_selected_columns_with_scope_bound(api, world):
    log = StatementLog(api, world, "police")
    try:
        # hrss is not granted birthDate (it would undo its ID-number mask): it filters on the county of its scope.
        result = await api.query(
            '{ personList(filter: {countyCode: {eq: "371311"}}, first: 5) { items { name phone ethnicity } } }',
            "hrss",
            "hrss.insurance-enrolment",
        )
    finally:
        log.close()
    assert len(result["data"]["personList"]["items"]) == 5
    ((statement, parameters),) = log.seen
    selected = statement.split("FROM")[0]
    assert "name" in selected and "phone" not in selected and "ethnicity" not in selected
    assert "371311" not in statement  # values are bound, not inlined
    assert [str(p) for p in parameters].count("371311") == 2  # the filter's and the scope's
    assert "county_code IN" in statement and "county_code =" in statement


async def test_nothing_is_fetched_when_nothing_selected_is_allowed(api, world):
    log = StatementLog(api, world, "police")
    try:
        await api.query("{ personList { items { name ethnicity } } }", "land", "land.property-registration")
    finally:
        log.close()
    assert log.seen == []


async def test_each_item_is_decided_once_per_request_not_per_row(api, world, monkeypatch):
    calls: list[tuple] = []
    original = PolicyEngine._decide_item

    def counting(self, department, purpose, resource, item, moment):
        calls.append((resource.code, item))
        return original(self, department, purpose, resource, item, moment)

    monkeypatch.setattr(PolicyEngine, "_decide_item", counting)
    api.app.state.runtime.policy._memo.clear()
    result = await api.query(
        "{ enterpriseList(first: 100) { items { creditCode name status legalRepIdNumber } } }",
        "land",
        "land.property-registration",
    )
    assert len(result["data"]["enterpriseList"]["items"]) == 100
    assert sorted(calls) == sorted(
        ("market.enterprise", i) for i in ("creditCode", "name", "status", "legalRepIdNumber")
    )
    calls.clear()
    await api.query(
        "{ enterpriseList(first: 100) { items { creditCode name status legalRepIdNumber } } }",
        "land",
        "land.property-registration",
    )
    assert calls == []  # memoised for the same department, purpose and policy version
