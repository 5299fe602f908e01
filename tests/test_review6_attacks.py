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
import json
from datetime import UTC, datetime

import pytest

from audit.chain import verify
from audit.records import AccessRecord, AuditWriter
from govshare.errors import AuditError
from govshare.platformdb import make_engine
from migrations import ensure_current
from schema import plans
from schema.plans import PlanExecutor

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
    write = runtime.audit.write

    async def spying(records):
        captured.append(list(records))
        return await write(records)

    monkeypatch.setattr(runtime.audit, "write", spying)
    try:
        response = await api.post(query, department=department, purpose=purpose, variables=variables)
    finally:
        monkeypatch.setattr(runtime.audit, "write", write)
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


def _record(n: int) -> AccessRecord:
    return AccessRecord(
        at=datetime.now(UTC),
        request_id=f"r{n}",
        trace_id="0" * 32,
        department="land",
        application="a",
        key_id="k",
        operator=None,
        purpose="p",
        resource="market.enterprise",
        operation="list",
        items_returned=["name"],
        row_count=n,
    )


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
        await writer.write([_record(0)])

        def dying(rows):
            raise Dying()

        monkeypatch.setattr(writer, "_transaction", dying)
        monkeypatch.setattr("threading.excepthook", lambda args: None)  # the thread's end is the test's own
        # A liveness bound only: on the old code the request waits for ever on a future nobody settles.
        with pytest.raises(AuditError):
            await asyncio.wait_for(writer.write([_record(1)]), 60)
        with pytest.raises(AuditError):
            await asyncio.wait_for(writer.write([_record(2)]), 60)  # after it too: refused, never waiting
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
        await asyncio.wait_for(writer.write([_record(0)]), 60)
        await asyncio.wait_for(writer.write([_record(1)]), 60)
        async with platform.connect() as conn:
            assert await verify(conn, "access") == (2, None)
    finally:
        await asyncio.wait_for(writer.close(), 60)
