"""Redis down under the rate limits (issue 17): counts kept in Redis (``rate_limit_url``) that Redis can no longer
answer fail closed by default, HTTP 503 ``RATE_LIMIT_UNAVAILABLE`` with Retry-After before anything is read or
recorded, or open where ``rate_limit_unavailable = "open"``: admitted uncounted, read and recorded as ever. A Redis
that accepts connections and never answers is the same fault, refused within the storage timeout, not a hang.
(Policy changes with Redis down arrive by the database check: tests/test_propagation.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading

import httpx
import pytest
from sqlalchemy import func, select

from admin import accounts
from audit.tables import access_records
from govshare.config import load_settings
from govshare.errors import ConfigError
from govshare.ratelimit import STORAGE_TIMEOUT
from tests.conftest import World, _api, make_settings
from tests.test_cache import _redis_or_skip
from tests.test_propagation import Proxy

HRSS, HRSS_PURPOSE = "hrss", "hrss.insurance-enrolment"
PAGE = "{ personList(first: 2) { items { name } } }"
PASSWORD = "correct horse battery staple"
ORIGIN = "https://govshare.test"
HANG_GUARD = 10 * STORAGE_TIMEOUT  # a request that has not answered by then hangs


def redis_port(url: str) -> int:
    port = re.match(r"redis://127\.0\.0\.1:(\d+)/", url)
    assert port
    return int(port.group(1))


async def records(api) -> int:
    async with api.app.state.runtime.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(access_records))).scalar_one()


@contextlib.contextmanager
def silent_redis():
    """A listener that accepts connections and never says a word: a Redis hung, or a network that drops."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    finally:
        listener.close()
        for s in held:
            s.close()


def through(proxy: Proxy, url: str) -> str:
    return url.replace(f":{redis_port(url)}/", f":{proxy.port}/")


@pytest.mark.parametrize(
    "limits",
    [
        {"rate_limit": "600/minute"},
        {"cost_budget": "200000/minute"},
        {"rate_limit": "600/minute", "cost_budget": "1/day"},
    ],
    ids=["request-count", "cost-budget", "both"],
)
async def test_redis_going_down_refuses_queries_with_a_coded_503_and_records_nothing(own_world: World, limits):
    url = _redis_or_skip()
    proxy = Proxy(redis_port(url))
    settings = make_settings(own_world.settings.var_dir, rate_limit_url=through(proxy, url), **limits)
    async for api in _api(own_world, settings):
        answered = await api.post(PAGE, department=HRSS, purpose=HRSS_PURPOSE)
        assert answered.status_code == 200 and answered.json()["data"]["personList"]["items"], answered.text
        before = await records(api)
        proxy.cut()
        refused = await asyncio.wait_for(api.post(PAGE, department=HRSS, purpose=HRSS_PURPOSE), HANG_GUARD)
        assert refused.status_code == 503, refused.text
        body = refused.json()
        assert "data" not in body
        assert [e["extensions"]["code"] for e in body["errors"]] == ["RATE_LIMIT_UNAVAILABLE"]
        assert "Redis" in body["errors"][0]["message"] and refused.headers["retry-after"].isdigit()
        assert await records(api) == before, "nothing was read, nothing recorded"


async def test_with_the_limits_open_a_dead_redis_admits_and_every_answer_is_recorded(own_world: World):
    url = _redis_or_skip()
    proxy = Proxy(redis_port(url))
    settings = make_settings(
        own_world.settings.var_dir,
        rate_limit_url=through(proxy, url),
        rate_limit="600/minute",
        cost_budget="200000/minute",
        rate_limit_unavailable="open",
    )
    async for api in _api(own_world, settings):
        proxy.cut()
        before = await records(api)
        for _ in range(3):
            answered = await asyncio.wait_for(api.post(PAGE, department=HRSS, purpose=HRSS_PURPOSE), HANG_GUARD)
            assert answered.status_code == 200 and answered.json()["data"]["personList"]["items"], answered.text
        assert await records(api) == before + 3


async def test_a_redis_that_never_answers_is_refused_within_the_storage_timeout_not_waited_on(own_world: World):
    with silent_redis() as url:
        settings = make_settings(own_world.settings.var_dir, rate_limit_url=url, rate_limit="600/minute")
        async for api in _api(own_world, settings):
            before = await records(api)
            refused = await asyncio.wait_for(api.post(PAGE, department=HRSS, purpose=HRSS_PURPOSE), HANG_GUARD)
            assert refused.status_code == 503, refused.text
            assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMIT_UNAVAILABLE"
            assert await records(api) == before


async def test_staff_sign_ins_fail_closed_too_on_the_console_and_the_admin_api(own_world: World):
    with silent_redis() as url:
        settings = make_settings(own_world.settings.var_dir, rate_limit_url=url)
        async for api in _api(own_world, settings):
            runtime = api.app.state.runtime
            async with runtime.engine.begin() as conn:
                await accounts.create_account(conn, runtime.settings, "ops.bot", PASSWORD, "运维脚本")
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url=ORIGIN) as client:
                session = await client.post("/admin/session", json={"username": "ops.bot", "password": PASSWORD})
                assert session.status_code == 503, session.text
                assert session.json()["errors"][0]["extensions"]["code"] == "RATE_LIMIT_UNAVAILABLE"
                assert "token" not in session.json()

                page = await client.get("/console/login")
                token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
                signed = await client.post(
                    "/console/login",
                    data={"username": "ops.bot", "password": PASSWORD, "csrf_token": token},
                    headers={"Origin": ORIGIN},
                )
                assert signed.status_code == 503 and "访问频率计数服务" in signed.text
                assert "set-cookie" not in signed.headers or "session" not in signed.headers["set-cookie"]


def test_an_unknown_failure_mode_is_refused_at_start():
    with pytest.raises(ConfigError, match="rate_limit_unavailable must be one of closed, open"):
        load_settings({"GOVSHARE_RATE_LIMIT_UNAVAILABLE": "maybe"})
