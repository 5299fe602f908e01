"""Valid application keys are remembered between policy changes (one platform round trip less per request);
revoking a key is a policy change, so a revoked key is refused as soon as the process sees the change."""

from __future__ import annotations

import dataclasses

from sqlalchemy import event

from govshare.keys import revoke_key
from tests.conftest import _api

QUERY = "{ caller { department } }"


async def test_a_seen_key_is_not_looked_up_again_and_revocation_empties_the_cache(own_world):
    settings = dataclasses.replace(own_world.settings, refresh_seconds=60.0)  # only an explicit check sees changes
    async for api in _api(own_world, settings=settings):
        runtime = api.app.state.runtime
        lookups: list[str] = []

        def capture(conn, cursor, statement, parameters, context, executemany):
            if "FROM api_keys" in statement:
                lookups.append(statement)  # noqa: B023 - the loop runs once, capture only within it

        event.listen(runtime.engine.sync_engine, "before_cursor_execute", capture)
        first = await api.post(QUERY, department="hrss")
        assert first.status_code == 200 and first.json()["data"]["caller"]["department"] == "hrss"
        assert len(lookups) == 1
        again = await api.post(QUERY, department="hrss")
        assert again.status_code == 200 and len(lookups) == 1  # answered from the cache

        forged = await api.post(QUERY, key="gsk_forged_" + "x" * 40)
        assert forged.status_code == 401 and len(lookups) == 2
        forged = await api.post(QUERY, key="gsk_forged_" + "x" * 40)
        assert forged.status_code == 401 and len(lookups) == 3  # unknown keys are never cached

        async with runtime.engine.begin() as conn:
            from sqlalchemy import select

            from govshare.keys import api_keys, hash_key

            key_id = (
                await conn.execute(select(api_keys.c.id).where(api_keys.c.key_hash == hash_key(own_world.keys["hrss"])))
            ).scalar_one()
            await revoke_key(conn, key_id)
        await runtime.refresh()  # what the periodic check (or the announcement) does
        revoked = await api.post(QUERY, department="hrss")
        assert revoked.status_code == 401 and revoked.json()["errors"][0]["extensions"]["code"] == "KEY_REVOKED"
        other = await api.post(QUERY, department="civil")
        assert other.status_code == 200
        event.remove(runtime.engine.sync_engine, "before_cursor_execute", capture)
