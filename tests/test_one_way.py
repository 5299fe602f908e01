"""One way to do each thing: the `govshare` command, the policy console, the admin API and the query service's
GraphQL make the same change through the same operation, so each leaves the same stored result (the same rows,
the same process records), and every change made by command is announced to the servers at once."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from admin import accounts
from tests.conftest import World, _api, connect
from tests.test_admin_api import Admin
from tests.test_applications_api import APPLY, INPUT
from tests.test_cli import environment, govshare_command, govshare_in_process
from tests.test_console import ORIGIN, PASSWORD, Console

STAFF = "wang.fang"


@pytest.fixture
async def three_ways(own_world: World):
    """The app on a world of the test's own; a console signed in and an admin API session of one staff account;
    and the command on the same platform database."""
    async for api in _api(own_world):
        runtime = api.app.state.runtime
        async with runtime.engine.begin() as conn:
            await accounts.create_account(conn, runtime.settings, STAFF, PASSWORD, "王芳")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url=ORIGIN) as client:
            console = Console(client)
            assert (await console.sign_in()).status_code == 303
            session = await client.post("/admin/session", json={"username": STAFF, "password": PASSWORD})
            admin = Admin(client, session.json()["token"])
            yield api, console, admin, Command(own_world.settings.var_dir.parent)


class Command:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __call__(self, *args: str) -> str:
        done = govshare_in_process(self.folder, *args)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


def _rows(world_folder: Path, sql: str, *params) -> list[tuple]:
    with connect(world_folder / "var" / "platform.db") as conn:
        return conn.execute(sql, params).fetchall()


def _versions(folder: Path, since: int) -> list[tuple]:
    """(author, action, reason, the deny rules without their ids) of each policy version after ``since``."""
    found = []
    for _seq, author, action, reason, document in _rows(
        folder, "SELECT seq, author, action, reason, document FROM policy_versions WHERE seq > ? ORDER BY seq", since
    ):
        deny = json.loads(document).get("deny", []) if isinstance(document, str) else document.get("deny", [])
        found.append(
            (
                author,
                action,
                reason,
                sorted(
                    json.dumps({k: v for k, v in d.items() if k != "id"}, sort_keys=True, ensure_ascii=False)
                    for d in deny
                ),
            )
        )
    return found


def _last_seq(folder: Path) -> int:
    return _rows(folder, "SELECT COALESCE(MAX(seq), 0) FROM policy_versions")[0][0]


def _deny_ids(folder: Path) -> set[str]:
    (document,) = _rows(folder, "SELECT document FROM policy_versions ORDER BY seq DESC LIMIT 1")[0]
    return {d["id"] for d in json.loads(document).get("deny", [])}


# --- restrictions: add and lift, three ways ---------------------------------------------------------------


async def test_a_restriction_added_and_lifted_three_ways_stores_the_same_versions(three_ways):
    api, console, admin, command = three_ways
    folder, basis = command.folder, "未按时更新参保数据（第二十条）"
    stored = {}

    async def by_console():
        saved = await console.submit(
            "/console/deny/new",
            "/console/deny",
            {"department": "hrss", "resource": "market.enterprise", "basis": basis, "reason": basis},
        )
        assert saved.status_code == 303, saved.text

    async def by_api():
        result = await admin.run(
            """mutation($r: String!) { putDenyRule(rule: {department: "hrss",
            resource: "market.enterprise", reason: $r}, reason: $r) { ruleId } }""",
            r=basis,
        )
        assert "errors" not in result, result

    async def by_command():
        command(
            "restriction",
            "add",
            "--department",
            "hrss",
            "--resource",
            "market.enterprise",
            "--reason",
            basis,
            "--by",
            STAFF,
        )

    async def lift(way: str, rule_id: str):
        if way == "console":
            lifted = await console.submit(
                f"/console/deny/{rule_id}/remove", f"/console/deny/{rule_id}/remove", {"reason": "已补报"}
            )
            assert lifted.status_code == 303, lifted.text
        elif way == "api":
            result = await admin.run(
                'mutation($id: String!) { removeRule(id: $id, reason: "已补报") { version } }', id=rule_id
            )
            assert "errors" not in result, result
        else:
            command("restriction", "lift", rule_id, "--reason", "已补报", "--by", STAFF)

    for way, add in (("console", by_console), ("api", by_api), ("command", by_command)):
        start, before = _last_seq(folder), _deny_ids(folder)
        await add()
        (rule_id,) = _deny_ids(folder) - before
        await lift(way, rule_id)
        stored[way] = _versions(folder, start)
        restricted = await api.query(
            "{ enterpriseList(first: 1) { items { name } } }", "hrss", "hrss.employment-subsidy"
        )
        assert "errors" not in restricted  # lifted, and in force in the server at once

    assert stored["console"] == stored["api"] == stored["command"]
    (added, lifted) = stored["command"]
    assert added[:3] == (STAFF, "change", basis) and lifted[:3] == (STAFF, "change", "已补报")


# --- policy import: the admin API and the command ----------------------------------------------------------


async def test_a_policy_imported_by_api_and_by_command_is_the_same_version(three_ways, tmp_path):
    api, _, admin, command = three_ways
    folder = command.folder
    exported = (await admin.run("{ policy { export } }"))["data"]["policy"]["export"]
    changed = exported + '\n[[deny]]\nid = "D-abc123"\ndepartment = "land"\nresource = "*"\nreason = "第二十条"\n'
    (tmp_path / "rules.toml").write_text(changed, encoding="utf-8")

    def last() -> tuple:
        return _rows(folder, "SELECT author, action, reason, digest FROM policy_versions ORDER BY seq DESC LIMIT 1")[0]

    imported = await admin.run(
        'mutation($d: String!) { importPolicy(document: $d, reason: "迁移") { version } }', d=changed
    )
    assert imported["data"]["importPolicy"]["version"]
    by_api = last()
    restored = await admin.run(
        'mutation($d: String!) { importPolicy(document: $d, reason: "恢复") { version } }', d=exported
    )
    assert restored["data"]["importPolicy"]["version"]
    command("policy", "import", str(tmp_path / "rules.toml"), "--reason", "迁移", "--by", STAFF)
    assert last() == by_api and by_api[:3] == (STAFF, "import", "迁移")
    await api.app.state.runtime.refresh()  # the server's check every refresh_seconds: the command's change is in force
    refused = await api.query("{ enterpriseList(first: 1) { items { name } } }", "land", "land.property-registration")
    assert {e["extensions"]["code"] for e in refused["errors"]} == {"DEPARTMENT_RESTRICTED"}


# --- grants: a legal-basis grant and a revocation, by the coordinator's key and by command -----------------

GRANT = dict(
    consumer="land",
    resource="civil.subsidy",
    items=["name"],
    purposes=["land.property-registration"],
    valid_from="2026-01-01",
    valid_until="2027-12-31",
    legal_basis="《不动产登记暂行条例》第二十七条",
)
GRANT_COLUMNS = (
    "kind, application_id, consumer, resource, items, purposes, valid_from, valid_until, row_scope, masks, "
    "legal_basis, revoked_at IS NULL"
)
RECORD_COLUMNS = "kind, application_id, grant_id, reason, detail"


async def test_a_legal_basis_grant_by_key_and_by_command_stores_the_same_grant_and_process_record(three_ways):
    # Divergence before: the command's legal_basis_granted record left out the items the query service's names.
    api, _, _, command = three_ways
    record = """mutation($c: String!, $r: String!, $i: [String!]!, $p: [String!]!, $f: Date!, $u: Date!, $l: String!) {
      recordLegalBasisGrant(consumer: $c, resource: $r, items: $i, purposes: $p, validFrom: $f, validUntil: $u,
                            legalBasis: $l) }"""
    by_key = (
        await api.query(
            record,
            "bigdata",
            None,
            variables=dict(
                c=GRANT["consumer"],
                r=GRANT["resource"],
                i=GRANT["items"],
                p=GRANT["purposes"],
                f=GRANT["valid_from"],
                u=GRANT["valid_until"],
                l=GRANT["legal_basis"],
            ),
        )
    )["data"]["recordLegalBasisGrant"]
    by_command = command(
        "grant",
        "create",
        "--consumer",
        GRANT["consumer"],
        "--resource",
        GRANT["resource"],
        "--items",
        ",".join(GRANT["items"]),
        "--purposes",
        ",".join(GRANT["purposes"]),
        "--from",
        GRANT["valid_from"],
        "--until",
        GRANT["valid_until"],
        "--legal-basis",
        GRANT["legal_basis"],
    )
    folder = command.folder
    grants = [_rows(folder, f"SELECT {GRANT_COLUMNS} FROM grants WHERE id = ?", g)[0] for g in (by_key, by_command)]
    assert grants[0] == grants[1] and grants[0][0] == "legal_basis"
    records = [
        [
            (*r[:2], r[3], json.loads(r[4]))
            for r in _rows(folder, f"SELECT {RECORD_COLUMNS} FROM process_records WHERE grant_id = ? ORDER BY seq", g)
        ]
        for g in (by_key, by_command)
    ]
    assert (
        records[0]
        == records[1]
        == [
            (
                "legal_basis_granted",
                None,
                GRANT["legal_basis"],
                {"consumer": "land", "resource": "civil.subsidy", "items": ["name"]},
            )
        ]
    )


async def test_revoking_an_applications_grant_by_key_and_by_command_records_it_in_the_applications_history(three_ways):
    # Divergence before: the command's revoked record named no application, so the application's history (the
    # applicant's and the provider's view) never showed the revocation.
    api, _, _, command = three_ways
    grant_ids, applications = [], []
    for items in (["name"], ["address"]):
        applied = await api.query(APPLY, "land", None, variables={"input": {**INPUT, "items": items}})
        application = applied["data"]["applyForShare"]["id"]
        approved = await api.query(
            "mutation($id: ID!) { approveApplication(id: $id) { grantId } }",
            "police",
            None,
            variables={"id": application},
        )
        grant_ids.append(approved["data"]["approveApplication"]["grantId"])
        applications.append(application)
    revoked = await api.query(
        'mutation($id: ID!) { revokeGrant(id: $id, reason: "系统停用") }',
        "bigdata",
        None,
        variables={"id": grant_ids[0]},
    )
    assert revoked["data"]["revokeGrant"] is True
    command("grant", "revoke", grant_ids[1], "--reason", "系统停用")

    folder = command.folder
    stored = [
        _rows(folder, f"SELECT {RECORD_COLUMNS} FROM process_records WHERE grant_id = ? AND kind = 'revoked'", g)
        for g in grant_ids
    ]
    assert [[(r[0], r[1], r[3], json.loads(r[4])) for r in s] for s in stored] == [
        [("revoked", application, "系统停用", {})] for application in applications
    ]
    for application in applications:
        seen = await api.query(
            "query($id: ID!) { applications(id: $id) { history { kind } } }",
            "land",
            None,
            variables={"id": application},
        )
        assert [s["kind"] for s in seen["data"]["applications"][0]["history"]] == ["submitted", "approved", "revoked"]


# --- announcing: every command that changes what decides tells the servers at once -------------------------

SCHEDULE_2027 = """year = 2027
source = "国务院办公厅关于2027年部分节假日安排的通知"
holidays = ["2027-01-01", "2027-02-05", "2027-02-08", "2027-02-09", "2027-02-10", "2027-02-11"]
workdays = ["2027-02-13"]
"""


async def test_every_changing_command_announces_its_change(own_folder):
    # Divergence before: `catalog load` and `calendar load` were never announced (servers saw them within
    # refresh_seconds only), while the policy commands were.
    import asyncio

    import redis.asyncio as aioredis

    from govshare.notify import CHANNEL
    from tests.test_cache import _redis_or_skip

    # The commands run in-process but `calendar load`, a real `govshare` (the calendar family's one subprocess
    # round trip; test_propagation.py runs a real `govshare restriction add` and hears it).
    redis_url = _redis_or_skip()
    env = {"GOVSHARE_POLICY_NOTIFY_URL": redis_url}
    (own_folder / "2027.toml").write_text(SCHEDULE_2027, encoding="utf-8")
    keys = [line.split()[0] for line in govshare_in_process(own_folder, "key", "list", env=env).stdout.splitlines()]
    demo_catalog = Path(__file__).resolve().parent.parent / "catalog" / "demo"

    async def run(*args: str) -> str:
        if args[0] == "calendar":
            command = [govshare_command(), *args]
            done = await asyncio.to_thread(
                subprocess.run,
                command,
                cwd=own_folder,
                env=environment(own_folder) | env,
                capture_output=True,
                text=True,
                timeout=60,
            )
        else:
            done = await asyncio.to_thread(govshare_in_process, own_folder, *args, env=env)
        assert done.returncode == 0, (args, done.stderr)
        return done.stdout.strip()

    listener = aioredis.Redis.from_url(redis_url)
    heard = {}
    try:
        async with listener.pubsub() as pubsub:
            await pubsub.subscribe(CHANNEL)
            await pubsub.get_message(timeout=1)  # the subscription confirmation
            grant = None
            for name, args in [
                ("catalog load", ("catalog", "load", str(demo_catalog))),
                ("calendar load", ("calendar", "load", str(own_folder / "2027.toml"))),
                ("key revoke", ("key", "revoke", keys[0])),
                (
                    "grant create",
                    (
                        "grant",
                        "create",
                        "--consumer",
                        "land",
                        "--resource",
                        "police.person",
                        "--items",
                        "name",
                        "--purposes",
                        "land.property-registration",
                        "--from",
                        "2026-01-01",
                        "--until",
                        "2027-12-31",
                    ),
                ),
                ("grant revoke", None),
                ("restriction add", ("restriction", "add", "--department", "land", "--resource", "*", "--reason", "x")),
                ("policy rollback", ("policy", "rollback", "1", "--reason", "恢复", "--by", STAFF)),
            ]:
                if name == "grant revoke":
                    args = ("grant", "revoke", grant, "--reason", "x")
                out = await run(*args)
                grant = out if name == "grant create" else grant
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
                heard[name] = message is not None and int(message["data"]) > 0
    finally:
        await listener.aclose()
    assert heard == dict.fromkeys(heard, True)
    assert re.fullmatch(r"G-[0-9a-f]{6}", grant)
