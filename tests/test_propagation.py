"""Two real server processes sharing one platform database (PostgreSQL) and Redis: a policy change made through
one is in force in the other within one second, by the Redis announcement, and again with the announcement
channel down, by the policy version in the database (the backstop)."""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
import threading
import time

import httpx
from sqlalchemy import create_engine, text

from tests.conftest import TEST_DATABASE_PREFIX, make_settings, require_engine
from tests.test_cache import _redis_or_skip
from tests.test_cli import _Server, demo_keys, environment, govshare_command, govshare_in_process

BOUND_SECONDS = 1.0  # the bound: a change is in force in every process within one second
PASSWORD = "correct horse battery staple"
ENTERPRISES = "{ enterpriseList(first: 3) { items { creditCode name } } }"


class Proxy:
    """A TCP relay to a service (Redis, PostgreSQL) that can be cut: every connection through it dropped, and no new one
    accepted. For a fault that passes, ``drop`` resets every connection and every new one until ``restore`` (on the
    same port: a database restarting); ``delay`` holds each chunk the service sends for that many seconds (a slow
    network or server); ``hold`` keeps every chunk it sends until ``release`` (a server that stops answering, its
    connections open: hung, or behind a network that drops packets)."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.refusing = False
        self.delay = 0.0
        self._flowing = threading.Event()
        self._flowing.set()
        self._lock = threading.Lock()  # a connection is either relayed before drop() or reset after it
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                try:
                    if self.refusing:
                        raise ConnectionRefusedError
                    upstream = socket.create_connection(("127.0.0.1", self.target))
                except OSError:
                    _reset(client)
                    continue
                self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_target: bool = False) -> None:
        try:
            while data := source.recv(65536):
                if from_target:
                    self._flowing.wait()
                    time.sleep(self.delay)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def drop(self) -> None:
        """Every connection through the relay cut, and every new one reset as it comes, until ``restore``."""
        with self._lock:
            self.refusing = True
        while self.sockets:
            connection = self.sockets.pop()
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def restore(self) -> None:
        self.refusing = False

    def hold(self) -> None:
        self._flowing.clear()

    def release(self) -> None:
        self._flowing.set()

    def cut(self) -> None:
        self.release()
        # shutdown first: on Linux, close alone leaves a listener whose accept() another thread is blocked in open
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass


def _reset(connection: socket.socket) -> None:
    """Close ``connection`` with a reset, as a port nobody listens on answers a connection."""
    with contextlib.suppress(OSError):
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


def _restricted(server: _Server, key: str) -> bool:
    response = httpx.post(
        f"{server.url}/graphql",
        json={"query": ENTERPRISES},
        timeout=5,
        headers={"Authorization": f"Bearer {key}", "X-Purpose": "hrss.employment-subsidy"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    codes = {e["extensions"]["code"] for e in body.get("errors", [])}
    if body["data"]["enterpriseList"] is None:
        assert codes == {"DEPARTMENT_RESTRICTED"}, body
        return True
    assert not codes and len(body["data"]["enterpriseList"]["items"]) == 3, body
    return False


def _wait_for(server: _Server, key: str, restricted: bool) -> float:
    """Seconds until ``server`` answers as ``restricted`` says (asserting it comes within the bound)."""
    start = time.monotonic()
    while _restricted(server, key) != restricted:
        elapsed = time.monotonic() - start
        assert elapsed < BOUND_SECONDS, f"not in force in the other process after {elapsed:.2f} s"
        time.sleep(0.02)
    return time.monotonic() - start


def _admin(server: _Server, query: str, token: str, **variables) -> dict:
    response = httpx.post(
        f"{server.url}/admin/graphql",
        json={"query": query, "variables": variables},
        timeout=10,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text + "".join(server.lines[-80:])
    assert "errors" not in response.json(), response.text
    return response.json()["data"]


def _health(server: _Server) -> dict:
    return httpx.get(f"{server.url}/healthz", timeout=5).json()


def test_a_change_through_one_process_is_in_force_in_the_other_within_a_second(tmp_path):
    require_engine(make_settings(tmp_path / "probe"), "postgres")
    redis_url = _redis_or_skip()
    database = f"{TEST_DATABASE_PREFIX}propagation"
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {database}"))
    admin.dispose()

    proxy = Proxy(int(redis_url.split(":")[2].split("/")[0]))
    shared = {
        "GOVSHARE_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}",
        "GOVSHARE_POLICY_NOTIFY_URL": f"redis://127.0.0.1:{proxy.port}/0",
        "GOVSHARE_REFRESH_SECONDS": "0.5",
        "GOVSHARE_RATE_LIMIT": "",
    }
    env = environment(tmp_path) | shared
    done = subprocess.run(
        [govshare_command(), "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    staff = govshare_in_process(
        tmp_path, "staff", "add", "wang.fang", "--name", "王芳", env=shared | {"GOVSHARE_STAFF_PASSWORD": PASSWORD}
    )
    assert staff.returncode == 0, staff.stderr
    key = demo_keys(tmp_path)["hrss"]

    first, second = _Server(tmp_path, shared), _Server(tmp_path, shared)
    try:
        first.wait_until_healthy()
        second.wait_until_healthy()
        deadline = time.monotonic() + 10
        while not _health(second)["notifications"]["connected"]:
            assert time.monotonic() < deadline, "the second process never subscribed:\n" + "".join(second.lines)
            time.sleep(0.05)
        session = httpx.post(
            f"{first.url}/admin/session", json={"username": "wang.fang", "password": PASSWORD}, timeout=10
        )
        token = session.json()["token"]
        assert not _restricted(second, key)

        # 1. Announced: the second process hears it and reloads.
        heard = _health(second)["notifications"]["received"]
        made = _admin(
            first,
            """mutation { putDenyRule(rule: {department: "hrss", resource: "market.enterprise",
            reason: "第二十条：迟报"}, reason: "限制 hrss") { version ruleId } }""",
            token,
        )["putDenyRule"]
        seconds = _wait_for(second, key, restricted=True)
        health = _health(second)
        assert health["notifications"]["received"] > heard
        assert health["policy_version"] == _health(first)["policy_version"]
        print(f"in force in the other process after {seconds * 1000:.0f} ms (notification)")

        # 2. The channel down: the announcement is lost, the database version check brings it in.
        proxy.cut()
        deadline = time.monotonic() + 10
        while _health(second)["notifications"]["connected"]:
            assert time.monotonic() < deadline, "the second process did not notice the channel went down"
            time.sleep(0.05)
        heard = _health(second)["notifications"]["received"]
        _admin(
            first,
            """mutation($id: String!) { removeRule(id: $id, reason: "已补报") { version } }""",
            token,
            id=made["ruleId"],
        )
        seconds = _wait_for(second, key, restricted=False)
        health = _health(second)
        assert health["notifications"]["received"] == heard  # nothing was heard: the backstop did it
        assert health["last_reload"]["cause"] == "check"
        print(f"in force in the other process after {seconds * 1000:.0f} ms (database check)")
    finally:
        first.stop()
        second.stop()
        proxy.cut()


async def test_the_policy_commands_announce_their_change(own_folder):
    """`govshare policy import` (and the other changing commands) publish on the channel servers listen to."""
    import asyncio

    import redis.asyncio as aioredis

    from govshare.notify import CHANNEL

    redis_url = _redis_or_skip()
    folder = own_folder
    env = environment(folder) | {"GOVSHARE_POLICY_NOTIFY_URL": redis_url}
    listener = aioredis.Redis.from_url(redis_url)
    async with listener.pubsub() as pubsub:
        await pubsub.subscribe(CHANNEL)
        await pubsub.get_message(timeout=1)  # the subscription confirmation
        done = await asyncio.to_thread(
            subprocess.run,
            [
                govshare_command(),
                "restriction",
                "add",
                "--department",
                "land",
                "--resource",
                "*",
                "--reason",
                "第二十条",
            ],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
    await listener.aclose()
    assert message is not None and int(message["data"]) > 0
