"""Who looked at my data: every access to records about one person or enterprise, found by the keyed hash of its
number in the access records' subject index (README "Who looked at my data")."""

from __future__ import annotations

import pytest
from sqlalchemy import text

SUBJECT = """query($id: String, $code: String, $first: Int, $after: String) {
  subjectAccesses(idNumber: $id, creditCode: $code, first: $first, after: $after) {
    items { department application operator purpose resource operation grantsUsed itemsReturned itemsMasked
            subjectItems outcome }
    hasNextPage endCursor } }"""
OFFICER = {"X-Operator": "hall-officer-7"}


async def lookup(api, *, id_number=None, credit_code=None, first=20, after=None, department="bigdata", headers=OFFICER):
    return await api.query(
        SUBJECT,
        department,
        None,
        variables={"id": id_number, "code": credit_code, "first": first, "after": after},
        headers=headers,
    )


async def test_smoke(own_api, own_world):
    person = own_world.row("police", "SELECT id_number FROM person LIMIT 1")["id_number"]
    got = await own_api.query(
        "query($id: String!) { person(idNumber: $id) { name } }", "market", "market.licence-review", variables={"id": person}
    )
    print(got)
    found = await lookup(own_api, id_number=person)
    print(found)
    assert found["data"]["subjectAccesses"]["items"]
