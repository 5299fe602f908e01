"""Archives of the audit hash chains: access and process records older than the retention period, moved out of the
live tables into signed files, each linked to the one before, and read back for reports and subject lookups.

An archive is one gzip file, ``{chain}-{number:06d}.jsonl.gz`` (``access-000001.jsonl.gz``, ...), holding JSON
lines (format: docs/audit.md). Its first line, the **header**, says which records it holds (the chain, its number,
the first and last position, the hash the first record links to and the last record's hash, how many, the earliest
and latest ``at``), the digest of the previous archive of the chain (``prev``; 64 zeros for the first), the
SHA-256 of the lines after it (``body``), and is signed with the audit checkpoints' Ed25519 key
(``audit.checkpoints``: ``audit_signing_key_file``, verified with ``audit_verify_public_key`` only) under a context
of its own, so that no checkpoint signature is an archive's. Each later line is one record: ``{"seq", "record",
"side"}``, the record's every column and the rows of side tables tied to it (``SIDE_TABLES``). The archive's
**digest** is the SHA-256 of the file's bytes: the next archive names it, and so does ``audit_archives``, so no byte
of an archive changes unseen.

``archive`` writes an archive (to a temporary name, fsynced, linked to its name, the folder fsynced), reads it back
and checks it whole against the live rows, and only then, in one transaction, records it in ``audit_archives``
and deletes its records (the append-only guard lets a DELETE through only for rows a recorded archive covers). A run
stopped before that transaction leaves the archive with its records still live: the next run finds it, checks it
again and removes them. No record is ever removed without its archive written and recorded.

``verify_folder`` checks a folder of archives against the platform's record of them; ``audit.chain.verify`` then
checks the live records continue the last one. The readers (``iter_access_records``, ``iter_process_records``,
``records``) yield archived records, only from archives whose signature and content hold.

Imports ``govshare`` and the audit package (the chains, their tables and the checkpoint keys).
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import gzip
import hashlib
import json
import os
import re
import secrets
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Table, column, func, insert, inspect, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from audit import chain as chains
from audit.chain import GENESIS, Head, audit_archives
from audit.checkpoints import key_id, signing_key, verification_keys
from audit.tables import ACCESS, PROCESS
from govshare.config import Settings
from govshare.errors import GovshareError
from govshare.platformdb import UTCDateTime

FORMAT = "govshare-audit-archive/1"
# Signed with each header, so that a signature this key made for anything else (a checkpoint) is never an archive's.
SIGNING_CONTEXT = b"govshare audit archive v1\n"
ARCHIVED_CHAINS = (ACCESS.name, PROCESS.name)
MAX_RECORDS = 100_000  # records one archive holds at most (the reader checks a file whole before yielding from it)
BATCH = 1000  # records read from the database at a time
NAME = re.compile(r"^(?P<chain>[a-z]+)-(?P<number>\d{6})\.jsonl\.gz$")
HEADER_FIELDS = {
    "format": str,
    "chain": str,
    "number": int,
    "first_seq": int,
    "last_seq": int,
    "first_prev": str,
    "last_hash": str,
    "records": int,
    "first_at": str,
    "last_at": str,
    "before": str,
    "created": str,
    "prev": str,
    "body": str,
    "sides": list,
    "key": str,
    "sig": str,
}


class ArchiveError(GovshareError):
    """An archive cannot be written, removed or read as asked (``code`` says why; ``file`` names it)."""


@dataclass(frozen=True)
class SideTable:
    """Rows of ``table`` tied to one record of a chain by the record's position in ``seq``: they go into the record's
    archive entry and leave the live table with it (the table's guard must be ``append_only(archived=(chain,
    seq))``)."""

    table: Table
    seq: str = "record_seq"

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.table.columns if c.name != self.seq)


# The side tables each archived chain carries (``carry`` adds one): a chain's attached rows (audit.chain.Attached:
# the access records' data subjects) from the start, since its records commit to them.
SIDE_TABLES: dict[str, tuple[SideTable, ...]] = dict.fromkeys(ARCHIVED_CHAINS, ())
for _name in ARCHIVED_CHAINS:
    if (_attached := chains.CHAINS[_name].attached) is not None:
        SIDE_TABLES[_name] = (SideTable(_attached.table, _attached.seq),)


def carry(chain: str, table: Table, seq: str = "record_seq") -> SideTable:
    """Archive ``table``'s rows with the records of ``chain`` they name in ``seq``."""
    side = SideTable(table, seq)
    SIDE_TABLES[chain] = (*(s for s in SIDE_TABLES[chain] if s.table.name != table.name), side)
    return side


