"""The hash chain over the access and process records: each record carries the hash of the one before,
over a canonical encoding of its fields, so a changed, deleted, inserted or reordered record is found.

Appending takes the chain's head row first (a write lock on SQLite, a row lock on PostgreSQL), so
concurrent writers in several processes extend one chain and never fork it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, select

from govshare.platformdb import access_records, chain_heads, policy_versions, process_records

CHAINS = {"access": access_records, "process": process_records, "policy": policy_versions}
GENESIS = "0" * 64
_LINK_COLUMNS = {"id", "seq", "prev_hash", "hash"}


def _plain(value):
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).replace(tzinfo=None).isoformat(timespec="microseconds")
    return value


def record_hash(prev_hash: str, seq: int, fields: dict) -> str:
    body = {k: _plain(v) for k, v in fields.items() if k not in _LINK_COLUMNS}
    canonical = json.dumps([prev_hash, seq, body], sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


# Built once: constructing the statements anew on every append cost more than executing them.
# Taking the head row first serializes writers: SQLite's write lock, PostgreSQL's row lock.
_LOCK_HEAD = chain_heads.update().where(chain_heads.c.chain == bindparam("chain_name")).values(seq=chain_heads.c.seq)
_READ_HEAD = select(chain_heads.c.seq, chain_heads.c.hash).where(chain_heads.c.chain == bindparam("chain_name"))
_ADVANCE_HEAD = chain_heads.update().where(chain_heads.c.chain == bindparam("chain_name")) \
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))


def _linked(seq: int, prev: str, rows: list[dict]) -> tuple[list[dict], int, str]:
    linked = []
    for row in rows:
        seq += 1
        digest = record_hash(prev, seq, row)
        linked.append({**row, "seq": seq, "prev_hash": prev, "hash": digest})
        prev = digest
    return linked, seq, prev


async def append(conn, chain: str, rows: list[dict]) -> None:
    """Insert ``rows`` into ``chain``'s table, linked to its head, inside the caller's transaction."""
    if not rows:
        return
    await conn.execute(_LOCK_HEAD, {"chain_name": chain})
    head = (await conn.execute(_READ_HEAD, {"chain_name": chain})).one()
    linked, seq, prev = _linked(head.seq, head.hash, rows)
    await conn.execute(CHAINS[chain].insert(), linked)
    await conn.execute(_ADVANCE_HEAD, {"chain_name": chain, "new_seq": seq, "new_hash": prev})


def append_sync(conn, chain: str, rows: list[dict]) -> None:
    """``append`` on a synchronous connection (the access-record writer's own thread)."""
    if not rows:
        return
    conn.execute(_LOCK_HEAD, {"chain_name": chain})
    head = conn.execute(_READ_HEAD, {"chain_name": chain}).one()
    linked, seq, prev = _linked(head.seq, head.hash, rows)
    conn.execute(CHAINS[chain].insert(), linked)
    conn.execute(_ADVANCE_HEAD, {"chain_name": chain, "new_seq": seq, "new_hash": prev})


@dataclass(frozen=True)
class Break:
    chain: str
    seq: int  # the position where the chain stops being what was written
    problem: str  # changed | missing | inserted | reordered | truncated


async def verify(conn, chain: str, checkpoints: list[dict] = ()) -> tuple[int, Break | None]:
    """(records checked, the first break or None), walking the chain in the order it was written, then
    checking it still holds every checkpointed head (``audit.checkpoints``: only heads whose signature holds)."""
    table = CHAINS[chain]
    head = (await conn.execute(select(chain_heads.c.seq, chain_heads.c.hash).where(chain_heads.c.chain == chain))).one()
    rows = [dict(r) for r in (await conn.execute(select(table).order_by(table.c.id))).mappings()]
    present = {r["seq"] for r in rows}
    expected_seq, prev = 1, GENESIS
    for count, row in enumerate(rows, start=1):
        if row["seq"] != expected_seq:
            if expected_seq in present:
                problem = "reordered"
            elif row["seq"] > expected_seq:
                problem = "missing"
            else:
                problem = "inserted"
            return count, Break(chain, expected_seq, problem)
        if row["prev_hash"] != prev:
            return count, Break(chain, expected_seq, "inserted")
        if record_hash(prev, row["seq"], row) != row["hash"]:
            return count, Break(chain, expected_seq, "changed")
        prev, expected_seq = row["hash"], expected_seq + 1
    last = expected_seq - 1
    hashes = {r["seq"]: r["hash"] for r in rows}
    for point in sorted((c for c in checkpoints if c["chain"] == chain), key=lambda c: c["seq"]):
        if point["seq"] > last:
            return len(rows), Break(chain, last + 1, "truncated")
        if point["seq"] and hashes.get(point["seq"]) != point["hash"]:
            return len(rows), Break(chain, point["seq"], "changed")
    if last < head.seq:
        return len(rows), Break(chain, last + 1, "truncated")
    if last > head.seq or prev != head.hash:
        return len(rows), Break(chain, head.seq + 1, "inserted")
    return len(rows), None


class SqliteAppender:
    """``append`` for a SQLite platform database on a plain sqlite3 connection of its own (the access-record
    writer's thread): the same rows, linked the same way and stored exactly as SQLAlchemy stores them (its own
    bind processors), at a fraction of the cost per transaction (0.2 ms against 0.55 ms through SQLAlchemy,
    measured for one record). ``BEGIN IMMEDIATE`` takes SQLite's write lock first, as the head update does."""

    def __init__(self, engine, chain: str, *, wait_ms: int = 5000) -> None:
        import sqlite3

        self.chain, self.table = chain, CHAINS[chain]
        self._conn = sqlite3.connect(engine.url.database, isolation_level=None, check_same_thread=False)
        self._conn.execute(f"PRAGMA busy_timeout={int(wait_ms)}")
        self._busy = sqlite3.OperationalError
        self._columns = [c.name for c in self.table.columns if c.name != "id"]
        processors = {c.name: c.type.bind_processor(engine.dialect) for c in self.table.columns}
        self._processors = [(name, processors[name]) for name in self._columns]
        self._insert = (f"INSERT INTO {self.table.name} ({', '.join(self._columns)}) "
                        f"VALUES ({', '.join('?' for _ in self._columns)})")

    def append(self, rows: list[dict]) -> None:
        if rows and not self.try_append(rows):
            raise self._busy("database is locked")

    def try_append(self, rows: list[dict]) -> bool:
        """Append, or return False at once (nothing done) when another writer holds the lock for longer than
        this connection waits."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except self._busy:
            return False
        try:
            seq, prev = conn.execute("SELECT seq, hash FROM chain_heads WHERE chain = ?", (self.chain,)).fetchone()
            linked, seq, prev = _linked(seq, prev, rows)
            conn.executemany(self._insert, [
                tuple(row[name] if process is None or row[name] is None else process(row[name])
                      for name, process in self._processors)
                for row in linked
            ])
            conn.execute("UPDATE chain_heads SET seq = ?, hash = ? WHERE chain = ?", (seq, prev, self.chain))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return True

    def close(self) -> None:
        self._conn.close()
