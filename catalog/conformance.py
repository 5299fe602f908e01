"""Checks every published resource against its source; a resource that does not conform is not published."""

from __future__ import annotations

import asyncio
import dataclasses

from catalog.model import Catalog, Resource
from connectors.conformance import Mismatch, check_table
from govshare.config import Settings
from govshare.logs import logger

log = logger(__name__)  # govshare.<module>: one logging configuration covers it


async def check_sources(catalog: Catalog, settings: Settings) -> dict[str, list[Mismatch]]:
    """Resource code -> its mismatches, for every published resource (empty list: conforms)."""

    async def one(resource: Resource) -> tuple[str, list[Mismatch]]:
        url = settings.expand(catalog.departments[resource.provider].source)
        columns = {item.column: item.type for item in resource.items}
        return resource.code, await check_table(url, resource.table, columns, timeout=settings.source_timeout_seconds)

    return dict(await asyncio.gather(*(one(r) for r in catalog.published())))


def without_nonconforming(catalog: Catalog, findings: dict[str, list[Mismatch]]) -> Catalog:
    """The catalog with resources whose source lacks a table or column, or has a wrong type, left unpublished.

    An unreachable source is an outage, not a mismatch: its resources stay published and answer
    SOURCE_UNAVAILABLE until the source is back.
    """
    refused = {code for code, problems in findings.items() if any(p.kind != "unreachable" for p in problems)}
    for code in sorted(refused):
        for problem in findings[code]:
            log.error("not publishing %s: %s", code, problem.detail)
    if not refused:
        return catalog
    resources = {code: r for code, r in catalog.resources.items() if code not in refused}
    return dataclasses.replace(catalog, resources=resources)