def file_name(chain: str, number: int) -> str:
    return f"{chain}-{number:06d}.jsonl.gz"


def _canonical(value: Mapping[str, object]) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _encode(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return value


def _line(value: object) -> bytes:
    return (json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str) + "\n").encode()


def _moments(table: Table) -> frozenset[str]:
    return frozenset(c.name for c in table.columns if isinstance(c.type, UTCDateTime))


def _decoded(row: Mapping[str, Any], moments: frozenset[str]) -> dict[str, Any]:
    return {
        name: datetime.fromisoformat(value) if name in moments and isinstance(value, str) else value
        for name, value in row.items()
    }


@dataclass(frozen=True)
class ArchiveFault:
    """What is wrong with an archive (or the folder's set of them): a stable code, the file, a detail."""

    code: str
    file: str
    detail: str = ""


@dataclass
class Checked:
    """One archive read whole: its header, digest, and the (seq, hash) of every record (in ``positions`` when
    asked for), or the fault that stopped the reading."""

    path: Path
    header: dict[str, Any] = field(default_factory=dict)  # empty where ``fault`` is set
    digest: str = ""
    fault: ArchiveFault | None = None
    positions: list[tuple[int, str]] = field(default_factory=list)
    side_rows: dict[str, int] = field(default_factory=dict)


def _header_fault(path: Path, header: object, keys: Mapping[str, Ed25519PublicKey]) -> ArchiveFault | None:
    name = path.name
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        return ArchiveFault("ARCHIVE_MALFORMED", name, "not a govshare audit archive")
    if "sig" not in header:
        return ArchiveFault("ARCHIVE_UNSIGNED", name)
    wrong = [k for k, kind in HEADER_FIELDS.items() if not isinstance(header.get(k), kind) or header[k] is True]
    if wrong:
        return ArchiveFault("ARCHIVE_MALFORMED", name, ", ".join(wrong))
    if header["key"] not in keys:
        return ArchiveFault("ARCHIVE_UNKNOWN_KEY", name, header["key"])
    body = {k: v for k, v in header.items() if k != "sig"}
    try:
        keys[header["key"]].verify(
            base64.b64decode(header["sig"], validate=True), SIGNING_CONTEXT + _canonical(body).encode()
        )
    except (InvalidSignature, ValueError):
        return ArchiveFault("ARCHIVE_SIGNATURE_INVALID", name)
    found = NAME.match(name)
    if header["chain"] not in ARCHIVED_CHAINS or found is None or name != file_name(header["chain"], header["number"]):
        return ArchiveFault("ARCHIVE_MISPLACED", name, file_name(header["chain"], header["number"]))
    return None


def read_header(path: Path, keys: Mapping[str, Ed25519PublicKey]) -> Checked:
    """The archive's header, its signature checked (its body is not read)."""
    checked = Checked(path)
    try:
        with gzip.open(path, "rb") as file:
            line = file.readline()
        header = json.loads(line)
    except (OSError, EOFError, zlib.error, ValueError, RecursionError) as exc:
        checked.fault = ArchiveFault("ARCHIVE_UNREADABLE", path.name, str(exc) or type(exc).__name__)
        return checked
    checked.fault = _header_fault(path, header, keys)
    if checked.fault is None:
        checked.header, checked.digest = header, file_digest(path)
    return checked


