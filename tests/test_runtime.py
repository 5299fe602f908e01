"""State off the request path (server.Runtime): requests read one snapshot of the catalog, policies, schema and key
cache; the background check, change announcements and a change made here build the next one and swap it in.

A request arriving while a slow rebuild checks the sources is answered at once from the snapshot in force; a key
revoked elsewhere stops at the next check, and at the latest once no check has confirmed the snapshot for
2 x refresh_seconds (the database unreachable); a change made through this process is in force for its next request."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import types

import pytest
from sqlalchemy import event, func, select

import server
from audit.tables import access_records
from catalog import store as catalog_store
from govshare.keys import api_keys, hash_key, revoke_key
from tests.conftest import _api
from tests.test_admin_api import PUT_DENY, _admin

CALLER = "{ caller { department } }"
ENTERPRISES = "{ enterpriseList(first: 3) { items { creditCode name } } }"
LIVENESS = 30  # seconds a request may take before the test calls it stuck: a bound on hanging, not on speed


class Clock:
    """time.monotonic for the runtime, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _revoke(api, department: str) -> None:
    """Revoke ``department``'s key in the platform database, as `govshare key revoke` in another process does."""
    runtime = api.app.state.runtime
    async with runtime.engine.begin() as conn:
        key_id = (
            await conn.execute(select(api_keys.c.id).where(api_keys.c.key_hash == hash_key(api.world.keys[department])))
        ).scalar_one()
        await revoke_key(conn, key_id)


def _code(response) -> str:
    return response.json()["errors"][0]["extensions"]["code"]


async def test_a_request_during_a_slow_rebuild_is_answered_from_the_snapshot_in_force(own_world, monkeypatch):
    real_check = server.check_sources
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow_check(catalog, settings):  # a source that takes as long as the test says
        entered.set()
        await release.wait()
        return await real_check(catalog, settings)

    async for api in _api(own_world):
        runtime = api.app.state.runtime
        monkeypatch.setattr(server, "check_sources", slow_check)
        before = (await api.client.get("/healthz")).json()
        async with runtime.engine.begin() as conn:  # a new catalog version, as `govshare catalog load` writes one
            await catalog_store.publish(conn, runtime.catalog, source="test", loaded_by="test")
        rebuild = asyncio.create_task(runtime.refresh())  # what the background check does
        await asyncio.wait_for(entered.wait(), LIVENESS)

        # The rebuild is held inside the source check: requests are answered meanwhile, from the old snapshot.
        answered = await asyncio.wait_for(
            api.post(ENTERPRISES, department="market", purpose="market.licence-review"), LIVENESS
        )
        assert answered.status_code == 200 and len(answered.json()["data"]["enterpriseList"]["items"]) == 3
        health = (await asyncio.wait_for(api.client.get("/healthz"), LIVENESS)).json()
        assert health["catalog_version"] == before["catalog_version"]
        assert not rebuild.done()

        release.set()
        await asyncio.wait_for(rebuild, LIVENESS)
        after = (await api.client.get("/healthz")).json()
        assert after["catalog_version"] == before["catalog_version"] + 1
        assert after["last_reload"]["cause"] == "check"


async def test_a_key_revoked_elsewhere_stops_at_the_next_background_check(own_world):
    settings = dataclasses.replace(own_world.settings, refresh_seconds=0.05)
    async for api in _api(own_world, settings=settings):
        runtime = api.app.state.runtime
        checks: list[asyncio.Event] = []
        refresh = runtime.refresh

        async def counted_refresh(**kwargs):
            try:
                return await refresh(**kwargs)  # noqa: B023 - the fixture loop runs once
            finally:
                for done in checks:  # noqa: B023 - the fixture loop runs once
                    done.set()

        runtime.refresh = counted_refresh
        background = asyncio.create_task(runtime.keep_fresh())  # as `govshare serve` runs it
        try:
            assert (await api.post(CALLER, department="hrss")).status_code == 200  # the key is remembered
            await _revoke(api, "hrss")
            # A check that had read the versions before the revocation may still be running: wait for two.
            for _ in range(2):
                done = asyncio.Event()
                checks.append(done)
                await asyncio.wait_for(done.wait(), LIVENESS)
                checks.remove(done)
            revoked = await api.post(CALLER, department="hrss")
            assert revoked.status_code == 401 and _code(revoked) == "KEY_REVOKED"
        finally:
            background.cancel()


