"""The one audit writer: access records go to the platform database before the response is sent."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from audit.chain import SqliteAppender, append_sync, index_sync
from audit.tables import ACCESS
from govshare import metrics
from govshare.errors import AuditError, ConfigError
from govshare.logs import logger
from govshare.platformdb import make_sync_engine

log = logger(__name__)  # govshare.<module>: one logging configuration covers it


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
    operation: str  # lookup | list | link | entity (Apollo Federation `_entities`)
    items_returned: list[str] = field(default_factory=list)
    items_masked: list[str] = field(default_factory=list)
    items_denied: dict[str, str] = field(default_factory=dict)
    row_count: int = 0
    grants_used: list[str] = field(default_factory=list)
    outcome: str = "allowed"  # allowed | partial | denied | failed
    error_code: str | None = None
    policy_version: int | None = None  # the policy version in force for the request (the one /healthz shows)
    # The data subjects of the rows answered: (item, keyed hash of its identifier) pairs, sorted (govshare.subjects).
    # Written beside the record (audit.tables.access_subjects), its digest in the record's chained fields.
    subjects: list[tuple[str, str]] = field(default_factory=list)


def _row(record: AccessRecord) -> dict[str, Any]:
    row = dict(vars(record))  # its fields are flat values, lists and dicts never changed afterwards
    # Attached to the record (audit.tables.access_subjects: item, subject_hash), its digest set as it is chained.
    return row


# A request waiting for its records: its loop, its records as rows, the future it awaits, and the lock it holds
# until their transaction is about to commit (None: it does not wait for that, ``hand_over``).
_Waiting = tuple[asyncio.AbstractEventLoop, list[dict[str, Any]], "asyncio.Future[None]", "threading.Lock | None"]

# How long the loop's thread waits at most for an idle writer to reach its commit (``hand_over(..., overlap=True)``).
OVERLAP_WAIT = 0.001

# Subject rows a writer appends before it brings the subject index up to date (audit.chain.index_sync): what a
# subject lookup reads at most from access_subjects itself (the index's tail) per process writing, some 3 ms more a
# lookup (docs/performance.md).
INDEX_AFTER = 20_000


class AuditWriter:
    """Writes each request's access records before its answer is sent, never on the event loop's thread; if they
    cannot be written, the request is told (AUDIT_UNAVAILABLE) and nothing is sent.

    One thread per writer (one per process) appends them. A request hands its records over on a queue and awaits a
    future; the thread takes everything waiting at that moment and appends it in one transaction (group commit: no
    timer, whoever arrives while a transaction is being written goes into the next one), then tells the waiting
    requests on their event loop, once per transaction (``call_soon_threadsafe``). If the transaction fails, every
    request in it is told and none of their records is written. On SQLite the thread appends on a plain sqlite3
    connection (``SqliteAppender``: ``BEGIN IMMEDIATE`` waits for another process's write lock in the thread, never
    on the loop); on PostgreSQL (and any other engine with a synchronous driver) on a synchronous SQLAlchemy
    connection. Either way the records carry their hash chain exactly as before (``audit.chain``). ``close`` writes
    what is still queued before it returns. A request may hand its records over before it awaits them
    (``hand_over``, ``RequestRecords``), so that their commit overlaps what it still does; it answers only once the
    future is done.
    """

    def __init__(self, engine: AsyncEngine, *, on_written: Callable[[int], None] | None = None) -> None:
        self._on_written = on_written or (lambda count: None)  # told (on the loop) how many records each write added
        sync = make_sync_engine(engine)
        if sync is None:
            raise ConfigError(
                "the access records need a platform database the writer's thread can reach: a SQLite file or a "
                f"database server, not {engine.url.render_as_string(hide_password=True)}"
            )
        self._sync = sync
        self._sqlite = SqliteAppender(sync, ACCESS.name) if sync.dialect.name == "sqlite" else None
        # (loop, rows, future) of each request waiting; None asks the thread to stop once it has written the rest.
        self._queue: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None  # started by the first write
        self._closed = False
        # Set by the thread as it ends, however it ends, under ``_lock``: a request hands its records over under the
        # same lock, so that each is either in the queue the ending thread empties (and told) or refused here.
        self._ended = False
        self._lock = threading.Lock()
        self._before_commit: Callable[[], None] | None = None  # set by the thread for one transaction
        # Subject rows this writer appended since it last brought the subject index up to the chain's head.
        self._unindexed = 0
        self.index_after = INDEX_AFTER
        self._idle = True  # no transaction under way in the thread (read on the loop without a lock: a hint only)
        self.overlap_wait = OVERLAP_WAIT

    @property
    def available(self) -> bool:
        """Whether records handed over now can be written: the writer is neither closed nor its thread ended (a
        thread ended by a failure no transaction catches refuses every later request with AUDIT_UNAVAILABLE)."""
        return not (self._closed or self._ended)

    async def write(self, records: list[AccessRecord]) -> None:
        if records:
            # A request cancelled meanwhile (its client went away) cancels only its future: its records, handed over,
            # are written all the same (they were read).
            await self.hand_over(records)

    def hand_over(self, records: list[AccessRecord], *, overlap: bool = False) -> asyncio.Future[None]:
        """Give ``records`` (at least one, none of them to change any more) to the writer's thread now, on the running
        loop: the future is done once their transaction has committed, or fails with AUDIT_UNAVAILABLE if it could not
        be. Raises AuditError at once when no record can be written (the writer closed or ended). ``write`` awaits it;
        a request may hand over earlier (``RequestRecords``) and await later, as long as it awaits before answering.

        ``overlap``: the caller has more to do before it awaits. The writer's thread needs the GIL for each step of its
        transaction up to the commit, and a loop busy building an answer would hold it off (up to the 5 ms switch
        interval a step); so when the writer is idle the loop's thread waits, at most ``overlap_wait``, until the
        transaction is about to commit, and goes on while the commit waits for the disk (GIL released)."""
        if self._closed:  # the server is stopping and the writer is gone: nothing may be answered unrecorded
            raise AuditError("AUDIT_UNAVAILABLE")
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="govshare-audit", daemon=True)
            self._thread.start()
        loop = asyncio.get_running_loop()
        written: asyncio.Future[None] = loop.create_future()
        rows = [_row(r) for r in records]
        committing: threading.Lock | None = None
        if overlap and self._idle and self.overlap_wait > 0:
            committing = threading.Lock()
            committing.acquire()
        with self._lock:
            if self._ended:  # it cannot end but by close() or a failure: never wait on a writer that is gone
                log.error("the access-record writer's thread has ended: no record can be written")
                raise AuditError("AUDIT_UNAVAILABLE")
            self._queue.put((loop, rows, written, committing))
            metrics.record_queue(self._queue.qsize())
        if committing is not None:
            committing.acquire(timeout=self.overlap_wait)
        return written

    def _run(self) -> None:
        """The writer's thread: a transaction for everything waiting, until asked to stop."""
        stopping = False
        try:
            while not stopping:
                waiting = [self._queue.get()]
                while True:  # whoever else is waiting now goes into the same transaction
                    try:
                        waiting.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                with self._lock:  # as a request sets it: the last one set is what is queued now
                    metrics.record_queue(self._queue.qsize())
                stopping = None in waiting
                batch = [w for w in waiting if w is not None]
                if batch:
                    self._idle = False
                    try:
                        self._write_batch(batch)
                        if self._unindexed >= self.index_after:
                            self._index_subjects()
                    finally:
                        self._idle = True
        finally:
            # However the thread ends (close(), or something no transaction catches), nobody is left waiting on it:
            # whatever is still queued was not written, and its requests are told so.
            with self._lock:
                self._ended = True
                left: list[_Waiting] = []
                while True:
                    try:
                        found = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if found is not None:
                        left.append(found)
            if left:
                log.error("the access-record writer's thread has ended: %d requests' records not written", len(left))
                self._tell(left, RuntimeError("the access-record writer's thread has ended"))

    def _write_batch(self, batch: list[_Waiting]) -> None:
        error: BaseException | None = None
        waiting = [committing for *_, committing in batch if committing is not None]

        def committing() -> None:  # the waiting loops go on: the commit needs no GIL until it returns
            while waiting:
                waiting.pop().release()

        self._before_commit = committing if waiting else None
        rows = [row for _, handed, _, _ in batch for row in handed]
        started = time.perf_counter()
        try:
            self._transaction(rows)
        except BaseException as exc:  # even one that ends the thread: its requests are told first
            log.error("access records could not be written: %s", exc)
            error = exc
        finally:
            self._before_commit = None
            committing()
        metrics.records_written(time.perf_counter() - started, len(rows), ok=error is None)
        self._tell(batch, error)
        if error is None:
            self._unindexed += sum(len(row.get("subjects") or ()) for row in rows)
        if error is not None and not isinstance(error, Exception):
            raise error

    def _tell(self, batch: list[_Waiting], error: BaseException | None) -> None:
        told: dict[asyncio.AbstractEventLoop, tuple[list[asyncio.Future[None]], int]] = {}
        for loop, rows, written, _ in batch:
            futures, count = told.get(loop, ([], 0))
            futures.append(written)
            told[loop] = futures, count + len(rows)
        for loop, (futures, count) in told.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody there waits any more
                loop.call_soon_threadsafe(self._settle, futures, count, error)

    def _settle(self, futures: list[asyncio.Future[None]], count: int, error: BaseException | None) -> None:
        """On the waiting requests' loop: each is told how its transaction ended."""
        if error is None:
            try:
                self._on_written(count)
            except Exception:  # the records are written: their requests are answered, the failure is logged
                log.exception("counting %d access records written failed", count)
        for written in futures:
            if written.done():
                continue
            if error is None:
                written.set_result(None)
            else:
                written.set_exception(AuditError("AUDIT_UNAVAILABLE"))

    def _transaction(self, rows: list[dict[str, Any]]) -> None:
        """One transaction appending ``rows`` to the access chain (the writer's thread)."""
        before_commit = self._before_commit
        if self._sqlite is not None:
            if before_commit is None:
                self._sqlite.append(rows)
            else:
                self._sqlite.append(rows, before_commit=before_commit)
            return
        with self._sync.begin() as conn:
            append_sync(conn, ACCESS.name, rows)
            if before_commit is not None:
                before_commit()

    def _index_subjects(self) -> None:
        """The subject index brought towards the chain's head, after the requests of the last transaction are told:
        a batch a transaction (``audit.chain.INDEX_BATCH`` rows, the write lock held for a moment), until it is there
        or a request is waiting (it goes first; the next transaction's turn goes on). A failure leaves the index where
        it was (a lookup reads the records after it from the subject rows themselves) and is logged; the next
        transaction tries again."""
        try:
            while True:
                with self._sync.begin() as conn:
                    caught_up = index_sync(conn, ACCESS.name)
                if caught_up:
                    self._unindexed = 0
                    return
                if not self._queue.empty():
                    return
        except Exception:
            log.exception("the subject index could not be brought up to date")

    async def close(self) -> None:
        """Stop taking records; those already handed over are written (and their requests told) first. A second call
        does nothing (a stopping server drains the writer before its last checkpoint, then stops the runtime)."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._thread.join)
            await asyncio.sleep(0)  # the last transactions' requests are told before this returns
        if self._sqlite is not None:
            self._sqlite.close()
        self._sync.dispose()


class RequestRecords:
    """One request's access records on their way to the writer: those already final are handed over while the
    request still builds its answer (``hand_over``), so that their commit overlaps that work; ``written`` hands over
    the rest and returns only once every one of them has committed (AuditError otherwise: nothing may be answered).

    ``records`` is the request's own list (``RequestContext.records``), which the data path only appends to, each
    record as its access ends. A caller hands over only where no record in it can change any more (the compiled plans,
    once a query's only root field has made its last access), so a request still commits its records in one
    transaction; ``written`` checks that none changed after it was handed over, and refuses the answer if one did
    (the stored record would not be the access's)."""

    def __init__(self, writer: AuditWriter, records: list[AccessRecord]) -> None:
        self._writer, self._records = writer, records
        self._handed: list[tuple[AccessRecord, dict[str, Any]]] = []  # each record handed over, as it was then
        self._waiting: list[asyncio.Future[None]] = []

    def hand_over(self, *, overlap: bool = True) -> None:
        """Hand the records appended since the last hand-over to the writer, not waiting for their commit
        (``overlap``: the request has more to do meanwhile, ``AuditWriter.hand_over``)."""
        fresh = self._records[len(self._handed) :]
        if not fresh:
            return
        written = self._writer.hand_over(fresh, overlap=overlap)
        # Awaited by ``written``; if the request never gets there (it failed meanwhile), its outcome is still taken.
        written.add_done_callback(_taken)
        self._waiting.append(written)
        self._handed += [(record, _row(record)) for record in fresh]

    async def written(self) -> None:
        self.hand_over(overlap=False)
        for written in self._waiting:
            await written
        changed = [record.resource for record, row in self._handed if _row(record) != row]
        if changed:
            log.error("access records changed after they were handed to the writer: %s", ", ".join(changed))
            raise AuditError("AUDIT_UNAVAILABLE")


def _taken(written: asyncio.Future[None]) -> None:
    if not written.cancelled():
        written.exception()
