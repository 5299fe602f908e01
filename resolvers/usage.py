"""Who used a provider's data and why (Art 24): the access records about the caller's own resources."""

from __future__ import annotations

from sqlalchemy import select

from audit.tables import access_records
from resolvers.context import RequestContext


async def records(ctx: RequestContext, *, resource: str | None, first: int, before_id: int | None) -> list:
    """Newest first. A provider sees the records of its own resources only; an auditor sees all."""
    query = select(access_records).order_by(access_records.c.id.desc()).limit(first)
    if "auditor" not in ctx.caller.roles:
        own = [r.code for r in ctx.catalog.resources.values() if r.provider == ctx.caller.department]
        query = query.where(access_records.c.resource.in_(own))
    if resource is not None:
        query = query.where(access_records.c.resource == resource)
    if before_id is not None:
        query = query.where(access_records.c.id < before_id)
    async with ctx.platform.connect() as conn:
        return (await conn.execute(query)).all()