async def test_a_key_cache_no_check_confirms_is_not_trusted(own_world, monkeypatch):
    """The database check fails (unreachable, stuck): the keys remembered are used for at most 2 x refresh_seconds
    after the last successful check; then every key is looked up again, so a revoked one stops."""
    clock = Clock()
    settings = dataclasses.replace(own_world.settings, refresh_seconds=0.5)
    async for api in _api(own_world, settings=settings, monotonic=clock):
        runtime = api.app.state.runtime
        lookups: list[str] = []

        def capture(conn, cursor, statement, parameters, context, executemany):
            if "FROM api_keys" in statement and "api_keys.roles" in statement:  # an authentication, not the revoke
                lookups.append(statement)  # noqa: B023 - the fixture loop runs once

        event.listen(runtime.engine.sync_engine, "before_cursor_execute", capture)
        assert (await api.post(CALLER, department="hrss")).status_code == 200
        assert (await api.post(CALLER, department="hrss")).status_code == 200 and len(lookups) == 1  # remembered

        def unreachable(conn):
            raise OSError("platform database unreachable")

        monkeypatch.setattr(server, "read_versions_sync", unreachable)
        await _revoke(api, "hrss")
        clock.now += 0.5
        with pytest.raises(OSError):
            await runtime.refresh()  # the background check fails (and logs; the loop goes on)
        clock.now += 0.4  # 0.9 s after the last successful check: within 2 x refresh_seconds, still remembered
        assert (await api.post(CALLER, department="hrss")).status_code == 200 and len(lookups) == 1

        clock.now += 0.2  # 1.1 s: no check has confirmed the cache for too long
        revoked = await api.post(CALLER, department="hrss")
        assert revoked.status_code == 401 and _code(revoked) == "KEY_REVOKED" and len(lookups) == 2
        other = await api.post(CALLER, department="civil")
        assert other.status_code == 200 and len(lookups) == 3  # looked up, not answered from the cache

        monkeypatch.undo()  # the database is back: the next check confirms a new snapshot
        await runtime.refresh()
        assert (await api.post(CALLER, department="civil")).status_code == 200 and len(lookups) == 4
        assert (await api.post(CALLER, department="civil")).status_code == 200 and len(lookups) == 4
        event.remove(runtime.engine.sync_engine, "before_cursor_execute", capture)


async def test_the_check_reads_the_versions_off_the_event_loop(own_world):
    """The background check that finds nothing changed makes no round trip through the event loop's driver: under
    load each such round trip waits for the loop, the check outlasted 2 x refresh_seconds and the key cache lapsed
    (every key looked up again). It reads the versions on a connection of its own, in a thread, and a change it
    finds is still built and in force before it returns."""
    async for api in _api(own_world):
        runtime = api.app.state.runtime
        on_loop: list[str] = []
        threads: list[str] = []

        def on_the_loop(conn, cursor, statement, parameters, context, executemany):
            on_loop.append(statement)  # noqa: B023 - the fixture loop runs once

        def on_a_thread(conn, cursor, statement, parameters, context, executemany):
            if "policy_version" in statement:
                threads.append(threading.current_thread().name)  # noqa: B023 - the fixture loop runs once

        event.listen(runtime.engine.sync_engine, "before_cursor_execute", on_the_loop)
        event.listen(runtime._versions_engine, "before_cursor_execute", on_a_thread)
        try:
            confirmed = await runtime.refresh()
            assert on_loop == [] and len(threads) == 1 and threads[0] != threading.main_thread().name
            assert confirmed is runtime.snapshot
            await _revoke(api, "hrss")  # bumps the policy version: the check builds the next snapshot
            on_loop.clear()
            changed = await runtime.refresh()
            assert changed.versions[1] == confirmed.versions[1] + 1 and on_loop  # the new policies read and in force
            refused = await api.post(CALLER, department="hrss")
            assert refused.status_code == 401 and _code(refused) == "KEY_REVOKED"
        finally:
            event.remove(runtime.engine.sync_engine, "before_cursor_execute", on_the_loop)
            event.remove(runtime._versions_engine, "before_cursor_execute", on_a_thread)


async def test_a_slow_check_does_not_push_the_next_one_out(own_world, monkeypatch):
    """Each check starts refresh_seconds after the last one started: one that took 0.4 s of a 0.5 s period is
    followed 0.1 s later, not 0.5 s (which, under load, left more than 2 x refresh_seconds between two checks and the
    key cache unconfirmed); one that took longer than the period is followed at once."""
    clock = Clock()
    settings = dataclasses.replace(own_world.settings, refresh_seconds=0.5)
    runtime = server.Runtime(settings, monotonic=clock)
    waits: list[float] = []
    took = iter([0.4, 0.7, 0.0])

    async def refresh(**_):
        clock.now += next(took)  # the check's own duration

    async def sleep(seconds):
        waits.append(round(seconds, 6))
        if len(waits) == 4:
            raise asyncio.CancelledError

    monkeypatch.setattr(runtime, "refresh", refresh)
    monkeypatch.setattr(server, "asyncio", types.SimpleNamespace(sleep=sleep))
    with pytest.raises(asyncio.CancelledError):
        await runtime.keep_fresh()
    assert waits == [0.5, 0.1, 0.0, 0.5]
    await runtime.stop()


