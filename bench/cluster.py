"""`make loadtest-cluster`: the production layout of deploy/ on this machine, loaded, with faults injected in turn.

    make loadtest-cluster                                  # 50 clients; 3 rounds of 8 s x 1 and 2 processes, 60 s of faults
    CLUSTER_CLIENTS=20 CLUSTER_SECONDS=30 make loadtest-cluster
    CLUSTER_TINY=1 make loadtest-cluster                   # under a minute: a small world, short phases (tests/test_cluster.py)

What it starts, each on a free port of 127.0.0.1, and stops by its PID at the end (docs/operations.md):

- a PostgreSQL of its own for the platform database (initdb into a temporary folder, run as the `postgres` user), so
  that it can be restarted mid-load without touching the PostgreSQL other programs of this machine use;
- the departments' databases on the machine's PostgreSQL (127.0.0.1:5432, `demo_postgres_url`), one database each
  named ``CLUSTER_DB_PREFIX`` + department, dropped at the end;
- a Redis of its own (``--save ''``) for rate limits and cost budgets, the source cache and change announcements;
- two `govshare serve` processes (production settings: operator required, per-department views, signed checkpoints
  outside var/) and HAProxy in front of them with deploy/haproxy/haproxy.cfg, only its ports changed and a stats
  socket added.

Then CLUSTER_CLIENTS clients (asyncio + httpx, each request's status, X-Request-Id and error codes kept) send the
requests of bench/loadtest.py's MIX through HAProxy: first rounds of CLUSTER_ROUND_SECONDS with the second process
drained at HAProxy and with both serving, alternately (1 2 1 2 ...: the ratio of 2 processes over 1 from one run),
then CLUSTER_SECONDS with both serving while four faults are injected in turn: the platform database restarted,
Redis killed and started again, the second process SIGKILLed and started again (as systemd would), and the land
department's source slowed beyond ``source_timeout_seconds`` (a lock held on the table it reads).

It exits non-zero on a broken promise: a 5xx (or a failed connection, or no answer within the client's timeout)
that no fault in progress explains; an answer with data whose access records are not exactly the resource accesses
it answered, a record of a request answered without data, or a record of no answer at all outside the kill; a fault
whose effect was never seen, or after which the cluster did not answer again; `govshare audit verify` failing. It
prints a table and writes bench/cluster.json (CLUSTER_RESULTS).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import glob
import json
import os
import pwd
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))  # also when imported by a test (tests/test_cluster.py)

from loadtest import MIX, OPERATOR, free_port, rss_kib  # noqa: E402  (bench/loadtest.py)

from connectors.urls import sync_url  # noqa: E402
from demo.build import build_demo, ensure_database  # noqa: E402
from govshare.config import load_settings  # noqa: E402

TINY = os.environ.get("CLUSTER_TINY") == "1"
CLIENTS = int(os.environ.get("CLUSTER_CLIENTS", "10" if TINY else "50"))
SECONDS = float(os.environ.get("CLUSTER_SECONDS", "12" if TINY else "60"))  # the faults' part
ROUNDS = int(os.environ.get("CLUSTER_ROUNDS", "1" if TINY else "3"))  # of 1 process, then 2
ROUND_SECONDS = float(os.environ.get("CLUSTER_ROUND_SECONDS", "2" if TINY else "8"))
RESULTS = Path(os.environ.get("CLUSTER_RESULTS", REPO / "bench" / "cluster.json"))
PREFIX = os.environ.get("CLUSTER_DB_PREFIX", f"gs_cluster_{os.getpid()}_")  # the departments' databases
PERSONS, ENTERPRISES = (300, 100) if TINY else (3000, 1000)
# A folder to copy the services' logs to before the run's folder is removed (HAProxy's log has every request).
KEEP_LOGS = Path(os.environ["CLUSTER_LOGS"]) if os.environ.get("CLUSTER_LOGS") else None
SOURCES_URL = "postgresql://postgres@127.0.0.1:5432/"  # the machine's PostgreSQL (demo_postgres_url's default)

# What the processes run with, beyond deploy/govshare.toml's layout (docs/operations.md says why each).
SOURCE_TIMEOUT = 1.0 if TINY else 2.0  # source_timeout_seconds: the slowed source's reads are given up after this
SOURCE_POOL = 3  # source_pool_size: 2 processes x 4 sources x 3 connections on a PostgreSQL other programs share
BREAKER_RESET = 1.0 if TINY else 2.0
OUTAGE = 1.5 if TINY else 3.0  # how long the platform database and Redis stay down
SLOW = 3 * SOURCE_TIMEOUT  # how long the source stays slowed
CLIENT_TIMEOUT = 45.0  # above HAProxy's `timeout server` (30 s): a request not answered by then hangs
GRACE = 2.0  # after a fault is repaired and HAProxy has every process up again, what it may still explain
CHECK_INTERVAL = 0.5 if TINY else 2.0  # HAProxy's `inter` (deploy/haproxy/haproxy.cfg: 2 s)
IN_FLIGHT_SLACK = 0.5  # a request sent this soon after the kill may still have reached the process being killed
RECOVERY_LIMIT = 90.0  # a fault the cluster has not recovered from by then fails the run
SLOWED = ("land", "real_estate")  # the department whose source is slowed, and the table locked
RESOURCE_FIELDS = [fields for *_, fields in MIX]


STARTED = time.monotonic()


def say(what: str) -> None:
    """Progress, on stderr: the seconds since the start, and what was just done."""
    print(f"[{time.monotonic() - STARTED:6.1f} s] {what}", file=sys.stderr, flush=True)


def binary(name: str) -> str | None:
    """A program of Debian's packages: on PATH, in /usr/sbin, or (PostgreSQL's) in /usr/lib/postgresql/N/bin."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[3]))
        found = versions[-1] if versions else None
    return found


