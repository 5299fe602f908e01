"""A third reviewer's attacks on issue 12 (the snapshot off the request path, the one GraphQL handler, chain
encodings and migrations): each is made as a department or an operator would make it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, select, text

import migrations
from audit.chain import CHAINS, _linked, append_sync, verify
from catalog import store as catalog_store
from govshare.platformdb import make_engine, make_sync_engine
from policies.store import revoke_grant
from policies.tables import grants
from tests.conftest import _api

HRSS = "hrss.insurance-enrolment"
PERSONS = "{ personList(first: 2) { items { name } } }"


@contextlib.asynccontextmanager
async def malformed_mysql():
    """A TCP server where a department's MySQL source should be, answering every connection with a truncated
    handshake packet (the driver fails on it with struct.error, not with a database error)."""

    async def answer(reader, writer):
        writer.write(b"\x01\x00\x00\x00\xff")
        with contextlib.suppress(Exception):
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield f"mysql://u:p@127.0.0.1:{server.sockets[0].getsockname()[1]}/exchange"
    finally:
        server.close()


async def test_a_source_answering_garbage_does_not_keep_a_revoked_grant_in_force(own_api):
    """A department whose source answers a malformed handshake makes the source check raise (struct.error) in
    every rebuild after a catalog change: the snapshot in force was never replaced, so a grant revoked meanwhile
    (or a deny rule, or a retirement) went on being answered after every background check, and a server
    restarted then would not start at all."""
    runtime = own_api.app.state.runtime
    before = await own_api.query(PERSONS, "hrss", HRSS)
    assert before.get("errors") is None and before["data"]["personList"]["items"]
    async with malformed_mysql() as url:
        catalog = runtime.catalog
        civil = dataclasses.replace(catalog.departments["civil"], source=url)
        changed = dataclasses.replace(catalog, departments={**catalog.departments, "civil": civil})
        async with runtime.engine.begin() as conn:
            await catalog_store.publish(conn, changed, source="test", loaded_by="test")
            granted = (
                (
                    await conn.execute(
                        select(grants.c.id).where(grants.c.consumer == "hrss", grants.c.resource == "police.person")
                    )
                )
                .scalars()
                .all()
            )
            for grant_id in granted:
                await revoke_grant(conn, grant_id, reason="review3", revoked_by="test")
        # What the background check does every refresh_seconds (its failures are logged and it goes on).
        for _ in range(2):
            with contextlib.suppress(Exception):
                await runtime.refresh()
        after = await own_api.query(PERSONS, "hrss", HRSS)
    assert after["data"]["personList"] is None
    assert [e["extensions"]["code"] for e in after["errors"]] == ["GRANT_REVOKED"]


def _access_row(n: int) -> dict:
    return dict(
        at=datetime.now(UTC),
        request_id=f"r-{n}",
        trace_id="0" * 32,
        department="land",
        application="land-demo",
        key_id="k",
        operator=None,
        purpose="land.property-registration",
        resource="market.enterprise",
        operation="list",
        items_returned=["name"],
        items_masked=[],
        items_denied={},
        row_count=1,
        grants_used=[],
        outcome="allowed",
        error_code=None,
        policy_version=1,
    )


async def test_verify_on_a_platform_that_goes_on_answering_finds_no_break(tmp_path):
    """`govshare audit verify` on a running platform: a record appended (with its head, in one transaction) between
    verify reading the chain's head and reading the records made verify call the untouched chain broken
    ("inserted"), in 23-29 of 30 runs against a writer appending in a loop, on SQLite and PostgreSQL alike. It
    must still find a record appended behind the head's back, and a cut tail."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'platform.db'}")
    sync = make_sync_engine(engine)
    await migrations.ensure_current(engine)
    try:
        with sync.begin() as conn:
            append_sync(conn, "access", [_access_row(n) for n in range(3)])
        appended = []

        def append_meanwhile(conn, cursor, statement, parameters, context, executemany):
            # the writer of a server answering a request, exactly while verify starts reading the records
            if statement.lstrip().startswith("SELECT access_records.id") and not appended:
                with sync.begin() as writer:
                    append_sync(writer, "access", [_access_row(3)])
                appended.append(True)

        event.listen(engine.sync_engine, "before_cursor_execute", append_meanwhile)
        async with engine.connect() as conn:
            result = await verify(conn, "access")
        event.remove(engine.sync_engine, "before_cursor_execute", append_meanwhile)
        assert appended and result[1] is None, result
        async with engine.connect() as conn:
            assert await verify(conn, "access") == (4, None)
        # Still found: a record whose head was never advanced, and a tail cut with its head left as it was.
        with sync.begin() as conn:
            linked = _linked(
                CHAINS["access"],
                4,
                conn.execute(text("SELECT hash FROM chain_heads WHERE chain = 'access'")).scalar(),
                [_access_row(4)],
            ).rows
            conn.execute(text("DROP TRIGGER access_records_no_delete"))
            conn.execute(CHAINS["access"].table.insert(), linked)
        async with engine.connect() as conn:
            _, forged = await verify(conn, "access")
        with sync.begin() as conn:
            conn.execute(text("DELETE FROM access_records WHERE seq >= 4"))
        async with engine.connect() as conn:
            _, cut = await verify(conn, "access")
        assert (forged.seq, forged.problem) == (5, "inserted") and (cut.seq, cut.problem) == (4, "truncated")
    finally:
        sync.dispose()
        await engine.dispose()


