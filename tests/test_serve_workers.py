"""`govshare serve --workers N` as an operator runs it: one port, N processes on the one platform database (SQLite or
PostgreSQL), every answer recorded in one access chain that `govshare audit verify` accepts, every worker run with the
settings the command resolved (a worker started later in place of a dead one too), and SIGTERM stopping them all.

Which worker answered a connection is read from /proc (the worker holding the server's end of it): nothing is added
to an answer for it."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import re
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from demo.build import build_demo
from tests.conftest import TEST_DATABASE_PREFIX, environment, govshare_command, make_settings, require_engine

START_TIMEOUT = 60  # liveness bounds, not speed assertions
STOP_TIMEOUT = 30
LOOKUP = "query($id: String!) { person(idNumber: $id) { idNumber name } }"
MARKET, MARKET_PURPOSE = "market", "market.licence-review"


class Workers:
    """`govshare serve --workers N --port 0` in a subprocess: its port, and its workers' process ids, read from the
    supervisor's and the workers' start-up lines."""

    def __init__(self, folder: Path, workers: int, env: dict[str, str]) -> None:
        self.workers = workers
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [govshare_command(), "serve", "--workers", str(workers), "--port", "0"],
            cwd=folder,
            env=environment(folder) | env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def _found(self, pattern: str) -> list[str]:
        return [m.group(1) for line in list(self.lines) if (m := re.search(pattern, line))]

    @property
    def port(self) -> int:
        (port,) = self._found(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
        return int(port)

    def pids(self) -> list[int]:
        """Every worker process started so far (the supervisor's replacements too)."""
        return [int(pid) for pid in self._found(r"Started server process \[(\d+)\]")]

    def wait_started(self, count: int) -> None:
        """Until ``count`` workers in all have completed their start-up."""
        deadline = time.monotonic() + START_TIMEOUT
        while len(self._found(r"(Application startup complete)")) < count:
            assert self.process.poll() is None, "the server exited:\n" + "".join(self.lines)
            assert time.monotonic() < deadline, "the workers did not start:\n" + "".join(self.lines)
            time.sleep(0.05)

    def children(self) -> set[int]:
        """The supervisor's child processes (its workers, and multiprocessing's resource tracker)."""
        pid = self.process.pid
        return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}

    def kill_all(self) -> None:
        for pid in {self.process.pid, *self.pids()}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    with contextlib.suppress(FileNotFoundError):  # the process ended
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(FileNotFoundError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(int(link[8:-1]))
    return inodes


def _answered_by(port: int, client_ports: list[int], pids: list[int]) -> dict[int, int]:
    """For each client port connected to ``port`` on 127.0.0.1: the worker holding the server's end of it."""
    server_ends = {}  # client port -> inode of the server's socket
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], int(fields[9])
        if int(local.split(":")[1], 16) == port and inode:
            server_ends[int(remote.split(":")[1], 16)] = inode
    owners = {inode: pid for pid in pids for inode in _socket_inodes(pid)}
    return {client: owners[server_ends[client]] for client in client_ports if server_ends.get(client) in owners}


conns: list[http.client.HTTPConnection] = []  # the connections _ask left open


def _ask(port: int, key: str, person: str, connections: int) -> list[tuple[int, http.client.HTTPResponse, bytes]]:
    """``connections`` lookups at once, each on a connection of its own left open (so its worker can be read):
    (client port, response, body) of each; the caller closes them."""
    start = threading.Barrier(connections)

    def one(_: int):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.connect()
        start.wait()
        body = json.dumps({"query": LOOKUP, "variables": {"id": person}})
        headers = {
            "Authorization": f"Bearer {key}",
            "X-Purpose": MARKET_PURPOSE,
            "Content-Type": "application/json",
        }
        conn.request("POST", "/graphql", body=body, headers=headers)
        response = conn.getresponse()
        return conn, response, response.read()

    with ThreadPoolExecutor(connections) as pool:
        answered = list(pool.map(one, range(connections)))
    conns.extend(conn for conn, _, _ in answered)
    return [(conn.sock.getsockname()[1], response, body) for conn, response, body in answered]


def _close_connections() -> None:
    while conns:
        conns.pop().close()


def _sync_url(url: str) -> str:
    return url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")


def _postgres_database(name: str) -> str:
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {name}"))
    finally:
        admin.dispose()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


