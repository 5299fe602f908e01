"""The versioned platform store: Alembic revisions from the baseline, the refusal of a database at another
revision, the adoption of a database made before migrations, and hash chains that survive a schema change.

``tests/fixtures/platform-0001.db`` was written by the code of the baseline revision (before migrations:
tests/fixtures/build_platform_0001.py), with records in every chain."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Text, create_engine, select, text

import migrations
from audit.chain import CHAINS, verify
from audit.records import AccessRecord, AuditWriter
from govshare.errors import GovshareError
from govshare.platformdb import make_engine, metadata
from server import create_app
from tests.conftest import TEST_DATABASE_PREFIX, make_settings, production, require_engine
from tests.test_cli import environment, govshare_command, govshare_in_process

FIXTURE = Path(__file__).parent / "fixtures" / "platform-0001.db"
BACKENDS = ["sqlite", "postgres"]
# What the fixture holds (tests/fixtures/build_platform_0001.py).
FIXTURE_COUNTS = {"access": 3, "process": 5, "policy": 2}


@pytest.fixture
def platform_url(request, tmp_path):
    """An empty platform database on the backend asked for (a PostgreSQL database of the test's own)."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'platform.db'}"
        return
    require_engine(make_settings(tmp_path), "postgres")
    name = f"{TEST_DATABASE_PREFIX}mig_{hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:10]}"
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


async def _engine(url: str):
    return make_engine(url)


def _schema_facts(sync_conn) -> dict:
    """What compare_metadata does not look at: the append-only triggers and the first rows."""
    if sync_conn.dialect.name == "sqlite":
        triggers = sorted(
            r[0] for r in sync_conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
        )
    else:
        triggers = sorted(r[0] for r in sync_conn.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")))
    return {
        "triggers": triggers,
        "heads": sorted(tuple(r) for r in sync_conn.execute(text("SELECT chain, seq, hash FROM chain_heads"))),
        "policy_version": [tuple(r) for r in sync_conn.execute(text("SELECT id, version FROM policy_version"))],
        "revision": [r[0] for r in sync_conn.execute(text("SELECT version_num FROM alembic_version"))],
    }


def _diff(sync_conn) -> list:
    return compare_metadata(MigrationContext.configure(sync_conn), metadata)


@pytest.mark.parametrize("platform_url", BACKENDS, indirect=True)
async def test_the_schema_made_from_the_metadata_is_the_migrated_one(platform_url, tmp_path):
    """Creating an empty database at head directly (what the tests and the demo do hundreds of times) gives
    exactly what the revisions from the baseline up give: no difference Alembic can see, the same triggers,
    the same first rows."""
    migrated = await _engine(platform_url)
    try:
        await migrations.upgrade(migrated, migrations.BASELINE)  # revision by revision from the bottom
        steps = []
        await migrations.upgrade(migrated, say=lambda code, params: steps.append((code, params["target"])))
        assert steps == [
            ("DB_UPGRADE_STEP", "0002_chain_encoding"),
            ("DB_UPGRADE_STEP", "0003_query_indexes"),
            ("DB_UPGRADE_STEP", "0004_trusted_documents"),
            ("DB_UPGRADE_STEP", "0005_catalog_workflow"),
            ("DB_UPGRADE_STEP", "0006_freshness"),
            ("DB_UPGRADE_STEP", "0007_data_errors"),
            ("DB_UPGRADE_STEP", "0008_staff_department"),
            ("DB_UPGRADE_STEP", "0009_subject_index"),
            ("DB_UPGRADE_STEP", "0010_archives"),
            ("DB_UPGRADE_STEP", "0011_feedback"),
            ("DB_UPGRADE_STEP", "0012_usage_indexes"),
            ("DB_UPGRADE_STEP", "0013_catalog_changes"),
            ("DB_UPGRADE_STEP", "0014_subject_prefix"),
        ]
        async with migrated.connect() as conn:
            assert await conn.run_sync(_diff) == []
            from_revisions = await conn.run_sync(_schema_facts)
    finally:
        await migrated.dispose()
    direct_url = f"sqlite+aiosqlite:///{tmp_path / 'direct.db'}" if platform_url.startswith("sqlite") else platform_url
    if not platform_url.startswith("sqlite"):  # the same database, emptied
        engine = create_engine(platform_url.replace("+asyncpg", "+psycopg"))
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    direct = await _engine(direct_url)
    try:
        await migrations.ensure_current(direct)
        async with direct.connect() as conn:
            assert await conn.run_sync(_diff) == []
            assert await conn.run_sync(_schema_facts) == from_revisions
    finally:
        await direct.dispose()
    assert from_revisions["revision"] == [migrations.head()]
    assert len(from_revisions["triggers"]) == (12 if platform_url.startswith("sqlite") else 6)


def _dump(path: Path) -> tuple[list[str], bytes]:
    """The database's content and every byte of it and its write-ahead log (the -shm file is SQLite's shared index
    of the log, made by any reader)."""
    written = b"".join(
        path.with_name(path.name + suffix).read_bytes()
        for suffix in ("", "-wal")
        if path.with_name(path.name + suffix).exists()
    )
    with contextlib.closing(sqlite3.connect(path)) as conn:
        lines = list(conn.iterdump())
    return lines, written


def _at_revision(path: Path, revision: str | None) -> None:
    """A database of the demo's shape at ``revision`` (None: tables without alembic_version, as create_all made)."""
    shutil.copy(FIXTURE, path)
    if revision is None:
        return
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES (?)", (revision,))


@pytest.mark.parametrize(
    "revision, code, found",
    [
        (None, "DB_UNVERSIONED", None),
        ("0001_baseline", "DB_REVISION_MISMATCH", "0001_baseline"),
        ("9999_from_a_newer_govshare", "DB_REVISION_UNKNOWN", "9999_from_a_newer_govshare"),
    ],
)
def test_a_database_at_another_revision_is_refused_and_never_written(tmp_path, revision, code, found):
    var = tmp_path / "var"
    var.mkdir()
    path = var / "platform.db"
    _at_revision(path, revision)
    before = _dump(path)
    (var / "pseudonym.key").write_bytes(bytes(range(32)))
    (var / "subject.key").write_bytes(bytes(range(32, 64)))
    settings = make_settings(var)
    for mode in (settings, production(settings)):
        refused = asyncio.run(_start_refused(mode))
        assert refused.value.code == code
        assert refused.value.params["expected"] == migrations.head()
        assert refused.value.params.get("found") == found
    told = str(refused.value)
    assert migrations.head() in told and (found or "") in told
    for command in (["key", "list"], ["audit", "verify"], ["grant", "list"]):
        run = govshare_in_process(tmp_path, *command)
        assert run.returncode == 1 and f"[{code}]" in run.stderr and migrations.head() in run.stderr, run.stderr
        if code != "DB_REVISION_UNKNOWN":
            assert "govshare db upgrade" in run.stderr
    serve = subprocess.run(
        [govshare_command(), "serve", "--port", "0"],
        cwd=tmp_path,
        env=environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert serve.returncode == 1 and f"[{code}]" in serve.stderr and "Uvicorn running" not in serve.stderr
    english = govshare_in_process(tmp_path, "key", "list", language="en")
    assert "nothing was written to the database" in english.stderr
    assert _dump(path) == before  # not a byte written, not even the write-ahead log


async def _start_refused(settings):
    app = create_app(settings)
    try:
        with pytest.raises(GovshareError) as refused:
            await app.state.runtime.start()
    finally:
        await app.state.runtime.stop()
    return refused


async def test_an_empty_database_is_made_at_head_outside_production_only(tmp_path):
    settings = make_settings(tmp_path / "var")
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "pseudonym.key").write_bytes(bytes(range(32)))
    (tmp_path / "var" / "subject.key").write_bytes(bytes(range(32, 64)))
    refused = await _start_refused(production(settings))
    assert not (tmp_path / "var" / "platform.db").exists() or sqlite3.connect(tmp_path / "var" / "platform.db").execute(
        "SELECT COUNT(*) FROM sqlite_master"
    ).fetchone() == (0,)
    assert refused.value.code == "DB_NOT_CREATED" and refused.value.params["command"] == "govshare db upgrade"
    app = create_app(settings)
    await app.state.runtime.start()
    await app.state.runtime.stop()
    state = await migrations.status(app.state.runtime.engine)
    assert state.at_head


async def _verify_all(engine) -> dict[str, int]:
    counts = {}
    async with engine.connect() as conn:
        for chain in CHAINS:
            counts[chain], broken = await verify(conn, chain)
            assert broken is None, (chain, broken)
    return counts


async def _tamper_first_access_record(engine) -> None:
    async with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            await conn.execute(text("DROP TRIGGER access_records_no_update"))
        else:
            await conn.execute(text("DROP TRIGGER access_records_append_only ON access_records"))
        await conn.execute(text("UPDATE access_records SET department = 'police' WHERE seq = 1"))


async def _write_access_record(engine, policy_version: int) -> None:
    writer = AuditWriter(engine)
    try:
        await writer.write(
            [
                AccessRecord(
                    at=datetime.now(UTC),
                    request_id="r-new",
                    trace_id="0" * 32,
                    department="land",
                    application="land-demo",
                    key_id="k",
                    operator=None,
                    purpose="p",
                    resource="market.enterprise",
                    operation="list",
                    items_returned=["name"],
                    row_count=1,
                    policy_version=policy_version,
                )
            ]
        )
    finally:
        await writer.close()


def test_the_baseline_database_written_by_the_old_code_is_adopted_upgraded_and_verifies(tmp_path):
    var = tmp_path / "var"
    var.mkdir()
    shutil.copy(FIXTURE, var / "platform.db")
    run = govshare_in_process(tmp_path, "db", "upgrade")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "数据表与基线版本一致，已标记为 0001_baseline。",
        "已升级：0001_baseline → 0002_chain_encoding（Chained records carry their encoding version; access records "
        "name the policy version in force.）",
        "已升级：0002_chain_encoding → 0003_query_indexes（Indexes for what providers and reviewers ask.）",
        "已升级：0003_query_indexes → 0004_trusted_documents（Trusted documents: the GraphQL documents each application "
        "registered, and keys restricted to them.）",
        "已升级：0004_trusted_documents → 0005_catalog_workflow（The catalog kept by its departments: their submissions, "
        "and who, why and whose entries on every catalog version.）",
        "已升级：0005_catalog_workflow → 0006_freshness（Freshness: the last change of each resource's source, as the "
        "platform last read it (Art 16, 20).）",
        "已升级：0006_freshness → 0007_data_errors（Data-error reports (校核纠错): the reports consumers file "
        "and providers answer.）",
        "已升级：0007_data_errors → 0008_staff_department（Staff accounts may belong to a department: its catalog "
        "staff (catalog_editor) in the console.）",
        "已升级：0008_staff_department → 0009_subject_index（The data-subject index: which data subjects each access "
        'record\'s answer was about (README "Who looked at my data").）',
        "已升级：0009_subject_index → 0010_archives（Audit archives: records older than the retention period may "
        "leave the live tables for signed archive files.）",
        "已升级：0010_archives → 0011_feedback（Consumers' feedback on the effect of shared data (Art 24).）",
        "已升级：0011_feedback → 0012_usage_indexes（An index for the usage reports over every resource (Art 24: "
        "the coordinating authority's and auditors' view).）",
        "已升级：0012_usage_indexes → 0013_catalog_changes（Each catalog version records the entries it changed "
        "from the version before: a process follows the catalog by them.）",
        "已升级：0013_catalog_changes → 0014_subject_prefix（The subject index by a 64-bit prefix of the subject hash, "
        "derived off the access records' transaction.）",
        f"平台数据库的结构版本：{migrations.head()}（最新）",
    ]
    assert (
        govshare_in_process(tmp_path, "db", "current").stdout.strip()
        == f"平台数据库的结构版本：{migrations.head()}（最新）"
    )
    verified = govshare_in_process(tmp_path, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    asyncio.run(_written_after_the_upgrade(var / "platform.db"))


async def _written_after_the_upgrade(path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        assert await _verify_all(engine) == FIXTURE_COUNTS
        async with engine.connect() as conn:
            old = (await conn.execute(text("SELECT encoding, policy_version FROM access_records"))).all()
        assert set(old) == {(1, None)}
        # Records written now are encoding 3 and name the policy version; the old ones still verify beside them.
        await _write_access_record(engine, policy_version=7)
        assert await _verify_all(engine) == FIXTURE_COUNTS | {"access": 4}
        async with engine.connect() as conn:
            new = (await conn.execute(text("SELECT encoding, policy_version FROM access_records WHERE seq = 4"))).one()
        assert tuple(new) == (3, 7)
        await _tamper_first_access_record(engine)
        async with engine.connect() as conn:
            _, broken = await verify(conn, "access")
        assert (broken.seq, broken.problem) == (1, "changed")
    finally:
        await engine.dispose()


def test_a_database_made_a_few_commits_ago_is_not_adopted(tmp_path):
    """Tables that are not exactly the baseline's (here: grants without application_id) are refused, untouched."""
    var = tmp_path / "var"
    var.mkdir()
    path = var / "platform.db"
    shutil.copy(FIXTURE, path)
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("ALTER TABLE grants DROP COLUMN application_id")
    before = _dump(path)
    run = govshare_in_process(tmp_path, "db", "upgrade")
    assert run.returncode == 1 and "[DB_SCHEMA_UNKNOWN]" in run.stderr and "-grants.application_id" in run.stderr
    assert _dump(path) == before


async def _copy_fixture_records(engine) -> None:
    """The fixture's chained rows and heads, as the baseline code wrote them, into a database at the baseline."""
    baseline = migrations.scripts().get_revision(migrations.BASELINE).module.metadata
    source = create_engine(f"sqlite:///{FIXTURE}")
    try:
        with source.connect() as conn:
            rows = {
                name: [dict(r) for r in conn.execute(select(baseline.tables[name])).mappings()]
                for name in ("access_records", "process_records", "policy_versions", "chain_heads")
            }
    finally:
        source.dispose()
    for table in rows.values():
        for row in table:
            for key, value in row.items():
                if isinstance(value, datetime):  # SQLite kept the UTC digits without their offset
                    row[key] = value.replace(tzinfo=UTC)
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM chain_heads"))
        for name, table_rows in rows.items():
            await conn.execute(baseline.tables[name].insert(), table_rows)
            if engine.dialect.name == "postgresql" and name != "chain_heads":  # ids given: move the sequences on
                await conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), MAX(id)) FROM {name}"))


@pytest.mark.parametrize("platform_url", BACKENDS, indirect=True)
async def test_a_database_at_the_baseline_with_records_in_every_chain_upgrades_and_verifies(platform_url):
    engine = await _engine(platform_url)
    try:
        await migrations.upgrade(engine, migrations.BASELINE)
        await _copy_fixture_records(engine)
        with pytest.raises(GovshareError) as refused:
            await migrations.ensure_current(engine)
        assert refused.value.code == "DB_REVISION_MISMATCH"
        await migrations.upgrade(engine)
        await migrations.ensure_current(engine)
        assert await _verify_all(engine) == FIXTURE_COUNTS
        # The append-only guard survived the columns added to the guarded tables.
        for table in ("access_records", "process_records", "policy_versions"):
            with pytest.raises(Exception, match="append-only"):
                async with engine.begin() as conn:
                    await conn.execute(text(f"UPDATE {table} SET encoding = 1"))
        await _write_access_record(engine, policy_version=3)
        assert await _verify_all(engine) == FIXTURE_COUNTS | {"access": 4}
        await _tamper_first_access_record(engine)
        async with engine.connect() as conn:
            _, broken = await verify(conn, "access")
        assert (broken.seq, broken.problem) == (1, "changed")
    finally:
        await engine.dispose()


@pytest.mark.parametrize("platform_url", BACKENDS, indirect=True)
async def test_a_column_added_later_to_a_chained_table_keeps_old_records_verifying(platform_url):
    """A later migration adds a column to a chained table holding records: they verify as written; a value put
    into the new column of an old record is a change."""
    engine = await _engine(platform_url)
    try:
        await migrations.ensure_current(engine)
        await _write_access_record(engine, policy_version=1)
        await _write_access_record(engine, policy_version=2)

        def add_column(sync_conn):
            Operations(MigrationContext.configure(sync_conn)).add_column("access_records", Column("note", Text))

        async with engine.begin() as conn:
            await conn.run_sync(add_column)
        assert (await _verify_all(engine))["access"] == 2
        async with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                await conn.execute(text("DROP TRIGGER access_records_no_update"))
            else:
                await conn.execute(text("DROP TRIGGER access_records_append_only ON access_records"))
            await conn.execute(text("UPDATE access_records SET note = 'slipped in' WHERE seq = 2"))
        async with engine.connect() as conn:
            _, broken = await verify(conn, "access")
        assert (broken.seq, broken.problem) == (2, "changed")
    finally:
        await engine.dispose()


@pytest.mark.parametrize("platform_url", ["postgres"], indirect=True)
async def test_processes_starting_at_once_on_postgresql_create_the_schema_once(platform_url):
    engines = [make_engine(platform_url) for _ in range(3)]
    try:
        await asyncio.gather(*(migrations.ensure_current(e) for e in engines))
        async with engines[0].connect() as conn:
            facts = await conn.run_sync(_schema_facts)
        assert facts["revision"] == [migrations.head()] and len(facts["heads"]) == 3
        assert facts["policy_version"] == [(1, 0)]
    finally:
        for engine in engines:
            await engine.dispose()


async def test_an_access_record_names_the_policy_version_healthz_shows(own_api):
    await own_api.query("{ enterpriseList(first: 1) { items { name } } }", "land", "land.property-registration")
    health = (await own_api.client.get("/healthz")).json()
    async with own_api.app.state.runtime.engine.connect() as conn:
        recorded = (
            await conn.execute(text("SELECT policy_version, encoding FROM access_records ORDER BY seq DESC LIMIT 1"))
        ).one()
    assert health["policy_version"] > 0 and tuple(recorded) == (health["policy_version"], 3)


def test_db_history_lists_the_revisions_from_the_baseline(tmp_path):
    run = govshare_in_process(tmp_path, "db", "history")
    assert run.returncode == 0
    lines = run.stdout.splitlines()
    assert lines[0].startswith("base -> 0001_baseline ") and lines[-1].startswith(
        f"0013_catalog_changes -> {migrations.head()} (head)"
    )


@pytest.mark.parametrize("platform_url", BACKENDS, indirect=True)
async def test_revision_0004_leaves_every_key_unrestricted_and_one_registration_in_force(platform_url):
    """Keys made before trusted documents existed answer as before (not restricted); the new table holds one
    registration in force per application and document, and takes the same document again once it is withdrawn."""
    from sqlalchemy.exc import IntegrityError

    from govshare.keys import authenticate, hash_key
    from policies.tables import trusted_documents

    engine = await _engine(platform_url)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    try:
        await migrations.upgrade(engine, "0003_query_indexes")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO api_keys (id, key_hash, department, application, roles, created_at) "
                    "VALUES ('k1', :hash, 'market', 'app', '[\"applicant\"]', :at)"
                ),
                {"hash": hash_key("gs_k1_secret"), "at": at},
            )
        await migrations.upgrade(engine)
        async with engine.connect() as conn:
            caller = await authenticate(conn, "Bearer gs_k1_secret")
        assert caller.key_id == "k1" and caller.trusted_documents_only is False
        row = dict(
            department="market",
            application="app",
            sha256="a" * 64,
            name="q.graphql",
            text="{ caller { department } }",
            operations=[""],
            registered_at=at,
            registered_by="x",
        )
        async with engine.begin() as conn:
            await conn.execute(trusted_documents.insert().values(**row))
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(trusted_documents.insert().values(**row))
        async with engine.begin() as conn:
            await conn.execute(trusted_documents.update().values(withdrawn_at=at, withdrawn_by="x"))
            await conn.execute(trusted_documents.insert().values(**row))  # registered again after withdrawal
            assert len((await conn.execute(select(trusted_documents.c.id))).all()) == 2
    finally:
        await engine.dispose()