def file_digest(path: Path) -> str:
    """An archive's digest: the SHA-256 of the file's every byte (what the next archive and audit_archives name)."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def _entries(path: Path, checked: Checked) -> Iterator[dict[str, Any]]:
    """The archive's records, as its lines hold them; sets ``checked.fault`` where the body does not hold."""
    header = checked.header
    declared = chains.CHAINS[header["chain"]]
    moments = _moments(declared.table)
    sides = {s.table.name: _moments(s.table) for s in SIDE_TABLES.get(header["chain"], ())}
    body = hashlib.sha256()
    expected, prev, count, name = header["first_seq"], header["first_prev"], 0, path.name
    try:
        with gzip.open(path, "rb") as file:
            file.readline()
            for raw in file:
                body.update(raw)
                entry = json.loads(raw)
                record = _decoded(entry["record"], moments)
                count += 1
                if entry["seq"] != expected or record.get("seq") != expected or record.get("prev_hash") != prev:
                    checked.fault = ArchiveFault("ARCHIVE_CONTENT_CHANGED", name, f"seq {expected}")
                    return
                if (
                    (record.get("encoding") or 1) not in declared.encodings
                    or declared.unencoded(record)
                    or declared.hash(prev, expected, record) != record.get("hash")
                ):
                    checked.fault = ArchiveFault("ARCHIVE_CONTENT_CHANGED", name, f"seq {expected}")
                    return
                held = entry.get("side") or {}
                side = {  # every side table the archive carries, empty where the record has no rows in it
                    table: [_decoded(row, sides.get(table, frozenset())) for row in held.get(table, ())]
                    for table in dict.fromkeys([*header["sides"], *held])
                }
                attached = declared.attached
                if attached is not None and chains.attached_digest(
                    [tuple(row[f] for f in attached.fields) for row in side.get(attached.table.name, ())]
                ) != record.get(attached.digest):  # the record commits to its attached rows: they must be these
                    checked.fault = ArchiveFault("ARCHIVE_CONTENT_CHANGED", name, f"seq {expected} attached rows")
                    return
                prev, expected = record["hash"], expected + 1
                yield {"record": record, "side": side}
    except (OSError, EOFError, zlib.error, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        checked.fault = ArchiveFault("ARCHIVE_UNREADABLE", name, str(exc) or type(exc).__name__)
        return
    if body.hexdigest() != header["body"]:
        checked.fault = ArchiveFault("ARCHIVE_CONTENT_CHANGED", name, "body digest")
    elif count != header["records"] or expected - 1 != header["last_seq"] or prev != header["last_hash"]:
        checked.fault = ArchiveFault("ARCHIVE_CONTENT_CHANGED", name, "records differ from the header")


def check_file(path: Path, keys: Mapping[str, Ed25519PublicKey], *, positions: bool = False) -> Checked:
    """Read the archive whole: the header's signature, the body's digest, every record's hash and link."""
    checked = read_header(path, keys)
    if checked.fault is not None:
        return checked
    for entry in _entries(path, checked):
        if positions:
            checked.positions.append((entry["record"]["seq"], entry["record"]["hash"]))
        for table, rows in entry["side"].items():
            checked.side_rows[table] = checked.side_rows.get(table, 0) + len(rows)
    return checked


# --- writing ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """An archive as ``audit_archives`` records it."""

    number: int
    file: str
    digest: str
    first_seq: int
    last_seq: int
    last_hash: str


async def recorded(conn: AsyncConnection, chain: str) -> list[Recorded]:
    rows = await conn.execute(
        select(
            audit_archives.c.number,
            audit_archives.c.file,
            audit_archives.c.digest,
            audit_archives.c.first_seq,
            audit_archives.c.last_seq,
            audit_archives.c.last_hash,
        )
        .where(audit_archives.c.chain == chain)
        .order_by(audit_archives.c.number)
    )
    return [Recorded(*row) for row in rows.all()]


def retention_cutoff(settings: Settings, before: datetime | None, now: datetime | None = None) -> datetime:
    """The moment records must be older than to be archived: ``before`` where given, never later than the retention
    period allows (``AUDIT_ARCHIVE_TOO_RECENT``)."""
    now = now or datetime.now(UTC)
    latest = now - timedelta(days=settings.audit_retention_days)
    if before is None:
        return latest
    if before > latest:
        raise ArchiveError(
            "AUDIT_ARCHIVE_TOO_RECENT",
            before=before.isoformat(),
            latest=latest.isoformat(),
            days=settings.audit_retention_days,
        )
    return before


def archive_folder(settings: Settings, folder: Path | None = None, *, writing: bool = False) -> Path:
    """Where archives are written and read: ``folder`` or ``audit_archive_dir``; production writes none under
    var_dir."""
    path = folder or Path(settings.expand(settings.audit_archive_dir))
    if writing and settings.production and path.resolve().is_relative_to(settings.var_dir.resolve()):
        raise ArchiveError(
            "AUDIT_FILE_UNDER_VAR", setting="audit_archive_dir", path=path, var=settings.var_dir.resolve()
        )
    return path


@dataclass(frozen=True)
class Progress:
    """One archive done: written now, or found written by a run that stopped (``resumed``), its records removed."""

    chain: str
    number: int
    file: str
    first_seq: int
    last_seq: int
    records: int
    resumed: bool


async def _columns(conn: AsyncConnection, table: Table) -> list[Any]:
    """The table's columns and any the database has that this code does not know (kept in the archive too)."""
    unknown = await conn.run_sync(
        lambda sync: [c["name"] for c in inspect(sync).get_columns(table.name) if c["name"] not in table.c]
    )
    return [*table.c, *(column(name) for name in unknown)]


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Writer:
    """The body of one archive, written to a temporary gzip member as its records come."""

    def __init__(self, folder: Path, name: str) -> None:
        self.draft = folder / f".{name}.{os.getpid()}.{secrets.token_hex(4)}.body"
        self._file = gzip.open(self.draft, "wb")  # noqa: SIM115 - closed by close(), records arrive in batches
        self.body = hashlib.sha256()
        self.count, self.first_at, self.last_at = 0, None, None
        self.first: tuple[int, str] = (0, GENESIS)
        self.last: tuple[int, str] = (0, GENESIS)

    def add(self, record: Mapping[str, Any], side: Mapping[str, list[dict[str, Any]]]) -> None:
        line = _line(
            {
                "seq": record["seq"],
                "record": {k: _encode(v) for k, v in record.items()},
                "side": {t: [{k: _encode(v) for k, v in r.items()} for r in rows] for t, rows in side.items() if rows},
            }
        )
        self._file.write(line)
        self.body.update(line)
        self.count += 1
        at = record["at"]
        self.first_at = at if self.first_at is None else min(self.first_at, at)
        self.last_at = at if self.last_at is None else max(self.last_at, at)
        if self.count == 1:
            self.first = (record["seq"], record["prev_hash"])
        self.last = (record["seq"], record["hash"])

    def close(self) -> None:
        self._file.close()


async def _write(
    conn: AsyncConnection,
    chain: str,
    folder: Path,
    number: int,
    start: tuple[int, str],
    prev_digest: str,
    cutoff: datetime,
    key: Ed25519PrivateKey,
    max_records: int,
) -> Path | None:
    """Write the next archive of ``chain``: the records from ``start`` on older than ``cutoff`` (stopping at the
    first that is not), at most ``max_records``. None when there is none to archive."""
    table = chains.CHAINS[chain].table
    name = file_name(chain, number)
    writer = _Writer(folder, name)
    sides = SIDE_TABLES.get(chain, ())
    try:
        seq, done = start[0], False
        query = select(*await _columns(conn, table)).where(table.c.seq >= seq).order_by(table.c.seq)
        while not done and writer.count < max_records:
            limit = min(BATCH, max_records - writer.count)
            batch = (await conn.execute(query.where(table.c.seq >= seq).limit(limit))).mappings().all()
            kept = []
            for row in batch:
                if row["at"] >= cutoff:
                    done = True
                    break
                kept.append(dict(row))
            done = done or len(batch) < limit
            if not kept:
                break
            attached: dict[str, dict[int, list[dict[str, Any]]]] = {}
            for side in sides:
                found = await conn.execute(
                    select(side.table).where(side.table.c[side.seq].between(kept[0]["seq"], kept[-1]["seq"]))
                )
                by_seq = attached.setdefault(side.table.name, {})
                for side_row in found.mappings():
                    by_seq.setdefault(side_row[side.seq], []).append(
                        {k: v for k, v in side_row.items() if k != side.seq}
                    )
            for record in kept:
                writer.add(record, {t: by_seq.get(record["seq"], []) for t, by_seq in attached.items()})
            seq = kept[-1]["seq"] + 1
        writer.close()
        if writer.first_at is None or writer.last_at is None:
            return None  # nothing to archive
        header: dict[str, Any] = {
            "format": FORMAT,
            "chain": chain,
            "number": number,
            "first_seq": writer.first[0],
            "last_seq": writer.last[0],
            "first_prev": writer.first[1],
            "last_hash": writer.last[1],
            "records": writer.count,
            "first_at": _encode(writer.first_at),
            "last_at": _encode(writer.last_at),
            "before": _encode(cutoff),
            "created": _encode(datetime.now(UTC)),
            "prev": prev_digest,
            "body": writer.body.hexdigest(),
            "sides": [s.table.name for s in sides],
            "key": key_id(key.public_key()),
        }
        header["sig"] = base64.b64encode(key.sign(SIGNING_CONTEXT + _canonical(header).encode())).decode()
        return await asyncio.to_thread(_seal, folder, name, _canonical(header), writer.draft)
    finally:
        writer.close()
        writer.draft.unlink(missing_ok=True)


def _seal(folder: Path, name: str, header: str, body: Path) -> Path:
    """The header's gzip member, then the body's, as one file under its name: written whole, fsynced, linked in
    place (never over an existing archive), the folder fsynced."""
    draft = folder / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        with draft.open("xb") as file:
            file.write(gzip.compress((header + "\n").encode(), mtime=0))  # its bytes depend on its content only
            with body.open("rb") as source:
                while chunk := source.read(1 << 20):
                    file.write(chunk)
            file.flush()
            os.fsync(file.fileno())
        final = folder / name
        try:
            os.link(draft, final)
        except FileExistsError:
            raise ArchiveError("ARCHIVE_EXISTS", file=name) from None
        _fsync_folder(folder)
        return final
    finally:
        draft.unlink(missing_ok=True)


async def _remove(engine: AsyncEngine, chain: str, checked: Checked) -> None:
    """Record the archive and delete its records (and their side rows), in one transaction, once the live rows are
    exactly those it holds."""
    header = checked.header
    table = chains.CHAINS[chain].table
    first, last = header["first_seq"], header["last_seq"]
    async with engine.begin() as conn:
        # The live records must be the archived ones, each still hashing to its hash: a record changed in the
        # database is left there (and found by verify), never removed.
        declared, positions = chains.CHAINS[chain], []
        query = select(*await _columns(conn, table)).where(table.c.seq.between(first, last)).order_by(table.c.seq)
        for row in (await conn.execute(query)).mappings():
            record = dict(row)
            if (
                declared.unencoded(record)
                or declared.hash(record["prev_hash"], record["seq"], record) != record["hash"]
            ):
                raise ArchiveError("ARCHIVE_LIVE_MISMATCH", file=checked.path.name, first=first, last=last)
            positions.append((record["seq"], record["hash"]))
        if positions != checked.positions:
            raise ArchiveError("ARCHIVE_LIVE_MISMATCH", file=checked.path.name, first=first, last=last)
        sides = SIDE_TABLES.get(chain, ())
        for side in sides:
            held = (
                await conn.execute(
                    select(func.count()).select_from(side.table).where(side.table.c[side.seq].between(first, last))
                )
            ).scalar_one()
            if held != checked.side_rows.get(side.table.name, 0):
                raise ArchiveError("ARCHIVE_LIVE_MISMATCH", file=checked.path.name, first=first, last=last)
        await conn.execute(
            insert(audit_archives).values(
                chain=chain,
                number=header["number"],
                file=checked.path.name,
                digest=checked.digest,
                first_seq=first,
                last_seq=last,
                last_hash=header["last_hash"],
                records=header["records"],
                last_at=datetime.fromisoformat(header["last_at"]),
                archived_at=datetime.now(UTC),
            )
        )
        for side in sides:
            await conn.execute(side.table.delete().where(side.table.c[side.seq].between(first, last)))
        attached = declared.attached
        if attached is not None and attached.derived is not None:  # the subject index's keys of those records
            keys = attached.derived.table
            await conn.execute(keys.delete().where(keys.c[attached.derived.seq].between(first, last)))
        removed = await conn.execute(table.delete().where(table.c.seq.between(first, last)))
        if removed.rowcount != header["records"]:
            raise ArchiveError("ARCHIVE_LIVE_MISMATCH", file=checked.path.name, first=first, last=last)


async def archive(
    engine: AsyncEngine,
    settings: Settings,
    folder: Path,
    cutoff: datetime,
    *,
    max_records: int = MAX_RECORDS,
    chains_archived: Sequence[str] = ARCHIVED_CHAINS,
    told: Callable[[Progress], None] = lambda progress: None,
) -> list[Progress]:
    """``govshare audit archive``: archive every chain's records older than ``cutoff``, archive by archive (each
    ``told`` as it is done), and remove them from the live tables. One run at a time per folder (a lock file)."""
    key, _ = signing_key(settings)
    keys = verification_keys(settings)[0] | {key_id(key.public_key()): key.public_key()}
    folder.mkdir(parents=True, exist_ok=True)
    done: list[Progress] = []
    with (folder / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for chain in chains_archived:
            while (progress := await _next(engine, chain, folder, cutoff, key, keys, max_records)) is not None:
                done.append(progress)
                told(progress)
    return done


async def _next(
    engine: AsyncEngine,
    chain: str,
    folder: Path,
    cutoff: datetime,
    key: Ed25519PrivateKey,
    keys: Mapping[str, Ed25519PublicKey],
    max_records: int,
) -> Progress | None:
    async with engine.connect() as conn:
        archives = await recorded(conn, chain)
    start = (archives[-1].last_seq + 1, archives[-1].last_hash) if archives else (1, GENESIS)
    prev = archives[-1].digest if archives else GENESIS
    if archives:  # the new archive links to the last one: it must be in this folder, as recorded
        last = read_header(folder / archives[-1].file, keys)
        if last.fault is not None or last.digest != archives[-1].digest:
            raise ArchiveError("ARCHIVE_FOLDER_MISMATCH", folder=folder, file=archives[-1].file)
    number = (archives[-1].number if archives else 0) + 1
    path = folder / file_name(chain, number)
    resumed = path.exists()
    if not resumed:
        async with engine.connect() as conn:
            written = await _write(conn, chain, folder, number, start, prev, cutoff, key, max_records)
        if written is None:
            return None
    checked = await asyncio.to_thread(check_file, path, keys, positions=True)
    if checked.fault is not None:
        raise ArchiveError(checked.fault.code, file=path.name, detail=checked.fault.detail)
    header = checked.header
    if (header["first_seq"], header["first_prev"], header["prev"]) != (*start, prev):
        raise ArchiveError("ARCHIVE_LINK_BROKEN", file=path.name, detail=f"does not follow #{number - 1}")
    await _remove(engine, chain, checked)
    return Progress(chain, number, path.name, header["first_seq"], header["last_seq"], header["records"], resumed)


# --- verifying ---------------------------------------------------------------------------------------------------


@dataclass
class FolderReport:
    """One chain's archives in a folder, checked against each other, the platform's record of them and the signed
    checkpoints: the faults, where the archived records end (the live chain starts after it) and an archive
    written by a run that stopped before removing its records (``pending``: not a fault)."""

    chain: str
    archives: list[Checked] = field(default_factory=list)
    faults: list[ArchiveFault] = field(default_factory=list)
    end: tuple[int, str] = (0, GENESIS)
    pending: Checked | None = None

    @property
    def records(self) -> int:
        return sum(c.header["records"] for c in self.archives)

    def heads(self) -> list[Head]:
        """What the live chain must still hold: the pending archive's last record."""
        if self.pending is None:
            return []
        return [{"chain": self.chain, "seq": self.pending.header["last_seq"], "hash": self.pending.header["last_hash"]}]


def verify_folder(
    folder: Path,
    chain: str,
    keys: Mapping[str, Ed25519PublicKey],
    archives: Sequence[Recorded],
    checkpoints: Sequence[Head] = (),
) -> FolderReport:
    """Check every archive of ``chain`` in ``folder``: whole, signed, named for its place, linked to the one before
    (digest and positions), holding every signed checkpoint head in its range, and the same as ``archives``
    recorded (none missing, none substituted, none unrecorded but the one a stopped run left)."""
    report = FolderReport(chain)
    files = sorted(p for p in folder.glob(f"{chain}-*.jsonl.gz") if not p.name.startswith("."))
    points = {p["seq"]: p["hash"] for p in checkpoints if p["chain"] == chain}
    by_number: dict[int, Checked] = {}
    for path in files:
        checked = read_header(path, keys)
        if checked.fault is None:
            wanted = {s for s in points if checked.header["first_seq"] <= s <= checked.header["last_seq"]}
            checked = check_file(path, keys, positions=bool(wanted))
            for seq, digest in checked.positions:
                if seq in wanted and points[seq] != digest:
                    checked.fault = ArchiveFault("ARCHIVE_CHECKPOINT_MISMATCH", path.name, f"seq {seq}")
        if checked.fault is not None:
            report.faults.append(checked.fault)
            match = NAME.match(path.name)
            if match is not None:
                by_number.setdefault(int(match["number"]), checked)
            continue
        by_number[checked.header["number"]] = checked
    recorded_numbers = {r.number: r for r in archives}
    highest = max([*by_number, *recorded_numbers], default=0)
    # What the next archive must follow (None: unknown, its predecessor missing and not recorded).
    prev_digest: str | None = GENESIS
    end: tuple[int, str] | None = (0, GENESIS)
    for number in range(1, highest + 1):
        found = by_number.get(number)
        record = recorded_numbers.get(number)
        name = record.file if record is not None else file_name(chain, number)
        if found is None or found.fault is not None:
            if found is None:
                report.faults.append(ArchiveFault("ARCHIVE_MISSING", name))
            # What follows links to what the platform recorded of it.
            prev_digest = record.digest if record is not None else None
            end = (record.last_seq, record.last_hash) if record is not None else None
            continue
        header = found.header
        if (prev_digest is not None and header["prev"] != prev_digest) or (
            end is not None and (header["first_seq"] - 1, header["first_prev"]) != end
        ):
            report.faults.append(ArchiveFault("ARCHIVE_LINK_BROKEN", name, f"#{number - 1} → #{number}"))
        if record is None:
            if number == highest and number == len(archives) + 1:
                report.pending = found  # written, its records not yet removed: the next run removes them
                continue
            report.faults.append(ArchiveFault("ARCHIVE_NOT_RECORDED", name))
        elif record.digest != found.digest:
            report.faults.append(ArchiveFault("ARCHIVE_SUBSTITUTED", name))
        report.archives.append(found)
        prev_digest, end = found.digest, (header["last_seq"], header["last_hash"])
    if end is not None:
        report.end = end
    elif archives:
        report.end = (archives[-1].last_seq, archives[-1].last_hash)
    return report


# --- reading -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchivedRecord:
    """A record read from an archive: its columns as the live table held them (``at`` an aware UTC datetime, JSON
    columns decoded) and the rows of its side tables, by table name (each without the record's position)."""

    chain: str
    fields: dict[str, Any]
    side: dict[str, list[dict[str, Any]]]


def _overlaps(header: Mapping[str, Any], since: datetime | None, until: datetime | None) -> bool:
    first, last = datetime.fromisoformat(header["first_at"]), datetime.fromisoformat(header["last_at"])
    return (since is None or last >= since) and (until is None or first < until)


def iter_records(
    folder: Path,
    chain: str,
    keys: Mapping[str, Ed25519PublicKey],
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[ArchivedRecord]:
    """The archived records of ``chain`` with ``since <= at < until`` (either open) in ``folder``, oldest archive
    first, in chain order. An archive is read only when its signed header says it holds such records, and checked
    whole before any of its records is yielded; one that does not hold raises ``ArchiveError`` with its fault's
    code. Every archive file in the folder is read, one a stopped run left with its records still live too: to read
    archived and live records together, use ``records``. (The chain across archives is ``verify_folder``'s to
    check.)"""
    for path in sorted(folder.glob(f"{chain}-*.jsonl.gz")):
        yield from _file_records(path, keys, since, until)


def _file_records(
    path: Path, keys: Mapping[str, Ed25519PublicKey], since: datetime | None, until: datetime | None
) -> Iterator[ArchivedRecord]:
    checked = read_header(path, keys)
    if checked.fault is None and not _overlaps(checked.header, since, until):
        return
    if checked.fault is None:
        checked = check_file(path, keys)
    if checked.fault is not None:
        raise ArchiveError(checked.fault.code, file=path.name, detail=checked.fault.detail)
    chain = checked.header["chain"]
    for entry in _entries(path, checked):
        at = entry["record"]["at"]
        if (since is None or at >= since) and (until is None or at < until):
            yield ArchivedRecord(chain, entry["record"], entry["side"])
    if checked.fault is not None:  # the file changed between the check and the reading
        raise ArchiveError(checked.fault.code, file=path.name, detail=checked.fault.detail)


def _reading(settings: Settings, folder: Path | None) -> tuple[Path, dict[str, Ed25519PublicKey]]:
    return archive_folder(settings, folder), verification_keys(settings)[0]


def iter_access_records(
    settings: Settings, since: datetime | None = None, until: datetime | None = None, folder: Path | None = None
) -> Iterator[ArchivedRecord]:
    """The archived access records with ``since <= at < until``, from ``folder`` (default ``audit_archive_dir``),
    verified with the configured keys (``audit_verify_public_key``, in development the development key's)."""
    path, keys = _reading(settings, folder)
    return iter_records(path, ACCESS.name, keys, since, until)


def iter_process_records(
    settings: Settings, since: datetime | None = None, until: datetime | None = None, folder: Path | None = None
) -> Iterator[ArchivedRecord]:
    """The archived process records, as ``iter_access_records``."""
    path, keys = _reading(settings, folder)
    return iter_records(path, PROCESS.name, keys, since, until)


async def records(
    conn: AsyncConnection,
    settings: Settings,
    chain: str,
    since: datetime | None = None,
    until: datetime | None = None,
    folder: Path | None = None,
) -> AsyncIterator[ArchivedRecord]:
    """Archived and live records of ``chain`` with ``since <= at < until``, in chain order: what a report or a
    subject lookup over a period reads. Archives are read on a worker thread, one at a time; the live records are
    those after the last recorded archive (a record of an archive not yet removed comes once)."""
    path, keys = _reading(settings, folder)
    for archived in await recorded(conn, chain):
        found = await asyncio.to_thread(_listed, path / archived.file, keys, since, until)
        for record in found:
            yield record
    table = chains.CHAINS[chain].table
    first, _ = await chains.live_start(conn, chain)
    query = select(table).where(table.c.seq >= first).order_by(table.c.seq)
    if since is not None:
        query = query.where(table.c.at >= since)
    if until is not None:
        query = query.where(table.c.at < until)
    live = (await conn.execute(query)).mappings().all()
    attached: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for extra in SIDE_TABLES.get(chain, ()):
        by_seq = attached[extra.table.name] = {}
        if live:
            position = extra.table.c[extra.seq]
            held = await conn.execute(select(extra.table).where(position.between(live[0]["seq"], live[-1]["seq"])))
            for side_row in held.mappings():
                by_seq.setdefault(side_row[extra.seq], []).append({k: v for k, v in side_row.items() if k != extra.seq})
    for row in live:
        yield ArchivedRecord(chain, dict(row), {name: by_seq.get(row["seq"], []) for name, by_seq in attached.items()})


def _listed(
    path: Path, keys: Mapping[str, Ed25519PublicKey], since: datetime | None, until: datetime | None
) -> list[ArchivedRecord]:
    return list(_file_records(path, keys, since, until))
