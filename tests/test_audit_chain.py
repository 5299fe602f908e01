"""The hash chain finds a record changed, deleted, inserted or reordered behind the platform's back."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select, text

from audit.chain import record_hash, verify
from audit.tables import access_records
from tests.conftest import access_record


async def _tamper(own_api, *statements) -> None:
    engine = own_api.app.state.runtime.engine
    async with engine.begin() as conn:  # what a database administrator could do: drop the guards, then edit
        await conn.execute(text("DROP TRIGGER access_records_no_update"))
        await conn.execute(text("DROP TRIGGER access_records_no_delete"))
        for statement in statements:
            await conn.execute(text(statement))


async def _answer_some(own_api, n: int = 6) -> None:
    for _ in range(n):
        await own_api.query("{ enterpriseList(first: 1) { items { name } } }", "land", "land.property-registration")


async def _verify(own_api):
    async with own_api.app.state.runtime.engine.connect() as conn:
        return await verify(conn, "access")


async def test_an_untouched_chain_verifies(own_api):
    await _answer_some(own_api)
    count, broken = await _verify(own_api)
    assert count == 6 and broken is None


@pytest.mark.parametrize(
    "tampering, seq, problem",
    [
        (["UPDATE access_records SET department = 'market' WHERE seq = 3"], 3, "changed"),
        (["DELETE FROM access_records WHERE seq = 3"], 3, "missing"),
        (
            [
                "UPDATE access_records SET seq = -2 WHERE seq = 2",
                "UPDATE access_records SET seq = 2 WHERE seq = 3",
                "UPDATE access_records SET seq = 3 WHERE seq = -2",
            ],
            2,
            "reordered",
        ),
        (["DELETE FROM access_records WHERE seq = 6"], 6, "truncated"),
    ],
)
async def test_tampering_is_found_at_the_first_bad_record(own_api, tampering, seq, problem):
    await _answer_some(own_api)
    await _tamper(own_api, *tampering)
    _, broken = await _verify(own_api)
    assert (broken.seq, broken.problem) == (seq, problem)


async def test_a_forged_record_is_found_even_with_a_valid_looking_hash(own_api):
    await _answer_some(own_api)
    engine = own_api.app.state.runtime.engine
    async with engine.connect() as conn:
        last = (await conn.execute(select(access_records).where(access_records.c.seq == 6))).mappings().one()
    forged = {**dict(last), "department": "hrss"}
    forged_hash = record_hash(last["hash"], 7, forged)
    await _tamper(
        own_api,
        "INSERT INTO access_records (at, request_id, trace_id, department, application, key_id, "
        "operator, purpose, resource, operation, items_returned, items_masked, items_denied, row_count, "
        "grants_used, outcome, error_code, encoding, policy_version, subjects_digest, seq, prev_hash, hash) SELECT "
        "at, request_id, trace_id, 'hrss', application, key_id, operator, purpose, resource, operation, "
        "items_returned, items_masked, items_denied, row_count, grants_used, outcome, error_code, encoding, "
        f"policy_version, subjects_digest, 7, hash, '{forged_hash}' "
        "FROM access_records WHERE seq = 6",
    )
    _, broken = await _verify(own_api)
    assert (broken.seq, broken.problem) == (7, "inserted")  # the chain's head never heard of it


def test_govshare_audit_verify_reports_and_fails(own_folder):
    import os
    import sqlite3
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import REPO

    govshare = str(Path(sys.executable).with_name("govshare"))
    env = {
        **os.environ,
        "GOVSHARE_VAR_DIR": str(own_folder / "var"),
        "GOVSHARE_CATALOG_DIR": str(REPO / "catalog" / "demo"),
    }
    run = lambda *args: subprocess.run(
        [govshare, *args], cwd=own_folder, env=env, capture_output=True, text=True, timeout=120
    )
    # own_folder: a copy of the world `govshare demo` built, whose grants are process records
    ok = run("audit", "verify")
    assert ok.returncode == 0 and "process 记录链完整：5 条" in ok.stdout
    with sqlite3.connect(own_folder / "var" / "platform.db") as conn:
        conn.execute("DROP TRIGGER process_records_no_update")
        conn.execute("UPDATE process_records SET reason = '改过的' WHERE seq = 5")
    broken = run("audit", "verify")
    assert broken.returncode == 1 and "process 记录链在第 5 条处断开：changed" in broken.stderr


async def test_a_rewritten_tail_and_head_are_found_against_the_checkpoint(own_api):
    from audit.checkpoints import check_checkpoints, verification_keys

    await _answer_some(own_api)
    runtime = own_api.app.state.runtime
    engine = runtime.engine
    async with engine.connect() as conn:
        await runtime.checkpoints.write(conn)
    # Remove the two newest records (and their data subjects) and move the head back so the chain looks whole on its
    # own.
    await _tamper(
        own_api,
        "DROP TRIGGER access_subjects_no_delete",
        "DELETE FROM access_subjects WHERE record_seq > 4",
        "DELETE FROM access_records WHERE seq > 4",
        "UPDATE chain_heads SET seq = 4, hash = (SELECT hash FROM access_records WHERE seq = 4) WHERE chain = 'access'",
    )
    _, alone = await _verify(own_api)
    assert alone is None  # this is what the checkpoint is for
    checked = check_checkpoints(runtime.checkpoints.path, verification_keys(runtime.settings)[0])
    assert checked.faults == [] and checked.covered("access") == 6
    async with engine.connect() as conn:
        _, broken = await verify(conn, "access", checked.heads())
    assert (broken.seq, broken.problem) == (5, "truncated")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_concurrent_writers_in_separate_pools_extend_one_chain(tmp_path, backend):
    """Two pools (as two server processes would have) append at once; the chain stays one chain."""
    import asyncio
    from datetime import UTC, datetime

    from sqlalchemy import create_engine

    from audit.records import AccessRecord, AuditWriter
    from govshare.platformdb import make_engine
    from migrations import ensure_current
    from tests.conftest import TEST_DATABASE_PREFIX, make_settings, require_engine

    if backend == "postgres":
        require_engine(make_settings(tmp_path), "postgres")
        admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {TEST_DATABASE_PREFIX}platform WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {TEST_DATABASE_PREFIX}platform"))
        admin.dispose()
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{TEST_DATABASE_PREFIX}platform"
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'platform.db'}"
    engines = [make_engine(url), make_engine(url)]
    try:
        await ensure_current(engines[0])

        async def writer(engine, n):
            audit = AuditWriter(engine)
            for i in range(n):
                await audit.write(
                    [
                        AccessRecord(
                            at=datetime.now(UTC),
                            request_id=f"r{id(engine)}-{i}",
                            trace_id="0" * 32,
                            department="land",
                            application="a",
                            key_id="k",
                            operator=None,
                            purpose="p",
                            resource="market.enterprise",
                            operation="list",
                            items_returned=["name"],
                            row_count=1,
                        )
                    ]
                    * 2
                )

        await asyncio.gather(writer(engines[0], 40), writer(engines[1], 40))
        async with engines[0].connect() as conn:
            count, broken = await verify(conn, "access")
        assert count == 160 and broken is None
        if backend == "postgres":  # the database itself refuses edits
            with pytest.raises(Exception, match="append-only"):
                async with engines[1].begin() as conn:
                    await conn.execute(text("UPDATE access_records SET department = 'x'"))
    finally:
        for engine in engines:
            await engine.dispose()


async def test_concurrent_requests_keep_the_chain_and_all_learn_when_writing_fails(tmp_path):
    import asyncio

    from audit.records import AccessRecord, AuditWriter
    from govshare.errors import AuditError
    from govshare.platformdb import make_engine
    from migrations import ensure_current

    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'platform.db'}")
    transactions = []
    event.listen(engine.sync_engine, "commit", lambda conn: transactions.append(1))

    def records(n: int) -> list[AccessRecord]:
        return [access_record(n)] * 2

    try:
        await ensure_current(engine)
        audit = AuditWriter(engine)
        transactions.clear()
        await asyncio.gather(*(audit.write(records(n)) for n in range(20)))
        async with engine.connect() as conn:
            count, broken = await verify(conn, "access")
            order = [row[0] for row in (await conn.execute(text("SELECT request_id FROM access_records ORDER BY seq")))]
        assert count == 40 and broken is None
        assert all(order[i] == order[i + 1] for i in range(0, 40, 2))  # each request's records side by side
        async with engine.begin() as conn:
            await conn.execute(text("DROP TABLE chain_heads"))
        outcomes = await asyncio.gather(*(audit.write(records(n)) for n in range(5)), return_exceptions=True)
        assert all(isinstance(o, AuditError) and o.code == "AUDIT_UNAVAILABLE" for o in outcomes)
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT COUNT(*) FROM access_records"))).scalar() == 40
    finally:
        await engine.dispose()


async def test_while_another_writer_holds_the_lock_waiting_requests_go_in_together(tmp_path):
    import asyncio
    import sqlite3
    from datetime import UTC, datetime

    from audit.records import AccessRecord, AuditWriter
    from govshare.platformdb import make_engine
    from migrations import ensure_current

    path = tmp_path / "platform.db"
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await ensure_current(engine)
        audit = AuditWriter(engine)
        batches = []
        append = audit._sqlite.append
        audit._sqlite.append = lambda rows: (batches.append(len(rows)), append(rows))[1]
        other = sqlite3.connect(path, isolation_level=None)  # another process, holding the write lock
        other.execute("BEGIN IMMEDIATE")
        record = dict(
            at=datetime.now(UTC),
            trace_id="0" * 32,
            department="land",
            application="a",
            key_id="k",
            operator=None,
            purpose="p",
            resource="market.enterprise",
            operation="list",
        )
        writes = [asyncio.create_task(audit.write([AccessRecord(request_id=f"r{n}", **record)])) for n in range(10)]
        await asyncio.sleep(0.2)
        assert not any(w.done() for w in writes)  # nothing is answered before its record is written
        other.execute("COMMIT")
        await asyncio.gather(*writes)
        async with engine.connect() as conn:
            count, broken = await verify(conn, "access")
            heads = (await conn.execute(text("SELECT seq FROM chain_heads WHERE chain = 'access'"))).scalar()
        assert count == 10 and broken is None and heads == 10
        # The first request's transaction waits for the lock in the writer's thread; everyone who came meanwhile goes
        # into the next one (all ten in one, where the thread started after the last of them was queued).
        assert sum(batches) == 10 and batches[-1] >= 9
        await audit.close()
        other.close()
    finally:
        await engine.dispose()
