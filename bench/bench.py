"""The benchmark suite of issue 6: what enforcement costs, measured as ratios of medians taken in one run.

    make bench                 # the full suite (a few minutes); writes bench/results.json
    BENCH_TINY=1 make bench    # seconds: every figure, from tiny inputs (tests/test_bench.py)

Builds its own demo world in a temporary folder, adds generated policy lines for 50 departments, and
measures in-process through the whole ASGI app (authentication, purpose, decisions, masking, access
records), plus two real servers on loopback for the HTTP figures. Absolute times go in the printed
table only: this machine is noisy, the ratios are what is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import casbin
import httpx
from sqlalchemy import column, event, select, table
from sqlalchemy.ext.asyncio import create_async_engine

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from connectors.urls import async_url  # noqa: E402
from demo.build import build_demo  # noqa: E402
from govshare.clock import CHINA  # noqa: E402
from govshare.config import Settings, load_settings  # noqa: E402
from policies.engine import MODEL_PATH, PolicyEngine, _RulesAdapter  # noqa: E402
from policies.model import Grant, GrantKind, PolicySet  # noqa: E402
from policies.rules import compile_rules, stamp  # noqa: E402
from server import create_app  # noqa: E402

# httpx's in-process ASGI transport tries `import trio` on every request (half a millisecond of the client's
# time, not the server's); a known-absent module answers at once.
sys.modules.setdefault("trio", None)

TINY = os.environ.get("BENCH_TINY") == "1"
RESULTS = Path(os.environ.get("BENCH_RESULTS", REPO / "bench" / "results.json"))
# The acting officer every request names (X-Operator): production requires one (operator_required, Art 22); sent
# in every mode, so that development and production are measured alike.
OPERATOR = "bench-officer"
# A comma-separated subset of list, subjects, policy, statements, cache, http, catalog, reports (to re-measure one
# figure while working). A partial run leaves results.json alone, unless BENCH_MERGE=1: then its figures (and table
# lines) replace those of the same names in it, the others kept, and ``merged`` says which figure was measured when.
ONLY = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))
MERGE = os.environ.get("BENCH_MERGE") == "1"


@dataclasses.dataclass(frozen=True)
class Scale:
    rows: int  # rows of the list query (x 10 items)
    lines: int  # policy lines loaded for the list query
    lines_small: int
    lines_large: int  # for the point lookup
    runs: int  # timed runs per figure (medians)
    naive_sample: int  # enforce calls timed for the per-field-per-row pattern
    http_seconds: float
    clients: int
    link_parents: int
    report_records: int  # synthetic access records the usage reports count
    report_runs: int


SCALE = (
    Scale(
        rows=50,
        lines=1000,
        lines_small=100,
        lines_large=2000,
        runs=5,
        naive_sample=20,
        http_seconds=1.0,
        clients=4,
        link_parents=20,
        report_records=2000,
        report_runs=3,
    )
    if TINY
    else Scale(
        rows=1000,
        lines=10_000,
        lines_small=100,
        lines_large=100_000,
        runs=41,
        naive_sample=60,
        http_seconds=10.0,
        clients=32,
        link_parents=200,
        report_records=100_000,
        report_runs=7,
    )
)
DEPARTMENTS = 50
ENTERPRISE_ITEMS = [
    "creditCode",
    "name",
    "legalRepIdNumber",
    "legalRepName",
    "countyCode",
    "address",
    "registeredCapital",
    "establishedDate",
    "businessScope",
    "status",
]
LIST_QUERY = "query($n: Int) { enterpriseList(first: $n) { items { " + " ".join(ENTERPRISE_ITEMS) + " } } }"
LIST_CALLER = ("hrss", "hrss.insurance-enrolment")
# Items decided early and late in priority order: a grant (20), unconditional (30), not shared and no grant (60).
POINT_QUERY = "query($id: String!) { person(idNumber: $id) { idNumber name gender countyCode ethnicity phone } }"
CANONICAL_QUERY = """query($id: String!) { person(idNumber: $id) { idNumber name birthDate address householdId
    enterprises { creditCode name status } socialInsurance { insuranceStatus lastPaidMonth } } }"""
LOOKUP_CALLER = ("market", "market.licence-review")
LINK_QUERY = """query($n: Int) { personList(first: $n) { items { idNumber
    enterprises { name socialInsurance { insuranceStatus } licences { licenceType } } } } }"""
SINCE, UNTIL = datetime(2026, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC)


# -- policies ---------------------------------------------------------------------------------------------


def bench_grant() -> Grant:
    """The list caller's grant on every enterprise item, the legal representative's ID number masked."""
    department, purpose = LIST_CALLER
    return Grant(
        "G-BENCH-LIST",
        GrantKind.GRANT,
        department,
        "market.enterprise",
        tuple(ENTERPRISE_ITEMS),
        (purpose,),
        SINCE,
        UNTIL,
        masks={"legalRepIdNumber": "id_number"},
    )


def with_lines(catalog, base: PolicySet, lines: int) -> PolicySet:
    """``base`` plus generated grants of 50 departments on every published resource, up to ``lines`` rules."""
    count = len(compile_rules(catalog, base)[0])
    grants = list(base.grants)
    resources = sorted(catalog.published(), key=lambda r: r.code)
    n = 0
    while count < lines:
        resource = resources[n % len(resources)]
        department = f"bench-{n % DEPARTMENTS:02d}"
        purposes = tuple(f"{department}.purpose-{p}" for p in range(3))
        items = tuple(i.name for i in resource.items)
        per_grant = len(items) * (3 * len(purposes) + 1)
        if count + per_grant > lines:  # the last grant: fewer items, to land on the count
            keep = max(1, (lines - count) // (3 * len(purposes) + 1))
            items, per_grant = items[:keep], keep * (3 * len(purposes) + 1)
        grants.append(
            Grant(
                f"G-BENCH-{n:06d}",
                GrantKind.GRANT,
                department,
                resource.code,
                items,
                purposes,
                SINCE + timedelta(days=n % 30),
                UNTIL,
            )
        )
        count += per_grant
        n += 1
    return dataclasses.replace(base, grants=tuple(grants))


def install_policies(app, lines: int, *, extra: tuple[Grant, ...] = ()) -> int:
    """Put a generated policy set in force in ``app`` (same version: the runtime keeps it); returns its rule count."""
    runtime = app.state.runtime
    base = runtime.policy.policies
    base = dataclasses.replace(base, grants=base.grants + extra)
    policy = PolicyEngine(runtime.catalog, with_lines(runtime.catalog, base, lines))
    runtime.snapshot = dataclasses.replace(runtime.snapshot, policy=policy)
    return policy.rule_count


# -- timing -----------------------------------------------------------------------------------------------


async def medians(runs: int, **candidates: Callable[[], Awaitable[object]]) -> dict[str, float]:
    """Median seconds of each candidate, run interleaved (A B A B ...) so that drift hits both alike."""
    for work in candidates.values():  # warm up
        await work()
        await work()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(runs):
        for name, work in candidates.items():
            started = time.perf_counter()
            await work()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(t) for name, t in times.items()}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


# -- the world and the apps -------------------------------------------------------------------------------


def bench_settings(var_dir: Path, **overrides) -> Settings:
    return load_settings(
        env={},
        var_dir=var_dir,
        catalog_dir=REPO / "catalog" / "demo",
        rate_limit="",
        cost_budget="",
        refresh_seconds=3600.0,
        audit_checkpoint_seconds=0.0,
        max_page_size=max(SCALE.rows, 200),
        max_cost=10**7,
        max_link_rows=10**5,
        cache_max_seconds=0,
        **overrides,
    )


class Client:
    def __init__(self, app, keys: dict[str, str]) -> None:
        self.app, self.keys = app, keys
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")

    async def post(self, caller: tuple[str, str], query: str, variables: dict) -> bytes:
        """The response body, not decoded: what a client decodes is not the server's cost."""
        department, purpose = caller
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.keys[department]}", "X-Purpose": purpose, "X-Operator": OPERATOR},
        )
        response.raise_for_status()
        return response.content

    async def query(self, caller: tuple[str, str], query: str, variables: dict) -> dict:
        return json.loads(await self.post(caller, query, variables))