@pytest.mark.parametrize("platform_url", BACKENDS, indirect=True)
async def test_revision_0005_keeps_the_catalog_versions_loaded_before_as_whole_loads(platform_url):
    """A catalog version loaded before the catalog workflow reads as a whole load (no reason, every department),
    stays in force, and the next version (a department's entries, with a reason) diffs against it field by field."""
    from catalog import store
    from catalog.loader import load_catalog

    demo = load_catalog(Path(__file__).resolve().parent.parent / "catalog" / "demo")
    engine = await _engine(platform_url)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    try:
        await migrations.upgrade(engine, "0004_trusted_documents")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO catalog_versions (loaded_at, loaded_by, source, digest, document) "
                    "VALUES (:at, 'cli', 'catalog/demo', :digest, :document)"
                ),
                {"at": at, "digest": store.digest(demo), "document": json.dumps(demo.to_document())},
            )
        await migrations.upgrade(engine)
        async with engine.begin() as conn:
            in_force = await store.current(conn)
            assert in_force is not None and in_force.to_document() == demo.to_document()
            (old,) = await store.versions(conn)
            assert (old.version, old.change, old.reason, old.department) == (1, "load", "", "")
            renamed = {
                **demo.resources,
                "land.real-estate": dataclasses.replace(demo.resources["land.real-estate"], name="不动产"),
            }
            version = await store.publish(
                conn,
                dataclasses.replace(demo, resources=renamed),
                source="t",
                loaded_by="t",
                change="publish",
                reason="更名",
                department="land",
            )
            changes = store.diff(await store.document(conn, 1), await store.document(conn, version))
        assert [(c.entry, c.field, c.before, c.after) for c in changes] == [
            ("resource:land.real-estate", "name", "不动产登记信息", "不动产")
        ]
    finally:
        await engine.dispose()