@pytest.mark.parametrize("edit", ["at = at || ' (edited)'", "items_returned = '[\"name\"'", "grants_used = 'x'"])
async def test_a_value_edited_past_reading_is_a_changed_record_not_a_crash_of_verify(tmp_path, edit):
    """An administrator who edits a stored moment or JSON so that its column type cannot read it back made
    `audit verify` crash (ValueError) instead of naming the record: no chain after it was verified either."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'platform.db'}")
    sync = make_sync_engine(engine)
    await migrations.ensure_current(engine)
    try:
        with sync.begin() as conn:
            append_sync(conn, "access", [_access_row(n) for n in range(4)])
            conn.execute(text("DROP TRIGGER access_records_no_update"))
            conn.execute(text(f"UPDATE access_records SET {edit} WHERE seq = 3"))
        async with engine.connect() as conn:
            count, problem = await verify(conn, "access")
        assert (count, problem.seq, problem.problem) == (3, 3, "changed")
    finally:
        sync.dispose()
        await engine.dispose()


async def test_a_grant_revoked_beside_a_catalog_change_is_not_answered_while_a_silent_source_is_checked(own_world):
    """A department whose source accepts connections and never answers holds every catalog change's rebuild for
    source_timeout_seconds (5 s by default, against refresh_seconds 0.5 s); a grant revoked, a deny rule added
    or a resource retired meanwhile is answered all that time, in every process."""
    settings = dataclasses.replace(own_world.settings, source_timeout_seconds=30.0)
    connected = asyncio.Event()

    async def silent(reader, writer):
        connected.set()
        await reader.read()  # until the checker gives up and closes

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    url = f"mysql://u:p@127.0.0.1:{server.sockets[0].getsockname()[1]}/exchange"
    try:
        async for api in _api(own_world, settings=settings):
            runtime = api.app.state.runtime
            catalog = runtime.catalog
            civil = dataclasses.replace(catalog.departments["civil"], source=url)
            async with runtime.engine.begin() as conn:
                await catalog_store.publish(
                    conn,
                    dataclasses.replace(catalog, departments={**catalog.departments, "civil": civil}),
                    source="test",
                    loaded_by="test",
                )
                for grant_id in (
                    (
                        await conn.execute(
                            select(grants.c.id).where(grants.c.consumer == "hrss", grants.c.resource == "police.person")
                        )
                    )
                    .scalars()
                    .all()
                ):
                    await revoke_grant(conn, grant_id, reason="review3", revoked_by="test")
            check = asyncio.create_task(runtime.refresh())  # the background check that saw the change
            await connected.wait()
            try:
                after = await api.query(PERSONS, "hrss", HRSS)
            finally:
                check.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await check
            assert after["data"]["personList"] is None
    finally:
        server.close()


def test_govshare_demo_refuses_a_production_platform_and_writes_nothing(tmp_path):
    """`govshare demo` run with a production configuration created the platform database production refuses to
    create (DB_NOT_CREATED), or upgraded one at an older revision without `govshare db upgrade`, and wrote six demo
    keys (also into var/demo-keys.json, in clear), the demo grants and the demo catalog into it."""
    from tests.test_cli import govshare_in_process

    (tmp_path / "secret").write_bytes(bytes(range(32)))
    (tmp_path / "govshare.toml").write_text(f'production = true\npseudonym_secret_file = "{tmp_path / "secret"}"\n')
    run = govshare_in_process(tmp_path, "demo", language="en")
    assert run.returncode != 0 and "[DEMO_IN_PRODUCTION]" in run.stderr + run.stdout, run.stdout + run.stderr
    assert not (tmp_path / "var" / "demo-keys.json").exists()
    platform = tmp_path / "var" / "platform.db"
    assert (
        not platform.exists()
        or not sqlite3.connect(platform).execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    )
