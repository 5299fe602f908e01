"""The `govshare` command as an operator uses it: help, the demo world, keys, grants, restrictions, and a real server.

Commands run in a folder of their own (GOVSHARE_VAR_DIR there, the demo catalog); their effect is checked over HTTP
against the app built on that folder, as a department's application would see it. Each command family has at least
one real `govshare` subprocess round trip; the follow-up commands of a test run in-process (govshare_in_process).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import logging
import os
import re
import sqlite3
import subprocess
import textwrap
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner

from catalog.loader import load_catalog
from cli import main as govshare_main
from connectors.masking import parse_mask
from govshare.clock import CHINA
from govshare.config import Settings
from server import create_app
from tests.conftest import connect, environment, errors_by_item, govshare_command, make_settings

REPO = Path(__file__).resolve().parent.parent
DEMO_CATALOG = REPO / "catalog" / "demo"
TIMEOUT = 60
SERVER_START_TIMEOUT = 20
KEY_PATTERN = re.compile(r"^gs_([0-9a-f]{8})_[A-Za-z0-9_-]{43}$")
CJK = re.compile(r"[\u4e00-\u9fff]")


# ---------------------------------------------------------------------------------------------------------------
# Helpers


def govshare(folder: Path, *args: str, language: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [govshare_command(), *args],
        cwd=folder,
        env=environment(folder, language),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def govshare_in_process(
    folder: Path, *args: str, language: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """The same command run in this process: no interpreter start-up and imports each time (``govshare`` keeps
    the real subprocess for at least one round trip of each command family). It runs on a thread of its own, so
    that an async test can call it as well (a command runs its own event loop); ``env`` adds to its environment.
    The root logger's handlers and level are put back afterwards (the command configures logging for its run)."""
    chosen = {k: None for k in os.environ if k.startswith("GOVSHARE_")} | environment(folder, language) | (env or {})
    root = logging.getLogger()

    def invoke():
        handlers, level, cwd = list(root.handlers), root.level, os.getcwd()
        os.chdir(folder)
        try:
            return CliRunner().invoke(govshare_main, list(args), env=chosen, prog_name="govshare")
        finally:
            os.chdir(cwd)
            root.handlers[:] = handlers
            root.setLevel(level)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        result = pool.submit(invoke).result()
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(["govshare", *args], result.exit_code, result.stdout, result.stderr)


def count(folder: Path, table: str) -> int:
    with connect(folder / "var" / "platform.db") as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def platform_bytes(folder: Path) -> bytes:
    """Everything SQLite has written for the platform database, committed or still in the write-ahead log."""
    return b"".join(p.read_bytes() for p in sorted((folder / "var").glob("platform.db*")))


def source_rows(folder: Path, department: str, sql: str, *params) -> list[sqlite3.Row]:
    with connect(folder / "var" / "sources" / f"{department}.db") as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, params).fetchall()


def demo_keys(folder: Path) -> dict[str, str]:
    return json.loads((folder / "var" / "demo-keys.json").read_text())


def china_day(offset_days: int) -> str:
    return (datetime.now(CHINA).date() + timedelta(days=offset_days)).isoformat()


class Served(httpx.AsyncClient):
    """A client of the app in this process; ``checked()`` runs the check the server makes every refresh_seconds,
    so that a change a command made is in force now."""

    def __init__(self, app) -> None:
        super().__init__(transport=httpx.ASGITransport(app=app), base_url="http://govshare.test")
        self.runtime = app.state.runtime

    async def checked(self) -> None:
        await self.runtime.refresh()


@contextlib.asynccontextmanager
async def serving(folder: Path):
    """The app on ``folder``'s var/ (refresh_seconds 0: no check of its own, and every key looked up each time)."""
    app = create_app(make_settings(folder / "var"))
    await app.state.runtime.start()
    try:
        async with Served(app) as client:
            yield client
    finally:
        await app.state.runtime.stop()


async def post(
    client: httpx.AsyncClient, query: str, key: str, purpose: str | None = None, variables: dict | None = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    if purpose:
        headers["X-Purpose"] = purpose
    return await client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)