@pytest.mark.parametrize("platform_url", BACKENDS, indirect=True)
async def test_revision_0008_keeps_the_accounts_made_before_as_the_coordinators_office(platform_url):
    """An account made before staff had departments has none after the upgrade: the coordinating authority's office,
    every console page as before; a department's catalog staff is an account made with one."""
    from admin import accounts
    from govshare.config import Settings

    engine = await _engine(platform_url)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    try:
        await migrations.upgrade(engine, "0007_data_errors")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO staff_accounts (username, display_name, password_hash, failed_attempts, created_at) "
                    "VALUES ('old.hand', 'Old', 'x', 0, :at)"
                ),
                {"at": at},
            )
        await migrations.upgrade(engine)
        async with engine.begin() as conn:
            await accounts.create_account(conn, Settings(), "land.clerk", "a long enough password", department="land")
            rows = {r.username: r.department for r in await accounts.list_accounts(conn)}
        assert rows == {"old.hand": None, "land.clerk": "land"}
    finally:
        await engine.dispose()


@pytest.mark.parametrize("platform_url", BACKENDS, indirect=True)
async def test_revision_0014_indexes_the_subjects_written_before_by_their_prefix(platform_url):
    """The subject rows written before the revision are in the new index, up to the chain's head, and are found by
    it; the records verify as before."""
    from audit.tables import access_subject_index, access_subject_keys
    from govshare.subjects import index_key
    from resolvers import subjects
    from tests.conftest import access_record

    engine = await _engine(platform_url)
    someone, other = "12" * 32, "34" * 32
    try:
        await migrations.upgrade(engine, "0013_catalog_changes")
        writer = AuditWriter(engine)  # writes the records and their subject rows as before (0013 has no new index)
        try:
            for i, named in enumerate([[someone], [], [someone, other]]):
                subjects_of = sorted(("idNumber" if n == someone else "legalRepIdNumber", n) for n in named)
                await writer.write([dataclasses.replace(access_record(i), subjects=subjects_of)])
        finally:
            await writer.close()
        await migrations.upgrade(engine)
        async with engine.connect() as conn:
            assert (await conn.execute(select(access_subject_index.c.seq))).scalar_one() == 3
            keys = set((await conn.execute(select(access_subject_keys))).all())
            assert await verify(conn, "access") == (3, None)
        assert keys == {(index_key(someone), 1), (index_key(someone), 3), (index_key(other), 3)}
        assert [a.seq for a in (await subjects.read(engine, someone, 10)).accesses] == [3, 1]
    finally:
        await engine.dispose()


