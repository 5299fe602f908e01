"""What `govshare serve --workers N` buys: throughput of the canonical lookup (bench/bench.py's) at 32 clients
against 1 worker and against 2, measured in alternating bursts in one run (A B A B ...), so that the noise of a
shared machine hits both alike. The ratio is what is kept; absolute figures are printed for the record only.

    .venv/bin/python bench/workers.py              # 3 rounds of 8 s bursts per server (about a minute)
    BENCH_WORKERS=1,2,3 BENCH_ROUNDS=5 .venv/bin/python bench/workers.py

Builds its own demo world in a temporary folder (SQLite platform database and sources, as `make run`), starts one
`govshare serve --workers N` per N on the same world (so all of them append to one access chain), and drives them
with wrk (Debian's `wrk`: a C load generator, so the clients cost less of the two cores than Python ones would).
It checks each server answers the lookup before measuring, fails on any non-2xx answer, and prints req/s per
server, the ratio to 1 worker (over the whole run and the median of the rounds' ratios) and each server's resident
memory (all its processes), and writes bench/workers.json. The load generator runs on the same machine: on 2 cores
it takes part of the CPU the workers would otherwise have.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import CANONICAL_QUERY, LOOKUP_CALLER, OPERATOR  # noqa: E402  (bench/bench.py: this folder is on sys.path)
from demo.build import build_demo  # noqa: E402
from govshare.config import load_settings  # noqa: E402

WORKERS = [int(n) for n in os.environ.get("BENCH_WORKERS", "1,2").split(",")]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "8"))
CLIENTS = 32
RESULTS = Path(os.environ.get("BENCH_RESULTS", REPO / "bench" / "workers.json"))

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = %s
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
wrk.headers["X-Purpose"] = "%s"
wrk.headers["X-Operator"] = "%s"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> list[int]:
    """Resident memory of ``pid`` (a supervisor, or the one process) and of each of its children (its workers, and
    multiprocessing's resource tracker), in KiB."""
    found = (re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{one}/status").read_text()) for one in server_pids(pid))
    return [int(m.group(1)) for m in found if m]


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) the processes ``pids`` have used so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time the whole machine has spent busy so far (every process: this bench's and everyone else's)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def server_pids(pid: int) -> list[int]:
    return [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]


def wrk(port: int, script: Path, pid: int) -> dict[str, float]:
    """One burst of CLIENTS connections for SECONDS: requests per second, and the CPU time the server (all its
    processes), wrk, and the rest of the machine spent meanwhile."""
    pids = server_pids(pid)
    server, machine, load = cpu_seconds(pids), machine_busy_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN)
    run = subprocess.run(
        ["wrk", "-t2", f"-c{CLIENTS}", f"-d{SECONDS}s", "-s", str(script), f"http://127.0.0.1:{port}/graphql"],
        capture_output=True,
        text=True,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server, machine = cpu_seconds(pids) - server, machine_busy_seconds() - machine
    client = after.ru_utime + after.ru_stime - load.ru_utime - load.ru_stime
    if "Non-2xx" in run.stdout or "Socket errors" in run.stdout:
        raise RuntimeError(f"wrk saw failures:\n{run.stdout}")
    requests = int(re.search(r"(\d+) requests in", run.stdout).group(1))
    return {
        "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", run.stdout).group(1)),
        "server_cpu_ms_per_request": server * 1000 / requests,
        "server_cores": server / SECONDS,
        "wrk_cores": client / SECONDS,
        "others_cores": max(0.0, machine - server - client) / SECONDS,
    }