async def answer(client: httpx.AsyncClient, query: str, key: str, purpose: str | None = None, **kwargs) -> dict:
    response = await post(client, query, key, purpose, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


# ---------------------------------------------------------------------------------------------------------------
# Help


def _command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for name, command in sorted(group.commands.items()):
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths += _command_paths(command, (*prefix, name))
    return paths


COMMAND_PATHS = _command_paths(govshare_main)


def test_command_tree_is_the_documented_one():
    assert set(COMMAND_PATHS) >= {
        ("serve",),
        ("demo",),
        ("catalog",),
        ("catalog", "load"),
        ("catalog", "check"),
        ("key",),
        ("key", "create"),
        ("key", "revoke"),
        ("key", "list"),
        ("grant",),
        ("grant", "create"),
        ("grant", "revoke"),
        ("grant", "list"),
        ("restriction",),
        ("restriction", "add"),
        ("restriction", "lift"),
        ("restriction", "list"),
    }


def test_govshare_help_lists_every_command(tmp_path):
    run = govshare(tmp_path, "--help")
    assert run.returncode == 0, run.stderr
    assert "govshare: 政务信息资源共享平台联机查询服务。" in run.stdout
    listed = dict(re.findall(r"^  (\w+)\s+(\S.*)$", run.stdout, re.MULTILINE))
    assert set(listed) == {name for (name, *rest) in COMMAND_PATHS if not rest}
    assert all(CJK.search(summary) for summary in listed.values()), listed


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=" ".join)
def test_every_command_describes_itself_in_chinese(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    command = govshare_main
    for name in path:
        command = command.commands[name]
    result = CliRunner().invoke(govshare_main, [*path, "--help"], env=environment(tmp_path), prog_name="govshare")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: govshare {' '.join(path)} ")
    assert command.help and CJK.search(command.help), f"govshare {' '.join(path)} has no Chinese help"
    assert command.help.split("。")[0] in result.output.replace("\n  ", "")
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help and CJK.search(param.help), (
                f"govshare {' '.join(path)} {param.opts[0]} has no Chinese help"
            )


# ---------------------------------------------------------------------------------------------------------------
# The demo world


def test_demo_writes_a_key_for_every_department(demo):
    folder, first = demo
    departments = load_catalog(DEMO_CATALOG).departments
    assert first.stdout.startswith(f"演示世界已生成：{folder / 'var'}/（{len(departments)} 个部门的应用密钥见 ")
    keys_file = folder / "var" / "demo-keys.json"
    keys = json.loads(keys_file.read_text())
    assert set(keys) == set(departments)
    assert all(isinstance(key, str) and KEY_PATTERN.match(key) for key in keys.values()), keys
    assert len(set(keys.values())) == len(keys)
    assert keys_file.stat().st_mode & 0o777 == 0o600
    with connect(folder / "var" / "platform.db") as conn:
        stored = {
            row[0]: row[1:]
            for row in conn.execute("SELECT key_hash, department, application, revoked_at FROM api_keys")
        }
    for department, key in keys.items():
        assert stored[hashlib.sha256(key.encode()).hexdigest()] == (department, f"{department}-demo", None)


def test_demo_twice_changes_nothing(demo_folder):
    keys_file = demo_folder / "var" / "demo-keys.json"
    before = keys_file.read_bytes()
    counts = {t: count(demo_folder, t) for t in ("api_keys", "grants", "policy_versions", "catalog_versions")}

    again = govshare_in_process(demo_folder, "demo")

    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == (
        f"演示世界已存在，未改动：{demo_folder / 'var'}/（应用密钥见 {keys_file}；重建请加 --force）"
    )
    assert keys_file.read_bytes() == before
    assert {t: count(demo_folder, t) for t in counts} == counts


# ---------------------------------------------------------------------------------------------------------------
# Keys

CALLER = "{ caller { department application } }"


async def test_key_is_shown_once_authenticates_and_stops_when_revoked(own_folder):
    created = govshare(own_folder, "key", "create", "--department", "market", "--app", "证照审核系统")
    assert created.returncode == 0, created.stderr
    (key,) = created.stdout.splitlines()  # stdout is the key alone, so it can be piped into a secret store
    match = KEY_PATTERN.match(key)
    assert match, key
    key_id = match.group(1)
    assert f"密钥编号 {key_id}（market / 证照审核系统）。请立即保存，此后无法再次查看" in created.stderr
    assert key not in created.stderr

    # Stored hashed: the key is nowhere in the platform database, its SHA-256 is.
    stored = platform_bytes(own_folder)
    assert key.encode() not in stored
    assert hashlib.sha256(key.encode()).hexdigest().encode() in stored
    listing = govshare_in_process(own_folder, "key", "list")
    assert re.search(rf"^{key_id}\s+market\s+证照审核系统\s+有效$", listing.stdout, re.MULTILINE), listing.stdout
    assert key not in listing.stdout

    async with serving(own_folder) as client:
        assert (await answer(client, CALLER, key))["data"] == {
            "caller": {"department": "market", "application": "证照审核系统"}
        }

        revoked = govshare_in_process(own_folder, "key", "revoke", key_id)
        assert revoked.returncode == 0, revoked.stderr
        assert revoked.stdout.strip() == f"密钥 {key_id} 已吊销。"

        refused = await post(client, CALLER, key)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Bearer realm="govshare"'
        (error,) = refused.json()["errors"]
        assert error["extensions"]["code"] == "KEY_REVOKED" and error["message"] == "应用密钥已被吊销。"
        # The department's other key is untouched.
        other = await answer(client, CALLER, demo_keys(own_folder)["market"])
        assert other["data"]["caller"] == {"department": "market", "application": "market-demo"}

    listing = govshare_in_process(own_folder, "key", "list")
    assert re.search(
        rf"^{key_id}\s+market\s+证照审核系统\s+吊销于 \d{{4}}-\d\d-\d\d \d\d:\d\d$", listing.stdout, re.MULTILINE
    )
    again = govshare_in_process(own_folder, "key", "revoke", key_id)
    assert again.returncode == 1
    assert f"[KEY_ALREADY_REVOKED] 应用密钥 {key_id} 已经吊销。" in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--department", "forestry", "--app", "x"), "[DEPARTMENT_NOT_FOUND] 部门 forestry 不存在。"),
        (("--department", "market", "--app", "  "), "[BAD_REQUEST] 请求无法解析：the application needs a name"),
    ],
)
def test_key_create_refusals(demo_folder, args, message):
    keys = count(demo_folder, "api_keys")
    run = govshare_in_process(demo_folder, "key", "create", *args)
    assert run.returncode == 1
    assert run.stdout == ""
    assert message in run.stderr
    assert count(demo_folder, "api_keys") == keys


