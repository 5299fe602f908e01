"""govshare beside the GraphQL server a department would pick instead (issue 15): `make bench-peers`.

    make bench-peers                                   # ~15 min: writes bench/peers.json, prints the table
    PEERS_SECONDS=3 PEERS_ROUNDS=1 make bench-peers    # a quick look (~3 min); not for the record
    PEERS_TINY=1 .venv/bin/python bench/peers.py --check   # the same-answers check only (tests/test_bench_peers.py)

Three servers on the same PostgreSQL data, driven by the same load generator (Debian's wrk, a Lua script per
server and workload for the POST bodies and headers):

* govshare as a department deploys it: `govshare serve`, production settings, its sources on PostgreSQL
  (demo/build.py's world, built with ``engine="postgres"`` into databases of this run's own);
* PostGraphile 4 (bench/peers/: pinned by its package-lock.json, installed by `npm ci`) over one database holding
  copies of the same persons and enterprises, with the closest equivalent policy in PostgreSQL
  (bench/peers/postgraphile.sql: a role per consumer department, chosen per request from its key; column grants for
  the items not granted; row-level security for the county scope; a view for the mask);
* a hand-written Starlette + SQLAlchemy endpoint (bench/peers/handwritten.py): the same SQL with no policy, on
  govshare's own stack (asyncpg) and sources, answers encoded by msgspec as govshare's are.

Workloads: (a) personList(first: 100) as 人社局 (hrss: county 371311, idNumber masked) for the 5 person items it
may read (idNumber name gender countyCode address); (b) personList(first: 1000) as 市场监管局 (market) for the 6 its
grant covers (idNumber name gender birthDate countyCode address); (c) person(idNumber:) as market, the same 6,
cycling over PEERS_LOOKUPS persons; (d) enterpriseList(first: 100) as market: 6 enterprise items and the legal
representative link with the 6 person items.

Before measuring, all three must give the same rows and values for every workload (and every lookup), else it
stops with a diff. Then PEERS_ROUNDS rounds, the peers' order rotated each round; in each, every peer is started
alone, and on each workload warmed, measured at 1 client (p50, p99) and at PEERS_CLIENTS clients (requests/s), each
for PEERS_SECONDS, its processes' RSS taken after the load, and its answer checked again. Ratios are taken within a
round; their median is kept. With 2 processes too where both GraphQL servers can have them (govshare: when
`govshare serve --help` offers --workers; otherwise skipped, saying so). Everything it starts is stopped by PID,
its databases and roles dropped, whatever happens.

Environment (none is a govshare setting): PEERS_SECONDS (10), PEERS_WARMUP_SECONDS (1), PEERS_ROUNDS (3),
PEERS_CLIENTS (32), PEERS_POOL (connections per database, 10, shared out among a peer's processes), PEERS_LOOKUPS
(100), PEERS_PROCESSES ("1,2"), PEERS_RESULTS (bench/peers.json), PEERS_PLATFORM (govshare's platform database:
sqlite, the default configuration's file in var/, or postgres), PEERS_TINY=1 (a small world and pages: the test's).
GOVSHARE_DEMO_POSTGRES_URL names the PostgreSQL server, as for `govshare demo --engine postgres`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import difflib
import hashlib
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from connectors.masking import department_key, hmac_pads  # noqa: E402
from connectors.urls import async_url, sync_url  # noqa: E402
from demo.build import DEMO_GRANTS, build_demo, ensure_database  # noqa: E402
from govshare.config import Settings, load_settings  # noqa: E402
from govshare.keys import platform_secret  # noqa: E402

PEERS_DIR = REPO / "bench" / "peers"
BIN = Path(sys.executable).parent
TINY = os.environ.get("PEERS_TINY") == "1"
SECONDS = float(os.environ.get("PEERS_SECONDS", "10"))
WARMUP_SECONDS = float(os.environ.get("PEERS_WARMUP_SECONDS", "1"))
ROUNDS = int(os.environ.get("PEERS_ROUNDS", "3"))
CLIENTS = int(os.environ.get("PEERS_CLIENTS", "32"))
POOL = int(os.environ.get("PEERS_POOL", "10"))
LOOKUPS = int(os.environ.get("PEERS_LOOKUPS", "20" if TINY else "100"))
PROCESS_COUNTS = [int(n) for n in os.environ.get("PEERS_PROCESSES", "1,2").split(",") if n.strip()]
RESULTS = Path(os.environ.get("PEERS_RESULTS", REPO / "bench" / "peers.json"))
# govshare's platform database (keys, policies, access records): SQLite in var/ (the default configuration), or
# "postgres": a database of this run's own on the same PostgreSQL server.
PLATFORM = os.environ.get("PEERS_PLATFORM", "sqlite")
PERSONS, ENTERPRISES = (300, 100) if TINY else (3000, 1000)
PAGES = {"a": 10, "b": 50, "d": 10} if TINY else {"a": 100, "b": 1000, "d": 100}
OPERATOR = "bench-officer"  # the acting officer every govshare request names (X-Operator: production requires one)
PEERS = ("govshare", "postgraphile", "handwritten")

# What each consumer may read, as bench/peers/postgraphile.sql writes it in PostgreSQL; checked against the demo's
# grants (``check_grants``) so that a change there cannot silently make the two sides differ.
HRSS_SCOPE = {"countyCode": ["371311"]}
HRSS_MASKS = {"idNumber": "id_number"}
HRSS_ITEMS = ["idNumber", "name", "countyCode", "address"]
MARKET_ITEMS = ["idNumber", "name", "gender", "birthDate", "countyCode", "address"]

PERSON_ITEMS = "idNumber name gender birthDate countyCode address"
# Every item hrss may read: birthDate is not granted (the mask hides its digits), so in production it is no field of
# hrss's view of the schema, as it is no column of hrss's view in PostgreSQL: asking for it fails the whole query.
HRSS_PERSON_ITEMS = "idNumber name gender countyCode address"
ENTERPRISE_ITEMS = "creditCode name legalRepName registeredCapital establishedDate status"
NUMERIC = {"registeredCapital"}  # govshare answers a number, PostGraphile a BigFloat string, msgspec a Decimal string


@dataclasses.dataclass(frozen=True)
class Workload:
    key: str
    title: str
    department: str
    purpose: str
    govshare: str
    postgraphile: str
    lookup: bool = False  # cycled over the lookup persons; otherwise one page

    def variables(self, lookups: list[str]) -> list[dict[str, Any]]:
        if self.lookup:
            return [{"id": person} for person in lookups]
        return [{"n": PAGES[self.key]}]


WORKLOADS = (
    Workload(
        "a",
        f"personList(first: {PAGES['a']}), 5 items, hrss (scope + mask)",
        "hrss",
        "hrss.insurance-enrolment",
        "query A($n: Int) { personList(first: $n) { items { " + HRSS_PERSON_ITEMS + " } } }",
        "query A($n: Int) { personList: allHrssPeople(first: $n) { items: nodes { " + HRSS_PERSON_ITEMS + " } } }",
    ),
    Workload(
        "b",
        f"personList(first: {PAGES['b']}), 6 items, market",
        "market",
        "market.licence-review",
        "query B($n: Int) { personList(first: $n) { items { " + PERSON_ITEMS + " } } }",
        "query B($n: Int) { personList: allPeople(first: $n) { items: nodes { " + PERSON_ITEMS + " } } }",
    ),
    Workload(
        "c",
        "person(idNumber:) lookup, 6 items, market",
        "market",
        "market.licence-review",
        "query C($id: String!) { person(idNumber: $id) { " + PERSON_ITEMS + " } }",
        "query C($id: String!) { person: personByIdNumber(idNumber: $id) { " + PERSON_ITEMS + " } }",
        lookup=True,
    ),
    Workload(
        "d",
        f"enterpriseList(first: {PAGES['d']}) with the legal representative link, market",
        "market",
        "market.licence-review",
        "query D($n: Int) { enterpriseList(first: $n) { items { "
        + ENTERPRISE_ITEMS
        + " legalRepresentative { "
        + PERSON_ITEMS
        + " } } } }",
        "query D($n: Int) { enterpriseList: allEnterprises(first: $n) { items: nodes { "
        + ENTERPRISE_ITEMS
        + " legalRepresentative: personByLegalRepIdNumber { "
        + PERSON_ITEMS
        + " } } } }",
    ),
)


class PeersError(RuntimeError):
    """The bench cannot go on: a peer did not start, answered differently, or failed under load."""


# -- tools ----------------------------------------------------------------------------------------------------


def npm_ci() -> None:
    """`npm ci` in bench/peers/ (PostGraphile from its lock) unless node_modules was installed from this very lock."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise PeersError("node and npm are needed for PostGraphile (bench/peers/): apt-get install -y npm")
    digest = hashlib.sha256((PEERS_DIR / "package-lock.json").read_bytes()).hexdigest()
    stamp = PEERS_DIR / "node_modules" / ".govshare-lock-sha256"
    if stamp.exists() and stamp.read_text() == digest:
        return
    subprocess.run(
        [npm, "ci", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=PEERS_DIR,
        check=True,
        capture_output=True,
        timeout=600,
    )
    stamp.write_text(digest)


def wrk_command() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise PeersError("wrk is needed (the load generator, Debian's package): apt-get install -y wrk")
    return found


def govshare_workers() -> str | None:
    """None where `govshare serve` can run several processes (--workers); otherwise why the 2-process round is
    skipped."""
    shown = subprocess.run([str(BIN / "govshare"), "serve", "--help"], capture_output=True, text=True, check=True)
    if "--workers" in shown.stdout:
        return None
    return "`govshare serve --help` offers no --workers yet: govshare runs as one process only"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the world --------------------------------------------------------------------------------------------------


def check_grants() -> None:
    """The demo's grants still say what bench/peers/postgraphile.sql and the hand-written SQL write."""
    grants = {(g[0], g[1], g[3][0]): g for g in DEMO_GRANTS}
    hrss = grants.get(("hrss", "police.person", "hrss.insurance-enrolment"))
    market = grants.get(("market", "police.person", "market.licence-review"))
    found = {
        "hrss": hrss and (hrss[2], hrss[6], hrss[7]),
        "market": market and (market[2], market[6], market[7]),
    }
    wanted = {"hrss": (HRSS_ITEMS, HRSS_SCOPE, HRSS_MASKS), "market": (MARKET_ITEMS, {}, {})}
    if found != wanted:
        raise PeersError(
            f"the demo's grants changed ({found}); bench/peers/postgraphile.sql and handwritten.py write {wanted}"
        )


@dataclasses.dataclass
class World:
    home: Path
    settings: Settings
    keys: dict[str, str]
    prefix: str  # of every database and role this run creates
    sources: dict[str, str]  # department -> sync URL of its database
    postgraphile_url: str  # the authenticator's connection
    roles: dict[str, str]
    lookups: list[str]
    hrss_order: tuple[str, str]  # hrss's pseudonym key, padded inner and outer (hex): the order of (a)

    @property
    def pg_keys(self) -> dict[str, str]:
        """govshare's demo keys, as PostGraphile's: the same key names the same consumer's role."""
        return {self.keys["hrss"]: self.roles["hrss"], self.keys["market"]: self.roles["market"]}


def server_url(settings: Settings, database: str) -> str:
    return make_url(settings.demo_postgres_url).set(database=database).render_as_string(hide_password=False)


def admin_engine(settings: Settings):
    return create_engine(sync_url(server_url(settings, "postgres")), isolation_level="AUTOCOMMIT")


def drop_everything(settings: Settings, prefix: str) -> None:
    """Drop every database and role named with ``prefix`` (this run's only)."""
    engine = admin_engine(settings)
    try:
        with engine.connect() as conn:
            like = prefix.replace("_", r"\_") + "%"
            databases = conn.execute(text("SELECT datname FROM pg_database WHERE datname LIKE :p"), {"p": like})
            for (name,) in databases.all():
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            roles = conn.execute(text("SELECT rolname FROM pg_roles WHERE rolname LIKE :p"), {"p": like}).all()
            for (name,) in roles:
                conn.execute(text(f'DROP ROLE IF EXISTS "{name}"'))
    finally:
        engine.dispose()


def _copy(source_url: str, target, table: str, columns: list[str]) -> int:
    """Copy ``columns`` of ``table`` (names of this file's constants, not input) from a source into peers.``table``."""
    source = create_engine(source_url)
    try:
        with source.connect() as conn:
            rows = [dict(r) for r in conn.execute(text(f"SELECT {', '.join(columns)} FROM {table}")).mappings()]  # noqa: S608
    finally:
        source.dispose()
    placeholders = ", ".join(f":{c}" for c in columns)
    target.execute(text(f"INSERT INTO peers.{table} ({', '.join(columns)}) VALUES ({placeholders})"), rows)  # noqa: S608
    return len(rows)


PERSON_COLUMNS = [
    "id_number",
    "name",
    "gender",
    "birth_date",
    "ethnicity",
    "county_code",
    "address",
    "household_id",
    "phone",
]
ENTERPRISE_COLUMNS = [
    "credit_code",
    "name",
    "legal_rep_id_number",
    "legal_rep_name",
    "county_code",
    "address",
    "registered_capital",
    "established_date",
    "business_scope",
    "status",
]


async def build_world(home: Path, prefix: str) -> World:
    """The demo world with its department databases on PostgreSQL (``prefix``police, ...), and PostGraphile's
    database (``prefix``pg) holding copies of its persons and enterprises under postgraphile.sql's policy."""
    check_grants()
    settings = load_settings(
        env={k: v for k, v in os.environ.items() if k == "GOVSHARE_DEMO_POSTGRES_URL"},
        var_dir=home / "var",
        catalog_dir=REPO / "catalog" / "demo",
    )
    if PLATFORM == "postgres":
        platform = make_url(server_url(settings, f"{prefix}platform")).set(drivername="postgresql+asyncpg")
        settings = dataclasses.replace(settings, database_url=platform.render_as_string(hide_password=False))
        ensure_database(settings.database_url)
    elif PLATFORM != "sqlite":
        raise PeersError(f"PEERS_PLATFORM is sqlite or postgres, not {PLATFORM!r}")
    built = await build_demo(
        settings, engine="postgres", database_prefix=prefix, persons=PERSONS, enterprises=ENTERPRISES
    )
    sources = {
        code: sync_url(settings.expand(url))
        for code, url in json.loads((settings.var_dir / "demo-sources.json").read_text()).items()
    }
    roles = {name: f"{prefix}{name}" for name in ("market", "hrss", "hrss_view", "anonymous", "authenticator")}
    database = f"{prefix}pg"
    admin = admin_engine(settings)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{database}"'))
    finally:
        admin.dispose()
    # Where hrss does not see the key in clear, govshare pages in the order of its pseudonym for hrss (keyed by a
    # key derived from the platform's pseudonym secret): the other two are given the same order.
    secret = platform_secret(Path(settings.expand(settings.pseudonym_secret_file)), create=False)
    inner, outer = hmac_pads(bytes.fromhex(department_key(secret, "hrss")))
    script = (PEERS_DIR / "postgraphile.sql").read_text()
    for name, value in {
        **{n: f'"{r}"' for n, r in roles.items()},
        "hrss_order_inner": inner.hex(),
        "hrss_order_outer": outer.hex(),
    }.items():
        script = script.replace("{" + name + "}", value)
    target = create_engine(sync_url(server_url(settings, database)))
    try:
        with target.begin() as conn:
            conn.exec_driver_sql(script)
            _copy(sources["police"], conn, "person", PERSON_COLUMNS)
            _copy(sources["market"], conn, "enterprise", ENTERPRISE_COLUMNS)
        with target.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    finally:
        target.dispose()
    police = create_engine(sources["police"])
    try:
        with police.connect() as conn:
            lookups = list(
                conn.execute(text("SELECT id_number FROM person ORDER BY md5(id_number) LIMIT :n"), {"n": LOOKUPS})
                .scalars()
                .all()
            )
    finally:
        police.dispose()
    pg_url = make_url(server_url(settings, database)).set(username=roles["authenticator"], password=None)
    return World(
        home,
        settings,
        built.keys,
        prefix,
        sources,
        pg_url.render_as_string(hide_password=False),
        roles,
        lookups,
        (inner.hex(), outer.hex()),
    )


# -- the peers --------------------------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += children.get(current, [])
    return tree


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and every process under it, MB."""
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of ``pid`` and every process under it."""
    ticks = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class Peer:
    name: str

    def __init__(self, world: World, processes: int) -> None:
        self.world, self.processes = world, processes
        # The same connections per database for every peer and process count: PEERS_POOL shared out among the
        # processes (PostgreSQL allows 100 in all, and others use it too). govshare's source pools and
        # PostGraphile's (pg) queue at their size; the hand-written endpoint's SQLAlchemy pools may open up to 10
        # more for a moment (its default overflow).
        self.pool = max(2, POOL // processes)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = world.home / f"{self.name}-{processes}.log"

    def command(self) -> tuple[list[str], dict[str, str], Path]:
        raise NotImplementedError

    def path(self, workload: Workload) -> str:
        return "/graphql"

    def headers(self, workload: Workload) -> dict[str, str]:
        return {"Content-Type": "application/json"}

    def body(self, workload: Workload, variables: dict[str, Any]) -> bytes:
        query = getattr(workload, self.name)
        return json.dumps({"query": query, "variables": variables}, ensure_ascii=False).encode()

    def start(self) -> None:
        args, env, cwd = self.command()
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)

    async def wait_up(self) -> None:
        assert self.process is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}") as http:
            for _ in range(600):
                if self.process.poll() is not None:
                    raise PeersError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise PeersError(f"{self.name} did not start in 60 s:\n{self.tail()}")

    def tail(self) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        return ""

    def stop(self) -> None:
        """Stop the peer's processes, by PID: the one started, then any child of it still running."""
        if self.process is None:
            return
        tree = process_tree(self.process.pid)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for pid in tree[1:]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, 9)
        self.process = None

    def rss(self) -> float:
        assert self.process is not None
        return rss_mb(self.process.pid)

    def settle(self, timeout: float = 60.0) -> None:
        """Wait until the peer is idle (under 5% of a core for a quarter of a second): wrk stops with requests in
        flight, and a server still answering them would slow the next measurement."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        before = cpu_seconds(self.process.pid)
        while time.monotonic() < deadline:
            time.sleep(0.25)
            now = cpu_seconds(self.process.pid)
            if now - before < 0.0125:
                return
            before = now

    async def answer(self, http: httpx.AsyncClient, workload: Workload, variables: dict[str, Any]) -> dict:
        response = await http.post(
            f"http://127.0.0.1:{self.port}{self.path(workload)}",
            content=self.body(workload, variables),
            headers=self.headers(workload),
        )
        if response.status_code != 200:
            raise PeersError(f"{self.name} answered ({workload.key}) {response.status_code}: {response.text[:2000]}")
        return response.json(parse_float=Decimal)


class Govshare(Peer):
    name = "govshare"

    def command(self) -> tuple[list[str], dict[str, str], Path]:
        world = self.world
        outside = world.home / "outside-var"
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSHARE_")}
        env |= {
            "GOVSHARE_VAR_DIR": str(world.settings.var_dir),
            "GOVSHARE_DATABASE_URL": world.settings.database_url,
            "GOVSHARE_CATALOG_DIR": str(world.settings.catalog_dir),
            "GOVSHARE_PRODUCTION": "true",
            "GOVSHARE_AUDIT_SIGNING_KEY_FILE": str(outside / "checkpoint-signing.key"),
            "GOVSHARE_AUDIT_CHECKPOINT_FILE": str(outside / "checkpoints.jsonl"),
            # what would refuse the bench's own load: its request rate, its rows, its pages
            "GOVSHARE_RATE_LIMIT": "",
            "GOVSHARE_COST_BUDGET": "",
            "GOVSHARE_MAX_PAGE_SIZE": str(max(PAGES.values())),
            # answers read from the sources every time, as PostGraphile's and the hand-written endpoint's are
            "GOVSHARE_CACHE_MAX_SECONDS": "0",
            "GOVSHARE_SOURCE_POOL_SIZE": str(self.pool),
        }
        key = outside / "checkpoint-signing.key"
        if not key.exists():
            outside.mkdir(exist_ok=True)
            subprocess.run(
                [str(BIN / "govshare"), "audit", "keygen", "--output", str(key)],
                cwd=world.home,
                env=env,
                check=True,
                capture_output=True,
            )
        workers = ["--workers", str(self.processes)] if self.processes > 1 else []
        return [str(BIN / "govshare"), "serve", "--port", str(self.port), *workers], env, world.home

    def headers(self, workload: Workload) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self.world.keys[workload.department]}",
            "X-Purpose": workload.purpose,
            "X-Operator": OPERATOR,
        }


class PostGraphile(Peer):
    name = "postgraphile"

    def command(self) -> tuple[list[str], dict[str, str], Path]:
        node = shutil.which("node")
        assert node is not None
        env = {
            **os.environ,
            "NODE_ENV": "production",
            "PEERS_PG_URL": self.world.postgraphile_url,
            "PEERS_PG_KEYS": json.dumps(self.world.pg_keys),
            "PEERS_PG_ANONYMOUS": self.world.roles["anonymous"],
            "PEERS_PORT": str(self.port),
            "PEERS_POOL": str(self.pool),
            "PEERS_PROCESSES": str(self.processes),
        }
        return [node, str(PEERS_DIR / "postgraphile.js")], env, PEERS_DIR

    def headers(self, workload: Workload) -> dict[str, str]:
        # The same key as govshare's request; PostGraphile knows no purpose or operator.
        return {"Content-Type": "application/json", "Authorization": f"Bearer {self.world.keys[workload.department]}"}


class Handwritten(Peer):
    name = "handwritten"

    def command(self) -> tuple[list[str], dict[str, str], Path]:
        sources = {code: async_url(self.world.sources[code]) for code in ("police", "market")}
        env = {
            **os.environ,
            "PEERS_HAND_SOURCES": json.dumps(sources),
            "PEERS_POOL": str(self.pool),
            "PEERS_HAND_HRSS_ORDER": ",".join(self.world.hrss_order),
        }
        workers = ["--workers", str(self.processes)] if self.processes > 1 else []
        args = [
            str(BIN / "python"),
            "-m",
            "uvicorn",
            "--app-dir",
            str(PEERS_DIR),
            "handwritten:app",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            "--no-access-log",
            *workers,
        ]
        return args, env, PEERS_DIR

    def path(self, workload: Workload) -> str:
        return f"/{workload.key}"

    def body(self, workload: Workload, variables: dict[str, Any]) -> bytes:
        return json.dumps({"variables": variables}).encode()


PEER_CLASSES: dict[str, type[Peer]] = {"govshare": Govshare, "postgraphile": PostGraphile, "handwritten": Handwritten}


@contextlib.asynccontextmanager
async def running(peers: list[Peer]):
    try:
        for peer in peers:
            peer.start()
        for peer in peers:
            await peer.wait_up()
        yield peers
    finally:
        for peer in peers:
            peer.stop()


# -- the same rows and values -----------------------------------------------------------------------------------


def _normal(value: Any, field: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _normal(v, k) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_normal(v, field) for v in value]
    if field in NUMERIC and value is not None:
        return str(Decimal(str(value)).normalize())
    return value


def normalised(peer: str, workload: Workload, answer: dict) -> Any:
    """The rows and values of ``answer``, comparable across peers (numbers as decimal text); an error fails. Every
    workload asks only for items its consumer may read, so govshare answers it without an error."""
    errors = answer.get("errors") or []
    data = answer.get("data")
    if errors or not data:
        raise PeersError(
            f"{peer} answered ({workload.key}) with errors: {json.dumps(errors, ensure_ascii=False)[:2000]}"
        )
    return _normal(data)


def compare(workload: Workload, variables: dict[str, Any], answers: dict[str, Any]) -> None:
    """Raise with a diff unless every peer's normalised answer equals govshare's."""
    expected = answers["govshare"]
    for peer, got in answers.items():
        if got != expected:
            diff = difflib.unified_diff(
                json.dumps(expected, ensure_ascii=False, indent=1).splitlines(),
                json.dumps(got, ensure_ascii=False, indent=1).splitlines(),
                "govshare",
                peer,
                lineterm="",
            )
            shown = "\n".join(list(diff)[:80])
            raise PeersError(
                f"({workload.key}) {variables}: {peer} answers other rows or values than govshare:\n{shown}"
            )


async def check_policy(world: World, postgraphile: Peer, http: httpx.AsyncClient) -> None:
    """PostGraphile's side refuses what govshare's grants refuse: hrss reads no person in clear, market no phone."""
    url = f"http://127.0.0.1:{postgraphile.port}/graphql"
    probes = [
        ("hrss", "{ allPeople(first: 1) { nodes { idNumber } } }"),
        ("market", "{ allPeople(first: 1) { nodes { phone } } }"),
        ("market", "{ allHrssPeople(first: 1) { nodes { idNumber } } }"),
    ]
    for department, query in probes:
        response = await http.post(
            url, json={"query": query}, headers={"Authorization": f"Bearer {world.keys[department]}"}
        )
        answer = response.json()
        if not answer.get("errors"):
            raise PeersError(f"PostGraphile let {department} read {query}: {answer}")
    rows = await postgraphile.answer(http, WORKLOADS[0], {"n": 10_000})
    counties = {row["countyCode"] for row in rows["data"]["personList"]["items"]}
    if counties != set(HRSS_SCOPE["countyCode"]):
        raise PeersError(f"PostGraphile gave hrss persons of {counties}")


async def check_same(world: World, peers: list[Peer]) -> dict[str, Any]:
    """Every workload (every lookup) asked of every peer: the same rows and values, or PeersError with a diff.
    Returns the normalised answer of each workload's first request (what a measured peer must still give)."""
    by_name = {p.name: p for p in peers}
    expected: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=60) as http:
        if "postgraphile" in by_name:
            await check_policy(world, by_name["postgraphile"], http)
        for workload in WORKLOADS:
            for variables in workload.variables(world.lookups):
                answers = {
                    p.name: normalised(p.name, workload, await p.answer(http, workload, variables)) for p in peers
                }
                if workload.lookup and answers["govshare"]["person"] is None:
                    raise PeersError(f"govshare found nobody for {variables}")
                compare(workload, variables, answers)
                expected.setdefault(workload.key, answers["govshare"])
    return expected