NEEDED = ("haproxy", "redis-server", "initdb", "postgres")


def missing() -> list[str]:
    return [name for name in NEEDED if binary(name) is None]


# ---------------------------------------------------------------------------------------------------------------
# The services, each a process of ours, stopped by its PID


@dataclasses.dataclass
class Service:
    name: str
    command: list[str]
    log: Path
    user: str | None = None
    cwd: Path | None = None
    env: dict[str, str] | None = None
    process: subprocess.Popen | None = None
    pids: list[int] = dataclasses.field(default_factory=list)  # every PID it ran under, restarts included

    def start(self) -> None:
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                self.command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                user=self.user,
                cwd=self.cwd,
                env=self.env,
            )
        self.pids.append(self.process.pid)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        if not self.alive():
            return
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL
        self.process.wait(timeout=30)

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def wait_for(what: str, check, service: Service | None = None, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while True:
        with contextlib.suppress(Exception):
            if check():
                return
        if service is not None and not service.alive():
            raise RuntimeError(f"{service.name} exited ({service.process.returncode}):\n{service.tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not within {limit:.0f} s" + (f":\n{service.tail()}" if service else ""))
        time.sleep(0.1)


def ready(port: int) -> bool:
    return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200


def listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


class PlatformPostgres:
    """A PostgreSQL of this run's own (the platform database), in a temporary folder owned by `postgres`."""

    def __init__(self, home: Path) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="govshare-cluster-pg-"))
        user = pwd.getpwnam("postgres")
        os.chown(self.folder, user.pw_uid, user.pw_gid)
        self.port = free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/govshare"
        initdb = subprocess.run(
            [binary("initdb"), "-D", str(self.folder / "data"), "-A", "trust", "-U", "postgres", "--no-sync"],
            user="postgres",
            capture_output=True,
            text=True,
        )
        if initdb.returncode:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise RuntimeError(f"initdb failed:\n{initdb.stdout}{initdb.stderr}")
        self.service = Service(
            "platform PostgreSQL",
            [
                binary("postgres"),
                "-D",
                str(self.folder / "data"),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.folder}",
                "-c",
                "max_connections=80",
                "-c",
                "shared_buffers=64MB",
            ],
            home / "platform-postgres.log",
            user="postgres",
        )

    def start(self) -> None:
        self.service.start()
        wait_for("the platform PostgreSQL", lambda: self._answers(), self.service)

    def _answers(self) -> bool:
        engine = create_engine(sync_url(self.url).rsplit("/", 1)[0] + "/postgres", connect_args={"connect_timeout": 2})
        try:
            with engine.connect() as conn:
                return conn.execute(text("SELECT 1")).scalar_one() == 1
        finally:
            engine.dispose()

    def stop(self) -> None:
        self.service.stop(signal.SIGINT)  # PostgreSQL's fast shutdown: sessions ended, then a checkpoint

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# HAProxy: deploy/haproxy/haproxy.cfg with this run's ports and a stats socket


def haproxy_config(front: int, backends: list[int], stats: Path) -> str:
    config = (REPO / "deploy" / "haproxy" / "haproxy.cfg").read_text()
    for found, replacement in (
        ("bind *:80", f"bind 127.0.0.1:{front}"),
        ("127.0.0.1:8001", f"127.0.0.1:{backends[0]}"),
        ("127.0.0.1:8002", f"127.0.0.1:{backends[1]}"),
    ):
        if found not in config:
            raise RuntimeError(f"deploy/haproxy/haproxy.cfg no longer holds {found!r}")
        config = config.replace(found, replacement)
    if TINY:  # checks 4 times as often: processes taken out and back within a second, for a short run
        config = config.replace("inter 2s ", f"inter {CHECK_INTERVAL * 1000:.0f}ms ")
    return config.replace("global\n", f"global\n    stats socket {stats} mode 600 level admin\n", 1)