@contextlib.asynccontextmanager
async def running(settings: Settings, keys: dict[str, str]):
    app = create_app(settings)
    await app.state.runtime.start()
    client = Client(app, keys)
    try:
        yield client
    finally:
        await client.http.aclose()
        await app.state.runtime.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the figures ------------------------------------------------------------------------------------------


async def list_figures(settings: Settings, keys: dict[str, str], table_rows: list) -> dict[str, float]:
    from server import Runtime  # noqa: F401  (the app's runtime is reached through app.state)

    unenforced_settings = dataclasses.replace(settings, enforce=False)
    async with running(settings, keys) as enforced, running(unenforced_settings, keys) as unenforced:
        lines = install_policies(enforced.app, SCALE.lines, extra=(bench_grant(),))
        install_policies(unenforced.app, SCALE.lines, extra=(bench_grant(),))
        catalog = enforced.app.state.runtime.catalog
        resource = catalog.resources["market.enterprise"]
        source = settings.expand(catalog.departments[resource.provider].source)
        raw_engine = create_async_engine(async_url(source))
        columns = [column(resource.item(i).column) for i in ENTERPRISE_ITEMS]
        raw_statement = (
            select(*columns)
            .select_from(table(resource.table, *columns))
            .order_by(column(resource.item(resource.key).column))
            .limit(SCALE.rows)
        )
        variables = {"n": SCALE.rows}

        async def raw():
            async with raw_engine.connect() as conn:
                rows = (await conn.execute(raw_statement)).all()
            assert len(rows) == SCALE.rows

        for client in (enforced, unenforced):
            result = await client.query(LIST_CALLER, LIST_QUERY, variables)
            assert len(result["data"]["enterpriseList"]["items"]) == SCALE.rows and "errors" not in result, result.get(
                "errors"
            )
        masked = result["data"]["enterpriseList"]["items"][0]["legalRepIdNumber"]
        assert (
            "*" not in masked
            and "*"
            in (await enforced.query(LIST_CALLER, LIST_QUERY, variables))["data"]["enterpriseList"]["items"][0][
                "legalRepIdNumber"
            ]
        )

        async def run_enforced():
            await enforced.post(LIST_CALLER, LIST_QUERY, variables)

        async def run_unenforced():
            await unenforced.post(LIST_CALLER, LIST_QUERY, variables)

        times = await medians(SCALE.runs, raw=raw, enforced=run_enforced, unenforced=run_unenforced)
        await raw_engine.dispose()

        # The per-field-per-row pattern (casbin-graphql-authz): one enforce per field per row over the same
        # rules, in one flat Casbin enforcer. Timed on a sample of calls and scaled to rows x items, since
        # running it whole takes minutes.
        engine = enforced.app.state.runtime.policy
        rules, links = compile_rules(engine.catalog, engine.policies)
        flat = casbin.Enforcer(str(MODEL_PATH), _RulesAdapter(rules, links))
        department, purpose = LIST_CALLER
        now = stamp(datetime.now(UTC))
        started = time.perf_counter()
        for n in range(SCALE.naive_sample):
            flat.enforce(department, purpose, resource.code, ENTERPRISE_ITEMS[n % len(ENTERPRISE_ITEMS)], now)
        per_call = (time.perf_counter() - started) / SCALE.naive_sample
        naive = times["unenforced"] + per_call * SCALE.rows * len(ENTERPRISE_ITEMS)

    table_rows += [
        (f"raw SQLAlchemy fetch, {SCALE.rows} rows x 10 items", ms(times["raw"])),
        (f"list through the full path, {lines} policy lines, enforced", ms(times["enforced"])),
        ("the same, enforcement switched off (bench only)", ms(times["unenforced"])),
        (f"per-field-per-row Casbin ({per_call * 1000:.2f} ms a call, x {SCALE.rows * 10}; extrapolated)", ms(naive)),
    ]
    return {
        "enforced_over_unenforced": times["enforced"] / times["unenforced"],
        "enforced_over_raw_sql": times["enforced"] / times["raw"],
        "naive_over_enforced": naive / times["enforced"],
    }


