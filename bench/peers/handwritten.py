"""The hand-written endpoint `make bench-peers` measures beside govshare and PostGraphile (bench/peers.py starts it).

The four workloads as plain SQL, one route each, on the stack govshare is built on: Starlette, SQLAlchemy's async
engine over asyncpg, the same department databases as govshare's sources, answers encoded by msgspec. No key, no
decision, no access record: the county scope and the mask of workload (a) are written into its SQL, as an
application written for 人社局 alone would. The answers have govshare's shape (``{"data": {"personList": {"items":
[...]}}}``), so that bench/peers.py compares them with govshare's as they are.

Environment: PEERS_HAND_SOURCES (``{"police": url, "market": url}``, async SQLAlchemy URLs), PEERS_POOL (connections
kept per database and process), PEERS_HAND_HRSS_ORDER (hrss's pseudonym key as its padded inner and outer keys, hex,
comma-separated: the order of (a)).
"""

# ruff: noqa: S608  (statements built from this file's constants and hex digits, values bound)
from __future__ import annotations

import json
import os

import msgspec
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

SOURCES = json.loads(os.environ["PEERS_HAND_SOURCES"])
POOL = int(os.environ.get("PEERS_POOL", "10"))
police = create_async_engine(SOURCES["police"], pool_size=POOL)
market = create_async_engine(SOURCES["market"], pool_size=POOL)

PERSON = 'id_number AS "idNumber", name, gender, birth_date AS "birthDate", county_code AS "countyCode", address'
# keep:6,4, as govshare's PostgreSQL connector writes it
MASKED_ID = (
    "(CASE WHEN char_length(id_number) <= 10 THEN repeat('*', char_length(id_number)) "
    "ELSE substr(id_number, 1, 6) || repeat('*', char_length(id_number) - 10) "
    "|| substr(id_number, char_length(id_number) - 4 + 1) END)"
)
# govshare's order where the key is masked: its keyed pseudonym for hrss (HMAC-SHA256 from the padded keys, hex)
INNER, OUTER = (bytes.fromhex(k).hex() for k in os.environ["PEERS_HAND_HRSS_ORDER"].split(","))
PSEUDONYM = (
    f"substr(encode(sha256(decode('{OUTER}', 'hex') || sha256(decode('{INNER}', 'hex') "
    "|| convert_to(id_number, 'UTF8'))), 'hex'), 1, 24)"
)
HRSS_PAGE = text(
    f'SELECT {MASKED_ID} AS "idNumber", name, gender, county_code AS "countyCode", address FROM person '
    f"WHERE county_code = '371311' ORDER BY {PSEUDONYM} LIMIT :n"
)
PAGE = text(f"SELECT {PERSON} FROM person ORDER BY id_number LIMIT :n")
LOOKUP = text(f"SELECT {PERSON} FROM person WHERE id_number = :id")
ENTERPRISES = text(
    'SELECT credit_code AS "creditCode", name, legal_rep_name AS "legalRepName", '
    'registered_capital AS "registeredCapital", established_date AS "establishedDate", status, '
    "legal_rep_id_number FROM enterprise ORDER BY credit_code LIMIT :n"
)
REPRESENTATIVES = text(f"SELECT {PERSON} FROM person WHERE id_number IN :ids").bindparams(
    bindparam("ids", expanding=True)
)


def answer(data: dict) -> Response:
    return Response(msgspec.json.encode({"data": data}), media_type="application/json")


async def variables(request: Request) -> dict:
    return msgspec.json.decode(await request.body()).get("variables") or {}


async def person_list_hrss(request: Request) -> Response:  # (a)
    given = await variables(request)
    async with police.connect() as conn:
        rows = (await conn.execute(HRSS_PAGE, {"n": given["n"]})).mappings().all()
    return answer({"personList": {"items": [dict(r) for r in rows]}})


async def person_list(request: Request) -> Response:  # (b)
    given = await variables(request)
    async with police.connect() as conn:
        rows = (await conn.execute(PAGE, {"n": given["n"]})).mappings().all()
    return answer({"personList": {"items": [dict(r) for r in rows]}})


async def person(request: Request) -> Response:  # (c)
    given = await variables(request)
    async with police.connect() as conn:
        row = (await conn.execute(LOOKUP, {"id": given["id"]})).mappings().first()
    return answer({"person": dict(row) if row else None})


async def enterprise_list(request: Request) -> Response:  # (d)
    given = await variables(request)
    async with market.connect() as conn:
        enterprises = [dict(r) for r in (await conn.execute(ENTERPRISES, {"n": given["n"]})).mappings()]
    ids = sorted({e["legal_rep_id_number"] for e in enterprises})
    representatives = {}
    if ids:
        async with police.connect() as conn:
            representatives = {
                r["idNumber"]: dict(r) for r in (await conn.execute(REPRESENTATIVES, {"ids": ids})).mappings()
            }
    for enterprise in enterprises:
        enterprise["legalRepresentative"] = representatives.get(enterprise.pop("legal_rep_id_number"))
    return answer({"enterpriseList": {"items": enterprises}})


async def healthz(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(
    routes=[
        Route("/a", person_list_hrss, methods=["POST"]),
        Route("/b", person_list, methods=["POST"]),
        Route("/c", person, methods=["POST"]),
        Route("/d", enterprise_list, methods=["POST"]),
        Route("/healthz", healthz),
    ]
)
