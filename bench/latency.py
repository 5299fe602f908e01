"""Single-client latency over HTTP: p50 and p99 of sequential requests on one keep-alive connection to a real
uvicorn server, for the canonical lookup and a small list (issue 15: the p99 tail).

    .venv/bin/python bench/latency.py                          # this tree, 3 rounds x 1000 requests per workload
    .venv/bin/python bench/latency.py --server old=/work/wt-base --server new=.   # two trees, interleaved
    .venv/bin/python bench/latency.py --server gc-off=.:BENCH_GC=off --server plain=.

Builds the demo world once (in a temporary folder, SQLite sources, this tree's code), starts one server per
``--server LABEL=TREE[:VAR=VALUE,...]`` (each tree's own .venv, the variables added to its environment) on the same
world, then runs the rounds interleaved: in each round every server gets ``--requests`` of every workload, one
after the other, so that the machine's drift hits them alike. The servers run with the settings a deployment has
(policy check every refresh_seconds, freshness checks, signed checkpoints), except the rate limit, the cost budget
and the source cache, which would refuse or short-cut thousands of identical requests.

``--gc-log`` adds, to every server, a ``gc.callbacks`` hook that writes how long each collection took (by
generation) to a file, summarised per server at the end: evidence for or against the collector as a cause.
``--json FILE`` writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import CANONICAL_QUERY, LOOKUP_CALLER, OPERATOR, _wait_up, bench_settings, free_port  # noqa: E402
from demo.build import build_demo  # noqa: E402

LIST_QUERY = "query($n: Int) { enterpriseList(first: $n) { items { creditCode name status registeredCapital } } }"
LIST_CALLER = ("land", "land.property-registration")

# Run before uvicorn in the server process when --gc-log is given: one line per collection, "generation seconds".
GC_HOOK = """
import gc, os, sys, time
_log = open(os.environ["BENCH_GC_LOG"], "a", buffering=1)
_started = [0.0]
def _gc_timer(phase, info):
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        _log.write(f"{info['generation']} {time.perf_counter() - _started[0]:.6f} {time.time():.6f}\\n")
gc.callbacks.append(_gc_timer)
"""


# Written beside the world with --server-log: the app wrapped in a middleware that logs each request's time inside the
# server (ASGI call to its last send), to tell the server's own tail from the transport's.
TIMING_APP = """
import asyncio, functools, gc, os, time
import server
from audit import chain, checkpoints, records

log = open(os.environ["BENCH_SERVER_LOG"], "a", buffering=1)


def _event(kind, started):
    log.write(f"ev {kind} {started:.6f} {time.time():.6f}\\n")


def _timed(kind, function):
    if asyncio.iscoroutinefunction(function):
        @functools.wraps(function)
        async def timed(*args, **kwargs):
            started = time.time()
            try:
                return await function(*args, **kwargs)
            finally:
                _event(kind, started)
    else:
        @functools.wraps(function)
        def timed(*args, **kwargs):
            started = time.time()
            try:
                return function(*args, **kwargs)
            finally:
                _event(kind, started)
    return timed


# What runs beside the requests, each logged with its wall-clock span: the policy check, the freshness check, the
# checkpoints, the access-record transactions (wherever this tree makes them), and every collection.
server.Runtime.refresh = _timed("refresh", server.Runtime.refresh)
server.Runtime.check_freshness = _timed("freshness", server.Runtime.check_freshness)
checkpoints.Checkpointer.write = _timed("checkpoint", checkpoints.Checkpointer.write)
chain.SqliteAppender.try_append = _timed("record", chain.SqliteAppender.try_append)
chain.append_sync = _timed("record", chain.append_sync)
_collecting = {}


def _collection(phase, info):
    if phase == "start":
        _collecting["at"] = time.time()
    else:
        _event(f"gc{info['generation']}", _collecting.pop("at", time.time()))


gc.callbacks.append(_collection)