async def subject_figure(settings: Settings, keys: dict[str, str], table_rows: list) -> dict[str, float]:
    """What the data-subject index costs a list of 100 and of 1000 rows (LIST_QUERY: two subject items a row, the
    enterprise's credit code and its legal representative's ID number, masked for hrss): reading the identifiers,
    hashing them, and writing the subject rows beside the record, against the same server with the catalog's subject
    items cleared (bench only). The subject index proper is written by the audit writer's thread between transactions
    (audit.chain.index_sync): it runs during the timed requests, and its own time is listed beside them."""
    from audit.tables import access_subjects

    async with running(settings, keys) as indexed, running(settings, keys) as unindexed:
        for app in (indexed.app, unindexed.app):
            install_policies(app, 0, extra=(bench_grant(),))
        for resource in unindexed.app.state.runtime.catalog.resources.values():
            resource.__dict__["subject_items"] = ()  # the cached property, cleared: nothing is indexed
        engine = indexed.app.state.runtime.engine
        writer = indexed.app.state.runtime.audit
        indexing: list[tuple[float, float]] = []  # (seconds, CPU seconds of the writer's thread) of each indexing
        index_subjects = writer._index_subjects

        def timed_indexing() -> None:
            started, cpu = time.perf_counter(), time.thread_time()
            index_subjects()
            indexing.append((time.perf_counter() - started, time.thread_time() - cpu))

        writer._index_subjects = timed_indexing

        async def subject_rows() -> int:
            async with engine.connect() as conn:
                return len((await conn.execute(select(access_subjects.c.record_seq))).all())

        figures, sizes = {}, (min(100, SCALE.rows), SCALE.rows)
        for name, size in zip(("100", "1000"), sizes, strict=True):
            variables = {"n": size}
            before = await subject_rows()
            await unindexed.query(LIST_CALLER, LIST_QUERY, variables)
            assert await subject_rows() == before  # switched off
            result = await indexed.query(LIST_CALLER, LIST_QUERY, variables)
            assert len(result["data"]["enterpriseList"]["items"]) == size and "errors" not in result
            # switched on: each enterprise, and its legal representative (one person may represent several)
            assert size < await subject_rows() - before <= 2 * size

            async def with_index(variables=variables):
                await indexed.post(LIST_CALLER, LIST_QUERY, variables)

            async def without(variables=variables):
                await unindexed.post(LIST_CALLER, LIST_QUERY, variables)

            indexing.clear()
            times = await medians(SCALE.runs, indexed=with_index, none=without)
            figures[f"subject_index_{name}_over_none"] = times["indexed"] / times["none"]
            table_rows += [
                (f"list of {size} rows x 10 items, subject index (2 subjects a row)", ms(times["indexed"])),
                (f"the same, subject items cleared (bench only), {size} rows", ms(times["none"])),
            ]
            if indexing:  # the writer's thread shares the GIL with the requests answered meanwhile: CPU beside wall
                spent, cpu = sum(t for t, _ in indexing), sum(c for _, c in indexing)
                requests = SCALE.runs + 2
                table_rows.append(
                    (
                        f"subject index written between transactions ({size} rows): calls, total, a request, CPU",
                        f"{len(indexing)}, {ms(spent)}, {ms(spent / requests)}, {ms(cpu / requests)} CPU",
                    )
                )
    return figures


async def policy_count_figure(
    settings: Settings, keys: dict[str, str], person: str, table_rows: list
) -> dict[str, float]:
    """A cross-department point lookup decided cold (the decision memo emptied before every request)."""
    async with running(settings, keys) as small, running(settings, keys) as large:
        small_lines = install_policies(small.app, SCALE.lines_small)
        large_lines = install_policies(large.app, SCALE.lines_large)
        variables = {"id": person}

        for client in (small, large):
            result = await client.query(LOOKUP_CALLER, POINT_QUERY, variables)
            assert result["data"]["person"]["name"] and not result["data"]["person"]["phone"], result

        def cold(client: Client):
            async def work():
                client.app.state.runtime.policy.forget()
                await client.post(LOOKUP_CALLER, POINT_QUERY, variables)

            return work

        times = await medians(SCALE.runs, small=cold(small), large=cold(large))
    table_rows += [
        (f"point lookup, cold decision, {small_lines} policy lines", ms(times["small"])),
        (f"point lookup, cold decision, {large_lines} policy lines", ms(times["large"])),
    ]
    return {"policy_lines_100k_over_100": times["large"] / times["small"]}


