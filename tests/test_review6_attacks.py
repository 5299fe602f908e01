"""Review 6 (issue 15): attacks on the compiled plans, the schema following the catalog, the access-record writer's
thread and the workers. Each test is one attack; it fails where the attack succeeds.

- The plans answer as graphql-core's generic path for what a caller controls: aliases named after Python's keywords
  and builtins (the generated builder holds them as literals only), many aliases, deep links, fragments, variables in
  @skip/@include and in filters, cursors, __typename on pages and pageInfo, lookups.
- The writer's thread: whatever ends it (an exception that is not an Exception included), a request whose records it
  held is told AUDIT_UNAVAILABLE instead of waiting forever, and so is every request after it; the count of records
  written (the checkpoints) failing never leaves a request waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from audit.chain import verify
from audit.records import AuditWriter
from catalog import store as catalog_store
from catalog.model import ShareType
from connectors.urls import sync_url
from govshare.errors import AuditError
from govshare.platformdb import make_engine
from migrations import ensure_current
from resolvers import links
from schema import plans
from schema.plans import PlanExecutor
from tests.conftest import _api, access_record
from tests.conftest import production as production_settings

MARKET = ("market", "market.licence-review")
HRSS = ("hrss", "hrss.insurance-enrolment")
LAND = ("land", "land.property-registration")
POLICE = ("police", "police.case-investigation")

# Python keywords and builtins as GraphQL aliases: the builder's text holds response keys as literals only.
KEYWORDS = [
    "def",
    "None",
    "True",
    "class",
    "import",
    "exec",
    "get",
    "row",
    "rows",
    "out",
    "append",
    "bad",
    "values",
    "failures",
    "leaves",
    "fix",
    "Failed",
    "v0",
    "c0",
    "u0",
    "__import__",
    "__class__",
    "lambda",
    "return",
]

ATTACKS = [
    (
        *MARKET,
        "{ personList(first: 3) { items { "
        + " ".join(f"{k}: name" for k in KEYWORDS[:15])
        + " "
        + " ".join(f"{k}: idNumber" for k in KEYWORDS[15:])
        + " } } }",
        {},
    ),
    (
        *MARKET,
        "query($id: String!) { def: person(idNumber: $id) { None: name class: enterprises { import: name "
        "exec: legalRepresentative { __typename lambda: name } } __typename } }",
        {"id": "$person"},
    ),
    # deep links, at the depth limit (8)
    (
        *MARKET,
        "query($id: String!) { person(idNumber: $id) { enterprises { legalRepresentative { enterprises { "
        "legalRepresentative { enterprises { legalRepresentative { name } } } } } } } }",
        {"id": "$person"},
    ),
    # many aliases of a link, side by side (the hops of one level together)
    (
        *MARKET,
        "{ enterpriseList(first: 10) { items { "
        + " ".join(f"l{n}: legalRepresentative {{ name }}" for n in range(12))
        + " } } }",
        {},
    ),
    # __typename everywhere on a page, pageInfo aliased twice
    (
        *MARKET,
        "{ p: personList(first: 2) { __typename t: __typename a: pageInfo { __typename hasNextPage } "
        "b: pageInfo { endCursor e: endCursor } items { __typename } } }",
        {},
    ),
    # a lookup through fragments and inline fragments with directives read from variables
    (
        *MARKET,
        """query($id: String!, $on: Boolean!, $off: Boolean!) { ...Q }
           fragment Q on Query { person(idNumber: $id) { ...P ... on Person @include(if: $on) { gender }
             ... @skip(if: $off) { enterprises { name } } } }
           fragment P on Person { name enterprises @include(if: $off) { creditCode } }""",
        {"id": "$person", "on": True, "off": False},
    ),
    (
        *MARKET,
        """query($id: String!, $on: Boolean!, $off: Boolean!) { ...Q }
           fragment Q on Query { person(idNumber: $id) { ...P ... on Person @include(if: $on) { gender }
             ... @skip(if: $off) { enterprises { name } } } }
           fragment P on Person { name enterprises @include(if: $off) { creditCode } }""",
        {"id": "$person", "on": False, "off": True},
    ),
    # filters from variables, an item the caller may not filter on, a page after a cursor
    (*HRSS, "query($c: String) { personList(filter: {countyCode: {eq: $c}}) { items { name } } }", {"c": "371302"}),
    (*HRSS, "query($c: String) { personList(filter: {countyCode: {eq: $c}}) { items { name } } }", {"c": None}),
    (*MARKET, "query($p: String) { personList(filter: {phone: {eq: $p}}) { items { name } } }", {"p": "1"}),
    (
        *MARKET,
        "query($a: String) { enterpriseList(first: 2, after: $a) { items { name } pageInfo { endCursor } } }",
        {"a": "bzoy"},
    ),
    (*MARKET, "query($a: String) { enterpriseList(first: 2, after: $a) { items { name } } }", {"a": "%%%"}),
    # a lookup of a key the caller may not read, a masked link key, a denied resource, no purpose
    (*LAND, "query($id: String!) { person(idNumber: $id) { name enterprises { name } } }", {"id": "$person"}),
    (*POLICE, "{ enterpriseList(first: 3) { items { name legalRepresentative { name phone } } } }", {}),
    ("market", None, "query($id: String!) { person(idNumber: $id) { name } }", {"id": "$person"}),
    # @include/@skip from variables on a page's own fields, and every field of a row skipped
    (
        *MARKET,
        "query($on: Boolean!) { personList(first: 2) { items @include(if: $on) { name } pageInfo @skip(if: $on) "
        "{ hasNextPage } __typename } }",
        {"on": True},
    ),
    (
        *MARKET,
        "query($on: Boolean!) { personList(first: 2) { items @include(if: $on) { name } pageInfo @skip(if: $on) "
        "{ hasNextPage } __typename } }",
        {"on": False},
    ),
    (*MARKET, "query($on: Boolean!) { personList(first: 2) { items { name @include(if: $on) } } }", {"on": False}),
    (*MARKET, "query($id: String!) { person(idNumber: $id) { __typename } }", {"id": "$person"}),
    (*MARKET, '{ person(idNumber: "000000000000000001") { __typename enterprises { name } } }', {}),
    # one list under two keys with other arguments, the second page after the first's cursor
    (
        *MARKET,
        "{ a: enterpriseList(first: 2) { items { name } pageInfo { endCursor } } "
        'b: enterpriseList(first: 2, after: "bzoy") { items { name } pageInfo { endCursor hasNextPage } } }',
        {},
    ),
    # a root field twice under one key with different sub-selections, and a plan next to a generic field
    (
        *MARKET,
        "{ personList(first: 2) { items { name } } personList(first: 2) { items { gender enterprises { name } } } "
        "caller { department } }",
        {},
    ),
]


def _filled(variables: dict, world) -> dict:
    names = {"$person": world.showcase["person_luozhuang"], "$enterprise": world.showcase["enterprise"]}
    return {k: names.get(v, v) if isinstance(v, str) else v for k, v in variables.items()}


def _records(captured: list) -> list[str]:
    rows = [
        {k: v for k, v in vars(record).items() if k not in ("at", "request_id", "trace_id")}
        for batch in captured
        for record in batch
    ]
    return sorted(json.dumps(row, sort_keys=True, ensure_ascii=False, default=str) for row in rows)


async def _answer(api, monkeypatch, department, purpose, query, variables, *, plans_on: bool):
    monkeypatch.setattr(PlanExecutor, "plans", plans_on)
    runtime = api.app.state.runtime
    captured: list = []
    hand_over = runtime.audit.hand_over

    def spying(records, **options):  # every record reaches the writer here (``write`` and the early hand-over alike)
        captured.append(list(records))
        return hand_over(records, **options)

    monkeypatch.setattr(runtime.audit, "hand_over", spying)
    try:
        response = await api.post(query, department=department, purpose=purpose, variables=variables)
    finally:
        monkeypatch.setattr(runtime.audit, "hand_over", hand_over)
    body = response.json()
    # errors in the order they are answered (a client reads the first), with their paths
    errors = body.pop("errors", [])
    return response.status_code, body, errors, _records(captured)


@pytest.mark.parametrize("department,purpose,query,variables", ATTACKS)
async def test_an_attack_query_answers_as_the_generic_path(
    api, world, monkeypatch, department, purpose, query, variables
):
    ran = []
    execute_plan = PlanExecutor._execute_plan
    monkeypatch.setattr(PlanExecutor, "_execute_plan", lambda self, *args: ran.append(1) or execute_plan(self, *args))
    filled = _filled(variables, world)
    planned = await _answer(api, monkeypatch, department, purpose, query, filled, plans_on=True)
    generic = await _answer(api, monkeypatch, department, purpose, query, filled, plans_on=False)
    for part, mine, theirs in zip(("status", "body", "errors", "records"), planned, generic, strict=True):
        assert mine == theirs, (part, query)
    assert bool(ran) == ("data" in planned[1]), "the attack went around the plans"


def test_the_builder_refuses_a_key_that_is_no_graphql_name():
    """Whatever reaches the generated builder is a GraphQL name, written as a literal: anything else is refused."""
    for key in ["a'b", "a\nb", "é", "1a", "a b", "__import__('os')"]:
        with pytest.raises(ValueError):
            plans._compile(((plans.TYPENAME, key, "Person", None, None, None),))
    build = plans._compile(((plans.TYPENAME, "__import__", "def", None, None, None),))
    assert build([{}], []) == [{"__import__": "def"}]


# -- the writer's thread ----------------------------------------------------------------------------------------


class Dying(BaseException):
    """What ends a thread without being an Exception (as MemoryError's kin, or a KeyboardInterrupt there)."""


@pytest.fixture
async def platform(tmp_path):
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'platform.db'}")
    try:
        await ensure_current(engine)
        yield engine
    finally:
        await engine.dispose()


