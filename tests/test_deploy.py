"""The production layout of deploy/ run for real: Debian's nginx with deploy/nginx/govshare.conf in front of
`govshare serve --workers 2`, and HAProxy with deploy/haproxy/haproxy.cfg in front of two separate `govshare serve`
processes, checking each on /readyz. Only the ports are changed (free ports of 127.0.0.1), and the paths a proxy
started by a test needs to write to (its pid and temporary files under the test's folder).

Skipped when the binary is absent (`apt-get install -y nginx haproxy`); failed instead under
GOVSHARE_REQUIRE_SERVICES=1 (`.ci/run` installs both)."""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import REPO, REQUIRE_SERVICES, connect, environment, govshare_command
from tests.test_metrics import samples, value
from tests.test_serve_workers import Workers, _socket_inodes

DEPLOY = REPO / "deploy"
LOOKUP = "query($id: String!) { person(idNumber: $id) { idNumber name } }"
PERSON = "371311197811261792"  # the README's example person of the demo world
MARKET_PURPOSE = "market.licence-review"
START_TIMEOUT = 60  # liveness bounds, not speed assertions


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        reason = f"{name} is not installed (apt-get install -y nginx haproxy; .ci/run installs it)"
        if REQUIRE_SERVICES:
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_listening(port: int, process: subprocess.Popen, log: Path | None = None) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        assert process.poll() is None, f"exited {process.returncode}: {log.read_text() if log else ''}"
        assert time.monotonic() < deadline, f"nothing listens on {port}"
        time.sleep(0.05)


def _request(port: int, method: str, path: str, body: dict | None = None, key: str | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if key:
        headers |= {"Authorization": f"Bearer {key}", "X-Purpose": MARKET_PURPOSE}
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _lookup(port: int, key: str):
    return _request(port, "POST", "/graphql", {"query": LOOKUP, "variables": {"id": PERSON}}, key)


@contextlib.contextmanager
def _running(command: list[str], log: Path, port: int) -> Iterator[subprocess.Popen]:
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, process, log)
        yield process
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 30 s: whatever a test started is gone when it ends."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def _records(folder: Path) -> int:
    with connect(folder / "var" / "platform.db") as conn:
        return conn.execute("SELECT count(*) FROM access_records").fetchone()[0]


def _held_by(port: int, pids: list[int]) -> set[int]:
    """Which of ``pids`` hold an established connection accepted on ``port`` (the proxy's upstream connections)."""
    ends = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "01":  # ESTABLISHED
            ends.add(int(fields[9]))
    return {pid for pid in pids if _socket_inodes(pid) & ends}


def _key(folder: Path) -> str:
    return json.loads((folder / "var" / "demo-keys.json").read_text())["market"]


