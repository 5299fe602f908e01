"""Compiled plans (schema.plans) answer exactly as graphql-core's generic path: data, errors (with their anchored
paths), extensions, access records and spans, field by field; and they analyse a selection once, not per row."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

import schema.builder
from connectors.urls import sync_url
from resolvers import links
from schema.plans import PlanExecutor
from tests.conftest import _api, _world, examples
from tests.conftest import production as production_settings

MARKET = ("market", "market.licence-review")
HRSS = ("hrss", "hrss.insurance-enrolment")
LAND = ("land", "land.property-registration")
CIVIL = ("civil", "civil.marriage-registration")

# (department, purpose, query, variables); "$person" and "$enterprise" stand for the demo world's showcase records.
CORPUS = [
    (
        *MARKET,
        """query($id: String!) { person(idNumber: $id) { name
             enterprises { name socialInsurance { name monthlyBase } licences { licenceType issuedDate } }
             realEstates { address } socialInsurance { insuranceStatus } } }""",
        {"id": "$person"},
    ),
    (*MARKET, "{ enterpriseList(first: 100) { items { name legalRepIdNumber legalRepresentative { name } } } }", {}),
    (
        *MARKET,
        """query($on: Boolean!, $off: Boolean!) { e: enterpriseList(first: 20) { __typename
             p: pageInfo { hasNextPage c: endCursor __typename }
             a: items { __typename n: name ...E lr: legalRepresentative @include(if: $on) { nm: name ...P } }
             b: items { creditCode legalRepresentative @skip(if: $off) { gender } ... on Enterprise { status } } } }
           fragment E on Enterprise { status registeredCapital establishedDate licences { licenceType issuedDate } }
           fragment P on Person { birthDate enterprises { creditCode } }""",
        {"on": True, "off": False},
    ),
    (
        *MARKET,
        """query($on: Boolean!, $off: Boolean!) { enterpriseList(first: 5) {
             items { name legalRepresentative @include(if: $on) { name } licences @skip(if: $off) { licenceNo } } } }""",
        {"on": False, "off": True},
    ),
    (
        *MARKET,
        """query($id: String!) { person(idNumber: $id) { name } person(idNumber: $id) { gender enterprises { name } }
             p2: person(idNumber: $id) { enterprises { creditCode } enterprises { status } } }""",
        {"id": "$person"},
    ),
    (
        *HRSS,
        """{ personList(first: 30) { items { idNumber name birthDate phone countyCode
             socialInsurance { insuranceStatus } enterprises { name } } pageInfo { hasNextPage endCursor } } }""",
        {},
    ),
    (*HRSS, '{ personList(filter: {countyCode: {eq: "371302"}}) { items { name } } }', {}),
    (*HRSS, '{ personList(filter: {idNumber: {eq: "371311197811261792"}}) { items { name } } }', {}),
    (
        *LAND,
        """{ enterpriseList(filter: {countyCode: {eq: "371311"}, registeredCapital: {gte: 500}}, first: 3) {
             items { creditCode name legalRepName legalRepIdNumber registeredCapital establishedDate
                     realEstates { address area } legalRepresentative { name } } } }""",
        {},
    ),
    (
        *MARKET,
        """query($f: EnterpriseFilter, $after: String) { enterpriseList(filter: $f, first: 4, after: $after) {
             items { name status establishedDate } pageInfo { endCursor hasNextPage } } }""",
        {"f": {"status": {"in": ["存续", "在业"]}, "establishedDate": {"gte": "2000-01-01"}}, "after": "bzo0"},
    ),
    (*MARKET, '{ personList(first: 5, after: "not a cursor") { items { name } } }', {}),
    (*MARKET, "{ personList(first: 100000) { items { name } } }", {}),
    (*MARKET, "{ personList(first: 0) { items { name } } }", {}),
    ("market", None, "{ personList(first: 2) { items { name } } }", {}),
    ("market", "market.food-safety", '{ person(idNumber: "371311197811261792") { name } }', {}),
    (*CIVIL, "{ licenceList(first: 2) { items { licenceNo } } enterpriseList(first: 2) { items { name } } }", {}),
    (*CIVIL, "{ personList(first: 2) { items { name } } }", {}),
    (*MARKET, "{ personList(first: 3) { pageInfo { hasNextPage } } }", {}),
    (*MARKET, "{ personList(first: 3) { items { __typename } } }", {}),
    (*MARKET, '{ person(idNumber: "000000000000000000") { name enterprises { name } } }', {}),
    (
        *MARKET,
        "{ caller { department } personList(first: 2) { items { name } } __typename }",
        {},
    ),
    (
        *MARKET,
        """{ a: personList(first: 100) { items { enterprises { name } } }
             b: personList(first: 100, after: "bzoxMDA=") { items { enterprises { name } } } }""",
        {},
    ),
    (*MARKET, "query($n: Int) { personList(first: $n) { items { name } } }", {"n": "many"}),
    (*MARKET, "query($n: Int!) { personList(first: $n) { items { name } } }", {}),
    (*MARKET, "{ personList(first: 2) { items { name nope } } }", {}),
    (
        "police",
        "police.case-investigation",
        """query($id: String!) { person(idNumber: $id) { name socialInsurance { name monthlyBase employerName }
             enterprises { name legalRepresentative { name } socialInsurance { name } } } }""",
        {"id": "$person"},
    ),
    ("police", "police.case-investigation", "{ subsidyList(first: 3) { items { name monthlyAmount startDate } } }", {}),
    (
        "bigdata",
        "bigdata.sharing-supervision",
        "{ enterpriseList(first: 10) { items { name licences { licenceType validUntil } } } }",
        {},
    ),
]


def _filled(variables: dict, world) -> dict:
    names = {"$person": world.showcase["person_luozhuang"], "$enterprise": world.showcase["enterprise"]}
    return {k: names.get(v, v) if isinstance(v, str) else v for k, v in variables.items()}


def _records(captured: list) -> list[str]:
    """The access records a request wrote, without what differs between any two requests (time, ids)."""
    rows = [
        {k: v for k, v in vars(record).items() if k not in ("at", "request_id", "trace_id")}
        for batch in captured
        for record in batch
    ]
    return sorted(json.dumps(row, sort_keys=True, ensure_ascii=False, default=str) for row in rows)


def _spans(api) -> list[str]:
    found = []
    for span in api.spans.get_finished_spans():
        if span.name == "govshare.access":
            attributes = {k: v for k, v in span.attributes.items() if k != "govshare.request_id"}
            found.append(json.dumps([span.name, attributes], sort_keys=True, ensure_ascii=False, default=list))
    api.spans.clear()
    return sorted(found)


async def _answer(api, monkeypatch, department, purpose, query, variables, *, plans: bool):
    monkeypatch.setattr(PlanExecutor, "plans", plans)
    runtime = api.app.state.runtime
    captured: list = []
    hand_over = runtime.audit.hand_over

    def spying(records, **options):  # every record reaches the writer here (``write`` and the early hand-over alike)
        captured.append(list(records))
        return hand_over(records, **options)

    monkeypatch.setattr(runtime.audit, "hand_over", spying)
    api.spans.clear()
    response = await api.post(query, department=department, purpose=purpose, variables=variables)
    monkeypatch.setattr(runtime.audit, "hand_over", hand_over)
    body = response.json()
    errors = sorted(json.dumps(e, sort_keys=True, ensure_ascii=False) for e in body.pop("errors", []))
    return response.status_code, body, errors, _records(captured), _spans(api)


async def _compare(api, monkeypatch, department, purpose, query, variables):
    planned = await _answer(api, monkeypatch, department, purpose, query, variables, plans=True)
    generic = await _answer(api, monkeypatch, department, purpose, query, variables, plans=False)
    for part, mine, theirs in zip(("status", "body", "errors", "records", "spans"), planned, generic, strict=True):
        assert mine == theirs, (part, query)
    return planned


@pytest.mark.parametrize("department,purpose,query,variables", CORPUS)
async def test_a_plan_answers_as_the_generic_path(api, world, monkeypatch, department, purpose, query, variables):
    ran = []
    execute_plan = PlanExecutor._execute_plan
    monkeypatch.setattr(PlanExecutor, "_execute_plan", lambda self, *args: ran.append(1) or execute_plan(self, *args))
    planned = await _compare(api, monkeypatch, department, purpose, query, _filled(variables, world))
    # Every operation of the corpus that executed went through a plan (only the generic path runs when plans are off).
    assert bool(ran) == ("data" in planned[1]), (ran, planned)


async def test_the_plans_are_used_for_resource_fields(api, monkeypatch):
    """The corpus above goes through the plans, not around them: a resource field's resolver is never called."""
    monkeypatch.setattr(PlanExecutor, "plans", True)
    called = []
    follow = links.follow

    async def spying(*args, **kwargs):
        called.append(args)
        return await follow(*args, **kwargs)

    monkeypatch.setattr(links, "follow", spying)
    result = await api.query(CORPUS[1][2], *MARKET)
    assert len(result["data"]["enterpriseList"]["items"]) == 100
    assert all(item["legalRepresentative"] for item in result["data"]["enterpriseList"]["items"])
    assert called == []  # no resolver per row (no DataLoader, no task per row)