async def test_a_writer_thread_that_dies_mid_transaction_tells_its_requests(platform, monkeypatch):
    writer = AuditWriter(platform)
    try:
        await writer.write([access_record(0)])

        def dying(rows):
            raise Dying()

        monkeypatch.setattr(writer, "_transaction", dying)
        monkeypatch.setattr("threading.excepthook", lambda args: None)  # the thread's end is the test's own
        # A liveness bound only: on the old code the request waits for ever on a future nobody settles.
        with pytest.raises(AuditError):
            await asyncio.wait_for(writer.write([access_record(1)]), 60)
        with pytest.raises(AuditError):
            await asyncio.wait_for(writer.write([access_record(2)]), 60)  # after it too: refused, never waiting
        async with platform.connect() as conn:
            assert await verify(conn, "access") == (1, None)
    finally:
        await asyncio.wait_for(writer.close(), 60)


async def test_a_failing_count_of_written_records_leaves_no_request_waiting(platform):
    def counted(count: int) -> None:
        raise RuntimeError("the checkpoint counter broke")

    writer = AuditWriter(platform, on_written=counted)
    try:
        # written: the request is answered (its records are in the chain), the counter's failure is logged
        await asyncio.wait_for(writer.write([access_record(0)]), 60)
        await asyncio.wait_for(writer.write([access_record(1)]), 60)
        async with platform.connect() as conn:
            assert await verify(conn, "access") == (2, None)
    finally:
        await asyncio.wait_for(writer.close(), 60)


