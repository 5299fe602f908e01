"""Policy changes announced to every server process at once over Redis pub/sub.

A change is committed to the platform database first (bumping its policy version), then announced; a
process hearing the announcement reloads at once. Pub/sub delivers at most once and drops messages while
a subscriber is disconnected, so it is only the fast path: every process also checks the policy version
in the database every ``refresh_seconds`` (server.py), which bounds how late a lost announcement can be.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("govshare.notify")
CHANNEL = "govshare:policy-changed"


class PolicyNotifier:
    def __init__(self, url: str, channel: str = CHANNEL) -> None:
        self.url, self.channel = url, channel
        self._client: aioredis.Redis | None = None
        self.connected = False
        self.received = 0  # announcements heard by this process

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            self._client = aioredis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=1)
        return self._client

    async def publish(self, version: int) -> bool:
        """Announce a change; False (and a warning) when Redis cannot be reached: the backstop covers it."""
        if not self.url:
            return False
        try:
            await self._redis().publish(self.channel, str(version))
            return True
        except (RedisError, OSError) as exc:
            log.warning(
                "could not announce policy version %s on %s (%s); other processes see it within refresh_seconds",
                version,
                self.url,
                exc,
            )
            return False

    async def listen(self, on_change: Callable[[], Awaitable[None]], retry_seconds: float = 1.0) -> None:
        """Call ``on_change`` for every announcement, reconnecting after a failure; runs until cancelled."""
        while True:
            client = aioredis.Redis.from_url(self.url, socket_connect_timeout=1, health_check_interval=5)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    self.connected = True
                    log.info("listening for policy changes on %s", self.url)
                    while True:
                        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                        if message is not None:
                            self.received += 1
                            await on_change()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a lost connection: the database check covers the gap
                if self.connected:
                    log.warning("policy change announcements from %s lost (%s); retrying", self.url, exc)
                self.connected = False
            finally:
                self.connected = False
                with contextlib.suppress(RedisError, OSError, RuntimeError):
                    await client.aclose()
            await asyncio.sleep(retry_seconds)

    async def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(RedisError, OSError, RuntimeError):
                await self._client.aclose()
            self._client = None