async def test_one_selection_analysis_per_request_for_a_list_with_links(api, monkeypatch):
    """enterpriseList(first: 100) with the legal representative: the selection is analysed once per operation (and
    kept for the next request of the same text), never per parent row; no DataLoader is made."""
    monkeypatch.setattr(PlanExecutor, "plans", True)
    analysed = []
    merged = schema.builder.merged_selections
    monkeypatch.setattr(schema.builder, "merged_selections", lambda info: analysed.append(1) or merged(info))
    conversions = []
    original = PlanExecutor._merged
    monkeypatch.setattr(PlanExecutor, "_merged", lambda self, details: conversions.append(1) or original(self, details))
    loaders = []
    monkeypatch.setattr(links, "_loader", lambda *args: loaders.append(args))
    query = "{ enterpriseList(first: 100) { items { name legalRepresentative { name gender } } } } # one analysis"
    result = await api.query(query, *MARKET)
    assert len(result["data"]["enterpriseList"]["items"]) == 100
    assert conversions == [1, 1]  # the root field and the link occurrence: once each, for 100 parents
    assert analysed == [] and loaders == []  # strawberry's per-row selection and the per-row loader: never
    await api.query(query, *MARKET)
    assert conversions == [1, 1]  # the same text again: its plan is kept
    # Other values of the variables @include reads are other plans.
    flagged = "query($on: Boolean!) { personList(first: 50) { items { name enterprises @include(if: $on) { name } } } }"
    for on in (True, False, True):
        await api.query(flagged, *MARKET, variables={"on": on})
    assert len(conversions) == 2 + 2 + 1