def haproxy_command(stats: Path, command: str) -> str:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(str(stats))
        sock.sendall(command.encode() + b"\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data.decode()


def haproxy_servers(stats: Path) -> dict[str, dict[str, str]]:
    """Each server of the govshare backend: its row of `show stat` (status UP/DOWN/DRAIN/..., hrsp_* counts)."""
    lines = haproxy_command(stats, "show stat").splitlines()
    header = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
    return {r["svname"]: r for r in rows if r["pxname"] == "govshare" and r["svname"] not in ("BACKEND", "FRONTEND")}


def answered_by(row: dict[str, str]) -> int:
    return sum(int(row.get(f"hrsp_{n}xx") or 0) for n in range(1, 6)) + int(row.get("hrsp_other") or 0)


# ---------------------------------------------------------------------------------------------------------------
# The load


@dataclasses.dataclass
class Answer:
    started: float  # time.monotonic()
    ended: float
    phase: str
    mix: int  # index into MIX
    status: int  # 0: no HTTP answer (the exception's name in ``failure``)
    request_id: str | None  # X-Request-Id: set by govshare, absent from the proxy's own answers
    codes: list[str]
    has_data: bool  # some root field answered with a value
    executed: bool = False  # the answer has "data": the operation ran (a refused document has no data, no record)
    failure: str = ""


class Load:
    def __init__(self, url: str, keys: dict[str, str]) -> None:
        self.url, self.keys = url, keys
        self.answers: list[Answer] = []
        self.phase = "warm-up"
        self.stopping = False

    async def one(self, http: httpx.AsyncClient, index: int) -> Answer:
        department, purpose, query, _ = MIX[index]
        headers = {"Authorization": f"Bearer {self.keys[department]}", "X-Purpose": purpose, "X-Operator": OPERATOR}
        started, phase = time.monotonic(), self.phase
        try:
            response = await http.post("/graphql", json={"query": query}, headers=headers)
        except httpx.HTTPError as exc:
            return Answer(started, time.monotonic(), phase, index, 0, None, [], False, failure=type(exc).__name__)
        ended = time.monotonic()
        codes, has_data, executed = [], False, False
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            codes = [str((e.get("extensions") or {}).get("code")) for e in body.get("errors") or []]
            has_data = any(v is not None for v in (body.get("data") or {}).values())
            executed = "data" in body
        request_id = response.headers.get("x-request-id")
        return Answer(started, ended, phase, index, response.status_code, request_id, codes, has_data, executed)

    async def client(self, http: httpx.AsyncClient, n: int) -> None:
        i = n
        while not self.stopping:
            self.answers.append(await self.one(http, i % len(MIX)))
            i += 1

    @contextlib.asynccontextmanager
    async def running(self):
        async with httpx.AsyncClient(
            base_url=self.url,
            timeout=CLIENT_TIMEOUT,
            limits=httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS),
        ) as http:
            tasks = [asyncio.create_task(self.client(http, n)) for n in range(CLIENTS)]
            try:
                yield
            finally:
                self.stopping = True
                await asyncio.gather(*tasks)


# ---------------------------------------------------------------------------------------------------------------
# The faults


@dataclasses.dataclass
class Fault:
    name: str
    what: str
    codes: frozenset[str]  # govshare's 5xx codes it explains
    # the proxy's own statuses it explains (answers without X-Request-Id; 0: the connection closed without an answer)
    proxy: frozenset[int]
    started: float = 0.0
    repaired: float = 0.0
    recovered: float = 0.0  # HAProxy has every process up again
    down_seen: set[str] = dataclasses.field(default_factory=set)  # servers HAProxy took out meanwhile
    not_ready: Counter = dataclasses.field(default_factory=Counter)  # /readyz's failing checks, polled meanwhile

    def explains(self, answer: Answer) -> bool:
        if not (self.started <= answer.ended and answer.started <= self.recovered + GRACE):
            return False
        if answer.request_id is None:
            # a connection closed or a 502: only a request already under way as the fault began (in flight)
            if answer.status in (0, 502) and answer.started > self.started + IN_FLIGHT_SLACK:
                return False
            return answer.status in self.proxy
        return bool(answer.codes) and set(answer.codes) <= self.codes


FAULTS = (
    # The platform database gone: records cannot be written (no data sent), keys not yet cached cannot be read;
    # /readyz fails in every process, so HAProxy may take all out and answer 503 itself.
    Fault(
        "platform_database_restart",
        "the platform PostgreSQL stopped (fast shutdown) and started again",
        frozenset({"AUDIT_UNAVAILABLE", "POLICY_UNCONFIRMED", "PLATFORM_DATABASE_UNREACHABLE"}),
        frozenset({503}),
    ),
    # Redis gone: rate limits fail closed (rate_limit_unavailable = "closed", the default); /readyz fails everywhere.
    Fault(
        "redis_down",
        "Redis SIGKILLed, started again on its port",
        frozenset({"RATE_LIMIT_UNAVAILABLE"}),
        frozenset({503}),
    ),
    # A process killed: what it held fails at the proxy (502); HAProxy sends no new request to it once its check fails.
    # HAProxy closes the client's connection, without an answer, for a request it had sent on a reused connection
    # (it cannot know whether the process read it), and answers 502 for one on a new connection.
    Fault("worker_sigkill", "govshare process 2 SIGKILLed, started again", frozenset(), frozenset({0, 502})),
    # A source slower than source_timeout_seconds: its reads fail coded (HTTP 200, SOURCE_UNAVAILABLE), nothing 5xx.
    Fault("source_slowed", f"{SLOWED[0]}'s {SLOWED[1]} locked for {SLOW:.0f} s", frozenset(), frozenset()),
)


