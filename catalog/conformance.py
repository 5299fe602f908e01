"""Checks every published resource against its source; a resource that does not conform is not published."""

from __future__ import annotations

import dataclasses

from catalog.model import Catalog
from connectors.conformance import Mismatch, check_tables
from govshare.config import Settings
from govshare.logs import logger

log = logger(__name__)  # govshare.<module>: one logging configuration covers it


async def check_sources(catalog: Catalog, settings: Settings) -> dict[str, list[Mismatch]]:
    """Resource code -> its mismatches, for every published resource (empty list: conforms). Each source database is
    read once, on one connection, for every table its resources name (connectors.conformance ``check_tables``): a
    city's catalog checks thousands of resources in tens of databases."""
    return await check_tables(
        [
            (
                r.code,
                settings.expand(catalog.departments[r.provider].source),
                r.table,
                {item.column: item.type for item in r.items},
            )
            for r in catalog.published()
        ],
        timeout=settings.source_timeout_seconds,
    )


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