# -- a catalog change between two identical requests (production: views, plans and schema all follow) ------------


def _changed(catalog, *resources, without=()):
    changed = {r.code: r for r in resources}
    kept = {code: r for code, r in catalog.resources.items() if code not in without}
    return dataclasses.replace(catalog, resources={**kept, **changed}, version=catalog.version + 1)


async def _publish(runtime, catalog) -> None:
    async with runtime.engine.begin() as conn:
        await catalog_store.publish(conn, catalog, source="test", loaded_by="test")
    await runtime.refresh()
    assert runtime.catalog.version == catalog.version


async def _fresh(own_world, query, caller) -> dict:
    """The answer of a server started on the catalog now published (nothing followed from a version before)."""
    agen = _api(own_world, production_settings(own_world.settings))
    api = await agen.__anext__()
    try:
        return _without_freshness(await api.query(query, *caller))
    finally:
        with contextlib.suppress(StopAsyncIteration):
            await agen.__anext__()


def _without_freshness(body: dict) -> dict:
    body.pop("extensions", None)
    return body


@pytest.mark.parametrize("plans_on", [True, False])
async def test_no_stale_plan_view_or_schema_after_a_catalog_change(own_world, monkeypatch, plans_on):
    """The same texts before and after a change, on a running production server: a linked resource retired, an
    item's share type changed, a resource renamed. Each answer after is what a server started on the new catalog
    answers: never the first version's plan, view, validation or schema."""
    monkeypatch.setattr(PlanExecutor, "plans", plans_on)
    agen = _api(own_world, production_settings(own_world.settings))
    api = await agen.__anext__()
    try:
        runtime = api.app.state.runtime
        linked = "{ enterpriseList(first: 3) { items { name licences { licenceNo } } } }"
        before = await api.query(linked, *MARKET)
        assert before["data"]["enterpriseList"]["items"][0]["licences"] is not None
        await _publish(runtime, _changed(runtime.catalog, without=("market.licence",)))
        after = await api.query(linked, *MARKET)
        assert "data" not in after and after["errors"], after  # the link is gone from the view and the schema
        assert _without_freshness(after) == await _fresh(own_world, linked, MARKET)
        listing = "{ licenceList(first: 1) { items { licenceNo } } }"
        assert _without_freshness(await api.query(listing, *MARKET)) == await _fresh(own_world, listing, MARKET)

        person = runtime.catalog.resources["police.person"]
        query = "{ personList(first: 2) { items { idNumber name phone birthDate } } }"
        for caller in (HRSS, MARKET, LAND):
            await api.query(query, *caller)
        items = tuple(
            dataclasses.replace(i, share_type=ShareType.NOT_SHARED if i.share_type is None else None)
            if i.name in ("name", "phone", "birthDate")
            else i
            for i in person.items
        )
        await _publish(runtime, _changed(runtime.catalog, dataclasses.replace(person, items=items)))
        for caller in (HRSS, MARKET, LAND):
            assert _without_freshness(await api.query(query, *caller)) == await _fresh(own_world, query, caller)
        renamed = '{ __type(name: "Person") { description fields { name description } } }'
        await api.query(renamed, *MARKET)
        person = runtime.catalog.resources["police.person"]
        await _publish(runtime, _changed(runtime.catalog, dataclasses.replace(person, name="人口（改）")))
        assert _without_freshness(await api.query(renamed, *MARKET)) == await _fresh(own_world, renamed, MARKET)
    finally:
        with contextlib.suppress(StopAsyncIteration):
            await agen.__anext__()