class Watcher:
    """HAProxy's view of the processes every 0.2 s, and each process's /readyz every 0.5 s, in threads: each fault
    notes which processes HAProxy took out and which checks of /readyz failed meanwhile."""

    def __init__(self, stats: Path, ports: list[int]) -> None:
        self.stats, self.ports = stats, ports
        self.states: dict[str, str] = {}
        self.fault: Fault | None = None
        self.stop = threading.Event()
        for target in (self._run, self._poll):
            threading.Thread(target=target, daemon=True).start()

    def _poll(self) -> None:
        while not self.stop.wait(0.5):
            fault = self.fault
            if fault is None:
                continue
            for port in self.ports:
                try:
                    response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
                except httpx.HTTPError as exc:
                    fault.not_ready[type(exc).__name__] += 1
                    continue
                if response.status_code != 200:
                    checks = (response.json().get("checks") or {}).items()
                    fault.not_ready.update(f"{name}: {code}" for name, code in checks if code != "ok")

    def _run(self) -> None:
        while not self.stop.wait(0.2):
            with contextlib.suppress(OSError, IndexError, KeyError):
                self.states = {name: row["status"] for name, row in haproxy_servers(self.stats).items()}
                if self.fault is not None:
                    self.fault.down_seen |= {name for name, s in self.states.items() if not s.startswith("UP")}

    def all_up(self) -> bool:
        return bool(self.states) and all(s == "UP" for s in self.states.values())


def hold_lock(url: str, table: str, seconds: float, held: threading.Event) -> None:
    """The slowed source: a transaction holding ACCESS EXCLUSIVE on ``table`` for ``seconds`` (every read waits)."""
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as conn:
            conn.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            held.set()
            time.sleep(seconds)
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------------------------------------------
# The judgement: pure, on what the run saw (tests/test_cluster.py feeds it made-up runs)


def judge(
    answers: list[Answer],
    records: dict[str, dict],
    faults: list[Fault],
    fields: list[int],
) -> tuple[list[str], dict]:
    """The broken promises of a run, and its counts. ``records``: per request id, ``count`` (access records),
    ``first`` and ``last`` (their times on the monotonic clock of ``answers``). ``fields``: per MIX entry, the resource
    accesses one answer of it holds. No fault explains an INTERNAL_ERROR: the platform database gone is
    PLATFORM_DATABASE_UNREACHABLE or AUDIT_UNAVAILABLE (server.py ``Runtime.authenticate``, the records' wait)."""
    problems: list[str] = []
    unexplained: Counter = Counter()
    explained: dict[str, Counter] = {f.name: Counter() for f in faults}
    for answer in answers:
        if answer.status < 500 and answer.status != 0:
            continue
        label = f"{answer.status} {','.join(answer.codes) or answer.failure or ('proxy' if answer.request_id is None else '-')}"
        fault = next((f for f in faults if f.explains(answer)), None)
        if fault is None:
            unexplained[f"{label} ({answer.phase})"] += 1
        else:
            explained[fault.name][label] += 1
    for label, count in sorted(unexplained.items()):
        problems.append(f"unexplained: {count} x {label}")

    answered_ids: set[str] = set()
    missing_records = wrong_count = recorded_without_data = 0
    answered_accesses = 0
    for answer in answers:
        if answer.request_id is None:
            continue
        answered_ids.add(answer.request_id)
        count = records.get(answer.request_id, {}).get("count", 0)
        if answer.status == 200 and answer.executed:
            answered_accesses += fields[answer.mix]
            if count == 0:
                missing_records += 1
            elif count != fields[answer.mix]:
                wrong_count += 1
        elif count:
            recorded_without_data += 1
    if missing_records:
        problems.append(f"{missing_records} answers (HTTP 200) without their access records")
    if wrong_count:
        problems.append(f"{wrong_count} answers whose access records are not one per resource access")
    if recorded_without_data:
        problems.append(f"{recorded_without_data} requests answered without data (never run) that have access records")
    orphans = {rid: r for rid, r in records.items() if rid not in answered_ids}
    kill = next((f for f in faults if f.name == "worker_sigkill"), None)
    in_flight = sum(
        1 for a in answers if a.request_id is None and a.status in (0, 502) and kill is not None and kill.explains(a)
    )
    explained_orphans = {
        rid
        for rid, r in orphans.items()
        if kill is not None and kill.started - CLIENT_TIMEOUT <= r["first"] and r["last"] <= kill.started + 1.0
    }
    if len(orphans) > len(explained_orphans) or len(explained_orphans) > in_flight:
        problems.append(
            f"{len(orphans)} requests have access records but no answer reached their caller "
            f"({len(explained_orphans)} written before the kill, {in_flight} requests it failed at the proxy)"
        )
    total_records = sum(r["count"] for r in records.values())
    orphan_records = sum(r["count"] for r in orphans.values())
    counts = {
        "requests": len(answers),
        "answered_accesses": answered_accesses,
        "access_records": total_records,
        "records_of_requests_killed_in_flight": orphan_records,
        "unexplained_5xx": sum(unexplained.values()),
        "explained": {name: dict(c) for name, c in explained.items()},
    }
    if answered_accesses != total_records - orphan_records:
        problems.append(f"access records ({total_records - orphan_records}) != accesses answered ({answered_accesses})")
    return problems, counts


def seen(fault: Fault, answers: list[Answer]) -> bool:
    """The fault had its effect: some answer within its window carries what it explains, or (source) SOURCE_UNAVAILABLE."""
    window = [a for a in answers if fault.started <= a.ended and a.started <= fault.recovered + GRACE]
    if fault.name == "source_slowed":
        return any("SOURCE_UNAVAILABLE" in a.codes and MIX[a.mix][0] == SLOWED[0] for a in window)
    return any(a.status >= 500 and fault.explains(a) for a in window) or bool(fault.down_seen)