async def cache_figure(settings: Settings, keys: dict[str, str], person: str, table_rows: list) -> dict[str, float]:
    cached_settings = dataclasses.replace(settings, cache_max_seconds=300)
    async with running(settings, keys) as miss, running(cached_settings, keys) as hit:
        variables = {"id": person}

        for client in (miss, hit):
            result = await client.query(LOOKUP_CALLER, CANONICAL_QUERY, variables)
            assert result["data"]["person"]["name"] and result["data"]["person"]["enterprises"], result

        def lookup(client: Client):
            async def work():
                await client.post(LOOKUP_CALLER, CANONICAL_QUERY, variables)

            return work

        times = await medians(SCALE.runs, miss=lookup(miss), hit=lookup(hit))
    table_rows += [
        ("canonical lookup from the sources", ms(times["miss"])),
        ("canonical lookup from the cache", ms(times["hit"])),
    ]
    return {"cache_hit_over_miss": times["hit"] / times["miss"]}


async def statements_figure(settings: Settings, keys: dict[str, str], table_rows: list) -> dict[str, float]:
    """Statements each source receives for each table of a three-level link query (each table is one level)."""
    async with running(settings, keys) as client:
        runtime = client.app.state.runtime
        seen: dict[tuple[str, str], int] = {}
        engines = []
        for code, department in runtime.catalog.departments.items():
            if not department.source:
                continue
            engine = runtime.connectors.get(settings.expand(department.source))._engine.sync_engine

            def capture(conn, cursor, statement, parameters, context, executemany, code=code):
                tables = [
                    r.table
                    for r in runtime.catalog.resources.values()
                    if r.provider == code and f"FROM {r.table} " in statement + " "
                ]
                key = (code, tables[0] if tables else "?")
                seen[key] = seen.get(key, 0) + 1

            event.listen(engine, "before_cursor_execute", capture)
            engines.append((engine, capture))
        try:
            result = await client.query(LOOKUP_CALLER, LINK_QUERY, {"n": SCALE.link_parents})
        finally:
            for engine, capture in engines:
                event.remove(engine, "before_cursor_execute", capture)
    assert len(result["data"]["personList"]["items"]) == SCALE.link_parents, result
    worst = max(seen.values())
    table_rows.append(
        (
            f"link query, {SCALE.link_parents} persons, 3 levels: statements per source and level",
            ", ".join(f"{d}/{t}: {n}" for (d, t), n in sorted(seen.items())),
        )
    )
    return {"statements_per_source_level": float(worst)}


# -- a city-sized catalog (issue 15) ---------------------------------------------------------------------------

CATALOG_SIZES = (20, 200) if TINY else (100, 10_000)
CATALOG_ROUNDS = 3 if TINY else 7
# Run in a process of its own: the memory of a process holding the schema of a catalog of the given size (built, then
# one change followed, as a server does), without the bench's own. Prints {"rss_mb", "peak_mb", "seconds"}.
CATALOG_MEMORY = """
import gc, json, sys, time, dataclasses
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/bench"]
import server  # everything a server process imports
from views import big_catalog
from catalog.model import Catalog
from govshare.config import Settings
from schema.builder import build_schema

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith(key + ":"))

catalog = big_catalog(int(sys.argv[2]), 5)
settings = Settings(production=True)
started = time.perf_counter()
schema = build_schema(catalog, settings, extensions=[server.OperationAttributes])
seconds = time.perf_counter() - started
resource = sorted(catalog.published(), key=lambda r: r.code)[0]
changed = Catalog.from_document(
    dataclasses.replace(catalog, resources={**catalog.resources, resource.code: dataclasses.replace(resource, name="x")}).to_document(),
    version=2,
)
schema = build_schema(changed, settings, extensions=[server.OperationAttributes], previous=schema)
del catalog
gc.collect()
print(json.dumps({"rss_mb": status("VmRSS"), "peak_mb": status("VmHWM"), "seconds": seconds}))
"""


def catalog_memory(resources: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CATALOG_MEMORY, str(REPO), str(resources)],
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


