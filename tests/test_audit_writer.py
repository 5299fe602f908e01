"""The access-record writer (issue 15): records are appended by a thread of their own, never on the event loop's
thread, still before the answer leaves; every request waiting at once shares one transaction (group commit) on the
SQLite and the PostgreSQL platform database, and the chain stays one chain (`govshare audit verify`); when a
transaction fails every request in it is told (AUDIT_UNAVAILABLE) and nothing of it is stored; stopping the server
writes what was handed over first."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import subprocess
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from audit import chain
from audit.chain import verify
from audit.records import AuditWriter
from demo.build import build_demo
from govshare.errors import AuditError
from govshare.platformdb import make_engine
from migrations import ensure_current
from tests.conftest import (
    TEST_DATABASE_PREFIX,
    World,
    _api,
    access_record,
    copied_world,
    environment,
    govshare_command,
    make_settings,
    require_engine,
)

LOOKUP = (
    "query($id: String!) { person(idNumber: $id) { name enterprises { name } socialInsurance { insuranceStatus } } }"
)
LIST = "{ enterpriseList(first: 3) { items { creditCode name } } }"
MARKET, MARKET_PURPOSE = "market", "market.licence-review"
LAND, LAND_PURPOSE = "land", "land.property-registration"


def _postgres_database(name: str, template: str | None = None) -> str:
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else "")))
    finally:
        admin.dispose()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


class Held:
    """Wraps a writer's transaction: records the thread and size of each, holds the first one in the writer's thread
    until ``release`` (so that requests pile up behind it), and can break the database once the first is written."""

    def __init__(self, writer: AuditWriter, *, after_first=None) -> None:
        self.threads: list[threading.Thread] = []
        self.sizes: list[int] = []
        self.entered, self.released = threading.Event(), threading.Event()
        inner = writer._transaction

        def transaction(rows):
            self.threads.append(threading.current_thread())
            self.sizes.append(len(rows))
            first = len(self.sizes) == 1
            if first:
                self.entered.set()
                self.released.wait(timeout=120)
            inner(rows)
            if first and after_first is not None:
                after_first()

        writer._transaction = transaction
        self.writer = writer

    async def waiting(self, count: int) -> None:
        """Until the first transaction is held and ``count`` more requests wait behind it (a liveness bound only)."""
        for _ in range(6000):
            if self.entered.is_set() and self.writer._queue.qsize() >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{count} requests never waited behind the first transaction")

    def release(self) -> None:
        self.released.set()


# --- a platform database of the test's own, on each platform engine ----------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
async def platform(request, tmp_path):
    if request.param == "postgres":
        require_engine(make_settings(tmp_path / "probe"), "postgres")
        url = _postgres_database(f"{TEST_DATABASE_PREFIX}writer")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'platform.db'}"
    engine = make_engine(url)
    try:
        await ensure_current(engine)
        yield engine
    finally:
        await engine.dispose()


def _rename_heads(engine, to: str, back: bool = False) -> None:
    """Break (or mend) the chain's head table from outside the writer, as a failing database would."""
    sync = create_engine(
        engine.url.set(drivername="sqlite" if engine.dialect.name == "sqlite" else "postgresql+psycopg")
    )
    source, target = ("chain_heads", to) if not back else (to, "chain_heads")
    try:
        with sync.begin() as conn:
            conn.execute(text(f"ALTER TABLE {source} RENAME TO {target}"))
    finally:
        sync.dispose()


async def _count(engine) -> tuple[int, object]:
    async with engine.connect() as conn:
        return await verify(conn, "access")


async def test_waiting_requests_share_one_transaction_on_each_engine(platform):
    writer = AuditWriter(platform)
    held = Held(writer)
    try:
        first = asyncio.create_task(writer.write([access_record(0)]))
        await held.waiting(0)
        waiting = [asyncio.create_task(writer.write([access_record(n), access_record(n)])) for n in range(1, 21)]
        await held.waiting(20)
        assert not first.done() and not any(w.done() for w in waiting)  # nobody is answered before its record
        held.release()
        await asyncio.gather(first, *waiting)
        assert held.sizes == [1, 40]  # all twenty who waited, in one transaction
        assert {t.name for t in held.threads} == {"govshare-audit"} and threading.current_thread() not in held.threads
        count, broken = await _count(platform)
        assert (count, broken) == (41, None)
        async with platform.connect() as conn:
            order = [r[0] for r in await conn.execute(text("SELECT request_id FROM access_records ORDER BY seq"))]
        assert order[0] == "r0" and all(order[i] == order[i + 1] for i in range(1, 41, 2))  # a request's side by side
    finally:
        held.release()
        await writer.close()