@pytest.mark.parametrize("platform_url", BACKENDS, indirect=True)
async def test_moments_go_in_aware_and_come_back_aware_utc_on_every_platform_engine(platform_url):
    from govshare.clock import CHINA
    from govshare.keys import api_keys

    engine = await _engine(platform_url)
    try:
        await migrations.ensure_current(engine)
        in_china = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=CHINA)
        async with engine.begin() as conn:
            await conn.execute(
                api_keys.insert().values(
                    id="k1", key_hash="h1", department="land", application="a", roles=[], created_at=in_china
                )
            )
            back = (await conn.execute(select(api_keys.c.created_at))).scalar()
        assert back == in_china and back.utcoffset().total_seconds() == 0 and back.hour == 0
        with pytest.raises(Exception, match="naive datetime"):
            async with engine.begin() as conn:
                await conn.execute(
                    api_keys.insert().values(
                        id="k2",
                        key_hash="h2",
                        department="land",
                        application="a",
                        roles=[],
                        created_at=datetime(2026, 3, 1, 8, 30),  # noqa: DTZ001 - the naive time it must refuse
                    )
                )
    finally:
        await engine.dispose()


async def test_verify_streams_in_batches_and_checks_the_checkpointed_heads(tmp_path, monkeypatch):
    import audit.chain

    monkeypatch.setattr(audit.chain, "VERIFY_BATCH", 2)  # several fetches for one chain
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'platform.db'}")
    try:
        await migrations.ensure_current(engine)
        for n in range(7):
            await _write_access_record(engine, policy_version=n)
        async with engine.connect() as conn:
            fifth = (await conn.execute(text("SELECT hash FROM access_records WHERE seq = 5"))).scalar()
            assert await verify(conn, "access", [{"chain": "access", "seq": 5, "hash": fifth}]) == (7, None)
            _, wrong = await verify(conn, "access", [{"chain": "access", "seq": 5, "hash": "f" * 64}])
            _, beyond = await verify(conn, "access", [{"chain": "access", "seq": 9, "hash": fifth}])
        assert (wrong.seq, wrong.problem) == (5, "changed") and (beyond.seq, beyond.problem) == (8, "truncated")
    finally:
        await engine.dispose()