async def catalog_figure(settings: Settings, keys: dict[str, str], table_rows: list) -> dict[str, float]:
    """Time from a published catalog change (one resource changed) to the new schema answering a request, for a small
    and a city-sized synthetic catalog (copies of the demo resources, bench/views.py), measured interleaved; the
    memory of a process holding the large one; and requests answered while its next schema is built."""
    from views import big_catalog  # bench/views.py (it imports this module: imported here, not at the top)

    import migrations
    from catalog import store as catalog_store
    from govshare.platformdb import make_engine
    from server import Snapshot

    department, purpose = LOOKUP_CALLER
    folder = Path(tempfile.mkdtemp(prefix="govshare-bench-catalog-"))
    platforms = {}  # each size's catalog versions in a platform database of its own (not the bench world's)
    async with running(settings, keys) as client:
        runtime = client.app.state.runtime
        demo = runtime.snapshot
        states = {}
        for size in CATALOG_SIZES:
            platforms[size] = platform = make_engine(f"sqlite+aiosqlite:///{folder / f'catalog-{size}.db'}")
            await migrations.ensure_current(platform)
            async with platform.begin() as conn:
                await catalog_store.publish(conn, big_catalog(size, 5), source="bench", loaded_by="bench")
            async with platform.connect() as conn:
                catalog = await catalog_store.current(conn)
            assert catalog is not None
            person = next(
                r for r in sorted(catalog.published(), key=lambda r: r.code) if r.code.startswith("police.person-")
            )
            grant = Grant(
                f"G-BENCH-CATALOG-{size}",
                GrantKind.GRANT,
                department,
                person.code,
                tuple(i.name for i in person.items),
                (purpose,),
                SINCE,
                UNTIL,
            )
            policies = dataclasses.replace(demo.policy.policies, grants=(*demo.policy.policies.grants, grant))
            schema = await asyncio.to_thread(runtime._schema, catalog, None)
            states[size] = (catalog, policies, PolicyEngine(catalog, policies), schema, person)
        person_id = "371311197811261792"

        def request(size: int) -> str:
            api_name = states[size][4].api_name
            return f'{{ {api_name}(idNumber: "{person_id}") {{ name }} }}'

        async def follow(size: int, n: int, during: list | None = None) -> float:
            """One change published (one resource renamed, as a department's submission publishes it); then timed:
            the catalog read as Runtime.refresh reads it (catalog/store.py's current, following the catalog in
            force), the next schema built (off the loop, following the one in force), swapped in, and a request
            answered through it; the seconds that took. With ``during``, the next schema is built whole instead
            (the longest build: the first one, or a change of settings), and the requests answered by the schema
            in force meanwhile are kept there."""
            catalog, policies, engine, schema, person = states[size]
            runtime.snapshot = Snapshot(catalog, engine, schema, demo.checked_at, documents=demo.documents)
            victim = sorted(catalog.published(), key=lambda r: r.code)[(n * 7919) % len(catalog.published())]
            changed = dataclasses.replace(victim, name=f"{victim.name}（{n}）")
            async with platforms[size].begin() as conn:
                await catalog_store.publish(
                    conn,
                    dataclasses.replace(catalog, resources={**catalog.resources, victim.code: changed}),
                    source="bench",
                    loaded_by="bench",
                    change="publish",
                )
            started = time.perf_counter()
            async with platforms[size].connect() as conn:
                new = await catalog_store.current(conn, catalog)
            assert new is not None and new.resources[victim.code] == changed
            new_person = new.resources[person.code]
            built = asyncio.ensure_future(
                asyncio.to_thread(runtime._schema, new, None if during is not None else schema)
            )
            if during is not None:  # requests to the schema in force while the next one is built
                while not built.done():
                    began = time.perf_counter()
                    answer = await client.query((department, purpose), request(size), {})
                    if not built.done():
                        during.append((time.perf_counter() - began, answer))
            next_schema = await built
            runtime.snapshot = Snapshot(new, engine, next_schema, demo.checked_at, documents=demo.documents)
            answer = await client.query((department, purpose), request(size), {})
            elapsed = time.perf_counter() - started
            if answer.get("data", {}).get(person.api_name, {}).get("name") is None:
                raise RuntimeError(f"the new schema did not answer: {answer}")
            states[size] = (new, policies, engine, next_schema, new_person)
            return elapsed

        for size in CATALOG_SIZES:  # warm up
            await follow(size, 0)
        times: dict[int, list[float]] = {size: [] for size in CATALOG_SIZES}
        for n in range(1, CATALOG_ROUNDS + 1):
            for size in CATALOG_SIZES:
                times[size].append(await follow(size, n))
        during: list = []
        large = CATALOG_SIZES[-1]
        await follow(large, CATALOG_ROUNDS + 1, during)
        runtime.snapshot = demo
    for platform in platforms.values():
        await platform.dispose()
    shutil.rmtree(folder, ignore_errors=True)
    small_s, large_s = (statistics.median(times[size]) for size in CATALOG_SIZES)
    # A tiny catalog's whole build may end within one request (tests/test_schema_follows.py holds a build to show
    # requests answered meanwhile); a full run's 10,000-resource build must have answered some.
    if (not during and not TINY) or any("errors" in answer or answer.get("data") is None for _, answer in during):
        raise RuntimeError(f"requests were not answered while the next schema was built: {during}")
    memory = catalog_memory(large)
    table_rows.append((f"published change to new schema answering, {CATALOG_SIZES[0]} resources", ms(small_s)))
    table_rows.append((f"the same, {large} resources", ms(large_s)))
    table_rows.append(
        (
            f"requests answered while a {large}-resource schema was built whole: count / slowest",
            f"{len(during)} / {ms(max(t for t, _ in during))}" if during else "0 (the build ended within one request)",
        )
    )
    table_rows.append(
        (
            f"one process holding the {large}-resource schema: RSS / peak (first build {memory['seconds']:.2f} s)",
            f"{memory['rss_mb']:.0f} MB / {memory['peak_mb']:.0f} MB",
        )
    )
    return {
        "catalog_10k_over_100": large_s / small_s,
        "catalog_10k_rss_mb": memory["rss_mb"],
        "catalog_requests_during_rebuild": float(len(during)),
    }


