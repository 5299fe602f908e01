"""A third reviewer's attacks on issue 12 (the snapshot off the request path, the one GraphQL handler, chain
encodings and migrations): each is made as a department or an operator would make it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

from sqlalchemy import select

from catalog import store as catalog_store
from policies.store import revoke_grant
from policies.tables import grants

HRSS = "hrss.insurance-enrolment"
PERSONS = "{ personList(first: 2) { items { name } } }"


@contextlib.asynccontextmanager
async def malformed_mysql():
    """A TCP server where a department's MySQL source should be, answering every connection with a truncated
    handshake packet (the driver fails on it with struct.error, not with a database error)."""

    async def answer(reader, writer):
        writer.write(b"\x01\x00\x00\x00\xff")
        with contextlib.suppress(Exception):
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield f"mysql://u:p@127.0.0.1:{server.sockets[0].getsockname()[1]}/exchange"
    finally:
        server.close()


async def test_a_source_answering_garbage_does_not_keep_a_revoked_grant_in_force(own_api):
    """A department whose source answers a malformed handshake makes the source check raise (struct.error) in
    every rebuild after a catalog change: the snapshot in force was never replaced, so a grant revoked meanwhile
    (or a deny rule, or a retirement) went on being answered after every background check, and a server
    restarted then would not start at all."""
    runtime = own_api.app.state.runtime
    before = await own_api.query(PERSONS, "hrss", HRSS)
    assert before.get("errors") is None and before["data"]["personList"]["items"]
    async with malformed_mysql() as url:
        catalog = runtime.catalog
        civil = dataclasses.replace(catalog.departments["civil"], source=url)
        changed = dataclasses.replace(catalog, departments={**catalog.departments, "civil": civil})
        async with runtime.engine.begin() as conn:
            await catalog_store.publish(conn, changed, source="test", loaded_by="test")
            granted = (await conn.execute(select(grants.c.id).where(
                grants.c.consumer == "hrss", grants.c.resource == "police.person"))).scalars().all()
            for grant_id in granted:
                await revoke_grant(conn, grant_id, reason="review3", revoked_by="test")
        # What the background check does every refresh_seconds (its failures are logged and it goes on).
        for _ in range(2):
            with contextlib.suppress(Exception):
                await runtime.refresh()
        after = await own_api.query(PERSONS, "hrss", HRSS)
    assert after["data"]["personList"] is None
    assert [e["extensions"]["code"] for e in after["errors"]] == ["GRANT_REVOKED"]