# ---------------------------------------------------------------------------------------------------------------
# Grants

PERSONS_IN = "query($county: String!) { personList(filter: {countyCode: {eq: $county}}, first: 30) { items { idNumber name countyCode } } }"


async def test_grant_with_row_scope_and_mask_works_until_revoked(own_folder):
    land = demo_keys(own_folder)["land"]
    purpose = "land.property-registration"
    since, until = china_day(-1), china_day(30)
    async with serving(own_folder) as client:
        before = await answer(client, PERSONS_IN, land, purpose, variables={"county": "371302"})
        assert errors_by_item(before) == {"idNumber": "NO_GRANT", "name": "NO_GRANT"}

        created = govshare(
            own_folder,
            "grant",
            "create",
            "--consumer",
            "land",
            "--resource",
            "police.person",
            "--items",
            "idNumber,name",
            "--purposes",
            purpose,
            "--from",
            since,
            "--until",
            until,
            "--scope",
            "countyCode=371302",
            "--mask",
            "name=name",
            "--by",
            "li.ming",
        )
        assert created.returncode == 0, created.stderr
        (grant_id,) = created.stdout.splitlines()
        assert re.fullmatch(r"G-[0-9a-f]{6}", grant_id)
        await client.checked()

        granted = await answer(client, PERSONS_IN, land, purpose, variables={"county": "371302"})
        assert "errors" not in granted, granted["errors"]
        items = granted["data"]["personList"]["items"]
        assert len(items) == 30
        names = {
            r["id_number"]: r["name"]
            for r in source_rows(
                own_folder,
                "police",
                f"SELECT id_number, name FROM person WHERE id_number IN ({','.join('?' * 30)})",
                *[i["idNumber"] for i in items],
            )
        }
        for item in items:
            assert item["countyCode"] == "371302"
            assert item["name"] == parse_mask("name").apply(names[item["idNumber"]])  # 张** : the name is masked
            assert item["name"] != names[item["idNumber"]]

        # Outside the row scope nothing the grant covers is returned.
        other_county = await answer(client, PERSONS_IN, land, purpose, variables={"county": "371311"})
        assert other_county["data"]["personList"] is None
        assert [e["extensions"]["code"] for e in other_county["errors"]] == ["OUT_OF_SCOPE"]

        listing = govshare_in_process(own_folder, "grant", "list")
        end = china_day(31)  # --until names the last day: the grant ends at the start of the next
        assert re.search(
            rf"^{grant_id}\s+land\s+police\.person\s+{re.escape(purpose)}\s+{since} 00:00 \(UTC\+8\) – "
            rf"{end} 00:00 \(UTC\+8\)\s+生效中\s+idNumber,name  行范围 countyCode ∈ 371302  脱敏 name: name$",
            listing.stdout,
            re.MULTILINE,
        ), listing.stdout

        missing_reason = govshare_in_process(own_folder, "grant", "revoke", grant_id)
        assert missing_reason.returncode == 2 and "Missing option '--reason'" in missing_reason.stderr

        revoked = govshare_in_process(own_folder, "grant", "revoke", grant_id, "--reason", "不动产登记系统停用")
        assert revoked.returncode == 0, revoked.stderr
        assert revoked.stdout.strip() == f"授权 {grant_id} 已撤销。"
        await client.checked()

        after = await answer(client, PERSONS_IN, land, purpose, variables={"county": "371302"})
        assert all(i["name"] is None and i["idNumber"] is None for i in after["data"]["personList"]["items"])
        assert errors_by_item(after) == {"idNumber": "GRANT_REVOKED", "name": "GRANT_REVOKED"}
        error = next(e for e in after["errors"] if e["extensions"]["item"] == "name")
        assert error["message"] == f"共享授权 {grant_id} 已被撤销。"

    with connect(own_folder / "var" / "platform.db") as conn:
        assert conn.execute(
            "SELECT created_by, revoked_by, revoke_reason FROM grants WHERE id = ?", (grant_id,)
        ).fetchone() == ("li.ming", "coordinator", "不动产登记系统停用")
    assert re.search(
        rf"^{grant_id}\s+land\s+police\.person\s+.*已撤销",
        govshare_in_process(own_folder, "grant", "list").stdout,
        re.MULTILINE,
    )