@pytest.fixture(params=["sqlite", "postgres"])
async def world(request, tmp_path) -> tuple[Path, dict[str, str], str, str]:
    """(folder, environment, market's key, a person's id number): a small demo world of its own, its platform
    database on SQLite (var/platform.db) or PostgreSQL."""
    env = {}
    if request.param == "postgres":
        require_engine(make_settings(tmp_path / "probe"), "postgres")
        env["GOVSHARE_DATABASE_URL"] = _postgres_database(f"{TEST_DATABASE_PREFIX}workers_platform")
    settings = make_settings(tmp_path / "var", **({"database_url": env["GOVSHARE_DATABASE_URL"]} if env else {}))
    built = await build_demo(settings, persons=100, enterprises=30)
    url = env.get("GOVSHARE_DATABASE_URL", f"sqlite:///{tmp_path / 'var' / 'platform.db'}")
    yield tmp_path, env, built.keys[MARKET], built.showcase["person_luozhuang"]
    if request.param == "postgres":
        engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {_sync_url(url).rsplit('/', 1)[1]} WITH (FORCE)"))
        engine.dispose()


def _records(url: str) -> dict[str, int]:
    """Access records by request id."""
    engine = create_engine(_sync_url(url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT request_id, count(*) FROM access_records GROUP BY request_id")).all()
    finally:
        engine.dispose()
    return dict(rows)


def test_two_workers_answer_on_one_port_record_one_chain_and_stop_on_sigterm(world):
    folder, env, key, person = world
    engine = "postgres" if env else "sqlite"
    url = env.get("GOVSHARE_DATABASE_URL", f"sqlite:///{folder / 'var' / 'platform.db'}")
    # The settings as the command resolved them: answers in English from the file, not the default Chinese.
    (folder / "govshare.toml").write_text('language = "en"\nrate_limit = ""\ncost_budget = ""\n')
    server = Workers(folder, 2, env)
    try:
        server.wait_started(2)
        first, second = server.pids()
        assert {first, second} <= server.children()

        answered: dict[int, int] = {}  # worker -> requests it answered
        request_ids = []
        for _ in range(20):  # rounds of 12 connections at once, until both workers have answered
            asked = _ask(server.port, key, person, 12)
            by = _answered_by(server.port, [client for client, _, _ in asked], [first, second])
            assert len(by) == len(asked), "a connection held by neither worker"
            for client, response, body in asked:
                assert response.status == 200, body
                assert json.loads(body)["data"]["person"]["idNumber"] == person
                request_ids.append(response.getheader("X-Request-Id"))
                answered[by[client]] = answered.get(by[client], 0) + 1
            _close_connections()
            if len(answered) == 2:
                break
        assert set(answered) == {first, second}, answered

        if engine == "sqlite":  # (the same on PostgreSQL: the settings are the command's, whatever the database)
            # A worker dies: the supervisor starts another, with the settings resolved at the start, not the file's now.
            (folder / "govshare.toml").write_text('language = "zh-CN"\n')
            os.kill(first, signal.SIGKILL)
            server.wait_started(3)
            third = server.pids()[-1]
            assert third not in (first, second)
            for _ in range(20):
                asked = _ask(server.port, "gs_not_a_key", person, 12)
                by = _answered_by(server.port, [client for client, _, _ in asked], [second, third])
                from_third = [body for client, _, body in asked if by.get(client) == third]
                _close_connections()
                if from_third:
                    break
            assert from_third, "the new worker answered no connection"
            error = json.loads(from_third[0])["errors"][0]
            assert error["extensions"]["code"] == "KEY_INVALID"
            assert error["message"].isascii(), error  # English, as resolved at the start
        children = server.children()
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=STOP_TIMEOUT) == 0, "".join(server.lines)
    finally:
        _close_connections()
        if server.process.poll() is None:
            server.kill_all()
    # every worker (and multiprocessing's resource tracker) is gone
    deadline = time.monotonic() + STOP_TIMEOUT
    while any(Path(f"/proc/{pid}").exists() for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]
    assert set(server.pids()) - {first} <= children  # (the one killed above was no longer one of them)

    # Every request answered has its access record, one each, in the one chain both workers appended to.
    records = _records(url)
    assert all(records.get(request_id) == 1 for request_id in request_ids), records
    assert sum(records.values()) == len(request_ids)
    verify = _govshare_in_process(folder, ["audit", "verify"], environment(folder, "en") | env)
    assert verify.exit_code == 0, verify.stdout + verify.stderr
    assert f"The access chain is intact: {len(request_ids)} records." in verify.stdout, verify.stdout
    # ...and each worker checkpointed the chain as it stopped: the last checkpoint covers every record.
    last = json.loads((folder / "var" / "audit-checkpoints.jsonl").read_text().splitlines()[-1])
    assert last["heads"]["access"][0] == len(request_ids)


def _govshare_in_process(folder: Path, args: list[str], env: dict[str, str]):
    """`govshare ARGS` run in this process, in ``folder`` (a serve only where it is refused before serving)."""
    from click.testing import CliRunner

    from cli import main

    chosen = {k: None for k in os.environ if k.startswith("GOVSHARE_")} | env
    root = logging.getLogger()
    handlers, level, cwd = list(root.handlers), root.level, os.getcwd()
    os.chdir(folder)
    try:
        return CliRunner().invoke(main, args, env=chosen, prog_name="govshare")
    finally:
        os.chdir(cwd)
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.mark.parametrize("workers", ["0", "-2"])
def test_workers_below_one_are_refused_with_a_code_in_chinese(demo_folder, workers):
    run = _govshare_in_process(demo_folder, ["serve", "--workers", workers], environment(demo_folder))
    assert run.exit_code == 1
    assert (
        f"[WORKERS_INVALID] 工作进程数（workers，即 --workers 或 GOVSHARE_WORKERS）须至少为 1，而不是 {workers}。"
        in run.stderr
    )
    # ...from the environment too (the setting), in English where asked
    run = _govshare_in_process(demo_folder, ["serve"], environment(demo_folder, "en") | {"GOVSHARE_WORKERS": workers})
    assert run.exit_code == 1
    assert "[WORKERS_INVALID] The number of worker processes" in run.stderr and f"not {workers}." in run.stderr


def test_several_workers_refuse_an_in_memory_platform_database(demo_folder):
    env = environment(demo_folder) | {"GOVSHARE_DATABASE_URL": "sqlite+aiosqlite://"}
    run = _govshare_in_process(demo_folder, ["serve", "--workers", "2"], env)
    assert run.exit_code == 1 and "[WORKERS_NEED_SHARED_DATABASE] 多个工作进程须共用一个平台数据库" in run.stderr


def test_a_worker_that_cannot_build_the_app_exits_as_a_failed_start_up(tmp_path):
    # uvicorn's supervisor starts a worker that exits otherwise again and again; one that exits with the start-up
    # failure status (3) stops the command instead (its log says why), as one process failing to start does.
    import dataclasses

    from uvicorn.config import STARTUP_FAILURE

    from server import worker_app

    # production refuses a checkpoint signing key under var/ (AUDIT_FILE_UNDER_VAR)
    settings = dataclasses.replace(make_settings(tmp_path / "var"), production=True)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        with pytest.raises(SystemExit) as exited:
            worker_app(settings)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert exited.value.code == STARTUP_FAILURE


def test_several_workers_are_refused_as_one_process_is_while_a_migration_is_pending(own_folder):
    # Checked once, by the command, before any worker starts: not raced by N workers, and nothing written.
    import sqlite3

    database = own_folder / "var" / "platform.db"
    with contextlib.closing(sqlite3.connect(database)) as conn, conn:
        conn.execute("UPDATE alembic_version SET version_num = '0001_baseline'")
    run = subprocess.run(
        [govshare_command(), "serve", "--workers", "2", "--port", "0"],
        cwd=own_folder,
        env=environment(own_folder),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1 and "[DB_REVISION_MISMATCH]" in run.stderr, run.stderr
    assert "govshare db upgrade" in run.stderr
    assert "Uvicorn running" not in run.stdout + run.stderr and "Started server process" not in run.stderr


def test_workers_spawned_under_supervision_start_from_the_light_module_not_the_command():
    # The command's module imports the whole app (seconds on a loaded machine) before a spawned worker's health-check
    # thread starts, and the supervisor kills a worker that does not answer in time: workers start from this one.
    from multiprocessing import spawn

    from govshare.workers import light_main

    with light_main():
        during = spawn.get_preparation_data("worker")
    after = spawn.get_preparation_data("worker")
    assert during.get("init_main_from_name") == "govshare.workers" and "init_main_from_path" not in during
    assert after.get("init_main_from_name") != "govshare.workers"