async def test_one_plan_serves_every_department_and_purpose(api, world, monkeypatch):
    """A plan holds no decision: the same text planned for one caller answers another exactly as the generic path
    does for it (decisions, scopes, masks and records are the data path's, on every request)."""
    query = CORPUS[0][2]
    variables = _filled(CORPUS[0][3], world)
    for department, purpose in [MARKET, ("police", "police.case-investigation"), HRSS, LAND, MARKET]:
        await _compare(api, monkeypatch, department, purpose, query, variables)


async def test_a_null_link_key_and_a_value_of_another_type(own_api, own_world, monkeypatch):
    """A parent row whose link key is null answers null without a hop for it; a source value its item's scalar cannot
    take is null with the generic path's located error (INTERNAL_ERROR once masked)."""
    source = json.loads((own_world.settings.var_dir / "demo-sources.json").read_text())["market"]
    engine = create_engine(sync_url(own_world.settings.expand(source)))
    with engine.begin() as conn:  # the same table without its NOT NULL constraints
        conn.execute(text("ALTER TABLE enterprise RENAME TO enterprise_before"))
        conn.execute(text("CREATE TABLE enterprise AS SELECT * FROM enterprise_before"))
        conn.execute(text("DROP TABLE enterprise_before"))
        lowest = "(SELECT MIN(credit_code) FROM enterprise)"
        conn.execute(text(f"UPDATE enterprise SET registered_capital = 'lots' WHERE credit_code = {lowest}"))
        conn.execute(text(f"UPDATE enterprise SET legal_rep_id_number = NULL WHERE credit_code <> {lowest}"))
    engine.dispose()
    query = (
        """{ enterpriseList(first: 5) { items { registeredCapital legalRepIdNumber legalRepresentative { name } } } }"""
    )
    planned = await _compare(own_api, monkeypatch, *MARKET, query, {})
    items = planned[1]["data"]["enterpriseList"]["items"]
    assert items[0]["registeredCapital"] is None and items[0]["legalRepresentative"]["name"]
    assert any('"INTERNAL_ERROR"' in e and '"registeredCapital"' in e for e in planned[2])
    assert all(i["legalRepIdNumber"] is None and i["legalRepresentative"] is None for i in items[1:])