def create_app():
    app = server.create_app()

    async def timed(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        at, started, cpu, process = time.time(), time.perf_counter(), time.thread_time(), time.process_time()
        try:
            await app(scope, receive, send)
        finally:
            log.write(
                f"req {at:.6f} {time.perf_counter() - started:.6f} {time.thread_time() - cpu:.6f} "
                f"{time.process_time() - process:.6f}\\n"
            )

    return timed
"""


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, max(0, int(len(sorted_values) * fraction + 0.5) - 1))]


def parse_server(spec: str) -> tuple[str, Path, dict[str, str]]:
    label, _, rest = spec.partition("=")
    tree, _, variables = rest.partition(":")
    env = dict(v.split("=", 1) for v in variables.split(",") if v)
    return label, Path(tree or ".").resolve(), env


def start_server(
    home: Path, tree: Path, port: int, env: dict[str, str], gc_log: Path | None, server_log: Path | None
) -> subprocess.Popen:
    python = tree / ".venv" / "bin" / "python"
    hook = GC_HOOK if gc_log is not None else ""
    factory = "server:create_app"
    if server_log is not None:
        (home / "timedapp.py").write_text(TIMING_APP)
        factory = "timedapp:create_app"
        env = {**env, "BENCH_SERVER_LOG": str(server_log), "PYTHONPATH": f"{tree}:{home}"}
    if env.get("BENCH_GC") == "off":  # a diagnostic variant: no cyclic collection at all in that server
        hook += "\nimport gc; gc.disable()\n"
    code = (
        f"{hook}\nimport sys, uvicorn\nsys.argv = ['uvicorn', '--factory', '{factory}', '--port', '{port}', "
        "'--log-level', 'warning', '--no-access-log']\nuvicorn.main()"
    )
    return subprocess.Popen(
        [str(python), "-c", code],
        cwd=home,
        env={"PYTHONPATH": str(tree), **env, **({"BENCH_GC_LOG": str(gc_log)} if gc_log else {})},
    )


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
for name, value in string.gmatch(os.getenv("BENCH_HEADERS"), "([^\\n:]+): ([^\\n]+)") do wrk.headers[name] = value end
done = function(summary, latency, requests)
  io.write(string.format("WRK %d %d %d %d\\n", summary.requests, latency:percentile(50), latency:percentile(99),
    latency.max))
end
"""


def run_wrk(home: Path, port: int, body: dict, headers: dict, seconds: float) -> tuple[int, float, float, float]:
    """wrk, one thread, one connection, for ``seconds``: (requests, p50, p99, max) in seconds."""
    script = home / "post.lua"
    script.write_text(WRK_SCRIPT)
    env = {
        **os.environ,
        "BENCH_BODY": json.dumps(body),
        "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in headers.items()),
    }
    out = subprocess.run(
        ["wrk", "-t1", "-c1", f"-d{int(seconds)}s", "-s", str(script), f"http://127.0.0.1:{port}/graphql"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    if os.environ.get("BENCH_WRK_SHOW"):
        print(out)
    line = next(line for line in out.splitlines() if line.startswith("WRK "))
    count, p50, p99, top = (int(v) for v in line.split()[1:])
    return count, p50 / 1e6, p99 / 1e6, top / 1e6


def run_workload(http: httpx.Client, body: dict, headers: dict, requests: int) -> list[tuple[float, float]]:
    """(wall-clock start, seconds) of each request."""
    latencies = []
    for _ in range(requests):
        at, started = time.time(), time.perf_counter()
        response = http.post("/graphql", json=body, headers=headers)
        latencies.append((at, time.perf_counter() - started))
        if response.status_code != 200 or not response.content.startswith(b'{"data":{'):
            raise RuntimeError(f"unexpected answer {response.status_code}: {response.text[:300]}")
    return latencies


async def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", action="append", default=[], help="LABEL=TREE[:VAR=VALUE,...] (repeatable)")
    parser.add_argument("--requests", type=int, default=1000, help="requests per workload, server and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=10, help="rows of the small list")
    parser.add_argument("--gc-log", action="store_true")
    parser.add_argument("--server-log", action="store_true", help="time each request inside the server too")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--wrk", type=int, default=0, help="also run wrk -c1 for this many seconds per workload")
    args = parser.parse_args()
    servers = [parse_server(s) for s in args.server] or [("this", REPO, {})]

    home = Path(tempfile.mkdtemp(prefix="govshare-latency-"))
    processes: list[subprocess.Popen] = []
    copies: list[Path] = []
    try:
        settings = bench_settings(home / "var")
        world = await build_demo(settings, persons=1500, enterprises=400)
        person = world.showcase["person_luozhuang"]
        base_env = {
            **os.environ,
            "GOVSHARE_VAR_DIR": str(settings.var_dir),
            "GOVSHARE_CATALOG_DIR": str(settings.catalog_dir),
            "GOVSHARE_RATE_LIMIT": "",
            "GOVSHARE_COST_BUDGET": "",
            "GOVSHARE_CACHE_MAX_SECONDS": "0",
        }
        ports = {}
        gc_logs: dict[str, Path | None] = {}
        server_logs: dict[str, Path | None] = {}
        for label, tree, env in servers:
            if env.get("BENCH_VAR") == "shm":  # a diagnostic variant: its own copy of the world in memory (no fsync)
                copy = Path(tempfile.mkdtemp(prefix=f"govshare-latency-{label}-", dir="/dev/shm"))
                shutil.copytree(settings.var_dir, copy / "var")
                env = {**env, "GOVSHARE_VAR_DIR": str(copy / "var")}
                copies.append(copy)
            ports[label] = free_port()
            gc_logs[label] = home / f"gc-{label}.log" if args.gc_log else None
            server_logs[label] = home / f"requests-{label}.log" if args.server_log else None
            processes.append(
                start_server(home, tree, ports[label], {**base_env, **env}, gc_logs[label], server_logs[label])
            )
        for (label, _, _), process in zip(servers, processes, strict=True):
            await _wait_up(ports[label], process)

        def headers_of(caller):
            department, purpose = caller
            return {"Authorization": f"Bearer {world.keys[department]}", "X-Purpose": purpose, "X-Operator": OPERATOR}

        workloads = {
            "lookup": ({"query": CANONICAL_QUERY, "variables": {"id": person}}, headers_of(LOOKUP_CALLER)),
            f"list{args.rows}": ({"query": LIST_QUERY, "variables": {"n": args.rows}}, headers_of(LIST_CALLER)),
        }
        clients = {
            label: httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) for label, port in ports.items()
        }
        latencies: dict[tuple[str, str], list[tuple[float, float]]] = {(s, w): [] for s in ports for w in workloads}
        try:
            for http in clients.values():  # warm up: caches, first decisions, connections
                for body, headers in workloads.values():
                    run_workload(http, body, headers, 50)
            for path in (*gc_logs.values(), *server_logs.values()):
                if path is not None:
                    path.write_text("")
            for _ in range(args.rounds):
                for label, http in clients.items():
                    for name, (body, headers) in workloads.items():
                        latencies[label, name] += run_workload(http, body, headers, args.requests)
            wrk_runs: dict[tuple[str, str], list[tuple[int, float, float, float]]] = {k: [] for k in latencies}
            for _ in range(args.rounds if args.wrk else 0):
                for label, port in ports.items():
                    for name, (body, headers) in workloads.items():
                        wrk_runs[label, name].append(run_wrk(home, port, body, headers, args.wrk))
        finally:
            for http in clients.values():
                http.close()

        results: dict = {}
        print(
            f"{'server':<12} {'workload':<8} {'n':>6} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} p99/p50"
        )
        for (label, name), timed in latencies.items():
            values = sorted(seconds for _, seconds in timed)
            p50, p90, p99 = statistics.median(values), percentile(values, 0.90), percentile(values, 0.99)
            results[f"{label}/{name}"] = {
                "n": len(values),
                "p50_ms": round(p50 * 1000, 3),
                "p99_ms": round(p99 * 1000, 3),
                "p99_over_p50": round(p99 / p50, 3),
            }
            print(
                f"{label:<12} {name:<8} {len(values):>6} {p50 * 1000:>8.2f} {p90 * 1000:>8.2f} {p99 * 1000:>8.2f} "
                f"{values[-1] * 1000:>8.2f} {p99 / p50:>7.2f}"
            )
        if args.wrk:
            print(f"\nwrk -t1 -c1, {args.rounds} rounds of {args.wrk} s (per round: requests, p50, p99, max ms)")
            for (label, name), runs in wrk_runs.items():
                shown = ", ".join(
                    f"{n} {p50 * 1000:.2f} {p99 * 1000:.2f} {top * 1000:.1f}" for n, p50, p99, top in runs
                )
                ratio = statistics.median(p99 / p50 for _, p50, p99, _ in runs)
                results[f"{label}/{name}/wrk_p99_over_p50"] = round(ratio, 3)
                print(f"{label:<12} {name:<8} {shown}  p99/p50 (median of rounds) {ratio:.2f}")
        if args.server_log:
            print(
                "\ninside the server, every timed request: n, p50, p90, p99, max ms; then the requests over 3 x p50 and"
                " what overlapped them (a request may count under several)"
            )
            for label, path in server_logs.items():
                lines = [line.split() for line in path.read_text().splitlines()]
                logged = [tuple(map(float, line[1:])) for line in lines if line[0] == "req"]
                events = [(line[1], float(line[2]), float(line[3])) for line in lines if line[0] == "ev"]
                inside = sorted(wall for _, wall, _, _ in logged)
                p50 = statistics.median(inside)
                loop_cpu = statistics.median(c for _, _, c, _ in logged)
                slow = [(at, at + wall, c) for at, wall, c, _ in logged if wall > 3 * p50]
                causes: dict[str, int] = {}
                for start, end, cpu in slow:
                    kinds = {kind for kind, s, e in events if s < end and e > start and kind != "record"}
                    kinds |= {"cpu>2x"} if cpu > 2 * loop_cpu else set()
                    # its own record transaction, when that alone took over p50
                    kinds |= (
                        {"slow record"}
                        if any(kind == "record" and s >= start and e <= end and e - s > p50 for kind, s, e in events)
                        else set()
                    )
                    for kind in kinds or {"nothing seen"}:
                        causes[kind] = causes.get(kind, 0) + 1
                recorded = sorted(e - s for kind, s, e in events if kind == "record")
                print(
                    f"{label:<12} {len(inside)} {p50 * 1000:.2f} {percentile(inside, 0.9) * 1000:.2f} "
                    f"{percentile(inside, 0.99) * 1000:.2f} {inside[-1] * 1000:.2f}; slow {len(slow)}: "
                    + ", ".join(f"{k} {v}" for k, v in sorted(causes.items(), key=lambda kv: -kv[1]))
                )
                if recorded:
                    print(
                        f"{'':<12} record transactions: n {len(recorded)}, p50 {statistics.median(recorded) * 1000:.2f}"
                        f", p99 {percentile(recorded, 0.99) * 1000:.2f}, max {recorded[-1] * 1000:.2f} ms"
                    )
        if args.gc_log:
            print("\ncollections during the timed rounds (generation: count, median ms, max ms, total ms)")
            for label, path in gc_logs.items():
                by_generation: dict[int, list[float]] = {}
                for line in path.read_text().splitlines():
                    generation, seconds, _ = line.split()
                    by_generation.setdefault(int(generation), []).append(float(seconds) * 1000)
                summary = {
                    g: (len(v), round(statistics.median(v), 3), round(max(v), 3), round(sum(v), 1))
                    for g, v in sorted(by_generation.items())
                }
                results[f"{label}/gc"] = summary
                print(f"{label:<12} {summary}")
            print("\nslow requests (over 3 x p50) and those a full (generation 2) collection overlapped")
            for label, path in gc_logs.items():
                full = [
                    (float(at) - float(seconds), float(at))
                    for generation, seconds, at in (line.split() for line in path.read_text().splitlines())
                    if generation == "2"
                ]
                for name in workloads:
                    timed = latencies[label, name]
                    p50 = statistics.median(seconds for _, seconds in timed)
                    slow = [(at, at + seconds) for at, seconds in timed if seconds > 3 * p50]
                    overlapped = sum(any(s < end and e > start for s, e in full) for start, end in slow)
                    print(f"{label:<12} {name:<8} slow {len(slow):>4}, overlapping a full collection {overlapped:>4}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
        return results
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
        for path in (home, *copies):
            shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