VALID_GRANT = {
    "--consumer": "land",
    "--resource": "police.person",
    "--items": "idNumber,name",
    "--purposes": "land.property-registration",
    "--from": "2026-01-01",
    "--until": "2026-12-31",
}


@pytest.mark.parametrize(
    ("changes", "exit_code", "message"),
    [
        ({"--consumer": "forestry"}, 1, "[DEPARTMENT_NOT_FOUND] 部门 forestry 不存在。"),
        ({"--resource": "police.vehicle"}, 1, "[RESOURCE_NOT_FOUND] 资源 police.vehicle 不存在或未发布。"),
        ({"--items": "idNumber,shoeSize"}, 1, "[ITEM_NOT_FOUND] 资源 police.person 没有信息项 shoeSize。"),
        (
            {"--purposes": "market.licence-review"},
            1,
            "[PURPOSE_NOT_FOUND] 部门 land 没有登记用途 market.licence-review。",
        ),
        ({"--items": "idNumber,phone"}, 1, "[GRANT_NOT_SHARED_ITEMS] phone 属于不予共享类"),
        (
            {"--consumer": "police", "--purposes": "police.case-investigation"},
            1,
            "[GRANT_FOR_PROVIDER] police 是 police.person 的提供部门",
        ),
        ({"--from": "2026-06-01", "--until": "2026-05-01"}, 1, "[GRANT_BAD_PERIOD] 截止时间须晚于生效时间"),
        ({"--until": "2026-02-30"}, 2, "'2026-02-30' 不是 YYYY-MM-DD 日期"),
        ({"--from": "1/6/2026"}, 2, "'1/6/2026' 不是 YYYY-MM-DD 日期"),
        ({"--scope": "countyCode"}, 2, "--scope 应写作 信息项=值，而不是 'countyCode'"),
        ({"--mask": "name=blur"}, 1, "[GRANT_BAD_MASK] 信息项 name 的脱敏方式 blur 无效"),
        ({"--mask": "address=full"}, 1, "[GRANT_MASK_NOT_COVERED] 脱敏的信息项 address 不在授权范围内"),
    ],
    ids=[
        "unknown department",
        "unknown resource",
        "unknown item",
        "purpose of another department",
        "not-shared item without legal basis",
        "provider granting itself",
        "end before start",
        "no such day",
        "not ISO date",
        "scope without value",
        "unknown mask",
        "mask of an item not granted",
    ],
)
def test_invalid_grant_is_refused_with_a_clear_message(demo_folder, changes, exit_code, message):
    grants = count(demo_folder, "grants")
    args = [part for option, value in (VALID_GRANT | changes).items() for part in (option, value)]
    run = govshare_in_process(demo_folder, "grant", "create", *args)
    assert run.returncode == exit_code, run.stderr
    assert run.stdout == ""
    assert message in run.stderr
    assert count(demo_folder, "grants") == grants


def test_the_valid_grant_of_the_refusal_cases_is_accepted(own_folder):
    """The refusals above come from their one change: the grant they start from is accepted."""
    args = [part for option, value in VALID_GRANT.items() for part in (option, value)]
    run = govshare_in_process(own_folder, "grant", "create", *args)
    assert run.returncode == 0, run.stderr
    assert re.fullmatch(r"G-[0-9a-f]{6}\n", run.stdout)