HANDWRITTEN = """
import json, sys
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

sources = json.loads(sys.argv[1])
engines = {name: create_async_engine(url) for name, url in sources.items()}

async def lookup(request):
    person_id = request.query_params["id"]
    async with engines["police"].connect() as conn:
        person = (await conn.execute(text("SELECT id_number, name, birth_date, address, household_id FROM person "
                                          "WHERE id_number = :id"), {"id": person_id})).mappings().first()
    async with engines["market"].connect() as conn:
        enterprises = (await conn.execute(text("SELECT credit_code, name, status FROM enterprise "
                                               "WHERE legal_rep_id_number = :id ORDER BY credit_code"), {"id": person_id})).mappings().all()
    async with engines["hrss"].connect() as conn:
        insurance = (await conn.execute(text("SELECT insurance_status, last_paid_month FROM social_insurance "
                                             "WHERE id_number = :id"), {"id": person_id})).mappings().first()
    body = dict(person)
    body["birth_date"] = str(body["birth_date"])
    body["enterprises"] = [dict(e) for e in enterprises]
    body["social_insurance"] = dict(insurance) if insurance else None
    return JSONResponse({"data": {"person": body}})

app = Starlette(routes=[Route("/lookup", lookup), Route("/healthz", lambda r: JSONResponse({"status": "ok"}))])
"""


async def _burst(http: httpx.AsyncClient, request, seconds: float) -> tuple[int, float, list[float]]:
    """SCALE.clients clients looping for ``seconds``: (requests, elapsed seconds, latencies)."""
    latencies: list[float] = []
    stop = time.monotonic() + seconds

    async def client():
        while time.monotonic() < stop:
            started = time.perf_counter()
            response = await request(http)
            response.raise_for_status()
            latencies.append(time.perf_counter() - started)

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(SCALE.clients)))
    return len(latencies), time.monotonic() - started, latencies


async def _load(ports: dict[str, int], requests: dict, rounds: int) -> dict[str, tuple[float, list[float]]]:
    """Requests per second and latencies of each server, measured in alternating bursts so that the machine's
    drift hits both alike."""
    clients = {
        name: httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=60, limits=httpx.Limits(max_connections=SCALE.clients)
        )
        for name, port in ports.items()
    }
    totals = {name: [0, 0.0, []] for name in ports}
    try:
        for name, http in clients.items():
            for _ in range(3):
                (await requests[name](http)).raise_for_status()
        for _ in range(rounds):
            for name, http in clients.items():
                count, elapsed, latencies = await _burst(http, requests[name], SCALE.http_seconds / rounds)
                totals[name][0] += count
                totals[name][1] += elapsed
                totals[name][2] += latencies
    finally:
        for http in clients.values():
            await http.aclose()
    return {name: (count / elapsed, sorted(latencies)) for name, (count, elapsed, latencies) in totals.items()}


async def _wait_up(port: int, process: subprocess.Popen) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        for _ in range(200):
            if process.poll() is not None:
                raise RuntimeError(f"server on port {port} exited with {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


async def http_figures(
    home: Path, settings: Settings, keys: dict[str, str], person: str, table_rows: list
) -> dict[str, float]:
    sources = json.loads((settings.var_dir / "demo-sources.json").read_text())
    urls = {name: async_url(settings.expand(url)) for name, url in sources.items()}
    env = {
        **os.environ,
        "GOVSHARE_VAR_DIR": str(settings.var_dir),
        "GOVSHARE_CATALOG_DIR": str(settings.catalog_dir),
        "GOVSHARE_RATE_LIMIT": "",
        "GOVSHARE_COST_BUDGET": "",
        "GOVSHARE_CACHE_MAX_SECONDS": "0",
        "GOVSHARE_AUDIT_CHECKPOINT_SECONDS": "0",
        "PYTHONPATH": str(REPO),
    }
    ours_port, hand_port = free_port(), free_port()
    (home / "handwritten.py").write_text(HANDWRITTEN)
    servers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "server:create_app",
                "--port",
                str(ours_port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=home,
            env={**env, "PYTHONPATH": str(REPO)},
        ),
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys, uvicorn; sys.path.insert(0, '.'); "
                f"sys.argv = ['handwritten', {json.dumps(json.dumps(urls))}]; "
                f"import handwritten; uvicorn.run(handwritten.app, port={hand_port}, log_level='warning', access_log=False)",
            ],
            cwd=home,
            env=env,
        ),
    ]
    department, purpose = LOOKUP_CALLER
    headers = {"Authorization": f"Bearer {keys[department]}", "X-Purpose": purpose, "X-Operator": OPERATOR}
    body = {"query": CANONICAL_QUERY, "variables": {"id": person}}
    try:
        await _wait_up(ours_port, servers[0])
        await _wait_up(hand_port, servers[1])
        measured = await _load(
            {"hand": hand_port, "ours": ours_port},
            {
                "hand": lambda http: http.get("/lookup", params={"id": person}),
                "ours": lambda http: http.post("/graphql", json=body, headers=headers),
            },
            rounds=1 if TINY else 5,
        )
        (hand_rps, _), (ours_rps, latencies) = measured["hand"], measured["ours"]
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)
    p50 = statistics.median(latencies)
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
    table_rows += [
        (f"HTTP canonical lookup, {SCALE.clients} clients: hand-written Starlette", f"{hand_rps:.0f} requests/s"),
        (f"HTTP canonical lookup, {SCALE.clients} clients: govshare", f"{ours_rps:.0f} requests/s"),
        (f"govshare lookup latency under {SCALE.clients} clients, p50 / p99", f"{ms(p50)} / {ms(p99)}"),
    ]
    return {
        "http_lookup_over_handwritten": ours_rps / hand_rps,
        "lookup_p50_ms": p50 * 1000,
        "lookup_p99_ms": p99 * 1000,
    }