async def test_every_request_in_a_failed_transaction_is_told_and_none_of_it_is_stored(platform):
    writer = AuditWriter(platform)
    held = Held(writer, after_first=lambda: _rename_heads(platform, "chain_heads_gone"))
    try:
        first = asyncio.create_task(writer.write([access_record(0)]))
        await held.waiting(0)
        waiting = [asyncio.create_task(writer.write([access_record(n)])) for n in range(1, 7)]
        await held.waiting(6)
        held.release()
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
        await first  # written before the database broke
        assert all(isinstance(o, AuditError) and o.code == "AUDIT_UNAVAILABLE" for o in outcomes), outcomes
        assert held.sizes == [1, 6]
        _rename_heads(platform, "chain_heads_gone", back=True)
        assert await _count(platform) == (1, None)  # nothing of the failed transaction
        await writer.write([access_record(9)])  # the writer goes on once the database is back
        assert await _count(platform) == (2, None)
    finally:
        held.release()
        await writer.close()


async def test_stopping_writes_every_record_handed_over_then_refuses(platform):
    writer = AuditWriter(platform)
    held = Held(writer)
    first = asyncio.create_task(writer.write([access_record(0)]))
    await held.waiting(0)
    waiting = [asyncio.create_task(writer.write([access_record(n)])) for n in range(1, 11)]
    await held.waiting(10)
    closing = asyncio.create_task(writer.close())
    await asyncio.sleep(0.05)
    assert not closing.done()  # the queue is drained first
    held.release()
    await closing
    assert all(w.done() and w.exception() is None for w in [first, *waiting])
    assert await _count(platform) == (11, None)
    with pytest.raises(AuditError):
        await writer.write([access_record(99)])


# --- through the app ---------------------------------------------------------------------------------------------


async def test_the_records_are_appended_off_the_event_loop_thread(own_api, monkeypatch):
    """Each record is linked into the chain (``audit.chain._linked``, inside its transaction) on another thread than
    the one running the event loop, on every path: a lookup with links, a list."""
    linked_on: list[threading.Thread] = []
    link = chain._linked

    def observed(*args, **kwargs):
        linked_on.append(threading.current_thread())
        return link(*args, **kwargs)

    monkeypatch.setattr(chain, "_linked", observed)
    person = own_api.world.showcase["person_luozhuang"]
    lookup = await own_api.query(LOOKUP, MARKET, MARKET_PURPOSE, variables={"id": person})
    listed = await own_api.query(LIST, LAND, LAND_PURPOSE)
    assert lookup["data"]["person"]["name"] and len(listed["data"]["enterpriseList"]["items"]) == 3
    assert len(linked_on) == 2  # one transaction per request
    assert all(t is not threading.current_thread() and t.name == "govshare-audit" for t in linked_on)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def built_platform(request, tmp_path_factory) -> World:
    """A small demo world whose platform database is on SQLite or PostgreSQL, built once per engine."""
    folder = tmp_path_factory.mktemp(f"writer-{request.param}")
    overrides = {}
    if request.param == "postgres":
        require_engine(make_settings(folder / "probe"), "postgres")
        overrides["database_url"] = _postgres_database(f"{TEST_DATABASE_PREFIX}writer_built")
    settings = make_settings(folder / "var", **overrides)
    built = await build_demo(settings, persons=200, enterprises=50)
    return World(settings, built.keys, built.showcase)


@pytest.fixture
async def platform_world(built_platform: World, tmp_path) -> World:
    world = copied_world(built_platform, tmp_path / "var")
    if built_platform.settings.database_url.startswith("postgresql"):
        url = _postgres_database(f"{TEST_DATABASE_PREFIX}writer_app", f"{TEST_DATABASE_PREFIX}writer_built")
        world = dataclasses.replace(world, settings=dataclasses.replace(world.settings, database_url=url))
    return world


