"""Archives of the audit chains (``govshare audit archive``, ``audit verify --archives``, audit/archives.py): records
past retention leave the live tables only into signed, linked archive files, on SQLite and PostgreSQL alike; every
way an insider could make them disappear or change (a byte of an archive, an archive removed, two swapped, a live
row deleted, the platform's record of archives deleted) is found with its code; a run interrupted loses nothing.

The attacker has the platform database and the archive folder, never the signing key (kept outside var/, as
production keeps it)."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command as alembic_command
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, func, inspect, select, text

from audit import archives
from audit.chain import append, audit_archives
from audit.records import AuditWriter
from audit.tables import access_records, process_records
from govshare.config import load_settings
from govshare.errors import ConfigError
from govshare.platformdb import make_engine, table_guard
from migrations import ensure_current
from tests.conftest import access_record, make_settings
from tests.test_audit_checkpoints import _new_key
from tests.test_cli import environment, govshare_in_process
from tests.test_migrations import BACKENDS, platform_url  # noqa: F401 - the fixture

OLD = datetime.now(UTC) - timedelta(days=400)


class Platform:
    """A platform database (SQLite file or PostgreSQL database) with old and recent access and process records, its
    signing key outside var/, and the `govshare` command run against it."""

    def __init__(self, folder: Path, url: str) -> None:
        self.folder, self.url = folder, url
        self.archive_dir = folder / "archives"
        key_file = folder / "keys" / "signing.key"
        self.env = environment(folder) | {
            "GOVSHARE_DATABASE_URL": url,
            "GOVSHARE_AUDIT_SIGNING_KEY_FILE": str(key_file),
            "GOVSHARE_AUDIT_VERIFY_PUBLIC_KEY": _new_key(key_file),
            "GOVSHARE_AUDIT_ARCHIVE_DIR": str(self.archive_dir),
        }
        self.settings = make_settings(
            folder / "var",
            database_url=url,
            audit_signing_key_file=str(key_file),
            audit_verify_public_key=self.env["GOVSHARE_AUDIT_VERIFY_PUBLIC_KEY"],
            audit_archive_dir=str(self.archive_dir),
        )
        self.engine = make_engine(url)

    def govshare(self, *args: str, **env: str):
        return govshare_in_process(self.folder, *args, env=self.env | env)

    def archive(self, *args: str):
        done = self.govshare("audit", "archive", "--to", str(self.archive_dir), "--max-records", "2", *args)
        assert done.returncode == 0, done.output if hasattr(done, "output") else done.stderr + done.stdout
        return done

    def verify(self, *args: str):
        return self.govshare("audit", "verify", "--archives", str(self.archive_dir), *args)

    async def add(self, access: int, process: int, at: datetime) -> None:
        writer = AuditWriter(self.engine)
        try:
            await writer.write(
                [dataclasses.replace(access_record(i), at=at + timedelta(seconds=i)) for i in range(access)]
            )
        finally:
            await writer.close()
        async with self.engine.begin() as conn:
            await append(
                conn,
                "process",
                [
                    {
                        "at": at + timedelta(seconds=i),
                        "kind": "submitted",
                        "application_id": f"app{i}",
                        "department": "land",
                        "actor": "k",
                        "detail": {"n": i},
                    }
                    for i in range(process)
                ],
            )

    async def count(self, table: Table) -> int:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(table))).scalar_one()

    def sql(self, *statements: str) -> None:
        """What a database administrator could do, the append-only guards dropped first."""
        engine = create_engine(self.url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg"))
        try:
            with engine.begin() as conn:
                for table in ("access_records", "process_records", "audit_archives"):
                    if engine.dialect.name == "sqlite":
                        conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_delete"))
                        conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_update"))
                    else:
                        conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}"))
                for statement in statements:
                    conn.execute(text(statement))
        finally:
            engine.dispose()


@pytest.fixture
async def platform(platform_url, tmp_path):
    made = Platform(tmp_path, platform_url)
    await ensure_current(made.engine)
    await made.add(access=5, process=4, at=OLD)
    await made.add(access=3, process=2, at=datetime.now(UTC))
    try:
        yield made
    finally:
        await made.engine.dispose()


def _faults(result) -> set[str]:
    return {line.split("]")[0][1:] for line in result.stderr.splitlines() if line.startswith("[")}


@pytest.mark.parametrize("platform_url", BACKENDS, indirect=True)
async def test_an_archive_round_trip(platform):
    archived = platform.archive()
    assert "access-000003.jsonl.gz" in archived.stdout and "process-000002.jsonl.gz" in archived.stdout
    assert sorted(p.name for p in platform.archive_dir.glob("*.gz")) == [
        "access-000001.jsonl.gz",
        "access-000002.jsonl.gz",
        "access-000003.jsonl.gz",
        "process-000001.jsonl.gz",
        "process-000002.jsonl.gz",
    ]
    assert await platform.count(access_records) == 3 and await platform.count(process_records) == 2
    verified = platform.verify()
    assert verified.returncode == 0, verified.stderr
    assert "3 个归档完好：5 条记录" in verified.stdout and "access 记录链完整：3 条" in verified.stdout
    plain = platform.govshare("audit", "verify")  # records are archived: the configured folder is checked too
    assert plain.returncode == 0, plain.stderr
    assert "3 个归档完好：5 条记录" in plain.stdout

    again = platform.archive()  # nothing more is old enough: nothing changes
    assert "本次共 0 个归档" in again.stdout and await platform.count(access_records) == 3

    await platform.add(access=2, process=0, at=datetime.now(UTC))  # the live chain goes on after its archives
    assert platform.verify().returncode == 0

    read = list(archives.iter_access_records(platform.settings, folder=platform.archive_dir))
    assert [r.fields["request_id"] for r in read] == [f"r{i}" for i in range(5)]
    assert [r.fields["seq"] for r in read] == [1, 2, 3, 4, 5] and read[0].fields["at"] == OLD
    assert read[0].fields["items_returned"] == ["name"]
    window = list(
        archives.iter_access_records(
            platform.settings, OLD + timedelta(seconds=1), OLD + timedelta(seconds=3), platform.archive_dir
        )
    )
    assert [r.fields["request_id"] for r in window] == ["r1", "r2"]
    processes = list(archives.iter_process_records(platform.settings, folder=platform.archive_dir))
    assert [r.fields["detail"] for r in processes] == [{"n": i} for i in range(4)]
    async with platform.engine.connect() as conn:  # archived and live together, in chain order
        together = [r async for r in archives.records(conn, platform.settings, "access", folder=platform.archive_dir)]
        recent = [
            r
            async for r in archives.records(
                conn,
                platform.settings,
                "access",
                since=datetime.now(UTC) - timedelta(days=1),
                folder=platform.archive_dir,
            )
        ]
    assert [r.fields["seq"] for r in together] == list(range(1, 11))
    assert [r.fields["seq"] for r in recent] == [6, 7, 8, 9, 10]


def _rewrite(path: Path, change) -> None:
    """Decompress, change the lines, compress again: a content edit that keeps gzip whole."""
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    path.write_bytes(gzip.compress(("\n".join(change(lines)) + "\n").encode()))


def _edit_record(lines: list[str]) -> list[str]:
    entry = json.loads(lines[1])
    entry["record"]["department"] = "police"
    return [lines[0], json.dumps(entry, ensure_ascii=False, separators=(",", ":")), *lines[2:]]


def _edit_header(lines: list[str]) -> list[str]:
    header = json.loads(lines[0])
    header["first_at"] = OLD.isoformat()  # hides it from readers asking for another period
    return [json.dumps(header, sort_keys=True, ensure_ascii=False, separators=(",", ":")), *lines[1:]]


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _swap(a: Path, b: Path) -> None:
    swap = a.with_name("swap")
    os.rename(a, swap)
    os.rename(b, a)
    os.rename(swap, b)


@pytest.mark.parametrize("platform_url", BACKENDS, indirect=True)
@pytest.mark.parametrize(
    "attack, found",  # found: the codes the attack may be reported by (one of them at least)
    [
        ("flip a byte", {"ARCHIVE_UNREADABLE", "ARCHIVE_CONTENT_CHANGED", "ARCHIVE_SUBSTITUTED"}),
        ("edit a record", {"ARCHIVE_CONTENT_CHANGED"}),
        ("edit the header", {"ARCHIVE_SIGNATURE_INVALID"}),
        ("delete an archive", {"ARCHIVE_MISSING"}),
        ("delete the last archive", {"ARCHIVE_MISSING"}),
        ("swap two archives", {"ARCHIVE_MISPLACED"}),
        ("substitute an archive", {"ARCHIVE_MISPLACED", "ARCHIVE_LINK_BROKEN"}),
        ("delete the first live row", {"ARCHIVE_LIVE_DISCONTINUOUS"}),
        ("delete the record of archives", {"ARCHIVE_NOT_RECORDED"}),
    ],
)
async def test_tampering_is_found(platform, attack, found):
    platform.archive()
    folder = platform.archive_dir
    first, second, third = (folder / archives.file_name("access", n) for n in (1, 2, 3))
    if attack == "flip a byte":
        _flip_byte(second)
    elif attack == "edit a record":
        _rewrite(second, _edit_record)
    elif attack == "edit the header":
        _rewrite(second, _edit_header)
    elif attack == "delete an archive":
        second.unlink()
    elif attack == "delete the last archive":
        third.unlink()
    elif attack == "swap two archives":
        _swap(first, second)
    elif attack == "substitute an archive":
        second.write_bytes(first.read_bytes())
    elif attack == "delete the first live row":
        platform.sql("DELETE FROM access_records WHERE seq = 6")
    else:
        platform.sql("DELETE FROM audit_archives WHERE chain = 'access'")
    verified = platform.verify()
    assert verified.returncode != 0
    assert found & _faults(verified), verified.stderr  # one of the codes the attack may show
    if attack == "delete the first live row":
        assert "access 记录链在第 6 条处断开：missing" in verified.stderr


@pytest.mark.parametrize("platform_url", BACKENDS, indirect=True)
async def test_records_deleted_under_a_forged_record_of_archives_are_found_by_a_plain_verify(platform):
    """Whoever may insert into audit_archives (and no more) can make the guard let a DELETE through: the archive that
    record names is not there, and `audit verify`, without any option, says so."""
    async with platform.engine.begin() as conn:  # the guards in place
        await conn.execute(
            text(
                "INSERT INTO audit_archives (chain, number, file, digest, first_seq, last_seq, last_hash, records,"
                " last_at, archived_at) SELECT 'access', 1, 'access-000001.jsonl.gz', hash, 1, seq, hash, seq, at, at"
                " FROM access_records WHERE seq = 7"
            )
        )
        await conn.execute(text("DELETE FROM access_records WHERE seq <= 7"))
    assert await platform.count(access_records) == 1
    verified = platform.govshare("audit", "verify")
    assert verified.returncode != 0 and "ARCHIVE_MISSING" in _faults(verified), verified.stdout


@pytest.mark.parametrize("platform_url", BACKENDS, indirect=True)
async def test_a_tampered_archive_is_never_read(platform):
    platform.archive()
    _rewrite(platform.archive_dir / archives.file_name("access", 2), _edit_record)
    reading = archives.iter_access_records(platform.settings, folder=platform.archive_dir)
    assert [next(reading).fields["seq"] for _ in range(2)] == [1, 2]  # the first archive holds
    with pytest.raises(archives.ArchiveError) as refused:
        next(reading)  # nothing of the second is yielded
    assert refused.value.code == "ARCHIVE_CONTENT_CHANGED"


@pytest.mark.parametrize("platform_url", BACKENDS, indirect=True)
async def test_records_are_removed_only_through_an_archive(platform):
    """The guard refuses a DELETE of a record no recorded archive covers, every UPDATE, and any change to the
    record of archives; the archive command's DELETE goes through."""
    refused = (
        "DELETE FROM access_records WHERE seq = 1",
        "DELETE FROM process_records",
        "UPDATE access_records SET department = 'police' WHERE seq = 7",
    )
    for statement in refused:
        with pytest.raises(Exception, match="append-only"):
            async with platform.engine.begin() as conn:
                await conn.execute(text(statement))
    platform.archive()
    assert await platform.count(access_records) == 3
    for statement in (
        "DELETE FROM access_records WHERE seq = 6",
        "UPDATE access_records SET department = 'police' WHERE seq = 7",
        "DELETE FROM audit_archives",
        "UPDATE audit_archives SET last_seq = 6",
    ):
        with pytest.raises(Exception, match="append-only"):
            async with platform.engine.begin() as conn:
                await conn.execute(text(statement))
    assert await platform.count(access_records) == 3 and await platform.count(audit_archives) == 5


