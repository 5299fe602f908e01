"""Load under faults: concurrent clients against a real `govshare serve` on loopback while a source is
taken away and given back. Bounded in count and time; prints a table and exits non-zero on a broken promise.

    make loadtest                     # 50 clients, 60 s
    LOADTEST_CLIENTS=10 LOADTEST_SECONDS=10 make loadtest
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
GOVSHARE = str(Path(sys.executable).with_name("govshare"))
CLIENTS = int(os.environ.get("LOADTEST_CLIENTS", "50"))
OPERATOR = "loadtest-officer"  # X-Operator on every request: production requires one (operator_required, Art 22)
SECONDS = float(os.environ.get("LOADTEST_SECONDS", "60"))
PERSON = "371311197811261792"  # in every demo build

# (department, purpose, query, resource fields in the query): allowed, partly denied and refused mixes.
MIX = [
    ("market", "market.licence-review", f'{{ person(idNumber: "{PERSON}") {{ name phone }} }}', 1),
    ("market", "market.licence-review", "{ enterpriseList(first: 20) { items { name legalRepIdNumber } } }", 1),
    (
        "land",
        "land.property-registration",
        "{ realEstateList(first: 20) { items { ownerName area } } enterpriseList(first: 5) { items { name } } }",
        2,
    ),
    ("civil", "civil.marriage-registration", "{ personList(first: 10) { items { name gender } } }", 1),
    (
        "hrss",
        "hrss.insurance-enrolment",
        "{ personList(first: 10) { items { idNumber name socialInsurance { insuranceStatus } } } }",
        2,
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def client(http: httpx.AsyncClient, keys: dict, n: int, stop: float, results: list) -> None:
    i = n
    while time.monotonic() < stop:
        department, purpose, query, fields = MIX[i % len(MIX)]
        i += 1
        started = time.perf_counter()
        response = await http.post(
            "/graphql",
            json={"query": query},
            headers={"Authorization": f"Bearer {keys[department]}", "X-Purpose": purpose, "X-Operator": OPERATOR},
        )
        body = response.json()
        codes = [e.get("extensions", {}).get("code") for e in body.get("errors", [])]
        results.append((response.status_code, time.perf_counter() - started, fields, codes, department))


async def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="govshare-load-"))
    env = {
        **os.environ,
        "GOVSHARE_VAR_DIR": str(home / "var"),
        "GOVSHARE_CATALOG_DIR": str(REPO / "catalog" / "demo"),
        "GOVSHARE_RATE_LIMIT": "",
        "GOVSHARE_COST_BUDGET": "",
        "GOVSHARE_BREAKER_RESET_SECONDS": "2",
    }
    subprocess.run([GOVSHARE, "demo"], cwd=home, env=env, check=True, capture_output=True, timeout=300)
    keys = json.loads((home / "var" / "demo-keys.json").read_text())
    port = free_port()
    server = subprocess.Popen(
        [GOVSHARE, "serve", "--port", str(port)],
        cwd=home,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    land = home / "var" / "sources" / "land.db"  # a table dropped mid-run, as in issue 3
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=30, limits=httpx.Limits(max_connections=CLIENTS)
        ) as http:
            for _ in range(100):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.2)
            rss_start = rss_kib(server.pid)
            results: list = []
            stop = time.monotonic() + SECONDS

            def run_sql(*statements):
                with sqlite3.connect(land, timeout=30) as conn:
                    for statement in statements:
                        conn.execute(statement)

            async def fault():  # the land department loses its table for a while, then gets it back
                await asyncio.sleep(SECONDS / 3)
                await asyncio.to_thread(
                    run_sql, "CREATE TABLE real_estate_saved AS SELECT * FROM real_estate", "DROP TABLE real_estate"
                )
                await asyncio.sleep(SECONDS / 4)
                await asyncio.to_thread(run_sql, "ALTER TABLE real_estate_saved RENAME TO real_estate")

            await asyncio.gather(fault(), *(client(http, keys, n, stop, results) for n in range(CLIENTS)))
            await asyncio.sleep(1.5)  # the last access records are written before each response; let logs settle
            rss_end = rss_kib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)

    statuses = [r[0] for r in results]
    fivexx = [s for s in statuses if s >= 500]
    latencies = sorted(r[1] for r in results)
    answered = sum(r[2] for r in results if r[0] == 200)
    with sqlite3.connect(home / "var" / "platform.db") as conn:
        records = conn.execute("SELECT COUNT(*) FROM access_records").fetchone()[0]
    unavailable = sum(1 for r in results if "SOURCE_UNAVAILABLE" in r[3])
    last_failure = max((i for i, r in enumerate(results) if "SOURCE_UNAVAILABLE" in r[3]), default=len(results))
    recovered = any(r[0] == 200 and r[4] == "land" and not r[3] for r in results[last_failure + 1 :])
    rows = [
        ("clients x seconds", f"{CLIENTS} x {SECONDS:.0f}"),
        ("requests", len(results)),
        ("requests per second", f"{len(results) / SECONDS:.0f}"),
        (
            "p50 / p99 latency",
            f"{statistics.median(latencies) * 1000:.1f} ms / {latencies[int(len(latencies) * 0.99) - 1] * 1000:.1f} ms",
        ),
        ("HTTP 5xx", f"{len(fivexx)} {sorted({c for r in results if r[0] >= 500 for c in r[3]})}"),
        ("answers with SOURCE_UNAVAILABLE (land's table gone)", unavailable),
        ("land answered again after the fault", recovered),
        ("resource accesses answered / access records", f"{answered} / {records}"),
        ("server RSS start -> end", f"{rss_start / 1024:.0f} MiB -> {rss_end / 1024:.0f} MiB"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    broken = []
    if fivexx:
        broken.append("5xx answers")
    if answered != records:
        broken.append("access records do not match the accesses answered")
    if unavailable == 0:
        broken.append("the source fault was never seen")
    if not recovered:
        broken.append("the source never answered again")
    if rss_end > 2 * rss_start + 100 * 1024:
        broken.append("memory grew without bound")
    shutil.rmtree(home, ignore_errors=True)
    for problem in broken:
        print("BROKEN:", problem)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