async def test_a_grant_expiring_between_two_identical_requests(own_world, monkeypatch):
    """Production, plans on: the same text at one second before a grant's end, then one second after. The second
    answer holds nothing the grant gave (its view, validation, plan and decisions are all of that moment), exactly as
    the generic path answers it then."""
    from policies.store import create_grant

    end = datetime(2030, 1, 1, tzinfo=UTC)
    moment = [end - timedelta(seconds=1)]
    agen = _api(own_world, production_settings(own_world.settings), clock=lambda: moment[0])
    api = await agen.__anext__()
    try:
        runtime = api.app.state.runtime
        async with runtime.engine.begin() as conn:
            await create_grant(
                conn,
                runtime.catalog,
                consumer="civil",
                resource="police.person",
                items=["idNumber", "address"],
                purposes=["civil.marriage-registration"],
                valid_from=datetime(2026, 1, 1, tzinfo=UTC),
                valid_until=end,
                row_scope={},
                masks={},
                created_by="test",
            )
        await runtime.refresh()
        query = "{ personList(first: 3) { items { idNumber address } } }"
        CIVIL = ("civil", "civil.marriage-registration")
        monkeypatch.setattr(PlanExecutor, "plans", True)
        granted = await api.query(query, *CIVIL)
        phones = [i["address"] for i in granted["data"]["personList"]["items"]]
        assert phones and all(phones), granted
        moment[0] = end + timedelta(seconds=1)
        planned = await api.post(query, department=CIVIL[0], purpose=CIVIL[1])
        assert all(phone not in planned.text for phone in phones), planned.text
        monkeypatch.setattr(PlanExecutor, "plans", False)
        generic = await api.post(query, department=CIVIL[0], purpose=CIVIL[1])
        assert _without_freshness(planned.json()) == _without_freshness(generic.json())
    finally:
        with contextlib.suppress(StopAsyncIteration):
            await agen.__anext__()