def test_nginx_with_the_deploy_config_in_front_of_two_workers(own_folder, tmp_path):
    nginx = _binary("nginx")
    (own_folder / "govshare.toml").write_text('rate_limit = ""\ncost_budget = ""\n')
    server = Workers(own_folder, 2, {})
    try:
        server.wait_started(2)
        workers = server.pids()
        front = _free_port()
        site = (DEPLOY / "nginx" / "govshare.conf").read_text()
        assert "listen 80;" in site and "server 127.0.0.1:8000 " in site
        site = site.replace("listen 80;", f"listen 127.0.0.1:{front};")
        site = site.replace("server 127.0.0.1:8000 ", f"server 127.0.0.1:{server.port} ")
        prefix = tmp_path / "nginx"
        prefix.mkdir()
        (prefix / "govshare.conf").write_text(site)
        # Debian's /etc/nginx/nginx.conf, reduced to what a process of a test's own needs around the site's file.
        (prefix / "nginx.conf").write_text(
            f"daemon off;\nworker_processes 2;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log info;\n"
            "user root;\nevents { worker_connections 256; }\n"
            f"http {{\n access_log {prefix}/access.log;\n client_body_temp_path {prefix}/body;\n"
            f" proxy_temp_path {prefix}/proxy;\n fastcgi_temp_path {prefix}/fastcgi;\n uwsgi_temp_path {prefix}/uwsgi;\n"
            f" scgi_temp_path {prefix}/scgi;\n include {prefix}/govshare.conf;\n}}\n"
        )
        command = [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stderr
        key = _key(own_folder)
        with _running(command, prefix / "error.log", front):
            status, _, body = _request(front, "GET", "/readyz")
            assert status == 200 and json.loads(body)["status"] == "ready", body
            # /metrics is never answered through the proxy (nginx refuses it; govshare would too: X-Forwarded-For)
            status, _, body = _request(front, "GET", "/metrics")
            assert status == 403 and b"govshare_" not in body

            answered, request_ids = 0, set()
            for _ in range(20):  # rounds of 8 requests at once, until both workers hold a connection of nginx's
                with ThreadPoolExecutor(8) as pool:
                    for status, headers, body in pool.map(lambda _: _lookup(front, key), range(8)):
                        assert status == 200, body
                        assert json.loads(body)["data"]["person"]["idNumber"] == PERSON
                        request_ids.add(headers["x-request-id"])
                        answered += 1
                if _held_by(server.port, workers) == set(workers):
                    break
            assert _held_by(server.port, workers) == set(workers)
            assert len(request_ids) == answered
            # a refusal passes through with its code and status
            status, _, body = _request(front, "POST", "/graphql", {"query": LOOKUP, "variables": {}}, "gs_not_a_key")
            assert status == 401 and json.loads(body)["errors"][0]["extensions"]["code"] == "KEY_INVALID"

            # every answer through the proxy has its access record, and the workers' metrics say as much
            assert _records(own_folder) == answered
            status, _, body = _request(server.port, "GET", "/metrics")  # from this machine, not through the proxy
            scraped = samples(body.decode())
            assert (
                value(scraped, "govshare_requests_total", endpoint="graphql", outcome="answered", code="") == answered
            )
            assert (
                value(scraped, "govshare_requests_total", endpoint="graphql", outcome="refused", code="KEY_INVALID")
                == 1
            )
            assert value(scraped, "govshare_access_records_written_total") == answered
    finally:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
            try:
                server.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill_all()


def _haproxy_states(stats: Path) -> dict[str, str]:
    """Each server of the backend and its state (UP, DOWN, ...), from HAProxy's stats socket."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(stats))
        sock.sendall(b"show stat\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    lines = data.decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
    return {
        row["svname"]: row["status"]
        for row in rows
        if row["pxname"] == "govshare" and row["svname"].startswith("govshare")
    }


def test_haproxy_with_the_deploy_config_sends_nothing_to_a_process_that_is_not_ready(own_folder, tmp_path):
    haproxy = _binary("haproxy")
    (own_folder / "govshare.toml").write_text('rate_limit = ""\ncost_budget = ""\n')
    ready_port, unready_port, front = _free_port(), _free_port(), _free_port()
    env = environment(own_folder)
    # The second process counts rate limits in a Redis that is not there: it serves, but /readyz says 503.
    unready_env = env | {"GOVSHARE_RATE_LIMIT_URL": "redis://127.0.0.1:1/0", "GOVSHARE_RATE_LIMIT": "600/minute"}
    serve = [govshare_command(), "serve", "--host", "127.0.0.1", "--port"]
    processes = []
    try:
        for port, process_env in ((ready_port, env), (unready_port, unready_env)):
            log = tmp_path / f"serve-{port}.log"
            with log.open("w") as out:
                processes.append(
                    subprocess.Popen([*serve, str(port)], cwd=own_folder, env=process_env, stdout=out, stderr=out)
                )
            _wait_listening(port, processes[-1], log)
        assert _request(unready_port, "GET", "/readyz")[0] == 503

        config = (DEPLOY / "haproxy" / "haproxy.cfg").read_text()
        for found, port in (
            ("bind *:80", f"bind 127.0.0.1:{front}"),
            ("127.0.0.1:8001", f"127.0.0.1:{ready_port}"),
            ("127.0.0.1:8002", f"127.0.0.1:{unready_port}"),
        ):
            assert found in config
            config = config.replace(found, port)
        stats = tmp_path / "haproxy.sock"
        config = config.replace("global\n", f"global\n    stats socket {stats} mode 600 level admin\n", 1)
        (tmp_path / "haproxy.cfg").write_text(config)
        command = [haproxy, "-f", str(tmp_path / "haproxy.cfg"), "-db"]
        checked = subprocess.run([*command, "-c"], capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        with _running(command, tmp_path / "haproxy.log", front):
            deadline = time.monotonic() + START_TIMEOUT
            while _haproxy_states(stats) != {"govshare1": "UP", "govshare2": "DOWN"}:
                assert time.monotonic() < deadline, _haproxy_states(stats)
                time.sleep(0.2)
            key = _key(own_folder)
            for _ in range(12):
                status, _, body = _lookup(front, key)
                assert status == 200, body
            status, _, body = _request(front, "GET", "/metrics")
            assert status == 403 and b"govshare_" not in body

            def answered(port: int) -> float:
                scraped = samples(_request(port, "GET", "/metrics")[2].decode())
                return value(scraped, "govshare_requests_total", endpoint="graphql", outcome="answered", code="")

            assert answered(ready_port) == 12 and answered(unready_port) == 0
            assert _records(own_folder) == 12
    finally:
        for process in processes:
            _stop(process)
