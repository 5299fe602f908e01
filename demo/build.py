"""Builds the demo world into var/: department databases, the demo catalog in force, keys, grants, an allow rule
and a restriction (deny rule) of the policy document.

Idempotent: what is already there is kept; ``force`` starts again from nothing. The grants are chosen
so that every decision can be seen: allowed, wrong purpose, expired, out of row scope, masked item,
legal basis, related departments only, a restricted department, a staff rule (the console's first page).
"""

from __future__ import annotations

import json
import secrets
import shutil
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Column, DateTime, MetaData, Table, create_engine, text
from sqlalchemy.engine import make_url

import migrations
from admin import accounts
from applications.process import grant_directly
from catalog import freshness
from catalog import store as catalog_store
from catalog.loader import load_catalog
from catalog.model import Catalog
from connectors.urls import sync_url
from demo.world import build_sources
from govshare.clock import CHINA
from govshare.config import Settings
from govshare.errors import GovshareError
from govshare.keys import create_key, platform_secret
from govshare.platformdb import make_engine
from policies import documents

BUILT_BY = "govshare demo"
COORDINATOR = "bigdata"  # 临沂市大数据局, the coordinating authority (共享主管部门)


def day(text: str) -> datetime:
    """The start of a calendar day in China."""
    return datetime.fromisoformat(text).replace(tzinfo=CHINA)


# (consumer, resource, items, purposes, from, until (exclusive), row scope, masks, legal basis)
DEMO_GRANTS = [
    # allowed: the business-licence system checks an applicant's household registration
    (
        "market",
        "police.person",
        ["idNumber", "name", "gender", "birthDate", "countyCode", "address"],
        ["market.licence-review"],
        "2026-01-01",
        "2031-01-01",
        {},
        {},
        None,
    ),
    # row scope and masking: social insurance enrolment in 罗庄区 only, ID numbers masked; not the birth date,
    # which the mask hides (characters 7-14): granting it would undo the mask (GRANT_MASK_UNDONE)
    (
        "hrss",
        "police.person",
        ["idNumber", "name", "countyCode", "address"],
        ["hrss.insurance-enrolment"],
        "2026-01-01",
        "2031-01-01",
        {"countyCode": ["371311"]},
        {"idNumber": "id_number"},
        None,
    ),
    # expired: marriage registration's grant ended with 2025
    (
        "civil",
        "police.person",
        ["idNumber", "name", "address"],
        ["civil.marriage-registration"],
        "2024-01-01",
        "2026-01-01",
        {},
        {},
        None,
    ),
    # allowed: licence review checks the applicant's social insurance
    (
        "market",
        "hrss.social-insurance",
        ["idNumber", "name", "employerCreditCode", "employerName", "insuranceStatus", "lastPaidMonth"],
        ["market.licence-review"],
        "2026-01-01",
        "2031-01-01",
        {},
        {},
        None,
    ),
    # legal basis: a not-shared resource opened to the police by law (Art 5 last paragraph)
    (
        "police",
        "civil.subsidy",
        ["idNumber", "name", "subsidyType", "monthlyAmount", "countyCode"],
        ["police.case-investigation"],
        "2026-01-01",
        "2031-01-01",
        {},
        {},
        "《中华人民共和国刑事诉讼法》第五十四条：人民法院、人民检察院和公安机关有权向有关单位和个人收集、调取证据。",
    ),
]
# An allow rule of the policy document (what security staff write in the console, /console/rules), beside the
# coordinator's direct grants above: subsistence-allowance review reads the household's size
# (rule, items, purposes, from, until (exclusive), note)
DEMO_RULE = (
    "civil",
    "police.household",
    ["householdId", "countyCode", "householdType", "memberCount"],
    ["civil.subsistence-allowance"],
    "2026-01-01",
    "2031-01-01",
    "最低生活保障审核核对家庭户人数",
)
DEMO_STAFF = "security"
DEMO_RESTRICTION = (
    "civil",
    "market.enterprise",
    "未按《资源目录》公布的更新时限更新婚姻登记数据（第二十条），暂停使用企业登记信息。",
)


# Freshness (catalog/freshness.py): every demo source keeps a one-row marker table its exchange job stamps, a column
# per table it loads (the catalog's ``freshness = { marker = "exchange_status.<table>_changed_at" }``). Each is
# stamped with the build's time, except the lagging department's: its marriage registrations last changed
# DEMO_LAGGING_DAYS days before the build, which its daily cycle makes overdue (the one overdue resource, the reason
# for the restriction above).
MARKER_TABLE = "exchange_status"
DEMO_LAGGING = "civil.marriage"
DEMO_LAGGING_DAYS = 3

