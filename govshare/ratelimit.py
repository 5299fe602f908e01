"""Per-application rate limiting (the `limits` library): in memory per process by default, or in Redis
shared by every server process. A caller over its limit gets HTTP 429 with Retry-After.

``RateLimiter`` counts requests; ``CostBudget`` counts the work they answered (rows x items, charged after
each request), so a key cannot spend the service on a few huge pages while staying under the request count.

Where the count lives in Redis and Redis cannot be reached (refused, or no answer within ``STORAGE_TIMEOUT``
seconds), ``unavailable`` decides: ``"closed"`` (the default) refuses what the limit would have admitted, HTTP 503
``RATE_LIMIT_UNAVAILABLE`` with Retry-After, before anything is read or recorded; ``"open"`` admits it uncounted,
with a warning in the log. A cost charged after an answer is never a refusal: the work is done and recorded by then;
a charge that cannot be counted is logged, and the next request's admission decides.
"""

from __future__ import annotations

import logging
import math
import time

from limits import parse
from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

from govshare.errors import GovshareError

log = logging.getLogger("govshare.ratelimit")

UNAVAILABLE_MODES = ("closed", "open")
STORAGE_TIMEOUT = 1.0  # seconds to connect to, and to hear from, Redis: a dead Redis must not hold requests up
RETRY_AFTER = 5  # seconds a caller refused for a dead Redis is asked to wait


def _storage(storage_url: str):
    options: dict[str, object] = {"wrap_exceptions": True}
    if storage_url.startswith("redis"):
        options |= {
            "implementation": "redispy",
            "socket_timeout": STORAGE_TIMEOUT,
            "socket_connect_timeout": STORAGE_TIMEOUT,
        }
    return storage_from_string("async+" + storage_url, **options)


class _Counted:
    def __init__(self, storage_url: str, unavailable: str) -> None:
        if unavailable not in UNAVAILABLE_MODES:
            raise ValueError(f"unavailable must be one of {', '.join(UNAVAILABLE_MODES)}, not {unavailable!r}")
        self.storage_url = storage_url
        self.unavailable = unavailable

    def _storage_failed(self, exc: StorageError, key: str) -> None:
        """Open: log and admit (the caller returns None). Closed: refuse with RATE_LIMIT_UNAVAILABLE."""
        cause = exc.storage_error
        if self.unavailable == "open":
            log.warning("rate-limit storage unreachable (%s), admitted uncounted: %s", type(cause).__name__, key)
            return
        log.error("rate-limit storage unreachable (%s), refused: %s", type(cause).__name__, key)
        raise GovshareError(
            "RATE_LIMIT_UNAVAILABLE", http_status=503, headers={"Retry-After": str(RETRY_AFTER)}
        ) from exc


class RateLimiter(_Counted):
    def __init__(self, limit: str, storage_url: str, unavailable: str = "closed") -> None:
        """``limit`` like "600/minute"; ``storage_url`` memory:// or redis://host:port/db."""
        super().__init__(storage_url, unavailable)
        self.item = parse(limit)
        self._limiter = MovingWindowRateLimiter(_storage(storage_url))

    async def admit(self, key: str) -> int | None:
        """None when admitted; otherwise the seconds to wait before asking again."""
        try:
            if await self._limiter.hit(self.item, key):
                return None
            stats = await self._limiter.get_window_stats(self.item, key)
        except StorageError as exc:
            self._storage_failed(exc, key)
            return None
        return max(1, math.ceil(stats.reset_time - time.time()))


class CostBudget(_Counted):
    """Rows x items a key may be answered per window ("200000/minute"), in the same storage as the request count.

    The cost of a request is known only once it is answered, so it is charged afterwards; a key whose window is
    spent is refused before its next request runs (a fixed window: a charge is counted even when it goes over).
    """

    def __init__(self, budget: str, storage_url: str, unavailable: str = "closed") -> None:
        super().__init__(storage_url, unavailable)
        self.item = parse(budget)
        self._limiter = FixedWindowRateLimiter(_storage(storage_url))

    async def admit(self, key: str) -> int | None:
        """None while the key's budget for this window is not spent; otherwise the seconds until it is renewed."""
        try:
            stats = await self._limiter.get_window_stats(self.item, "cost", key)
        except StorageError as exc:
            self._storage_failed(exc, key)
            return None
        if stats.remaining > 0:
            return None
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def charge(self, key: str, cost: int) -> None:
        if cost <= 0:
            return
        try:
            await self._limiter.hit(self.item, "cost", key, cost=cost)
        except StorageError as exc:  # after the answer was read and recorded: counted as lost, never a refusal
            log.warning("rate-limit storage unreachable (%s): cost %d of %s not charged", exc.storage_error, cost, key)
