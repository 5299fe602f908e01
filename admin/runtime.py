"""What policy administration uses of the running server, and the one way a request reaches it.

The server's Runtime (server.py) provides it; admin/ never imports server.py. ``catalog`` and ``policy`` are the
snapshot in force (what the query service decides with), ``refresh()`` checks the platform database for a change
made elsewhere and brings it into force, ``changed()`` brings this process's own change into force before the
answer returns and announces it to the other processes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request

from catalog.model import Catalog
from govshare.config import Settings
from govshare.ratelimit import RateLimiter
from policies.engine import PolicyEngine


class Platform(Protocol):
    """What the shared operations (admin/operations.py) need of the process they run in: the server's Runtime,
    or a `govshare` command's ``CommandRuntime``."""

    settings: Settings
    engine: AsyncEngine  # the platform database
    clock: Callable[[], datetime]  # now, as the query service's decisions take it

    @property
    def catalog(self) -> Catalog: ...

    @property
    def policy(self) -> PolicyEngine: ...

    async def refresh(self) -> object: ...

    async def changed(self) -> None: ...


class AdminRuntime(Platform, Protocol):
    """What the console and the admin API use of the running server: a Platform, the staff sign-in limits, and
    the check of a trusted document against the schema in force."""

    sign_in_limits: Mapping[str, RateLimiter]  # staff sign-ins by "address" and by "user" (those configured)

    def check_document(self, name: str, text: str) -> tuple[str, ...]:
        """A trusted document checked against the schema in force: its operations' names, or DOCUMENT_INVALID."""
        ...


def runtime(request: Request) -> AdminRuntime:
    """The server's runtime, for a console page or an admin API request."""
    found: AdminRuntime = request.app.state.runtime
    return found