LIMITED = [
    # one link occurrence over max_link_rows: refused once at its path, null for every parent, the rest answered
    (*MARKET, "{ enterpriseList(first: 20) { items { name licences { licenceNo } legalRepresentative { name } } } }"),
    (
        *MARKET,
        "{ enterpriseList(first: 20) { items { legalRepresentative { name enterprises { licences { licenceNo } } } } } }",
    ),
    # a hop within the limit next to one over it, under two aliases of one link
    (
        *MARKET,
        "{ enterpriseList(first: 6) { items { a: licences { licenceNo } } } enterpriseList(first: 6) "
        "{ items { b: licences { licenceType } legalRepresentative { name } } } }",
    ),
    # cost over the limit
    (*MARKET, "{ personList(first: 100) { items { name enterprises { name } socialInsurance { name } } } }"),
]


@pytest.mark.parametrize("department,purpose,query", LIMITED)
async def test_partial_answers_under_limits_answer_as_the_generic_path(
    own_world, monkeypatch, department, purpose, query
):
    limited = dataclasses.replace(own_world.settings, max_link_rows=6, max_cost=400)
    agen = _api(own_world, limited)
    api = await agen.__anext__()
    try:
        planned = await _answer(api, monkeypatch, department, purpose, query, {}, plans_on=True)
        generic = await _answer(api, monkeypatch, department, purpose, query, {}, plans_on=False)
        for part, mine, theirs in zip(("status", "body", "errors", "records"), planned, generic, strict=True):
            assert mine == theirs, (part, query)
        assert planned[2], planned  # the attack reached a limit
    finally:
        with contextlib.suppress(StopAsyncIteration):
            await agen.__anext__()


@pytest.mark.parametrize("plans_on", [True, False])
async def test_errors_come_in_the_answers_order_whichever_hop_ends_first(own_world, monkeypatch, plans_on):
    """Two link occurrences refused side by side: their errors come in the order of the answer's fields, not in the
    order their hops happened to end (which varies between runs, and between the plan and the generic path)."""
    limited = dataclasses.replace(own_world.settings, max_link_rows=3)
    agen = _api(own_world, limited)
    api = await agen.__anext__()
    try:
        monkeypatch.setattr(PlanExecutor, "plans", plans_on)
        hop = links.link_hop

        async def slow_first(ctx, target, *args, **kwargs):
            if target.code == "market.licence":  # the first field's hop ends last
                await asyncio.sleep(0.3)
            return await hop(ctx, target, *args, **kwargs)

        monkeypatch.setattr(links, "link_hop", slow_first)
        query = "{ enterpriseList(first: 20) { items { licences { licenceNo } legalRepresentative { name } } } }"
        result = await api.query(query, *MARKET)
        paths = [e["path"][-1] for e in result["errors"] if e["extensions"]["code"] == "LINK_TOO_LARGE"]
        assert paths == ["licences", "legalRepresentative"], result["errors"]
    finally:
        with contextlib.suppress(StopAsyncIteration):
            await agen.__anext__()