# -- load -------------------------------------------------------------------------------------------------------

LUA = """-- written by bench/peers.py: POST {count} bodies, cycled
local path = {path}
local headers = {headers}
local bodies = {bodies}
if #bodies == 1 then
  wrk.method = "POST"
  wrk.path = path
  wrk.body = bodies[1]
  for name, value in pairs(headers) do wrk.headers[name] = value end
else
  local i = 0
  request = function()
    i = i % #bodies + 1
    return wrk.format("POST", path, headers, bodies[i])
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'PEERS_RESULT {{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.connect, e.read,
    e.write, e.status, e.timeout))
end
"""


def lua_string(value: str) -> str:
    level = "=" * 4
    assert f"]{level}]" not in value
    return f"[{level}[{value}]{level}]"


def lua_script(peer: Peer, workload: Workload, lookups: list[str], folder: Path) -> Path:
    bodies = [peer.body(workload, v).decode() for v in workload.variables(lookups)]
    headers = "{" + ", ".join(f"[ {lua_string(k)} ] = {lua_string(v)}" for k, v in peer.headers(workload).items()) + "}"
    script = LUA.format(
        count=len(bodies),
        path=lua_string(peer.path(workload)),
        headers=headers,
        bodies="{\n" + ",\n".join(lua_string(b) for b in bodies) + "\n}",
    )
    path = folder / f"{peer.name}-{workload.key}.lua"
    path.write_text(script, encoding="utf-8")
    return path