async def wait_answering(port: int, process: subprocess.Popen, headers: dict, body: dict, person: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError(f"server on port {port} exited with {process.returncode}")
            try:
                response = await http.post("/graphql", json=body, headers=headers)
            except httpx.TransportError:
                await asyncio.sleep(0.1)
                continue
            response.raise_for_status()
            assert response.json()["data"]["person"]["idNumber"] == person, response.text
            return
    raise RuntimeError(f"server on port {port} did not start")


async def main() -> dict:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    home = Path(tempfile.mkdtemp(prefix="govshare-workers-"))
    servers: dict[int, tuple[int, subprocess.Popen]] = {}
    try:
        settings = load_settings(env={}, var_dir=home / "var", catalog_dir=REPO / "catalog" / "demo")
        world = await build_demo(settings, persons=1500, enterprises=400)
        person = world.showcase["person_luozhuang"]
        department, purpose = LOOKUP_CALLER
        headers = {"Authorization": f"Bearer {world.keys[department]}", "X-Purpose": purpose, "X-Operator": OPERATOR}
        body = {"query": CANONICAL_QUERY, "variables": {"id": person}}
        script = home / "lookup.lua"
        script.write_text(WRK_SCRIPT % (json.dumps(json.dumps(body)), world.keys[department], purpose, OPERATOR))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GOVSHARE_")},
            "GOVSHARE_VAR_DIR": str(home / "var"),
            "GOVSHARE_CATALOG_DIR": str(REPO / "catalog" / "demo"),
            "GOVSHARE_RATE_LIMIT": "",
            "GOVSHARE_COST_BUDGET": "",
            "GOVSHARE_CACHE_MAX_SECONDS": "0",
            "GOVSHARE_AUDIT_CHECKPOINT_SECONDS": "0",
            "GOVSHARE_AUDIT_CHECKPOINT_RECORDS": "0",
            "GOVSHARE_FRESHNESS_CHECK_SECONDS": "0",
        }
        command = str(Path(sys.executable).with_name("govshare"))
        for workers in WORKERS:
            port = free_port()
            process = subprocess.Popen(
                [command, "serve", "--workers", str(workers), "--port", str(port)],
                cwd=home,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            servers[workers] = (port, process)
        for port, process in servers.values():
            await wait_answering(port, process, headers, body, person)
        for port, _ in servers.values():  # every worker warmed up (each answers some of the burst)
            subprocess.run(
                ["wrk", "-t2", f"-c{CLIENTS}", "-d2s", "-s", str(script), f"http://127.0.0.1:{port}/graphql"],
                capture_output=True,
                check=True,
            )
        bursts: dict[int, list[dict[str, float]]] = {n: [] for n in servers}
        for _ in range(ROUNDS):  # A B A B ...: the machine's drift hits both alike
            for workers, (port, process) in servers.items():
                bursts[workers].append(wrk(port, script, process.pid))
        memory = {n: rss_kib(process.pid) for n, (_, process) in servers.items()}
    finally:
        for _, process in servers.values():
            process.terminate()
        for _, process in servers.values():
            process.wait(timeout=60)
        shutil.rmtree(home, ignore_errors=True)
    base = WORKERS[0]

    def mean(n: int, figure: str) -> float:
        return statistics.mean(b[figure] for b in bursts[n])

    rps = {n: [b["requests_per_second"] for b in bursts[n]] for n in servers}
    results = {
        "clients": CLIENTS,
        "rounds": ROUNDS,
        "seconds_per_burst": SECONDS,
        "cpus": os.cpu_count(),
        "servers": {
            str(n): {
                "requests_per_second": statistics.mean(rps[n]),
                "rounds": rps[n],
                f"over_{base}_worker": statistics.mean(rps[n]) / statistics.mean(rps[base]),
                f"over_{base}_worker_median_of_rounds": statistics.median(
                    a / b for a, b in zip(rps[n], rps[base], strict=True)
                ),
                "server_cpu_ms_per_request": mean(n, "server_cpu_ms_per_request"),
                "server_cores": mean(n, "server_cores"),
                "wrk_cores": mean(n, "wrk_cores"),
                "others_cores": mean(n, "others_cores"),
                "rss_mb": sum(memory[n]) / 1024,
                "rss_mb_by_process": [kib / 1024 for kib in memory[n]],
            }
            for n in servers
        },
    }
    print(f"canonical lookup, {CLIENTS} clients (wrk), {ROUNDS} rounds of {SECONDS} s, {os.cpu_count()} CPUs")
    print(
        "workers | req/s | rounds | ratio (whole run) | ratio (median of rounds) | server CPU ms/request "
        "| cores used: server, wrk, rest of the machine | RSS all processes"
    )
    for n, f in results["servers"].items():
        print(
            f"{n:>7} | {f['requests_per_second']:.0f} | {', '.join(f'{r:.0f}' for r in f['rounds'])} | "
            f"{f[f'over_{base}_worker']:.2f} | {f[f'over_{base}_worker_median_of_rounds']:.2f} | "
            f"{f['server_cpu_ms_per_request']:.2f} | {f['server_cores']:.2f}, {f['wrk_cores']:.2f}, "
            f"{f['others_cores']:.2f} | {f['rss_mb']:.0f} MB ({' + '.join(f'{mb:.0f}' for mb in f['rss_mb_by_process'])})"
        )
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    asyncio.run(main())