def _plan_text(plan) -> str:
    """What a plan holds that the data path is handed (item lists, aliases, paths), at every level."""
    if plan is None:
        return "None"
    parts = [repr((plan.kind, plan.resource.code, plan.selected, plan.link_items, dict(plan.aliases), plan.items_key))]
    objects = [plan.object] + [payload for kind, _, payload in plan.page if kind == plans.ITEMS]
    while objects:
        obj = objects.pop()
        if obj is None:
            continue
        parts.append(repr([field[:3] for field in obj.fields]))
        for link in obj.links:
            parts.append(repr((link.key, link.path, link.selected, link.link_items, dict(link.aliases))))
            objects.append(link.object)
    return "\n".join(parts)


async def test_a_shared_plan_is_left_as_it_was_by_concurrent_callers(api, world, monkeypatch):
    """Plans are shared by every department: requests of several departments at once, on one plan, leave it as it
    was made (the data path is handed its lists, never changes them) and each answer is its caller's own, as the
    generic path gives it."""
    query = (
        "query($id: String!) { person(idNumber: $id) { name phone enterprises { name legalRepIdNumber "
        "legalRepresentative { name } socialInsurance { monthlyBase } } socialInsurance { insuranceStatus } } }"
    )
    variables = _filled({"id": "$person"}, world)
    callers = [MARKET, POLICE, HRSS, LAND, ("market", None)]
    generic = [await _answer(api, monkeypatch, *c, query, variables, plans_on=False) for c in callers]
    monkeypatch.setattr(PlanExecutor, "plans", True)
    await api.post(query, department=MARKET[0], purpose=MARKET[1], variables=variables)
    store = plans.plans_of(api.app.state.runtime.schema._schema)
    made = {key: _plan_text(plan) for key, (_, plan) in store.lru.items()}
    assert any(text != "None" for text in made.values())
    responses = await asyncio.gather(
        *(api.post(query, department=c[0], purpose=c[1], variables=variables) for c in callers * 3)
    )
    assert {key: _plan_text(plan) for key, (_, plan) in store.lru.items() if key in made} == made
    for index, response in enumerate(responses):
        body = response.json()
        errors = body.pop("errors", [])
        expected = generic[index % len(callers)]
        assert (response.status_code, body, errors) == expected[:3], callers[index % len(callers)]


async def test_many_values_of_another_type_are_located_in_one_walk(own_api, own_world, monkeypatch):
    """A source whose column holds text where its item is a number, on every row: each value is null with its own
    located error, as on the generic path, and the answer is walked once for all of them (a search of the whole
    answer per value made a page of such rows quadratic: a small query stalled the event loop)."""
    source = json.loads((own_world.settings.var_dir / "demo-sources.json").read_text())["market"]
    engine = create_engine(sync_url(own_world.settings.expand(source)))
    with engine.begin() as conn:  # the same table without its constraints, every capital unreadable as a number
        conn.execute(text("ALTER TABLE enterprise RENAME TO enterprise_before"))
        conn.execute(text("CREATE TABLE enterprise AS SELECT * FROM enterprise_before"))
        conn.execute(text("DROP TABLE enterprise_before"))
        conn.execute(text("UPDATE enterprise SET registered_capital = 'lots'"))
    engine.dispose()
    walks = []
    paths = plans._paths
    monkeypatch.setattr(plans, "_paths", lambda answer, wanted: walks.append(len(wanted)) or paths(answer, wanted))
    query = "{ enterpriseList(first: 60) { items { name registeredCapital c: registeredCapital } } }"
    planned = await _answer(own_api, monkeypatch, *MARKET, query, {}, plans_on=True)
    generic = await _answer(own_api, monkeypatch, *MARKET, query, {}, plans_on=False)
    assert walks == [60]  # one walk, for the 60 rows that hold a value of another type
    assert planned[:2] == generic[:2] and planned[3] == generic[3]
    key = lambda error: json.dumps(error, sort_keys=True, ensure_ascii=False)
    assert planned[2] == generic[2]  # in the same order too
    assert sorted(planned[2], key=key) == sorted(generic[2], key=key)
    assert len(planned[2]) == 120 and {tuple(e["path"][3:]) for e in planned[2]} == {("registeredCapital",), ("c",)}
    assert all(i["registeredCapital"] is None and i["c"] is None for i in planned[1]["data"]["enterpriseList"]["items"])