ENGINES = ("sqlite", "postgres", "mariadb")


def source_url(settings: Settings, engine: str, department: str, catalog_source: str, prefix: str) -> str:
    """Where a department's demo database lives on ``engine`` (sqlite: as the catalog file says)."""
    if engine == "sqlite":
        return catalog_source
    server = make_url(settings.demo_postgres_url if engine == "postgres" else settings.demo_mariadb_url)
    return server.set(database=f"{prefix}{department}").render_as_string(hide_password=False)


def stamp_changes(urls: dict[str, str], catalog: Catalog, built_at: datetime) -> None:
    """Write each source's marker table: the last change of every table, as a naive China time (as the departments'
    systems write it)."""
    local = built_at.astimezone(CHINA).replace(tzinfo=None, microsecond=0)
    for code, url in urls.items():
        resources = [r for r in catalog.resources.values() if r.provider == code]
        if not resources:
            continue
        marker_metadata = MetaData()
        marker = Table(
            MARKER_TABLE,
            marker_metadata,
            *(Column(f"{r.table}_changed_at", DateTime) for r in resources),
        )
        row = {
            f"{r.table}_changed_at": local - timedelta(days=DEMO_LAGGING_DAYS if r.code == DEMO_LAGGING else 0)
            for r in resources
        }
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                marker_metadata.drop_all(conn)
                marker_metadata.create_all(conn)
                conn.execute(marker.insert().values(**row))
        finally:
            engine.dispose()