REPORT_DAYS = 60  # the synthetic records' span, in China days up to REPORT_LAST
REPORT_LAST = date(2026, 11, 30)
REPORT_BUSY = "police.person"  # the one-resource report's: a third of the records (person data is the most read)
REPORT_CONSUMERS = ("market", "hrss", "civil", "land", "bigdata")


def synthetic_records(catalog, count: int, first_seq: int) -> list[dict]:
    """``count`` access records, as the audit writer shapes them (hash-chain fields filled, not chained: the reports
    do not read them), spread over REPORT_DAYS China days: a third on REPORT_BUSY, the rest over every other
    resource; five consumer departments with two purposes each; outcomes, refused items, masks and one or two grants
    as a busy platform has them. Seeded: every run counts the same records."""
    import random

    pick = random.Random(16)
    everything = sorted(catalog.resources)
    resources = [code for code in everything if code != REPORT_BUSY]
    purposes = {
        d: sorted(code for code, p in catalog.purposes.items() if p.department == d)[:2] or [f"{d}.bench"]
        for d in REPORT_CONSUMERS
    }
    start = datetime.combine(REPORT_LAST - timedelta(days=REPORT_DAYS - 1), datetime.min.time(), CHINA)
    # in time order, as the audit writer appends them (the table's order follows ``at``, as on a live platform)
    moments = sorted(pick.randrange(REPORT_DAYS * 86400) for _ in range(count))
    records = []
    for n in range(count):
        resource = REPORT_BUSY if n % 3 == 0 else resources[pick.randrange(len(resources))]
        department = REPORT_CONSUMERS[pick.randrange(len(REPORT_CONSUMERS))]
        items = [i.name for i in catalog.resources[resource].items][: pick.randint(2, 6)]
        roll = pick.random()
        outcome = "allowed" if roll < 0.7 else "partial" if roll < 0.85 else "denied" if roll < 0.97 else "failed"
        answered = outcome in ("allowed", "partial")
        grant = f"G-B{REPORT_CONSUMERS.index(department)}{everything.index(resource):04d}"
        grants = [grant] + (["G-BEXTRA"] if pick.random() < 0.1 else [])
        records.append(
            {
                "at": (start + timedelta(seconds=moments[n])).astimezone(UTC),
                "request_id": f"r-{n}",
                "trace_id": "0" * 32,
                "department": department,
                "application": f"{department}-app",
                "key_id": f"k-{department}",
                "operator": "bench-officer",
                "purpose": purposes[department][n % len(purposes[department])],
                "resource": resource,
                "operation": "list" if n % 2 else "lookup",
                "items_returned": items if answered else [],
                "items_masked": items[:1] if answered and pick.random() < 0.2 else [],
                "items_denied": {"phone": "NOT_SHARED"} if outcome == "partial" else {},
                "row_count": pick.randint(1, 50) if answered else 0,
                "grants_used": grants if answered else [],
                "outcome": outcome,
                "error_code": "NO_GRANT"
                if outcome == "denied"
                else "SOURCE_UNAVAILABLE"
                if outcome == "failed"
                else None,
                "seq": first_seq + n,
                "prev_hash": "0" * 64,
                "hash": "0" * 64,
                "encoding": 3,
                "policy_version": 1,
                "subjects_digest": None,
            }
        )
    return records