async def _requests(api, count: int):
    """``count`` requests at once, lookups and lists by turns."""
    person = api.world.showcase["person_luozhuang"]
    return await asyncio.gather(
        *(
            api.post(LOOKUP, department=MARKET, purpose=MARKET_PURPOSE, variables={"id": person})
            if n % 2
            else api.post(LIST, department=LAND, purpose=LAND_PURPOSE)
            for n in range(count)
        )
    )


async def test_concurrent_requests_share_a_transaction_and_the_chain_verifies(platform_world):
    async for api in _api(platform_world):
        runtime = api.app.state.runtime
        async with runtime.engine.connect() as conn:
            before, _ = await verify(conn, "access")
        held = Held(runtime.audit)
        first = asyncio.create_task(api.post(LIST, department=LAND, purpose=LAND_PURPOSE))
        await held.waiting(0)
        others = asyncio.create_task(_requests(api, 8))
        await held.waiting(8)
        assert not first.done() and not others.done()  # no answer leaves before its records are written
        held.release()
        responses = [await first, *await others]
        assert all(r.status_code == 200 and r.json()["data"] for r in responses)
        # The list records one access, the lookup three (person, enterprises, social insurance).
        assert held.sizes == [1, 4 * 1 + 4 * 3]
    settings = platform_world.settings
    env = environment(settings.var_dir.parent) | {"GOVSHARE_DATABASE_URL": settings.database_url}
    checked = subprocess.run(
        [govshare_command(), "audit", "verify"],
        cwd=settings.var_dir.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stderr
    assert f"access 记录链完整：{before + 17} 条" in checked.stdout, checked.stdout


async def test_when_a_shared_transaction_fails_every_request_in_it_is_refused_without_data(platform_world):
    async for api in _api(platform_world):
        runtime = api.app.state.runtime
        async with runtime.engine.connect() as conn:
            before, _ = await verify(conn, "access")
        held = Held(runtime.audit, after_first=functools.partial(_rename_heads, runtime.engine, "chain_heads_gone"))
        first = asyncio.create_task(api.post(LIST, department=LAND, purpose=LAND_PURPOSE))
        await held.waiting(0)
        others = asyncio.create_task(_requests(api, 6))
        await held.waiting(6)
        held.release()
        assert (await first).status_code == 200
        for response in await others:
            assert response.status_code == 500
            body = response.json()
            assert "data" not in body and body["errors"][0]["extensions"]["code"] == "AUDIT_UNAVAILABLE"
        assert held.sizes == [1, 3 * 1 + 3 * 3]
        _rename_heads(runtime.engine, "chain_heads_gone", back=True)
        async with runtime.engine.connect() as conn:
            assert await verify(conn, "access") == (before + 1, None)


async def test_a_writer_whose_thread_has_ended_refuses_rather_than_waits(platform):
    writer = AuditWriter(platform)
    try:
        await writer.write([access_record(0)])
        writer._queue.put(None)  # the thread ends (as only close() should make it)
        await asyncio.to_thread(writer._thread.join, 60)
        with pytest.raises(AuditError):
            await asyncio.wait_for(
                writer.write([access_record(1)]), 60
            )  # a liveness bound: refused, never left waiting
        assert await _count(platform) == (1, None)
    finally:
        await writer.close()


async def test_a_stopping_server_writes_the_records_still_queued_before_its_last_checkpoint(own_world):
    """A request's records still in the writer's queue as the server stops (its transaction slow, its client gone) are
    written first, and the checkpoint the server leaves as it stops covers them."""
    import json

    from server import create_app

    app = create_app(own_world.settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    runtime = app.state.runtime
    held = Held(runtime.audit)
    first = asyncio.create_task(runtime.audit.write([access_record(1)]))
    await held.waiting(0)
    second = asyncio.create_task(runtime.audit.write([access_record(2), access_record(3)]))
    await held.waiting(1)  # the first held in the writer's thread, the second queued behind it
    stopping = asyncio.create_task(lifespan.__aexit__(None, None, None))
    await asyncio.sleep(0.2)  # the server is stopping while both are still being written
    held.release()
    await asyncio.gather(first, second, stopping)
    settings = own_world.settings
    engine = make_engine(settings.expand(settings.database_url))
    try:
        async with engine.connect() as conn:
            stored = (await conn.execute(text("SELECT count(*) FROM access_records"))).scalar_one()
    finally:
        await engine.dispose()
    checkpoints = Path(settings.expand(settings.audit_checkpoint_file)).read_text().splitlines()
    assert json.loads(checkpoints[-1])["heads"]["access"][0] == stored >= 3


# --- the early hand-over (resolvers.context.RequestContext.records_final, audit.records.RequestRecords) ------------


def _spy_hand_over(writer: AuditWriter, monkeypatch) -> list[tuple[int, bool]]:
    """(records, overlap) of each hand-over to ``writer``."""
    calls: list[tuple[int, bool]] = []
    hand_over = writer.hand_over

    def spying(records, *, overlap=False):
        calls.append((len(records), overlap))
        return hand_over(records, overlap=overlap)

    monkeypatch.setattr(writer, "hand_over", spying)
    return calls


async def test_a_record_handed_over_early_still_holds_its_answer_and_a_failed_commit_sends_no_data(
    platform_world, monkeypatch
):
    """A query's only root field hands its record to the writer as soon as its access has returned, before the answer
    is built (``overlap``); the answer still leaves only once that record's commit succeeded, and when the commit fails
    the request is AUDIT_UNAVAILABLE with no data, on each platform engine."""
    async for api in _api(platform_world):
        writer = api.app.state.runtime.audit
        calls = _spy_hand_over(writer, monkeypatch)
        entered, released = threading.Event(), threading.Event()
        commit = writer._transaction

        def failing(rows, entered=entered, released=released):  # the writer's transaction, in its thread: held,
            entered.set()  # then the platform database fails it
            released.wait(timeout=120)
            raise OSError("disk I/O error")

        monkeypatch.setattr(writer, "_transaction", failing)
        request = asyncio.create_task(api.post(LIST, department=LAND, purpose=LAND_PURPOSE))
        for _ in range(6000):  # a liveness bound only
            if entered.is_set():
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        assert entered.is_set() and not request.done()  # handed over, and the answer waits for its commit
        released.set()
        refused = await request
        body = refused.json()
        assert refused.status_code == 500 and "data" not in body
        assert body["errors"][0]["extensions"]["code"] == "AUDIT_UNAVAILABLE"
        assert calls == [(1, True)]  # handed over early, once; nothing left for the end
        monkeypatch.setattr(writer, "_transaction", commit)
        answered = await api.query(LIST, LAND, LAND_PURPOSE)
        names = [item["name"] for item in answered["data"]["enterpriseList"]["items"]]
        assert len(names) == 3 and not any(name in refused.text for name in names)
        assert calls == [(1, True), (1, True)]


async def test_a_record_changed_after_it_was_handed_over_refuses_the_answer(own_api, monkeypatch):
    """The early hand-over relies on a handed record never changing; if one did (a bug), what was stored is not the
    access, and the answer is refused (AUDIT_UNAVAILABLE, no data) rather than sent beside a wrong record."""
    from resolvers.context import RequestContext

    final = RequestContext.records_final

    def changing(ctx):
        final(ctx)
        ctx.records[-1].row_count += 1

    monkeypatch.setattr(RequestContext, "records_final", changing)
    response = await own_api.post(LIST, department=LAND, purpose=LAND_PURPOSE)
    body = response.json()
    assert response.status_code == 500 and "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "AUDIT_UNAVAILABLE"


async def test_an_operation_with_more_to_read_hands_its_records_over_at_its_end_in_one_transaction(
    own_api, monkeypatch
):
    """Two root fields, or a root field with a link, read after the first access has returned: nothing is handed over
    early, and each request's records go to the writer together at its end (one transaction)."""
    calls = _spy_hand_over(own_api.app.state.runtime.audit, monkeypatch)
    two = "{ a: enterpriseList(first: 1) { items { name } } b: enterpriseList(first: 2) { items { creditCode } } }"
    await own_api.query(two, LAND, LAND_PURPOSE)
    person = own_api.world.showcase["person_luozhuang"]
    await own_api.query(LOOKUP, MARKET, MARKET_PURPOSE, variables={"id": person})
    assert calls == [(2, False), (3, False)]