def wrk(peer: Peer, script: Path, clients: int, seconds: float, *, warmup: bool = False) -> dict[str, float]:
    """One wrk run: requests/s, p50 and p99 (ms). Any failed request (connection, timeout, non-2xx) fails, and so
    does a measurement in which no request was answered (a warm-up may end before the first answer)."""
    args = [wrk_command(), "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "60s", "-s", str(script)]
    shown = subprocess.run(
        [*args, f"http://127.0.0.1:{peer.port}"], capture_output=True, text=True, check=True, timeout=seconds + 120
    )
    line = next((x for x in shown.stdout.splitlines() if x.startswith("PEERS_RESULT ")), None)
    if line is None:
        raise PeersError(f"wrk gave no result for {peer.name}:\n{shown.stdout}\n{shown.stderr}")
    result = json.loads(line.removeprefix("PEERS_RESULT "))
    failed = {k: result[k] for k in ("connect", "read", "write", "status", "timeout") if result[k]}
    if failed:
        raise PeersError(
            f"{peer.name} failed requests under {clients} clients ({script.name}): {failed}\n{peer.tail()}"
        )
    if not result["requests"] and not warmup:
        raise PeersError(f"{peer.name} answered no request in {seconds:.0f} s under {clients} clients ({script.name})")
    if not result["requests"]:
        return {"rps": 0.0, "p50_ms": 0.0, "p99_ms": 0.0}
    return {
        "rps": result["requests"] / (result["duration_us"] / 1e6),
        "p50_ms": result["p50_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
    }


async def still_same(peer: Peer, workload: Workload, lookups: list[str], expected: Any) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        got = normalised(peer.name, workload, await peer.answer(http, workload, workload.variables(lookups)[0]))
    if got != expected:
        compare(workload, {}, {"govshare": expected, peer.name: got})


async def measure_peer(world: World, peer: Peer, expected: dict[str, Any], folder: Path) -> dict[str, dict]:
    """One peer, started alone: each workload warmed, then 1 client (latency) and CLIENTS clients (throughput)."""
    figures: dict[str, dict] = {}
    async with running([peer]):
        for workload in WORKLOADS:
            script = lua_script(peer, workload, world.lookups, folder)
            await still_same(peer, workload, world.lookups, expected[workload.key])
            if WARMUP_SECONDS > 0:
                wrk(peer, script, CLIENTS, WARMUP_SECONDS, warmup=True)
                peer.settle()
            single = wrk(peer, script, 1, SECONDS)
            peer.settle()
            loaded = wrk(peer, script, CLIENTS, SECONDS)
            rss, load = peer.rss(), os.getloadavg()[0]
            peer.settle()
            await still_same(peer, workload, world.lookups, expected[workload.key])
            figures[workload.key] = {
                "p50_ms": single["p50_ms"],
                "p99_ms": single["p99_ms"],
                "rps": loaded["rps"],
                "rss_mb": rss,
                "load_average": load,  # the machine's 1-minute load average after it (2 cores, shared)
            }
            print(
                f"  {peer.name:<13} ({workload.key}) p50 {single['p50_ms']:7.2f} ms  p99 {single['p99_ms']:7.2f} ms  "
                f"{loaded['rps']:8.1f} req/s  {rss:6.0f} MB  (load {load:.1f})",
                flush=True,
            )
    return figures


def rotated(round_index: int) -> list[str]:
    shift = round_index % len(PEERS)
    return [*PEERS[shift:], *PEERS[:shift]]


async def measure(world: World, processes: int, expected: dict[str, Any]) -> dict[str, Any]:
    folder = world.home / f"lua-{processes}"
    folder.mkdir()
    rounds: list[dict[str, dict]] = []
    for index in range(ROUNDS):
        order = rotated(index)
        print(f"round {index + 1}/{ROUNDS}, {processes} process(es): {' '.join(order)}", flush=True)
        measured = {}
        for name in order:
            measured[name] = await measure_peer(world, PEER_CLASSES[name](world, processes), expected, folder)
        rounds.append(measured)
    summary: dict[str, Any] = {}
    for workload in WORKLOADS:
        key = workload.key
        entry: dict[str, Any] = {"workload": workload.title}
        for name in PEERS:
            entry[name] = {
                figure: round(statistics.median(r[name][key][figure] for r in rounds), 2)
                for figure in ("p50_ms", "p99_ms", "rps", "rss_mb")
            }
        entry["govshare_over_postgraphile"] = round(
            statistics.median(r["govshare"][key]["rps"] / r["postgraphile"][key]["rps"] for r in rounds), 3
        )
        entry["handwritten_over_govshare"] = round(
            statistics.median(r["handwritten"][key]["rps"] / r["govshare"][key]["rps"] for r in rounds), 3
        )
        entry["rounds"] = [{name: r[name][key] for name in PEERS} for r in rounds]
        summary[key] = entry
    return summary


# -- the run ----------------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def world_of_its_own():
    """A temporary folder and PostgreSQL databases and roles of this run's own, dropped at the end whatever happens."""
    home = Path(tempfile.mkdtemp(prefix="govshare-peers-"))
    prefix = f"peers_{os.getpid()}_{secrets.token_hex(3)}_"
    settings = load_settings(env={k: v for k, v in os.environ.items() if k == "GOVSHARE_DEMO_POSTGRES_URL"})
    try:
        yield await build_world(home, prefix)
    finally:
        drop_everything(settings, prefix)
        shutil.rmtree(home, ignore_errors=True)


def table(document: dict[str, Any]) -> str:
    lines = []
    for processes in ("1", "2"):
        section = document["processes"].get(processes)
        if not isinstance(section, dict) or "skipped" in section:
            if section:
                lines.append(f"{processes} processes: skipped ({section['skipped']})")
            continue
        lines.append(f"{processes} process(es) each; medians of {document['rounds']} rotated rounds")
        lines.append(
            f"{'':4}{'peer':<13}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>10}{'RSS MB':>8}   (1 client; req/s at "
            f"{document['clients']} clients)"
        )
        for workload in WORKLOADS:
            entry = section[workload.key]
            lines.append(f"({workload.key}) {entry['workload']}")
            for name in PEERS:
                figures = entry[name]
                lines.append(
                    f"{'':4}{name:<13}{figures['p50_ms']:>9.2f}{figures['p99_ms']:>9.2f}{figures['rps']:>10.1f}"
                    f"{figures['rss_mb']:>8.0f}"
                )
            lines.append(
                f"{'':4}govshare ÷ PostGraphile {entry['govshare_over_postgraphile']:.2f}, "
                f"hand-written ÷ govshare {entry['handwritten_over_govshare']:.2f}"
            )
    return "\n".join(lines)


async def check_only() -> None:
    """`bench/peers.py --check`: build the world, start the three, compare every workload's answers; no load, no wrk
    (tests/test_bench_peers.py runs it on the tiny world)."""
    npm_ci()
    async with world_of_its_own() as world, running([cls(world, 1) for cls in PEER_CLASSES.values()]) as peers:
        await check_same(world, peers)
    print(f"the same rows and values from {', '.join(PEERS)}: every workload, {LOOKUPS} lookups")
    print(f"dropped {world.prefix}*")


async def main() -> dict[str, Any]:
    wrk_command()
    npm_ci()
    started = time.monotonic()
    document: dict[str, Any] = {
        "tiny": TINY,
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": SECONDS,
        "rounds": ROUNDS,
        "clients": CLIENTS,
        "pool": POOL,
        "world": {"persons": PERSONS, "enterprises": ENTERPRISES, "lookups": LOOKUPS},
        "govshare_platform_database": PLATFORM,
        "load_generator": "wrk "
        + subprocess.run([wrk_command(), "-v"], capture_output=True, text=True).stdout.split()[1],
        "processes": {},
    }
    async with world_of_its_own() as world:
        print(f"world built in {time.monotonic() - started:.0f} s ({world.prefix}*)", flush=True)
        async with running([cls(world, 1) for cls in PEER_CLASSES.values()]) as peers:
            expected = await check_same(world, peers)
        print("the same rows and values from all three, every workload", flush=True)
        for processes in PROCESS_COUNTS:
            reason = govshare_workers() if processes > 1 else None
            if reason:
                print(f"{processes} processes: skipped: {reason}", flush=True)
                document["processes"][str(processes)] = {"skipped": reason}
                continue
            document["processes"][str(processes)] = await measure(world, processes, expected)
    one = document["processes"].get("1")
    if isinstance(one, dict) and "a" in one:
        for workload in WORKLOADS:  # the keys, at 1 process each
            document[workload.key] = {k: v for k, v in one[workload.key].items() if k != "rounds"}
    document["minutes"] = round((time.monotonic() - started) / 60, 1)
    print(table(document))
    RESULTS.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS} ({document['minutes']} min)")
    return document


if __name__ == "__main__":
    try:
        asyncio.run(check_only() if sys.argv[1:] == ["--check"] else main())
    except PeersError as exc:
        print(f"bench-peers: {exc}", file=sys.stderr)
        sys.exit(1)