def recovered_after(fault: Fault, answers: list[Answer], until: float) -> bool:
    """A clean answer (HTTP 200, no error) that started after the fault's window and before ``until`` (the next
    fault), for the department it hit hardest."""
    after = [a for a in answers if fault.recovered + GRACE < a.started < until and a.status == 200 and not a.codes]
    if fault.name == "source_slowed":
        return any(MIX[a.mix][0] == SLOWED[0] for a in after)
    return bool(after)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * q) - 1))] if ordered else 0.0


def phase_figures(answers: list[Answer], phase: str, seconds: float) -> dict:
    mine = [a for a in answers if a.phase == phase]
    latencies = [a.ended - a.started for a in mine]
    return {
        "requests": len(mine),
        "requests_per_second": len(mine) / seconds if seconds else 0.0,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else 0.0,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


# ---------------------------------------------------------------------------------------------------------------
# The run


def rss_mb(pid: int, children: bool = False) -> float:
    """Resident memory of ``pid`` (with ``children``: and of its children, PostgreSQL's backends), in MB."""
    pids = [pid]
    if children:
        with contextlib.suppress(OSError):
            pids += map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    total = 0
    for one in pids:
        with contextlib.suppress(OSError):
            total += rss_kib(one)
    return total / 1024


async def main() -> int:
    from workers import cpu_seconds, machine_busy_seconds  # bench/workers.py (here: it imports the whole app)

    absent = missing()
    if absent:
        print(f"needs {', '.join(absent)} (apt-get install -y haproxy redis-server postgresql)", file=sys.stderr)
        return 2
    home = Path(tempfile.mkdtemp(prefix="govshare-cluster-"))
    services: list[Service] = []
    platform: PlatformPostgres | None = None
    sources: dict[str, str] = {}
    watcher: Watcher | None = None
    load: Load | None = None
    load_average = {"start": os.getloadavg()}
    try:
        platform = PlatformPostgres(home)
        platform.start()
        services.append(platform.service)
        ensure_database(sync_url(platform.url))
        say(f"platform PostgreSQL on {platform.port} ({platform.folder})")

        redis_port = free_port()
        redis = Service(
            "Redis",
            [
                binary("redis-server"),
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            home / "redis.log",
            cwd=home,
        )
        redis.start()
        services.append(redis)
        wait_for("Redis", lambda: listening(redis_port), redis)
        say(f"Redis on {redis_port}")

        # The demo world: departments' databases on the machine's PostgreSQL, the platform's on ours.
        var = home / "var"
        settings = load_settings(env={}, var_dir=var, catalog_dir=REPO / "catalog" / "demo", database_url=platform.url)
        world = await build_demo(
            settings, engine="postgres", database_prefix=PREFIX, persons=PERSONS, enterprises=ENTERPRISES
        )
        sources = json.loads((var / "demo-sources.json").read_text())
        say(f"demo world built: departments' databases {PREFIX}* on 127.0.0.1:5432")
        audit = home / "audit"  # outside var/, as production requires
        audit.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSHARE_")}
        govshare = str(Path(sys.executable).with_name("govshare"))
        keygen = subprocess.run(
            [govshare, "audit", "keygen", "-o", str(audit / "signing.key")],
            env=env,
            cwd=home,
            capture_output=True,
            text=True,
            check=True,
        )
        redis_url = f"redis://127.0.0.1:{redis_port}"
        env |= {
            "GOVSHARE_PRODUCTION": "true",
            "GOVSHARE_VAR_DIR": str(var),
            "GOVSHARE_CATALOG_DIR": str(REPO / "catalog" / "demo"),
            "GOVSHARE_DATABASE_URL": platform.url,
            "GOVSHARE_RATE_LIMIT_URL": f"{redis_url}/0",
            "GOVSHARE_CACHE_URL": f"{redis_url}/1",
            "GOVSHARE_POLICY_NOTIFY_URL": f"{redis_url}/2",
            # Counted in Redis, never reached by this load: what is measured is the counting, not a refusal.
            "GOVSHARE_RATE_LIMIT": "1000000/minute",
            "GOVSHARE_COST_BUDGET": "1000000000/minute",
            "GOVSHARE_AUDIT_SIGNING_KEY_FILE": str(audit / "signing.key"),
            "GOVSHARE_AUDIT_CHECKPOINT_FILE": str(audit / "checkpoints.jsonl"),
            "GOVSHARE_AUDIT_VERIFY_PUBLIC_KEY": keygen.stdout.strip().splitlines()[-1],
            "GOVSHARE_SOURCE_TIMEOUT_SECONDS": str(SOURCE_TIMEOUT),
            "GOVSHARE_SOURCE_POOL_SIZE": str(SOURCE_POOL),
            "GOVSHARE_BREAKER_RESET_SECONDS": str(BREAKER_RESET),
            "GOVSHARE_LOG_FORMAT": "json",
        }
        ports = [free_port(), free_port()]
        processes = [
            Service(
                f"govshare {n + 1}",
                [govshare, "serve", "--port", str(port)],
                home / f"govshare-{n + 1}.log",
                cwd=home,
                env=env,
            )
            for n, port in enumerate(ports)
        ]
        for process in processes:
            process.start()
            services.append(process)
        front, stats = free_port(), home / "haproxy.sock"
        (home / "haproxy.cfg").write_text(haproxy_config(front, ports, stats))
        haproxy = Service("HAProxy", [binary("haproxy"), "-f", str(home / "haproxy.cfg"), "-db"], home / "haproxy.log")
        haproxy.start()
        services.append(haproxy)
        for process, port in zip(processes, ports, strict=True):
            wait_for(f"{process.name} on {port}", lambda port=port: ready(port), process)
        say(f"govshare on {ports[0]} and {ports[1]}, ready")
        wait_for("HAProxy's stats socket", lambda: len(haproxy_servers(stats)) == 2, haproxy)
        watcher = Watcher(stats, ports)
        wait_for("HAProxy: both processes up", watcher.all_up, haproxy)
        say(f"HAProxy on {front}: both processes up; {CLIENTS} clients")

        load = Load(f"http://127.0.0.1:{front}", world.keys)

        def cpu_split() -> dict[str, float]:
            """CPU seconds so far: the govshare processes, HAProxy, this load generator, and the whole machine."""
            govshare_cpu = cpu_seconds([p.pid for p in processes])
            own = cpu_seconds([os.getpid()])
            proxy = cpu_seconds([haproxy.pid])
            return {
                "govshare": govshare_cpu,
                "haproxy": proxy,
                "load_generator": own,
                "machine": machine_busy_seconds(),
            }

        memory = {"start": {p.name: rss_mb(p.pid) for p in processes}}
        rounds: list[dict] = []
        faults = [dataclasses.replace(f, down_seen=set(), not_ready=Counter()) for f in FAULTS]
        async with load.running():
            await asyncio.sleep(1 if TINY else 5)  # warm-up: every process has answered, caches and pools filled
            # 1 2 1 2 ...: the second process drained (HAProxy sends it nothing new) or serving.
            for r in range(ROUNDS):
                for count in (1, 2):
                    haproxy_command(stats, f"set server govshare/govshare2 state {'drain' if count == 1 else 'ready'}")
                    before = {n: answered_by(row) for n, row in haproxy_servers(stats).items()}
                    load.phase = f"round{r + 1}-{count}"
                    cpu_before = cpu_split()
                    await asyncio.sleep(ROUND_SECONDS)
                    cores = {k: (v - cpu_before[k]) / ROUND_SECONDS for k, v in cpu_split().items()}
                    after = {n: answered_by(row) for n, row in haproxy_servers(stats).items()}
                    rounds.append(
                        {
                            "round": r + 1,
                            "processes": count,
                            **phase_figures(load.answers, load.phase, ROUND_SECONDS),
                            "answered_by": {n: after[n] - before[n] for n in after},
                            "cores": cores,
                        }
                    )
            haproxy_command(stats, "set server govshare/govshare2 state ready")
            load.phase = "faults"
            say(f"{ROUNDS} rounds of 1 and 2 processes done; faults")
            memory["before_faults"] = {p.name: rss_mb(p.pid) for p in processes}
            run_start = time.monotonic()
            for i, fault in enumerate(faults):
                # at its share of the run, but never before the one before has had a clean second after its window
                begin = run_start + SECONDS * (0.08 + 0.22 * i)
                if i:
                    begin = max(begin, faults[i - 1].recovered + GRACE + 1.0)
                await asyncio.sleep(max(0.0, begin - time.monotonic()))
                watcher.fault = fault
                fault.started = time.monotonic()
                if fault.name == "platform_database_restart":
                    await asyncio.to_thread(platform.stop)
                    await asyncio.sleep(OUTAGE)
                    await asyncio.to_thread(platform.start)
                elif fault.name == "redis_down":
                    await asyncio.to_thread(redis.kill)
                    await asyncio.sleep(OUTAGE)
                    redis.start()
                    await asyncio.to_thread(wait_for, "Redis", lambda: listening(redis_port), redis)
                elif fault.name == "worker_sigkill":
                    await asyncio.to_thread(processes[1].kill)
                    processes[1].start()  # as systemd's Restart=on-failure would
                    await asyncio.to_thread(
                        wait_for, "the process started again", lambda: ready(ports[1]), processes[1]
                    )
                else:
                    held = threading.Event()
                    locker = asyncio.create_task(
                        asyncio.to_thread(hold_lock, sync_url(sources[SLOWED[0]]), SLOWED[1], SLOW, held)
                    )
                    await locker
                    if not held.is_set():
                        raise RuntimeError("the source's table could not be locked")
                fault.repaired = time.monotonic()
                # Recovered: every process ready again, then HAProxy's verdict on the check that was under way, then
                # every process up at HAProxy.
                with contextlib.suppress(RuntimeError):  # not recovered: judged below
                    await asyncio.to_thread(
                        wait_for, "every process ready", lambda: all(ready(p) for p in ports), limit=RECOVERY_LIMIT
                    )
                    await asyncio.sleep(CHECK_INTERVAL + 0.5)
                    await asyncio.to_thread(wait_for, "every process up", watcher.all_up, limit=RECOVERY_LIMIT)
                say(f"{fault.name}: repaired after {fault.repaired - fault.started:.1f} s, recovered")
                fault.recovered = time.monotonic()
                if fault.name == "source_slowed":  # the breaker's reset and the reads that waited on the lock
                    fault.recovered += SOURCE_TIMEOUT + BREAKER_RESET
                watcher.fault = None
            await asyncio.sleep(
                max(
                    0.0,
                    run_start + SECONDS - time.monotonic(),
                    faults[-1].recovered + GRACE + (1 if TINY else 3) - time.monotonic(),
                )
            )
            faults_seconds = time.monotonic() - run_start
        memory["end"] = {p.name: rss_mb(p.pid) for p in processes}
        memory["end"] |= {
            "HAProxy": rss_mb(haproxy.pid),
            "Redis": rss_mb(redis.pid),
            "platform PostgreSQL": rss_mb(platform.service.pid, children=True),
        }
        memory["load generator"] = rss_mb(os.getpid())
        load_average["end"] = os.getloadavg()
        metrics = {}
        for process, port in zip(processes, ports, strict=True):
            scraped = (await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{port}/metrics")).text
            metrics[process.name] = sum(
                float(line.split()[-1])
                for line in scraped.splitlines()
                if line.startswith("govshare_access_records_written_total")
            )

        say("load stopped")
        records = read_records(platform.url, load.answers)
        verify = subprocess.run(
            [govshare, "audit", "verify"], env=env, cwd=home, capture_output=True, text=True, timeout=600
        )
        database_failures, other_failures = logged_failures([p.log for p in processes])
        problems, counts = judge(load.answers, records, faults, RESOURCE_FIELDS)
        counts["logged_request_failures"] = {"platform_database": database_failures, "other": other_failures}
        for fault in faults:
            if fault.recovered - fault.started > RECOVERY_LIMIT:
                problems.append(
                    f"{fault.name}: HAProxy did not have every process up again within {RECOVERY_LIMIT:.0f} s"
                )
            if not seen(fault, load.answers):
                problems.append(f"{fault.name}: its effect was never seen")
            following = [f.started for f in faults if f.started > fault.started]
            if not recovered_after(fault, load.answers, min(following, default=float("inf"))):
                problems.append(f"{fault.name}: no clean answer after it")
        if verify.returncode:
            problems.append(f"govshare audit verify exited {verify.returncode}")
        result = report(load, rounds, faults, counts, memory, load_average, metrics, verify, problems, faults_seconds)
        RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    finally:
        if watcher is not None:
            watcher.stop.set()
        for service in reversed(services):
            if service is not (platform.service if platform else None):
                service.stop()
        drop_sources(sources)
        if platform is not None:
            platform.remove()
        if KEEP_LOGS:
            KEEP_LOGS.mkdir(parents=True, exist_ok=True)
            if load is not None:
                with (KEEP_LOGS / "answers.jsonl").open("w") as out:
                    for answer in load.answers:
                        out.write(json.dumps(dataclasses.asdict(answer)) + "\n")
            for log in home.glob("*.log"):
                shutil.copy(log, KEEP_LOGS / log.name)
            print(f"logs in {KEEP_LOGS}", file=sys.stderr)
        shutil.rmtree(home, ignore_errors=True)
    for problem in problems:
        print("BROKEN:", problem)
    return 1 if problems else 0


# What the processes log when a request's key lookup failed on the platform database's connection (psycopg, asyncpg,
# the OS): the exception's own line names one of these.
DATABASE_FAILURES = (
    "ConnectionRefusedError",
    "ConnectionResetError",
    "OperationalError",
    "CannotConnectNowError",
    "ConnectionDoesNotExistError",
    "connection is closed",
    "AdminShutdown",
    "the database system is",
)
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Shutdown)\b")


def logged_failures(logs: list[Path]) -> tuple[int, int]:
    """The requests the processes logged as failed ("answering POST /graphql failed", INTERNAL_ERROR): how many in
    the key lookup (server.py ``Runtime.authenticate``) on the platform database's connection, how many otherwise."""
    database = other = 0
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            if "answering POST /graphql failed" not in line:
                continue
            try:
                trace = json.loads(line).get("exc_info") or ""
            except ValueError:
                other += 1
                continue
            raised = [t for t in trace.splitlines() if EXCEPTION_LINE.match(t)]
            in_lookup = 'server.py", line' in trace and "in authenticate\n" in trace
            if in_lookup and raised and any(name in raised[-1] for name in DATABASE_FAILURES):
                database += 1
            else:
                other += 1
    return database, other


def read_records(url: str, answers: list[Answer]) -> dict[str, dict]:
    """The access records per request id, their times moved onto the answers' monotonic clock."""
    offset = time.time() - time.monotonic()
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT request_id, count(*), extract(epoch FROM min(at)), extract(epoch FROM max(at)) "
                    "FROM access_records GROUP BY request_id"
                )
            ).all()
    finally:
        engine.dispose()
    return {rid: {"count": n, "first": float(a) - offset, "last": float(b) - offset} for rid, n, a, b in rows}


