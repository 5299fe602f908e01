"""Who looked at my data (data-subject transparency): every access to records about one person or enterprise.

A service hall (a key with the role ``subject_service``) asks with the person's ID number or the enterprise's credit
code; the number is checked (its check character), hashed with the subject key (govshare.subjects) and looked up in
the access records' subject index (audit.tables: access_subject_keys and, for the newest records, access_subjects). The answer names the accesses (when, which
department and application, operator, purpose, grants, items, operation), never another subject's number or hash.
The lookup is itself an access record (operation ``subject``, resource ``SUBJECT_INDEX``), indexed under the subject
asked, so that the next lookup shows it too; a refused lookup is recorded as refused, under no subject.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from audit import archives
from audit.chain import audit_archives
from audit.records import AccessRecord
from audit.tables import ACCESS, access_records, access_subject_index, access_subject_keys, access_subjects
from govshare.config import Settings
from govshare.errors import GovshareError
from govshare.logs import logger
from govshare.subjects import credit_code_valid, id_number_valid, index_key, normal
from resolvers.context import RequestContext
from resolvers.data import decode_cursor, encode_cursor

log = logger(__name__)  # govshare.<module>: one logging configuration covers it

ROLE = "subject_service"
SUBJECT_INDEX = "platform.subject-index"  # the access record's resource for a subject lookup
OPERATION = "subject"


@dataclass(frozen=True)
class Access:
    """One access record found for the subject, and the items of it that named the subject."""

    seq: int
    row: object  # the access_records row
    items: tuple[str, ...]


@dataclass(frozen=True)
class Found:
    accesses: list[Access]
    has_next_page: bool
    end_cursor: str | None


def _record(ctx: RequestContext) -> AccessRecord:
    record = AccessRecord(
        at=ctx.now,
        request_id=ctx.request_id,
        trace_id=ctx.trace_id,
        department=ctx.caller.department,
        application=ctx.caller.application,
        key_id=ctx.caller.key_id,
        operator=ctx.operator,
        purpose=ctx.purpose,
        resource=SUBJECT_INDEX,
        operation=OPERATION,
        policy_version=ctx.policy.policies.version,
    )
    ctx.records.append(record)  # written before the answer is sent, whatever the outcome
    return record


def subject_of(id_number: str | None, credit_code: str | None) -> tuple[str, str]:
    """(the argument's name, the number as hashed), or the refusal of a missing, doubled or malformed one."""
    if (id_number is None) == (credit_code is None):
        raise GovshareError("SUBJECT_ARGUMENT_REQUIRED")
    if id_number is not None:
        value = normal(id_number)
        if not id_number_valid(value):
            raise GovshareError("ID_NUMBER_INVALID")
        return "idNumber", value
    value = normal(credit_code or "")
    if not credit_code_valid(value):
        raise GovshareError("CREDIT_CODE_INVALID")
    return "creditCode", value


async def accesses(
    ctx: RequestContext, *, id_number: str | None, credit_code: str | None, first: int, after: str | None
) -> Found:
    """The accesses to records about the subject, newest first, a page of ``first`` after the cursor ``after``."""
    record = _record(ctx)
    try:
        if ROLE not in ctx.caller.roles:
            raise GovshareError("SUBJECT_SERVICE_ONLY", role=ROLE)
        if not ctx.operator:  # a service hall answers a person at its counter: the officer who asked is named
            raise GovshareError("OPERATOR_REQUIRED", extensions={"header": "X-Operator"})
        if not 1 <= first <= ctx.settings.max_page_size:
            raise GovshareError("PAGE_SIZE_TOO_LARGE", limit=ctx.settings.max_page_size, requested=first)
        # The list fields' opaque cursor, holding here the position before which the next page starts.
        before = decode_cursor(after) if after else None
        if before == 0:
            raise GovshareError("BAD_CURSOR")
        argument, value = subject_of(id_number, credit_code)
        if ctx.subject_key is None:
            raise RuntimeError("a subject lookup needs the subject key")
        digest = ctx.subject_key.digest(value)
        if ctx.platform is None:
            raise RuntimeError("a subject lookup needs the platform database")
        found = await read(ctx.platform, digest, first, before, ctx.settings)
    except GovshareError as refused:
        record.outcome, record.error_code = "denied", refused.code
        raise
    except Exception:
        record.outcome, record.error_code = "failed", "INTERNAL_ERROR"
        raise
    record.subjects = [(argument, digest)]
    record.items_returned = [argument]
    record.row_count = len(found.accesses)
    return found


async def read(
    platform: AsyncEngine, digest: str, first: int, before: int | None = None, settings: Settings | None = None
) -> Found:
    """The accesses indexed under the subject hash ``digest``, newest first (before position ``before``). With
    ``settings``, a page the live records do not fill goes on into the records archives took out of the table (each
    archive checked whole before any of its records is read; they all lie before the live ones).

    The live records come from two places (audit/tables.py): those after the subject index's head from their subject
    rows themselves (the index's tail, a few thousand rows at most), then those up to it by the subject's index key in
    access_subject_keys, each checked by its subject rows holding the full hash (a key is the hash's first 64 bits)."""
    position, hashed = access_subjects.c.record_seq, access_subjects.c.subject_hash
    keyed = access_subject_keys.c.record_seq
    items: dict[int, list[str]] = {}
    async with platform.connect() as conn:
        # The index's head first: every record up to it is under its keys, every one after it in the tail read next,
        # however far an indexer moves the head meanwhile.
        indexed = (await conn.execute(select(access_subject_index.c.seq))).scalar_one()
        tail = select(position).where(position > indexed, hashed == digest)
        if before is not None:
            tail = tail.where(position < before)
        page = [r[0] for r in await conn.execute(tail.distinct().order_by(position.desc()).limit(first + 1))]
        if page:
            for r in await conn.execute(
                select(position, access_subjects.c.item).where(position.in_(page[:first]), hashed == digest)
            ):
                items.setdefault(r[0], []).append(r[1])
        below = indexed + 1 if before is None else min(before, indexed + 1)
        key = access_subject_keys.c.subject_key == index_key(digest)
        while len(page) <= first:
            candidates = [
                r[0]
                for r in await conn.execute(
                    select(keyed).where(key, keyed < below).order_by(keyed.desc()).limit(first + 1 - len(page))
                )
            ]
            if not candidates:
                break
            named: dict[int, list[str]] = {}
            for r in await conn.execute(
                select(position, access_subjects.c.item).where(position.in_(candidates), hashed == digest)
            ):
                named.setdefault(r[0], []).append(r[1])
            # A key whose record's rows do not hold the hash: another subject's key alike in its 64 bits (or a key
            # tampered with, which govshare audit verify reports).
            page += [seq for seq in candidates if seq in named]
            items.update(named)
            below = candidates[-1]
        wanted = page[:first]
        rows = {}
        if wanted:
            rows = {
                r.seq: r for r in await conn.execute(select(access_records).where(access_records.c.seq.in_(wanted)))
            }
    missing = [seq for seq in wanted if seq not in rows]
    if missing:  # a subject row naming no record: the index was tampered with (govshare audit verify says where)
        log.error("the subject index names access records that are not there: %s", missing)
    found = [Access(seq, rows[seq], tuple(sorted(items.get(seq, ())))) for seq in wanted if seq in rows]
    if len(page) <= first and settings is not None:
        below_archived = page[-1] if page else before
        archived = await _archived(platform, settings, digest, first + 1 - len(page), below_archived)
        found += archived[: first - len(found)]
        page += [a.seq for a in archived]
        wanted = [a.seq for a in found]
    more = len(page) > first
    return Found(found, more, encode_cursor(wanted[-1]) if more and wanted else None)


async def _archived(
    platform: AsyncEngine, settings: Settings, digest: str, count: int, before: int | None
) -> list[Access]:
    """Up to ``count`` archived accesses indexed under ``digest``, newest first, before position ``before``."""
    async with platform.connect() as conn:
        recorded = select(func.count()).select_from(audit_archives).where(audit_archives.c.chain == ACCESS.name)
        if not (await conn.execute(recorded)).scalar_one():
            return []

    def scan() -> list[Access]:
        hits = []
        for record in archives.iter_access_records(settings):
            seq = record.fields["seq"]
            named = sorted(s["item"] for s in record.side.get(access_subjects.name, ()) if s["subject_hash"] == digest)
            if named and (before is None or seq < before):
                hits.append(Access(seq, SimpleNamespace(**record.fields), tuple(named)))
        return sorted(hits, key=lambda a: -a.seq)[:count]

    return await asyncio.to_thread(scan)