async def reports_figure(settings: Settings, table_rows: list) -> dict[str, float]:
    """The usage report as the console's page computes it (``admin.reports.tables``: the seven tables of figures and
    the consumers' feedback beside them) over SCALE.report_records synthetic access records in a platform database
    of the bench's own (SQLite, migrated, with the revision's indexes): of REPORT_BUSY alone (what its provider asks)
    and of every resource (the coordinator's), for the last 30 of REPORT_DAYS days; medians of interleaved runs.
    Each table of the all-resource report is timed too, to say where the time goes."""
    import migrations
    from admin import reports
    from audit.tables import access_records
    from catalog.loader import load_catalog
    from govshare.platformdb import make_engine
    from oversight import usage
    from oversight.tables import consumer_feedback

    catalog = load_catalog(REPO / "catalog" / "demo")
    folder = Path(tempfile.mkdtemp(prefix="govshare-bench-reports-"))
    platform = make_engine(f"sqlite+aiosqlite:///{folder / 'platform.db'}")
    try:
        await migrations.ensure_current(platform)
        records = synthetic_records(catalog, SCALE.report_records, 1)
        async with platform.begin() as conn:
            for chunk in range(0, len(records), 5000):
                await conn.execute(access_records.insert(), records[chunk : chunk + 5000])
            months = sorted({r["at"].astimezone(CHINA).strftime("%Y-%m") for r in records})
            pairs = sorted({(g, r["resource"], r["department"]) for r in records for g in r["grants_used"][:1]})
            await conn.execute(
                consumer_feedback.insert(),
                [
                    {
                        "id": f"F-{n:06d}",
                        "grant_ref": grant,
                        "application_id": None,
                        "consumer": consumer,
                        "provider": catalog.resources[resource].provider,
                        "resource": resource,
                        "period": month,
                        "matters_handled": n % 40,
                        "documents_spared": n % 7,
                        "note": "bench",
                        "revision": 1,
                        "recorded_at": datetime(2026, 12, 1, tzinfo=UTC),
                        "recorded_by": "k-bench",
                        "operator": None,
                    }
                    for n, ((grant, resource, consumer), month) in enumerate(
                        (pair, month) for pair in pairs for month in months
                    )
                ],
            )
        when = usage.Period(REPORT_LAST - timedelta(days=29), REPORT_LAST)
        busy = catalog.resources[REPORT_BUSY].provider
        one = reports.Asked(busy, [REPORT_BUSY], REPORT_BUSY, when)
        every = reports.Asked(None, None, "", when)
        in_period = sum(1 for r in records if when.since <= r["at"] < when.until)
        shown = await reports.tables(platform, settings, catalog, every, "zh-CN")
        total = next(t for t in shown if t.name == "resources")
        assert sum(f.accesses for f in total.figures) == in_period, "the report counts every record of its period"

        async def report_of(asked):
            await reports.tables(platform, settings, catalog, asked, "zh-CN")

        times = await medians(SCALE.report_runs, one=lambda: report_of(one), every=lambda: report_of(every))
        each = await medians(
            SCALE.report_runs,
            **{
                name: (lambda name=name: reports.tables(platform, settings, catalog, every, "zh-CN", [name]))
                for name in reports.TABLES
            },
        )

        # the seven tables of figures of every resource: summed from one statement where they can be (the report's
        # way, ``usage.tables``), against one statement a table (``usage.table`` each, as before)
        async def together():
            async with platform.connect() as conn:
                await usage.tables(conn, list(usage.TABLES), None, when, settings=settings)

        async def apart():
            async with platform.connect() as conn:
                for name in usage.TABLES:
                    await usage.table(conn, name, None, when, settings=settings)

        ways = await medians(SCALE.report_runs, together=together, apart=apart)
    finally:
        await platform.dispose()
        shutil.rmtree(folder, ignore_errors=True)
    size = f"{SCALE.report_records:,} records over {REPORT_DAYS} days, {in_period:,} in the 30-day period"
    table_rows += [
        (f"usage report of {REPORT_BUSY} (8 tables), {size}", ms(times["one"])),
        (f"usage report of every resource (8 tables), {size}", ms(times["every"])),
        (
            "the same, by table: " + ", ".join(reports.TABLES),
            " / ".join(f"{each[n] * 1000:.0f}" for n in reports.TABLES) + " ms",
        ),
        ("the 7 tables of figures of every resource, summed from shared statements", ms(ways["together"])),
        ("the same, one statement a table", ms(ways["apart"])),
    ]
    return {
        "usage_report_one_resource_ms": times["one"] * 1000,
        "usage_report_every_resource_ms": times["every"] * 1000,
        "usage_tables_together_over_apart": ways["together"] / ways["apart"],
    }


async def main() -> dict:
    home = Path(tempfile.mkdtemp(prefix="govshare-bench-"))
    try:
        settings = bench_settings(home / "var")
        # Figures with a platform database of their own need no demo world: with BENCH_ONLY naming only them, none
        # is built.
        own_platform = {"reports"}
        if not ONLY or ONLY - own_platform:
            world = await build_demo(settings, persons=1500, enterprises=max(SCALE.rows, 400))
            person = world.showcase["person_luozhuang"]
        table_rows: list[tuple[str, str]] = []
        results: dict[str, float] = {}
        figures = {
            "list": lambda: list_figures(settings, world.keys, table_rows),
            "subjects": lambda: subject_figure(settings, world.keys, table_rows),
            "policy": lambda: policy_count_figure(settings, world.keys, person, table_rows),
            "statements": lambda: statements_figure(settings, world.keys, table_rows),
            "cache": lambda: cache_figure(settings, world.keys, person, table_rows),
            "http": lambda: http_figures(home, settings, world.keys, person, table_rows),
            "catalog": lambda: catalog_figure(settings, world.keys, table_rows),
            "reports": lambda: reports_figure(settings, table_rows),
        }
        for name, figure in figures.items():
            if not ONLY or name in ONLY:
                results |= await figure()
    finally:
        shutil.rmtree(home, ignore_errors=True)

    width = max(len(k) for k, _ in table_rows)
    print(f"{'measured (medians)':<{width}}  value")
    for name, value in table_rows:
        print(f"{name:<{width}}  {value}")
    print()
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value:.3f}")
    document = {
        "tiny": TINY,
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **{k: round(v, 4) for k, v in results.items()},
        "table": dict(table_rows),
    }
    if ONLY and not MERGE:
        return document  # a partial run is not the suite's result
    if ONLY:  # BENCH_MERGE=1: these figures replace theirs in the suite's result, the others kept
        kept = json.loads(RESULTS.read_text(encoding="utf-8"))
        if kept.get("tiny") != TINY:
            raise SystemExit("BENCH_MERGE: a tiny run merges into a tiny result only, a full run into a full one")
        merged = {**kept.get("merged", {}), **dict.fromkeys(sorted(ONLY), document["measured_at"])}
        document = {
            **kept,
            **{k: round(v, 4) for k, v in results.items()},
            "table": {**kept.get("table", {}), **dict(table_rows)},
            "merged": merged,
        }
    RESULTS.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return document


if __name__ == "__main__":
    asyncio.run(main())
