"""Random catalogs, grants, restrictions, clocks and requests: every decision of the Casbin engine agrees
with a small independent reference of the sharing rules written here, in plain Python.

CI runs a few thousand cases; set GOVSHARE_PROPERTY_EXAMPLES for more.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.model import Catalog, DataItem, Department, Purpose, Resource, ShareType
from policies.engine import PolicyEngine
from policies.model import Grant, GrantKind, PolicySet, Restriction

DEPARTMENTS = ["d0", "d1", "d2", "d3"]
PURPOSES = {d: [f"{d}.p0", f"{d}.p1"] for d in DEPARTMENTS}
ITEMS = ["i0", "i1", "i2"]
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
SHARE_TYPES = list(ShareType)


def moment(days: int) -> datetime:
    return EPOCH + timedelta(days=days)


@st.composite
def worlds(draw):
    resources = {}
    for n in range(draw(st.integers(1, 3))):
        share_type = draw(st.sampled_from(SHARE_TYPES))
        items = tuple(DataItem(name, name, "string", name, share_type=draw(st.none() | st.sampled_from(SHARE_TYPES)))
                      for name in ITEMS)
        related = tuple(draw(st.lists(st.sampled_from(DEPARTMENTS), unique=True, max_size=2))) \
            if share_type == ShareType.UNCONDITIONAL else ()
        code = f"d0.r{n}" if n == 0 else f"{draw(st.sampled_from(DEPARTMENTS))}.r{n}"
        resources[code] = Resource(code=code, api_name=f"r{n}", name=code, provider=code.split(".")[0],
                                   share_type=share_type, table="t", key="i0", items=items,
                                   legal_basis="law" if share_type == ShareType.NOT_SHARED else "",
                                   related_departments=related)
    catalog = Catalog(departments={d: Department(d, d, "sqlite://") for d in DEPARTMENTS},
                      purposes={p: Purpose(p, p, d) for d, ps in PURPOSES.items() for p in ps}, resources=resources)
    grants = []
    for n in range(draw(st.integers(0, 6))):
        resource = draw(st.sampled_from(sorted(resources)))
        consumer = draw(st.sampled_from([d for d in DEPARTMENTS if d != resources[resource].provider]))
        start = draw(st.integers(-30, 30))
        grants.append(Grant(
            id=f"G-{n}", kind=draw(st.sampled_from([GrantKind.GRANT, GrantKind.LEGAL_BASIS, GrantKind.DEEMED])),
            consumer=consumer, resource=resource,
            items=tuple(draw(st.lists(st.sampled_from(ITEMS), unique=True, min_size=1))),
            purposes=tuple(draw(st.lists(st.sampled_from(PURPOSES[consumer]), unique=True, min_size=1))),
            valid_from=moment(start), valid_until=moment(start + draw(st.integers(1, 60))),
            revoked_at=moment(0) if draw(st.booleans()) and draw(st.booleans()) else None))
    restrictions = [Restriction(f"R-{n}", draw(st.sampled_from(DEPARTMENTS)),
                                draw(st.sampled_from(["*", *sorted(resources)])), "x")
                    for n in range(draw(st.integers(0, 2)))]
    return catalog, PolicySet(grants=tuple(grants), restrictions=tuple(restrictions), version=1)


def reference(catalog: Catalog, policies: PolicySet, department: str, purpose: str, code: str, item: str,
              now: datetime) -> bool:
    """The sharing rules (Art 5, 19, 20; DOMAIN.md), independently of the Casbin model."""
    resource = catalog.resources[code]
    if department == resource.provider:
        return True
    if any(r.department == department and r.resource in ("*", code) for r in policies.restrictions):
        return False
    for grant in policies.grants:
        if (grant.consumer == department and grant.resource == code and item in grant.items
                and purpose in grant.purposes and grant.revoked_at is None
                and grant.valid_from <= now < grant.valid_until):
            return True
    share_type = resource.share_type_of(resource.item(item))
    if share_type == ShareType.UNCONDITIONAL:
        return not resource.related_departments or department in resource.related_departments
    return False


EXAMPLES = int(os.environ.get("GOVSHARE_PROPERTY_EXAMPLES", "1000"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=worlds(), asks=st.lists(st.tuples(st.sampled_from(DEPARTMENTS), st.integers(0, 1), st.integers(0, 2),
                                                st.sampled_from(ITEMS), st.integers(-40, 100)), min_size=1, max_size=12))
def test_every_decision_agrees_with_the_reference(world, asks):
    catalog, policies = world
    engine = PolicyEngine(catalog, policies)
    codes = sorted(catalog.resources)
    for department, purpose_index, resource_index, item, day in asks:
        code = codes[resource_index % len(codes)]
        purpose = PURPOSES[department][purpose_index]
        now = moment(day)
        decision = engine.decide(department, purpose, catalog.resources[code], [item], now).items[item]
        expected = reference(catalog, policies, department, purpose, code, item, now)
        assert decision.allowed == expected, (department, purpose, code, item, now, decision)