def test_legal_basis_opens_a_not_shared_item(own_folder):
    run = govshare_in_process(
        own_folder,
        "grant",
        "create",
        *[p for o, v in VALID_GRANT.items() for p in (o, v)],
        "--items",
        "idNumber,phone",
        "--legal-basis",
        "《不动产登记暂行条例》第二十七条",
    )
    assert run.returncode == 0, run.stderr
    with connect(own_folder / "var" / "platform.db") as conn:
        assert conn.execute("SELECT kind, legal_basis FROM grants WHERE id = ?", (run.stdout.strip(),)).fetchone() == (
            "legal_basis",
            "《不动产登记暂行条例》第二十七条",
        )


# ---------------------------------------------------------------------------------------------------------------
# Restrictions

ENTERPRISES = "{ enterpriseList(first: 3) { items { creditCode name } } }"


async def test_restriction_add_and_lift_take_effect(own_folder):
    hrss = demo_keys(own_folder)["hrss"]
    purpose = "hrss.employment-subsidy"
    async with serving(own_folder) as client:
        free = await answer(client, ENTERPRISES, hrss, purpose)
        assert "errors" not in free and len(free["data"]["enterpriseList"]["items"]) == 3
        assert all(i["creditCode"] and i["name"] for i in free["data"]["enterpriseList"]["items"])

        added = govshare(
            own_folder,
            "restriction",
            "add",
            "--department",
            "hrss",
            "--resource",
            "market.enterprise",
            "--reason",
            "未按时更新参保数据（第二十条）",
        )
        assert added.returncode == 0, added.stderr
        (restriction_id,) = added.stdout.splitlines()
        assert re.fullmatch(r"D-[0-9a-f]{6}", restriction_id)
        await client.checked()
        listing = govshare_in_process(own_folder, "restriction", "list").stdout
        assert re.search(
            rf"^{restriction_id}\s+hrss\s+market\.enterprise\s+未按时更新参保数据（第二十条）$", listing, re.MULTILINE
        )

        restricted = await answer(client, ENTERPRISES, hrss, purpose)
        assert restricted["data"] == {"enterpriseList": None}
        assert errors_by_item(restricted) == {"creditCode": "DEPARTMENT_RESTRICTED", "name": "DEPARTMENT_RESTRICTED"}
        assert {e["message"] for e in restricted["errors"]} == {
            "本部门使用 market.enterprise 的权益已被限制：未按时更新参保数据（第二十条）"
        }
        assert free["data"]["enterpriseList"]["items"][0]["name"] not in json.dumps(restricted, ensure_ascii=False)

        lifted = govshare_in_process(
            own_folder, "restriction", "lift", restriction_id, "--by", "zhao.lei", "--reason", "已补报"
        )
        assert lifted.returncode == 0, lifted.stderr
        assert lifted.stdout.strip() == f"限制 {restriction_id} 已解除。"
        await client.checked()
        assert await answer(client, ENTERPRISES, hrss, purpose) == free
        assert restriction_id not in govshare_in_process(own_folder, "restriction", "list").stdout

    again = govshare_in_process(own_folder, "restriction", "lift", restriction_id, "--reason", "再次解除")
    assert (
        again.returncode == 1 and f"[RESTRICTION_ALREADY_LIFTED] 限制规则 {restriction_id} 已经解除。" in again.stderr
    )


async def test_lifting_the_demo_restriction_lets_civil_read_enterprises(own_folder):
    listing = govshare_in_process(own_folder, "restriction", "list").stdout
    (restriction_id,) = re.findall(r"^(D-[0-9a-f]{6})\s+civil\s+market\.enterprise\s", listing, re.MULTILINE)
    civil = demo_keys(own_folder)["civil"]
    async with serving(own_folder) as client:
        restricted = await answer(client, ENTERPRISES, civil, "civil.marriage-registration")
        assert restricted["data"] == {"enterpriseList": None}
        assert errors_by_item(restricted) == {"creditCode": "DEPARTMENT_RESTRICTED", "name": "DEPARTMENT_RESTRICTED"}
        assert (
            govshare_in_process(own_folder, "restriction", "lift", restriction_id, "--reason", "已整改").returncode == 0
        )
        await client.checked()
        lifted = await answer(client, ENTERPRISES, civil, "civil.marriage-registration")
        assert "errors" not in lifted and all(i["name"] for i in lifted["data"]["enterpriseList"]["items"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--department", "forestry", "--resource", "*", "--reason", "x"),
            "[DEPARTMENT_NOT_FOUND] 部门 forestry 不存在。",
        ),
        (
            ("--department", "hrss", "--resource", "police.vehicle", "--reason", "x"),
            "[RESOURCE_NOT_FOUND] 资源 police.vehicle 不存在或未发布。",
        ),
        (("--department", "hrss", "--resource", "*", "--reason", " "), "[REASON_REQUIRED] 须填写理由"),
    ],
)
def test_invalid_restriction_is_refused(demo_folder, args, message):
    versions = count(demo_folder, "policy_versions")
    run = govshare_in_process(demo_folder, "restriction", "add", *args)
    assert run.returncode == 1 and run.stdout == ""
    assert message in run.stderr
    assert count(demo_folder, "policy_versions") == versions


