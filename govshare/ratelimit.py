"""Per-application rate limiting (the `limits` library): in memory per process by default, or in Redis
shared by every server process. A caller over its limit gets HTTP 429 with Retry-After.

``RateLimiter`` counts requests; ``CostBudget`` counts the work they answered (rows x items, charged after
each request), so a key cannot spend the service on a few huge pages while staying under the request count.
"""

from __future__ import annotations

import math
import time

from limits import parse
from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter
from limits.storage import storage_from_string


def _storage(storage_url: str):
    options = {"implementation": "redispy"} if storage_url.startswith("redis") else {}
    return storage_from_string("async+" + storage_url, **options)


class RateLimiter:
    def __init__(self, limit: str, storage_url: str) -> None:
        """``limit`` like "600/minute"; ``storage_url`` memory:// or redis://host:port/db."""
        self.item = parse(limit)
        self._limiter = MovingWindowRateLimiter(_storage(storage_url))

    async def admit(self, key: str) -> int | None:
        """None when admitted; otherwise the seconds to wait before asking again."""
        if await self._limiter.hit(self.item, key):
            return None
        stats = await self._limiter.get_window_stats(self.item, key)
        return max(1, math.ceil(stats.reset_time - time.time()))


class CostBudget:
    """Rows x items a key may be answered per window ("200000/minute"), in the same storage as the request count.

    The cost of a request is known only once it is answered, so it is charged afterwards; a key whose window is
    spent is refused before its next request runs (a fixed window: a charge is counted even when it goes over).
    """

    def __init__(self, budget: str, storage_url: str) -> None:
        self.item = parse(budget)
        self._limiter = FixedWindowRateLimiter(_storage(storage_url))

    async def admit(self, key: str) -> int | None:
        """None while the key's budget for this window is not spent; otherwise the seconds until it is renewed."""
        stats = await self._limiter.get_window_stats(self.item, "cost", key)
        if stats.remaining > 0:
            return None
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def charge(self, key: str, cost: int) -> None:
        if cost > 0:
            await self._limiter.hit(self.item, "cost", key, cost=cost)
