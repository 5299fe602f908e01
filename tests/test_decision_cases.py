"""Runs the decision matrix in tests/cases/*.toml over HTTP: an allowed item has its value, a denied one its code."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from sqlalchemy import select

from audit.tables import access_records

CASES = [
    pytest.param(case, id=f"{path.stem}:{case['why']}")
    for path in sorted((Path(__file__).parent / "cases").glob("*.toml"))
    for case in tomllib.loads(path.read_text(encoding="utf-8"))["case"]
]
ALLOW = {"PROVIDER_OWN", "UNCONDITIONAL", "RELATED_DEPARTMENT", "GRANT", "LEGAL_BASIS"}


@pytest.mark.parametrize("case", CASES)
async def test_decision(api, case):
    field = f"{case['resource']}List"
    response = await api.post(f"{{ {field}(first: 3) {{ items {{ {case['item']} }} }} }}",
                              department=case["department"], purpose=case["purpose"])
    result = response.json()
    if case["expect"] in ALLOW:
        assert "errors" not in result, result
        values = [row[case["item"]] for row in result["data"][field]["items"]]
        assert values and any(v is not None for v in values)
    else:
        assert result["data"][field] is None
        assert [e["extensions"]["code"] for e in result["errors"]] == [case["expect"]]
    # The record says the same: returned, or denied with the code.
    async with api.app.state.runtime.engine.connect() as conn:
        record = (await conn.execute(select(access_records).where(
            access_records.c.request_id == response.headers["X-Request-Id"]))).one()
    if case["expect"] in ALLOW:
        assert record.items_returned == [case["item"]]
        # Allowed by a grant (or legal-basis grant) exactly when the record names one.
        assert bool(record.grants_used) == (case["expect"] in ("GRANT", "LEGAL_BASIS"))
    else:
        assert record.items_denied == {case["item"]: case["expect"]}
