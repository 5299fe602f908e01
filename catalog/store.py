"""The catalog in force: every load is a new version in the platform database; the newest is in force."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from sqlalchemy import JSON, Column, Integer, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncConnection

from catalog.model import Catalog
from govshare.platformdb import UTCDateTime, metadata

# Every catalog loaded, whole; the latest is in force.
catalog_versions = Table(
    "catalog_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=True),
    Column("loaded_at", UTCDateTime, nullable=False),
    Column("loaded_by", String(100), nullable=False),
    Column("source", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("document", JSON, nullable=False),
)


def digest(catalog: Catalog) -> str:
    canonical = json.dumps(catalog.to_document(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def publish(conn: AsyncConnection, catalog: Catalog, *, source: str, loaded_by: str) -> int:
    """Record ``catalog`` as the catalog in force; returns its version."""
    result = await conn.execute(
        catalog_versions.insert().values(
            loaded_at=datetime.now(UTC),
            loaded_by=loaded_by,
            source=source,
            digest=digest(catalog),
            document=catalog.to_document(),
        )
    )
    key = result.inserted_primary_key
    if key is None:  # every dialect we run on returns it for an autoincrement key
        raise RuntimeError("the database returned no version number for the catalog")
    return int(key[0])


async def current(conn: AsyncConnection) -> Catalog | None:
    row = (
        await conn.execute(
            select(catalog_versions.c.version, catalog_versions.c.document)
            .order_by(catalog_versions.c.version.desc())
            .limit(1)
        )
    ).first()
    return None if row is None else Catalog.from_document(row.document, version=row.version)