@pytest.mark.parametrize("platform_url", BACKENDS, indirect=True)
async def test_an_interrupted_run_loses_nothing_and_is_resumed(platform, monkeypatch):
    cutoff = archives.retention_cutoff(platform.settings, None)
    folder = platform.archive_dir

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt  # the process killed after the archive was written, before its records went

    with monkeypatch.context() as patch:
        patch.setattr(archives, "_remove", stopped)
        with pytest.raises(KeyboardInterrupt):
            await archives.archive(platform.engine, platform.settings, folder, cutoff, max_records=2)
    assert (folder / "access-000001.jsonl.gz").exists() and await platform.count(access_records) == 8
    pending = platform.verify()
    assert pending.returncode == 0, pending.stderr
    assert "access-000001.jsonl.gz 已写入，但其记录尚未从在线表删除" in pending.stdout

    with monkeypatch.context() as patch:  # killed while linking the next archive in place: no file, nothing removed
        patch.setattr(archives.os, "link", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
        with pytest.raises(KeyboardInterrupt):
            await archives.archive(platform.engine, platform.settings, folder, cutoff, max_records=2)
    assert await platform.count(access_records) == 6  # the first archive's records went: it was written already
    assert not (folder / "access-000002.jsonl.gz").exists() and not list(folder.glob(".access*"))

    resumed = platform.archive()
    assert "access-000002.jsonl.gz" in resumed.stdout
    assert await platform.count(access_records) == 3 and await platform.count(process_records) == 2
    assert platform.verify().returncode == 0
    assert len(list(archives.iter_access_records(platform.settings, folder=folder))) == 5


@pytest.mark.parametrize("platform_url", BACKENDS, indirect=True)
async def test_a_pending_archive_that_differs_from_the_live_rows_removes_nothing(platform, monkeypatch):
    cutoff = archives.retention_cutoff(platform.settings, None)
    with monkeypatch.context() as patch:
        patch.setattr(archives, "_remove", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
        with pytest.raises(KeyboardInterrupt):
            await archives.archive(platform.engine, platform.settings, platform.archive_dir, cutoff, max_records=2)
    platform.sql("UPDATE access_records SET department = 'police' WHERE seq = 2")  # changed after it was archived
    with pytest.raises(archives.ArchiveError) as refused:
        await archives.archive(platform.engine, platform.settings, platform.archive_dir, cutoff, max_records=2)
    assert refused.value.code == "ARCHIVE_LIVE_MISMATCH"
    assert await platform.count(access_records) == 8 and await platform.count(audit_archives) == 0


@pytest.mark.parametrize("platform_url", BACKENDS, indirect=True)
async def test_side_rows_go_with_their_record(platform, monkeypatch):
    """A side table tied to the access records (as the data-subject index is) is archived in each record's entry
    and removed with it; its rows of live records stay guarded."""
    side = Table(
        "test_record_notes",
        MetaData(),
        Column("record_seq", Integer, primary_key=True),
        Column("note", String(20), primary_key=True),
    )
    async with platform.engine.begin() as conn:
        await conn.run_sync(side.metadata.create_all)
        for statement in table_guard(conn.dialect.name, side.name, ("access", "record_seq")):
            await conn.execute(text(statement))
        await conn.execute(side.insert(), [{"record_seq": s, "note": f"n{s}-{k}"} for s in (2, 6) for k in (1, 2)])
    monkeypatch.setitem(archives.SIDE_TABLES, "access", (archives.SideTable(side),))
    platform.archive()
    read = {
        r.fields["seq"]: r.side for r in archives.iter_access_records(platform.settings, folder=platform.archive_dir)
    }
    assert sorted(n["note"] for n in read[2]["test_record_notes"]) == ["n2-1", "n2-2"]
    assert read[1] == {"test_record_notes": []}
    async with platform.engine.connect() as conn:
        left = (await conn.execute(select(side.c.record_seq))).scalars().all()
        together = {
            r.fields["seq"]: r.side
            async for r in archives.records(conn, platform.settings, "access", folder=platform.archive_dir)
        }
    assert sorted(left) == [6, 6]
    assert [len(together[s]["test_record_notes"]) for s in (1, 2, 6, 7)] == [0, 2, 2, 0]
    with pytest.raises(Exception, match="append-only"):
        async with platform.engine.begin() as conn:
            await conn.execute(text("DELETE FROM test_record_notes WHERE record_seq = 6"))


async def test_a_retention_below_six_months_is_refused(tmp_path):
    with pytest.raises(ConfigError) as refused:
        load_settings(env={"GOVSHARE_AUDIT_RETENTION_DAYS": "90"}, var_dir=tmp_path)
    assert refused.value.code == "AUDIT_RETENTION_TOO_SHORT"
    said = govshare_in_process(tmp_path, "audit", "archive", env={"GOVSHARE_AUDIT_RETENTION_DAYS": "179"})
    assert said.returncode != 0 and "AUDIT_RETENTION_TOO_SHORT" in said.stdout + said.stderr
    assert load_settings(env={"GOVSHARE_AUDIT_RETENTION_DAYS": "180"}, var_dir=tmp_path).audit_retention_days == 180


async def test_before_cannot_reach_into_the_retention_period(tmp_path):
    settings = make_settings(tmp_path / "var")
    with pytest.raises(archives.ArchiveError) as refused:
        archives.retention_cutoff(settings, datetime.now(UTC) - timedelta(days=100))
    assert refused.value.code == "AUDIT_ARCHIVE_TOO_RECENT"
    said = govshare_in_process(tmp_path, "audit", "archive", "--before", (datetime.now(UTC).date()).isoformat())
    assert said.returncode != 0 and "AUDIT_ARCHIVE_TOO_RECENT" in said.stdout + said.stderr


@pytest.mark.parametrize("platform_url", ["sqlite"], indirect=True)
async def test_every_byte_of_an_archive_counts(platform):
    """Whichever byte of an archive is changed (its content, gzip's own header fields, its trailer), the folder
    no longer verifies."""
    platform.archive()
    path = platform.archive_dir / archives.file_name("access", 2)
    original = path.read_bytes()
    keys = archives.verification_keys(platform.settings)[0]
    async with platform.engine.connect() as conn:
        recorded = await archives.recorded(conn, "access")
    assert not archives.verify_folder(platform.archive_dir, "access", keys, recorded).faults
    unseen = []
    for offset in range(len(original)):
        changed = bytearray(original)
        changed[offset] ^= 0x20
        path.write_bytes(bytes(changed))
        if not archives.verify_folder(platform.archive_dir, "access", keys, recorded).faults:
            unseen.append(offset)
    assert unseen == []


@pytest.mark.parametrize("platform_url", BACKENDS, indirect=True)
async def test_the_revision_downgrades_while_nothing_is_archived(platform):
    """0010_archives goes back to the unconditional guard (SQLite by its batch-free trigger swap); with an archive
    recorded it refuses, since the live chains would then start nowhere an older release knows."""
    import migrations

    def downgrade(sync_conn) -> None:
        alembic_command.downgrade(migrations.config(sync_conn), "0009_subject_index")

    async with platform.engine.begin() as conn:
        await conn.run_sync(downgrade)
    async with platform.engine.connect() as conn:
        assert not await conn.run_sync(lambda sync: inspect(sync).has_table("audit_archives"))
    with pytest.raises(Exception, match="append-only"):
        async with platform.engine.begin() as conn:
            await conn.execute(text("DELETE FROM access_records WHERE seq = 1"))
    await migrations.upgrade(platform.engine)
    platform.archive()
    with pytest.raises(RuntimeError, match="holds archives"):
        async with platform.engine.begin() as conn:
            await conn.run_sync(downgrade)


@pytest.mark.parametrize("platform_url", BACKENDS, indirect=True)
async def test_the_data_subjects_leave_with_their_records_and_every_chain_still_verifies(platform_url, tmp_path):
    """The access records' data subjects (access_subjects, committed to by each record's subjects_digest) are
    archived in their record's entry and removed with it: verify passes across the archives and the live table, the
    subjects of live records stay, guarded, and the archived ones are read back with their records."""
    from audit.tables import access_subject_keys, access_subjects
    from tests.test_subjects import wait_for_index_head

    made = Platform(tmp_path, platform_url)
    await ensure_current(made.engine)

    def with_subjects(i: int, at: datetime):
        subjects = sorted([("idNumber", f"{i:064x}"), ("legalRepIdNumber", f"{i + 100:064x}")])
        return dataclasses.replace(access_record(i), at=at + timedelta(seconds=i), subjects=subjects)

    writer = AuditWriter(made.engine)
    writer.index_after = 1  # the subject index (access_subject_keys) brought up to date after each transaction
    try:
        await writer.write([with_subjects(i, OLD) for i in range(4)])
        await writer.write([with_subjects(i, datetime.now(UTC)) for i in range(4, 6)])
        await wait_for_index_head(made.engine, 6)
    finally:
        await writer.close()
    try:
        assert await made.count(access_subjects) == 12
        assert await made.count(access_subject_keys) == 6  # these hashes all begin with 16 zeros: one key a record
        made.archive()
        assert await made.count(access_records) == 2
        async with made.engine.connect() as conn:
            left = (await conn.execute(select(access_subjects.c.record_seq))).scalars().all()
            keyed = (await conn.execute(select(access_subject_keys.c.record_seq))).scalars().all()
        assert sorted(left) == [5, 5, 6, 6], "the live records keep their subjects, the archived ones take theirs"
        assert sorted(keyed) == [5, 6], "and their keys in the subject index"
        verified = made.verify()
        assert verified.returncode == 0, verified.stderr
        read = {r.fields["seq"]: r.side for r in archives.iter_access_records(made.settings, folder=made.archive_dir)}
        assert sorted(read) == [1, 2, 3, 4]
        assert sorted(s["subject_hash"] for s in read[3]["access_subjects"]) == [f"{2:064x}", f"{102:064x}"]
        with pytest.raises(Exception, match="append-only"):
            async with made.engine.begin() as conn:
                await conn.execute(text("DELETE FROM access_subjects WHERE record_seq = 5"))
        with pytest.raises(Exception, match="append-only"):
            async with made.engine.begin() as conn:
                await conn.execute(text("DELETE FROM access_subject_keys WHERE record_seq = 5"))
    finally:
        await made.engine.dispose()


@pytest.mark.parametrize("platform_url", BACKENDS, indirect=True)
async def test_usage_reports_count_the_archived_records_of_their_period(platform):
    """A provider's usage report over a period counts every record of it, those archives took out of the table
    included (read back from the signed archives): archiving changes where records lie, never a report's figures."""
    from govshare.clock import CHINA
    from oversight import usage

    when = usage.Period(
        (OLD - timedelta(days=1)).astimezone(CHINA).date(), datetime.now(UTC).astimezone(CHINA).date(), "month"
    )

    async def report(by: str, **settings) -> dict:
        async with platform.engine.connect() as conn:
            return await usage.figures(conn, ["market.enterprise"], when, by, **settings)

    before = {by: await report(by) for by in ("resource", "period", "department")}
    assert before["resource"][("market.enterprise",)].accesses == 8
    platform.archive()
    assert await platform.count(access_records) == 3
    for by, figures in before.items():
        assert await report(by, settings=platform.settings) == figures, by
    live_only = await report("resource")
    assert live_only[("market.enterprise",)].accesses == 3, "without the archives only the live records count"
    # Only the period asked: the archived records lie 400 days back, outside a report of the last month.
    recent = usage.Period(when.last - timedelta(days=30), when.last, "day")
    async with platform.engine.connect() as conn:
        last_month = await usage.figures(conn, None, recent, "resource", settings=platform.settings)
    assert last_month[("market.enterprise",)].accesses == 3


@pytest.mark.parametrize("platform_url", BACKENDS, indirect=True)
async def test_a_subject_lookup_pages_on_from_the_live_records_into_the_archived_ones(platform_url, tmp_path):
    """Who looked at my data, after archiving: the accesses to a subject come newest first from the live records,
    then from the archives, one cursor across both; without the archives only the live ones are there."""
    from resolvers import subjects
    from resolvers.data import decode_cursor
    from tests.test_subjects import wait_for_index_head

    made = Platform(tmp_path, platform_url)
    await ensure_current(made.engine)
    someone = "c" * 64

    def accessed(at: datetime, numbers: range):
        return [
            dataclasses.replace(access_record(i), at=at + timedelta(seconds=i), subjects=[("idNumber", someone)])
            for i in numbers
        ]

    # Records 1-5 in the subject index, 6 after its head: a page crosses the index's tail, the index and the archives.
    writer = AuditWriter(made.engine)
    writer.index_after = 1
    try:
        await writer.write(accessed(OLD, range(4)))
        await writer.write(accessed(datetime.now(UTC), range(4, 5)))
        await wait_for_index_head(made.engine, 5)
    finally:
        await writer.close()
    later = AuditWriter(made.engine)
    try:
        await later.write(accessed(datetime.now(UTC), range(5, 6)))
    finally:
        await later.close()
    try:
        made.archive()
        assert await made.count(access_records) == 2
        first = await subjects.read(made.engine, someone, 3, settings=made.settings)
        assert [a.seq for a in first.accesses] == [6, 5, 4] and first.has_next_page
        assert first.accesses[2].row.department == "land" and first.accesses[2].items == ("idNumber",)
        rest = await subjects.read(made.engine, someone, 3, decode_cursor(first.end_cursor), settings=made.settings)
        assert [a.seq for a in rest.accesses] == [3, 2, 1] and not rest.has_next_page
        assert [a.seq for a in (await subjects.read(made.engine, someone, 10)).accesses] == [6, 5]
        assert (await subjects.read(made.engine, "d" * 64, 10, settings=made.settings)).accesses == []
    finally:
        await made.engine.dispose()