async def test_production_views_answer_alike(own_world, monkeypatch):
    """Production: validated against the department's view (redacted messages), then planned or not, alike."""
    agen = _api(own_world, production_settings(own_world.settings))
    api = await agen.__anext__()
    try:
        for department, purpose, query, variables in [
            *CORPUS[:10],
            (*MARKET, "{ personList(first: 2) { items { name phone } } }", {}),
            (*HRSS, "{ personList(first: 2) { items { name birthDate } } }", {}),
        ]:
            await _compare(api, monkeypatch, department, purpose, query, _filled(variables, own_world))
    finally:
        with contextlib.suppress(StopAsyncIteration):
            await agen.__anext__()


# -- random selections --------------------------------------------------------------------------------------------

ENTERPRISE = ["creditCode", "name", "legalRepIdNumber", "legalRepName", "countyCode", "registeredCapital", "status"]
PERSON = ["idNumber", "name", "gender", "birthDate", "countyCode", "phone"]
INSURANCE = ["idNumber", "name", "insuranceStatus", "monthlyBase", "employerCreditCode"]
LINKS = {
    "Enterprise": {"legalRepresentative": ("Person", PERSON), "socialInsurance": ("SocialInsurance", INSURANCE)},
    "Person": {"enterprises": ("Enterprise", ENTERPRISE), "socialInsurance": ("SocialInsurance", INSURANCE)},
    "SocialInsurance": {},
}
CONSUMERS = [MARKET, HRSS, LAND, ("bigdata", "bigdata.sharing-supervision"), ("police", "police.case-investigation")]


@st.composite
def selections(draw, type_name: str, items: list[str], depth: int = 0) -> str:
    parts = []
    for item in draw(st.lists(st.sampled_from(items), min_size=0, max_size=4)):
        alias = draw(st.sampled_from(["", "", f"{item[:1]}x: "]))
        parts.append(f"{alias}{item}")
    if draw(st.booleans()):
        parts.append("__typename")
    if depth < 2:
        for link, (target, target_items) in LINKS[type_name].items():
            if draw(st.integers(0, 2)) == 0:
                below = draw(selections(target, target_items, depth + 1))
                directive = draw(st.sampled_from(["", " @include(if: $on)", " @skip(if: $on)"]))
                parts.append(f"{link}{directive} {{ {below} }}")
    if draw(st.booleans()) and parts:
        cut = draw(st.integers(0, len(parts)))
        parts = [*parts[:cut], f"... on {type_name} {{ {' '.join(parts[cut:]) or '__typename'} }}"]
    return " ".join(parts) or "__typename"


@st.composite
def operations(draw):
    department, purpose = draw(st.sampled_from(CONSUMERS))
    root = draw(st.sampled_from(["enterpriseList", "personList"]))
    type_name, items = ("Enterprise", ENTERPRISE) if root == "enterpriseList" else ("Person", PERSON)
    body = draw(selections(type_name, items))
    first = draw(st.integers(1, 40))
    page = " pageInfo { hasNextPage endCursor }" if draw(st.booleans()) else ""
    query = f"query($on: Boolean!) {{ {root}(first: {first}) {{ items {{ {body} }}{page} }} }}"
    return department, purpose, query, {"on": draw(st.booleans())}


def test_random_selections_answer_as_the_generic_path(tmp_path_factory):
    async def setup():
        world = await _world(tmp_path_factory.mktemp("var-plans"))
        agen = _api(world)
        return agen, await agen.__anext__()

    loop = asyncio.new_event_loop()
    agen, api = loop.run_until_complete(setup())
    patch = pytest.MonkeyPatch()
    checked = []

    @settings(
        max_examples=examples("GOVSHARE_PLAN_PROPERTY_EXAMPLES", suite=40, deep=300),
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(operation=operations())
    def check(operation):
        loop.run_until_complete(_compare(api, patch, *operation))
        checked.append(operation)

    try:
        check()
        print(f"{len(checked)} random operations compared")
        assert len({query for _, _, query, _ in checked}) > len(checked) // 2  # varied, not one selection again
    finally:
        patch.undo()

        async def close():
            with contextlib.suppress(StopAsyncIteration):
                await agen.__anext__()

        loop.run_until_complete(close())
        loop.close()