def drop_sources(sources: dict[str, str]) -> None:
    names = [make_url(sync_url(u)).database for u in sources.values() if u.startswith("postgresql")]
    if not names:
        return
    admin = create_engine(sync_url(SOURCES_URL + "postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def report(load, rounds, faults, counts, memory, load_average, metrics, verify, problems, faults_seconds) -> dict:
    by_count = {n: [r for r in rounds if r["processes"] == n] for n in (1, 2)}
    rps = {n: [r["requests_per_second"] for r in by_count[n]] for n in (1, 2)}
    ratio = statistics.mean(rps[2]) / statistics.mean(rps[1]) if rps[1] and statistics.mean(rps[1]) else 0.0
    fault_phase = phase_figures(load.answers, "faults", faults_seconds)
    result = {
        "tiny": TINY,
        "clients": CLIENTS,
        "cpus": os.cpu_count(),
        "load_average": load_average,
        "throughput": {
            "rounds": rounds,
            "requests_per_second": {str(n): statistics.mean(v) if v else 0.0 for n, v in rps.items()},
            "two_over_one": ratio,
            "two_over_one_median_of_rounds": statistics.median(b / a for a, b in zip(rps[1], rps[2], strict=True) if a)
            if rps[1]
            else 0.0,
            "p50_ms": {str(n): statistics.median(r["p50_ms"] for r in by_count[n]) for n in (1, 2) if by_count[n]},
            "p99_ms": {str(n): statistics.median(r["p99_ms"] for r in by_count[n]) for n in (1, 2) if by_count[n]},
            # cores used on average in the rounds of each count: govshare, HAProxy, this load generator, the machine
            "cores": {
                str(n): {k: statistics.mean(r["cores"][k] for r in by_count[n]) for k in by_count[n][0]["cores"]}
                for n in (1, 2)
                if by_count[n]
            },
        },
        "faults_run": {"seconds": faults_seconds, **fault_phase},
        "faults": [
            {
                "name": f.name,
                "what": f.what,
                "at_s": f.started - faults[0].started,
                "repaired_after_s": f.repaired - f.started,
                "recovered_after_s": f.recovered - f.started,
                "haproxy_took_out": sorted(f.down_seen),
                "readyz_failing_checks": dict(f.not_ready),
                "answers_explained": counts["explained"][f.name],
            }
            for f in faults
        ],
        "statuses": dict(Counter(str(a.status) for a in load.answers)),
        "codes": dict(Counter(c for a in load.answers for c in a.codes)),
        "counts": {k: v for k, v in counts.items() if k != "explained"},
        "records_written_by_metrics": metrics,
        "memory_mb": memory,
        "audit_verify": {
            "exit": verify.returncode,
            "output": (verify.stdout + verify.stderr).strip().splitlines()[-6:],
        },
        "problems": problems,
    }
    rows = [
        (
            "clients, CPUs, load average start -> end",
            f"{CLIENTS}, {os.cpu_count()}, {load_average['start'][0]:.2f} -> {load_average['end'][0]:.2f}",
        ),
    ]
    for n in (1, 2):
        if by_count[n]:
            rows.append(
                (
                    f"{n} process{'es' if n > 1 else ''}: req/s (rounds), p50 / p99",
                    f"{statistics.mean(rps[n]):.0f} ({', '.join(f'{v:.0f}' for v in rps[n])}), "
                    f"{result['throughput']['p50_ms'][str(n)]:.0f} / {result['throughput']['p99_ms'][str(n)]:.0f} ms",
                )
            )
    for n, cores in result["throughput"]["cores"].items():
        rest = cores["machine"] - cores["govshare"] - cores["haproxy"] - cores["load_generator"]
        rows.append(
            (
                f"  cores used with {n}: govshare, HAProxy, load generator, rest of the machine",
                f"{cores['govshare']:.2f}, {cores['haproxy']:.2f}, {cores['load_generator']:.2f}, {max(0.0, rest):.2f}",
            )
        )
    rows.append(
        (
            "2 processes over 1 (whole run; median of rounds)",
            f"{ratio:.2f}; {result['throughput']['two_over_one_median_of_rounds']:.2f}",
        )
    )
    rows.append(
        (
            "faults run: seconds, requests, req/s, p50 / p99",
            f"{faults_seconds:.0f}, {fault_phase['requests']}, {fault_phase['requests_per_second']:.0f}, "
            f"{fault_phase['p50_ms']:.0f} / {fault_phase['p99_ms']:.0f} ms",
        )
    )
    for f in result["faults"]:
        explained = ", ".join(f"{v} x {k}" for k, v in f["answers_explained"].items()) or "no 5xx"
        rows.append(
            (
                f"  {f['name']} (+{f['at_s']:.0f} s)",
                f"repaired {f['repaired_after_s']:.1f} s, all up {f['recovered_after_s']:.1f} s, out: "
                f"{','.join(f['haproxy_took_out']) or '-'} ({', '.join(sorted(f['readyz_failing_checks'])) or 'ready'}); "
                f"{explained}",
            )
        )
    rows += [
        ("HTTP statuses", ", ".join(f"{k}: {v}" for k, v in sorted(result["statuses"].items()))),
        ("error codes", ", ".join(f"{k}: {v}" for k, v in sorted(result["codes"].items())) or "-"),
        ("unexplained 5xx", counts["unexplained_5xx"]),
        (
            "accesses answered / access records (of requests killed in flight)",
            f"{counts['answered_accesses']} / {counts['access_records']} ({counts['records_of_requests_killed_in_flight']})",
        ),
        ("govshare audit verify", f"exit {verify.returncode}"),
        ("RSS MB at start", ", ".join(f"{k} {v:.0f}" for k, v in memory["start"].items())),
        ("RSS MB at end", ", ".join(f"{k} {v:.0f}" for k, v in memory["end"].items())),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return result


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