def ensure_database(url: str) -> None:
    """Create the database a PostgreSQL or MariaDB source URL names, if it does not exist."""
    parsed = make_url(sync_url(url))
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return
    name = parsed.database
    admin = create_engine(
        parsed.set(database="postgres" if backend == "postgresql" else ""), isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as conn:
            if backend == "postgresql":
                if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
            else:
                conn.execute(text(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
    finally:
        admin.dispose()


@dataclass
class DemoWorld:
    keys: dict[str, str]
    showcase: dict[str, str]
    built: bool  # False when everything was already there


def _paths(settings: Settings) -> tuple[Path, Path, Path]:
    var = settings.var_dir
    return var / "sources", var / "demo-keys.json", var / "demo-showcase.json"


async def build_demo(
    settings: Settings,
    *,
    force: bool = False,
    engine: str = "sqlite",
    database_prefix: str = "govshare_",
    engines: dict[str, str] | None = None,
    persons: int = 3000,
    enterprises: int = 1000,
    say=lambda code, params: None,
) -> DemoWorld:
    """Build the demo world; ``engine`` puts every department's database on SQLite, PostgreSQL or MariaDB,
    ``engines`` overrides it per department (``{"police": "postgres"}``). The platform database is upgraded
    to the code's schema revision whether or not the world was there (``say(code, params)`` is told what)."""
    if settings.production:  # demo keys (in a file), grants and a catalog must never reach a platform's database
        raise GovshareError("DEMO_IN_PRODUCTION", database=make_url(settings.platform_url).render_as_string())
    engines = engines or {}
    for name in [engine, *engines.values()]:
        if name not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {name!r}")
    sources_dir, keys_path, showcase_path = _paths(settings)
    if force:
        shutil.rmtree(sources_dir, ignore_errors=True)
        keys_path.unlink(missing_ok=True)
        showcase_path.unlink(missing_ok=True)
        platform_db = settings.var_dir / "platform.db"
        if settings.platform_url.startswith("sqlite") and platform_db.exists():
            for suffix in ("", "-wal", "-shm"):
                Path(f"{platform_db}{suffix}").unlink(missing_ok=True)
            checkpoints = Path(settings.expand(settings.audit_checkpoint_file))
            if checkpoints.resolve().is_relative_to(settings.var_dir.resolve()):
                checkpoints.unlink(missing_ok=True)  # the heads of the chains just deleted
    platform_secret(Path(settings.expand(settings.pseudonym_secret_file)))  # the demo's, made where missing
    platform_secret(Path(settings.expand(settings.subject_key_file)), name="subject key")  # likewise
    if keys_path.exists() and showcase_path.exists():
        platform = make_engine(settings.platform_url)
        try:
            await migrations.upgrade(platform, say=say)
        finally:
            await platform.dispose()
        return DemoWorld(json.loads(keys_path.read_text()), json.loads(showcase_path.read_text()), built=False)

    catalog = load_catalog(settings.catalog_dir)
    unknown = set(engines) - set(catalog.departments)
    if unknown:
        raise ValueError(f"no department {', '.join(sorted(unknown))} in the catalog")
    departments = {
        code: replace(d, source=source_url(settings, engines.get(code, engine), code, d.source, database_prefix))
        if d.source
        else d
        for code, d in catalog.departments.items()
    }
    catalog = Catalog(departments, catalog.purposes, catalog.resources)
    urls = {code: sync_url(settings.expand(d.source)) for code, d in departments.items() if d.source}
    for url in urls.values():
        ensure_database(url)
    summary = build_sources(urls, persons=persons, enterprises=enterprises)
    built_at = datetime.now(UTC)
    stamp_changes(urls, catalog, built_at)

    platform = make_engine(settings.platform_url)
    try:
        await migrations.upgrade(platform, say=say)
        async with platform.begin() as conn:
            version = await catalog_store.publish(conn, catalog, source=str(settings.catalog_dir), loaded_by=BUILT_BY)
            catalog = Catalog(catalog.departments, catalog.purposes, catalog.resources, version)
            keys = {}
            for code in catalog.departments:
                # The coordinating authority (大数据局) also runs the service hall's "who looked at my data" counter.
                roles = (
                    ("applicant", "coordinator", "auditor", "subject_service")
                    if code == COORDINATOR
                    else ("applicant", "reviewer")
                )
                _, keys[code] = await create_key(
                    conn, department=code, application=f"{code}-demo", departments=catalog.departments, roles=roles
                )
            for consumer, resource, items, purposes, start, end, scope, masks, legal_basis in DEMO_GRANTS:
                await grant_directly(
                    conn,
                    catalog,
                    now=datetime.now(CHINA),
                    department=COORDINATOR,
                    actor=BUILT_BY,
                    consumer=consumer,
                    resource=resource,
                    items=items,
                    purposes=purposes,
                    valid_from=day(start),
                    valid_until=day(end),
                    row_scope=scope,
                    masks=masks,
                    legal_basis=legal_basis,
                )
            department, resource, items, purposes, start, end, note = DEMO_RULE
            rule = documents.Rule(
                documents.new_id("P"),
                department,
                resource,
                tuple(items),
                tuple(purposes),
                day(start),
                day(end),
                note=note,
            )
            await documents.edit(
                conn, catalog, lambda doc: documents.with_rule(doc, rule), author=BUILT_BY, reason=note
            )
            department, resource, reason = DEMO_RESTRICTION
            # The facts it is made on (Art 20): the lagging resource as the schedule will find it.
            lagging = catalog.resources[DEMO_LAGGING]
            stamped = built_at.replace(microsecond=0) - timedelta(days=DEMO_LAGGING_DAYS)
            overdue = freshness.state(
                lagging,
                freshness.Recorded(lagging.code, stamped, built_at, False),
                built_at,
                realtime_minutes=settings.freshness_realtime_minutes,
            )
            restriction = documents.DenyRule(
                documents.new_id("D"), department, resource, reason, overdue=(documents.OverdueFact(**overdue.facts()),)
            )
            await documents.edit(
                conn, catalog, lambda doc: documents.with_deny(doc, restriction), author=BUILT_BY, reason=reason
            )
        # What the server's schedule reads from every source (catalog/freshness.py), recorded once now, so that the
        # first answers already say how fresh each resource is.
        await freshness.record_changes(
            platform, catalog, expand=settings.expand, timeout=settings.source_timeout_seconds, now=built_at
        )
        async with platform.begin() as conn:
            # A security staff account for the policy console (/console); its password only in var/demo-staff.json.
            staff = {"username": DEMO_STAFF, "password": secrets.token_urlsafe(12)}
            await accounts.create_account(conn, settings, staff["username"], staff["password"], "安全管理员（演示）")
    finally:
        await platform.dispose()

    keys_path.parent.mkdir(parents=True, exist_ok=True)
    showcase_path.write_text(json.dumps(summary["showcase"], ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (settings.var_dir / "demo-sources.json").write_text(
        json.dumps({code: d.source for code, d in departments.items() if d.source}, indent=2) + "\n", encoding="utf-8"
    )
    staff_path = settings.var_dir / "demo-staff.json"
    staff_path.write_text(json.dumps(staff, indent=2) + "\n", encoding="utf-8")
    staff_path.chmod(0o600)
    keys_path.write_text(json.dumps(keys, indent=2) + "\n", encoding="utf-8")
    keys_path.chmod(0o600)
    return DemoWorld(keys, summary["showcase"], built=True)
