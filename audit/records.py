"""The one audit writer: access records go to the platform database before the response is sent."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from govshare.errors import AuditError
from audit.chain import append, append_sync
from govshare.platformdb import make_sync_engine

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
    """Appends each request's records in one transaction with those of the requests waiting at the same time
    (group commit): under load one transaction carries many requests, so writers do not queue one by one
    on the chain head. A request returns only when its records are written; if the transaction fails, every
    request in it is told (AUDIT_UNAVAILABLE) and none of their records is written.

    The transaction runs in a thread of its own on a synchronous connection: one hand-over instead of a
    round trip to the driver's thread for every statement, cursor and commit.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sync = make_sync_engine(engine)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="govshare-audit") if self._sync else None
        self._waiting: list[tuple[list[AccessRecord], asyncio.Future]] = []
        self._writer: asyncio.Task | None = None

    async def write(self, records: list[AccessRecord]) -> None:
        if not records:
            return
        written = asyncio.get_running_loop().create_future()
        self._waiting.append((list(records), written))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting())
        await asyncio.shield(written)

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            rows = [asdict(r) for records, _ in batch for r in records]
            try:
                if self._sync is not None:
                    await asyncio.get_running_loop().run_in_executor(self._thread, self._append, rows)
                else:
                    async with self._engine.begin() as conn:
                        await append(conn, "access", rows)
            except Exception as exc:  # noqa: BLE001 - whatever it was, these records are not written
                log.error("access records could not be written: %s", exc)
                for _, written in batch:
                    if not written.done():
                        written.set_exception(AuditError("AUDIT_UNAVAILABLE"))
            else:
                for _, written in batch:
                    if not written.done():
                        written.set_result(None)

    def _append(self, rows: list[dict]) -> None:
        with self._sync.begin() as conn:
            append_sync(conn, "access", rows)

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._sync.dispose()
