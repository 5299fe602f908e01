"""Per-application rate limiting (the `limits` library): in memory per process by default, or in Redis
shared by every server process. A caller over its limit gets HTTP 429 with Retry-After."""

from __future__ import annotations

import math
import time

from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string


class RateLimiter:
    def __init__(self, limit: str, storage_url: str) -> None:
        """``limit`` like "600/minute"; ``storage_url`` memory:// or redis://host:port/db."""
        self.item = parse(limit)
        url = "async+" + storage_url
        options = {"implementation": "redispy"} if storage_url.startswith("redis") else {}
        self._limiter = MovingWindowRateLimiter(storage_from_string(url, **options))

    async def admit(self, key: str) -> int | None:
        """None when admitted; otherwise the seconds to wait before asking again."""
        if await self._limiter.hit(self.item, key):
            return None
        stats = await self._limiter.get_window_stats(self.item, key)
        return max(1, math.ceil(stats.reset_time - time.time()))