# ---------------------------------------------------------------------------------------------------------------
# A real server


class _Server:
    """`govshare serve --port 0` in a subprocess; the port is read from uvicorn's start-up line."""

    def __init__(self, folder: Path, env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self.port: int | None = None
        self._ready = threading.Event()
        self.process = subprocess.Popen(
            [govshare_command(), "serve", "--port", "0"],
            cwd=folder,
            env=environment(folder) | (env or {}),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", line)
            if found:
                self.port = int(found.group(1))
                self._ready.set()
        self._ready.set()  # the process ended

    def wait_until_healthy(self) -> dict:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        assert self._ready.wait(SERVER_START_TIMEOUT) and self.port, "server did not start:\n" + "".join(self.lines)
        while True:
            try:
                response = httpx.get(f"{self.url}/healthz", timeout=2)
                if response.status_code == 200:
                    return response.json()
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "no /healthz answer:\n" + "".join(self.lines)
            time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def test_served_over_real_http(own_folder):
    showcase = json.loads((own_folder / "var" / "demo-showcase.json").read_text())
    person_id = showcase["person_luozhuang"]
    (source,) = source_rows(own_folder, "police", "SELECT name, address FROM person WHERE id_number = ?", person_id)
    server = _Server(own_folder)
    try:
        health = server.wait_until_healthy()
        assert server.port != Settings().port  # --port 0: the system picks a free port
        assert health == {
            "status": "ok",
            "catalog_version": 1,
            "policy_version": health["policy_version"],
            "published_resources": len(load_catalog(DEMO_CATALOG).published()),
            "last_reload": health["last_reload"],
            "notifications": {"connected": False, "received": 0},
        }
        assert health["last_reload"]["policy_version"] == health["policy_version"]

        response = httpx.post(
            f"{server.url}/graphql",
            timeout=10,
            headers={
                "Authorization": f"Bearer {demo_keys(own_folder)['market']}",
                "X-Purpose": "market.licence-review",
            },
            json={
                "query": "query($id: String!) { person(idNumber: $id) { idNumber name address } }",
                "variables": {"id": person_id},
            },
        )
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["data"] == {
            "person": {"idNumber": person_id, "name": source["name"], "address": source["address"]}
        }
        assert "errors" not in answer
        # how fresh the household register is, as the demo's build recorded it (Art 16)
        [fresh] = answer["extensions"]["freshness"]
        assert (fresh["resource"], fresh["updateCycle"], fresh["overdue"]) == ("police.person", "daily", False)
        assert re.fullmatch(r"[0-9a-f-]{36}", response.headers["x-request-id"])

        unauthenticated = httpx.post(f"{server.url}/graphql", json={"query": "{ caller { department } }"}, timeout=10)
        assert unauthenticated.status_code == 401
        assert unauthenticated.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

        page = httpx.get(f"{server.url}/graphql", headers={"Accept": "text/html"}, timeout=10)
        assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
        assert '<input type="password" id="gs-key"' in page.text
        asset = httpx.get(f"{server.url}/static/vendor/graphiql.min.js", timeout=10)
        assert asset.status_code == 200, "GraphiQL assets missing: run `bash web/fetch-assets.sh`"
    finally:
        server.stop()
    assert server.process.returncode is not None


def test_json_log_lines_carry_the_request_id_of_the_request_they_were_logged_in(own_folder):
    # GOVSHARE_LOG_FORMAT=json: every line the server writes (ours and uvicorn's) is one JSON object, and a line
    # logged while a request is handled names that request's X-Request-Id.
    showcase = json.loads((own_folder / "var" / "demo-showcase.json").read_text())
    server = _Server(own_folder, env={"GOVSHARE_LOG_FORMAT": "json"})
    try:
        server.wait_until_healthy()
        with connect(own_folder / "var" / "sources" / "police.db") as conn:  # the source fails the next read
            conn.execute("ALTER TABLE person RENAME TO person_gone")
        response = httpx.post(
            f"{server.url}/graphql",
            timeout=10,
            headers={
                "Authorization": f"Bearer {demo_keys(own_folder)['market']}",
                "X-Purpose": "market.licence-review",
            },
            json={
                "query": "query($id: String!) { person(idNumber: $id) { name } }",
                "variables": {"id": showcase["person_luozhuang"]},
            },
        )
        assert response.json()["errors"][0]["extensions"]["code"] == "SOURCE_UNAVAILABLE"
        request_id = response.headers["x-request-id"]
        deadline = time.monotonic() + 10
        while not any(request_id in line for line in server.lines) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.stop()
    lines = [json.loads(line) for line in server.lines if line.strip()]  # each one parses, or this fails
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line["logger"] == "uvicorn.error" and "Uvicorn running" in line["message"] for line in lines)
    assert any(line["logger"].startswith("govshare.") for line in lines)
    during = [line for line in lines if line.get("request_id") == request_id]
    assert during and all(line["trace_id"] and len(line["trace_id"]) == 32 for line in during)
    assert any(line["logger"] == "govshare.connectors.sql" and line["level"] == "WARNING" for line in during), during


def test_english_operator_messages(demo_folder):
    runs = [
        govshare_in_process(demo_folder, "catalog", "check", language="en"),
        govshare_in_process(
            demo_folder,
            "grant",
            "create",
            *[p for o, v in (VALID_GRANT | {"--from": "2026-13-01"}).items() for p in (o, v)],
            language="en",
        ),
        govshare_in_process(demo_folder, "key", "revoke", "nope", language="en"),
    ]
    assert [run.returncode for run in runs] == [0, 2, 1]
    assert "Application key nope does not exist." in runs[2].stderr
    for run in runs:
        assert not CJK.search(run.stdout + run.stderr), run.stdout + run.stderr


# ---------------------------------------------------------------------------------------------------------------
# Policy rules and staff accounts from the command line


def test_policy_export_import_round_trips_exactly(own_folder, tmp_path):
    exported = govshare(own_folder, "policy", "export")
    assert exported.returncode == 0, exported.stderr
    assert "[[deny]]" in exported.stdout and 'department = "civil"' in exported.stdout
    document = tmp_path / "policy.toml"
    document.write_text(
        exported.stdout
        + textwrap.dedent("""
        [[rule]]
        id = "P-cli001"
        department = "civil"
        resource = "hrss.social-insurance"
        items = ["idNumber", "insuranceStatus"]
        purposes = ["civil.subsistence-allowance"]
        valid_from = 2026-01-01T00:00:00+08:00
        valid_until = 2027-01-01T00:00:00+08:00
        note = "低保审核核对参保状态"
        """),
        encoding="utf-8",
    )
    assert (
        govshare_in_process(own_folder, "policy", "validate", str(document)).stdout.strip()
        == "策略规则有效：2 条允许规则，1 条禁止规则。"
    )  # the demo's staff rule and P-cli001
    imported = govshare(own_folder, "policy", "import", str(document), "--reason", "低保审核试点", "--by", "wang.fang")
    assert imported.returncode == 0, imported.stderr
    version = int(re.search(r"第 (\d+) 版", imported.stdout).group(1))
    again = govshare_in_process(own_folder, "policy", "export").stdout
    assert (
        govshare_in_process(
            own_folder, "policy", "import", str(document), "--reason", "再导入", "--by", "wang.fang"
        ).stdout.strip()
        == "与现行规则相同，未产生新版本。"
    )
    (tmp_path / "again.toml").write_text(again, encoding="utf-8")
    assert govshare_in_process(own_folder, "policy", "export", "-o", str(tmp_path / "third.toml")).returncode == 0
    assert (tmp_path / "third.toml").read_text(encoding="utf-8") == again  # export -> import -> export: identical

    history = govshare_in_process(own_folder, "policy", "history").stdout.splitlines()
    assert re.match(rf"v{version}\s+\S+ \S+\s+wang\.fang\s+import\s+低保审核试点$", history[0])
    diff = govshare_in_process(own_folder, "policy", "diff", str(version - 1), str(version)).stdout
    assert '+id = "P-cli001"' in diff and diff.startswith(f"--- v{version - 1}\n+++ v{version}\n")
    explained = govshare_in_process(
        own_folder,
        "policy",
        "explain",
        "--department",
        "civil",
        "--purpose",
        "civil.subsistence-allowance",
        "--resource",
        "hrss.social-insurance",
    ).stdout
    assert re.search(r"^insuranceStatus\s+允许\s+GRANT\s+P-cli001", explained, re.MULTILINE)
    assert re.search(r"^employerName\s+拒绝\s+NO_GRANT", explained, re.MULTILINE)
    rolled = govshare_in_process(
        own_folder, "policy", "rollback", str(version - 1), "--reason", "试点取消", "--by", "wang.fang"
    )
    assert rolled.returncode == 0 and f"第 {version + 1} 版" in rolled.stdout
    explained = govshare_in_process(
        own_folder,
        "policy",
        "explain",
        "--department",
        "civil",
        "--purpose",
        "civil.subsistence-allowance",
        "--resource",
        "hrss.social-insurance",
    ).stdout
    assert re.search(r"^insuranceStatus\s+拒绝\s+NO_GRANT", explained, re.MULTILINE)


def test_policy_import_refuses_an_invalid_file_naming_each_problem(own_folder, tmp_path):
    before = govshare_in_process(own_folder, "policy", "export").stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(
        textwrap.dedent("""
        [[rule]]
        id = "P-bad001"
        department = "civil"
        resource = "hrss.social-insurance"
        items = ["idNumber", "shoeSize"]
        purposes = ["civil.fishing-licence"]
        valid_from = 2026-01-01T00:00:00
        valid_until = 2027-01-01T00:00:00+08:00

        [[deny]]
        department = "forestry"
        reason = "x"
        """),
        encoding="utf-8",
    )
    for command in (("policy", "validate", str(bad)), ("policy", "import", str(bad), "--reason", "x", "--by", "x")):
        run = govshare_in_process(own_folder, *command)
        assert run.returncode == 1
        assert "P-bad001 · valid_from: [POLICY_TIME_NO_OFFSET]" in run.stderr
        assert "· department: [DEPARTMENT_NOT_FOUND] 部门 forestry 不存在。" in run.stderr
    fixed = bad.read_text(encoding="utf-8").replace("2026-01-01T00:00:00\n", "2026-01-01T00:00:00+08:00\n")
    bad.write_text(fixed, encoding="utf-8")
    run = govshare_in_process(own_folder, "policy", "validate", str(bad))
    assert "P-bad001 · items: [ITEM_NOT_FOUND]" in run.stderr and "shoeSize" in run.stderr
    assert "P-bad001 · purposes: [PURPOSE_NOT_FOUND]" in run.stderr and "civil.fishing-licence" in run.stderr
    (tmp_path / "syntax.toml").write_text("[[rule]\n", encoding="utf-8")
    assert (
        "[POLICY_SYNTAX]" in govshare_in_process(own_folder, "policy", "validate", str(tmp_path / "syntax.toml")).stderr
    )
    assert govshare_in_process(own_folder, "policy", "export").stdout == before


def test_staff_accounts_from_the_command_line(own_folder):
    environ = environment(own_folder) | {"GOVSHARE_STAFF_PASSWORD": "correct horse battery staple"}
    added = subprocess.run(
        [govshare_command(), "staff", "add", "wang.fang", "--name", "王芳"],
        cwd=own_folder,
        env=environ,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert added.returncode == 0 and added.stdout.strip() == "账户 wang.fang 已创建。", added.stderr
    weak = govshare_in_process(own_folder, "staff", "add", "li.na", env={"GOVSHARE_STAFF_PASSWORD": "short"})
    assert weak.returncode == 1 and "[STAFF_PASSWORD_WEAK]" in weak.stderr
    assert re.search(
        r"^wang\.fang\s+王芳\s+active\s+coordinator$",
        govshare_in_process(own_folder, "staff", "list").stdout,
        re.MULTILINE,
    )
    assert govshare_in_process(own_folder, "staff", "disable", "wang.fang").returncode == 0
    assert re.search(
        r"^wang\.fang\s+王芳\s+disabled\s+coordinator$",
        govshare_in_process(own_folder, "staff", "list").stdout,
        re.MULTILINE,
    )
    # a department's catalog staff: a department of the catalog in force, shown with its role
    env = {"GOVSHARE_STAFF_PASSWORD": "correct horse battery staple"}
    clerk = govshare_in_process(own_folder, "staff", "add", "land.clerk", "--department", "land", env=env)
    assert clerk.returncode == 0, clerk.stderr
    assert re.search(
        r"^land\.clerk\s+land\.clerk\s+active\s+catalog_editor:land$",
        govshare_in_process(own_folder, "staff", "list").stdout,
        re.MULTILINE,
    )
    nowhere = govshare_in_process(own_folder, "staff", "add", "x.clerk", "--department", "nowhere", env=env)
    assert nowhere.returncode == 1 and "[DEPARTMENT_NOT_FOUND]" in nowhere.stderr
    assert "[STAFF_NOT_FOUND]" in govshare_in_process(own_folder, "staff", "unlock", "nobody").stderr