async def test_a_change_made_through_this_process_is_in_force_for_its_next_request(own_world):
    settings = dataclasses.replace(own_world.settings, refresh_seconds=3600.0)  # no check would see it in time
    async for api in _api(own_world, settings=settings):
        admin = await _admin(api)
        try:
            before = await api.query(ENTERPRISES, "hrss", "hrss.employment-subsidy")
            assert len(before["data"]["enterpriseList"]["items"]) == 3
            made = await admin.run(
                PUT_DENY,
                rule={"department": "hrss", "resource": "market.enterprise", "reason": "第二十条：迟报"},
                reason="限制 hrss",
            )
            assert "errors" not in made, made
            after = await api.query(ENTERPRISES, "hrss", "hrss.employment-subsidy")
            assert after["data"]["enterpriseList"] is None
            assert {e["extensions"]["code"] for e in after["errors"]} == {"DEPARTMENT_RESTRICTED"}
            health = (await api.client.get("/healthz")).json()
            assert health["last_reload"]["cause"] == "local"
        finally:
            await admin.client.aclose()


def test_admin_reaches_the_runtime_only_through_its_typed_view(own_api):
    """admin/ never imports server.py nor reads request.app.state: it uses what admin.runtime.AdminRuntime lists,
    and the server's Runtime provides all of it."""
    import ast
    from pathlib import Path

    from admin import runtime as admin_runtime

    declared: set[str] = set()
    for protocol in admin_runtime.AdminRuntime.__mro__:  # AdminRuntime and the Platform it extends
        if protocol.__module__ == admin_runtime.__name__:
            declared |= {name for name in vars(protocol) if not name.startswith("_")}
            declared |= set(getattr(protocol, "__annotations__", {}))
    used: dict[str, set[str]] = {}
    for path in Path(admin_runtime.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert "server" not in names, path
            if isinstance(node, ast.Attribute) and node.attr == "state" and path.name != "runtime.py":
                raise AssertionError(f"{path.name}:{node.lineno} reads app.state")
            if isinstance(node, ast.Attribute) and (
                (isinstance(node.value, ast.Name) and node.value.id == "runtime")
                or (isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "runtime_of")
            ):
                used.setdefault(node.attr, set()).add(path.name)
    assert used and set(used) <= declared, {name: files for name, files in used.items() if name not in declared}
    server_runtime = own_api.app.state.runtime
    assert all(hasattr(server_runtime, name) for name in declared), declared


async def test_policies_no_check_confirms_stop_deciding_after_policy_stale_seconds(own_world, monkeypatch):
    """Every check fails (the platform database unreachable, a rebuild failing): a grant revoked meanwhile must not
    be decided on for ever. Past policy_stale_seconds every query is refused, read nothing and recorded nothing,
    until a check succeeds again."""
    clock = Clock()
    settings = dataclasses.replace(own_world.settings, refresh_seconds=0.5, policy_stale_seconds=5.0)
    async for api in _api(own_world, settings=settings, monotonic=clock):
        runtime = api.app.state.runtime
        assert (await api.post(CALLER, department="hrss")).status_code == 200

        def unreachable(conn):
            raise OSError("platform database unreachable")

        monkeypatch.setattr(server, "read_versions_sync", unreachable)
        clock.now += 4.9
        with pytest.raises(OSError):
            await runtime.refresh()
        assert (await api.post(CALLER, department="hrss")).status_code == 200  # within policy_stale_seconds
        async with runtime.engine.connect() as conn:
            before = (await conn.execute(select(func.count()).select_from(access_records))).scalar()
        clock.now += 0.2
        refused = await api.post(CALLER, department="hrss")
        assert refused.status_code == 503 and _code(refused) == "POLICY_UNCONFIRMED"
        assert "data" not in refused.json() and refused.headers["Retry-After"] == "1"
        async with runtime.engine.connect() as conn:
            assert (await conn.execute(select(func.count()).select_from(access_records))).scalar() == before

        monkeypatch.undo()
        await runtime.refresh()  # a check succeeds: answered again
        assert (await api.post(CALLER, department="hrss")).status_code == 200


def test_a_process_that_checks_seldom_is_given_two_of_its_checks_before_it_refuses(own_world):
    """refresh_seconds is the operator's choice: an hourly check must not make every query fail after 30 s."""
    for refresh, stale, limit in ((0.5, 30.0, 30.0), (3600.0, 30.0, 7200.0), (0.0, 30.0, 0.0), (0.5, 0.0, 0.0)):
        settings = dataclasses.replace(own_world.settings, refresh_seconds=refresh, policy_stale_seconds=stale)
        assert server.Runtime(settings).stale_limit() == limit
