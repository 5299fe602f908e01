"""The one audit writer: access records go to the platform database before the response is sent."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from govshare.errors import AuditError
from audit.chain import append

log = logging.getLogger(__name__)


@dataclass
class AccessRecord:
    """One access to one resource by one request: who, what, why, when, and how it ended."""

    at: datetime
    request_id: str
    trace_id: str
    department: str
    application: str
    key_id: str
    operator: str | None
    purpose: str | None
    resource: str
    operation: str  # lookup | list
    items_returned: list[str] = field(default_factory=list)
    items_masked: list[str] = field(default_factory=list)
    items_denied: dict[str, str] = field(default_factory=dict)
    row_count: int = 0
    grants_used: list[str] = field(default_factory=list)
    outcome: str = "allowed"  # allowed | partial | denied | failed
    error_code: str | None = None


class AuditWriter:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # Appends serialize on the chain head anyway; queueing them here keeps a burst of requests from
        # holding many connections that wait on the database's lock (and time out on SQLite).
        self._lock = asyncio.Lock()

    async def write(self, records: list[AccessRecord]) -> None:
        if not records:
            return
        try:
            async with self._lock, self._engine.begin() as conn:
                await append(conn, "access", [asdict(r) for r in records])
        except SQLAlchemyError as exc:
            log.error("access records could not be written: %s", exc)
            raise AuditError("AUDIT_UNAVAILABLE") from exc
