"""Random catalogs, grants, restrictions, clocks and requests: every decision of the Casbin engine agrees
with a small independent reference of the sharing rules written here, in plain Python.

The suite runs a fixed 200 examples of each; `make test-deep` 1000 random ones (GOVSHARE_PROPERTY_EXAMPLES: any number).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.model import Catalog, DataItem, Department, Purpose, Resource, ShareType
from connectors.base import holds, shown
from connectors.masking import parse_mask
from policies.engine import PolicyEngine
from policies.model import Grant, GrantKind, PolicySet, Restriction
from resolvers.data import _source_query
from tests.conftest import examples

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
        items = tuple(
            DataItem(name, name, "string", name, share_type=draw(st.none() | st.sampled_from(SHARE_TYPES)))
            for name in ITEMS
        )
        related = (
            tuple(draw(st.lists(st.sampled_from(DEPARTMENTS), unique=True, max_size=2)))
            if share_type == ShareType.UNCONDITIONAL
            else ()
        )
        code = f"d0.r{n}" if n == 0 else f"{draw(st.sampled_from(DEPARTMENTS))}.r{n}"
        resources[code] = Resource(
            code=code,
            api_name=f"r{n}",
            name=code,
            provider=code.split(".")[0],
            share_type=share_type,
            table="t",
            key="i0",
            items=items,
            legal_basis="law" if share_type == ShareType.NOT_SHARED else "",
            related_departments=related,
        )
    catalog = Catalog(
        departments={d: Department(d, d, "sqlite://") for d in DEPARTMENTS},
        purposes={p: Purpose(p, p, d) for d, ps in PURPOSES.items() for p in ps},
        resources=resources,
    )
    grants = []
    for n in range(draw(st.integers(0, 6))):
        resource = draw(st.sampled_from(sorted(resources)))
        consumer = draw(st.sampled_from([d for d in DEPARTMENTS if d != resources[resource].provider]))
        start = draw(st.integers(-30, 30))
        grants.append(
            Grant(
                id=f"G-{n}",
                kind=draw(st.sampled_from([GrantKind.GRANT, GrantKind.LEGAL_BASIS, GrantKind.DEEMED])),
                consumer=consumer,
                resource=resource,
                items=tuple(draw(st.lists(st.sampled_from(ITEMS), unique=True, min_size=1))),
                purposes=tuple(draw(st.lists(st.sampled_from(PURPOSES[consumer]), unique=True, min_size=1))),
                valid_from=moment(start),
                valid_until=moment(start + draw(st.integers(1, 60))),
                revoked_at=moment(0) if draw(st.booleans()) and draw(st.booleans()) else None,
            )
        )
    restrictions = [
        Restriction(f"R-{n}", draw(st.sampled_from(DEPARTMENTS)), draw(st.sampled_from(["*", *sorted(resources)])), "x")
        for n in range(draw(st.integers(0, 2)))
    ]
    return catalog, PolicySet(grants=tuple(grants), restrictions=tuple(restrictions), version=1)


def reference(
    catalog: Catalog, policies: PolicySet, department: str, purpose: str, code: str, item: str, now: datetime
) -> bool:
    """The sharing rules (Art 5, 19, 20; DOMAIN.md), independently of the Casbin model."""
    resource = catalog.resources[code]
    if department == resource.provider:
        return True
    if any(r.department == department and r.resource in ("*", code) for r in policies.restrictions):
        return False
    for grant in policies.grants:
        if (
            grant.consumer == department
            and grant.resource == code
            and item in grant.items
            and purpose in grant.purposes
            and grant.revoked_at is None
            and grant.valid_from <= now < grant.valid_until
        ):
            return True
    share_type = resource.share_type_of(resource.item(item))
    if share_type == ShareType.UNCONDITIONAL:
        return not resource.related_departments or department in resource.related_departments
    return False


EXAMPLES = examples("GOVSHARE_PROPERTY_EXAMPLES", suite=200, deep=1000)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    world=worlds(),
    asks=st.lists(
        st.tuples(
            st.sampled_from(DEPARTMENTS),
            st.integers(0, 1),
            st.integers(0, 2),
            st.sampled_from(ITEMS),
            st.integers(-40, 100),
        ),
        min_size=1,
        max_size=12,
    ),
)
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


# --- several grants per consumer: rows and values, row by row ------------------------------------------------

SCOPE_VALUES = ["a", "b", "c"]
ROWS = [{"i0": f"k{n}{v}", "i1": f"v{n}{v}", "i2": v} for n in range(2) for v in SCOPE_VALUES]
MASKS = ["full", "keep:1,0", "nullify"]


@st.composite
def overlapping(draw):
    """One conditional resource of d0 (item i2 may be unconditional), several grants of d1 with scopes on i2 and masks."""
    i2_type = draw(st.sampled_from([None, ShareType.UNCONDITIONAL]))
    items = (
        DataItem("i0", "i0", "string", "i0"),
        DataItem("i1", "i1", "string", "i1"),
        DataItem("i2", "i2", "string", "i2", share_type=i2_type),
    )
    resource = Resource(
        code="d0.r",
        api_name="r",
        name="r",
        provider="d0",
        share_type=ShareType.CONDITIONAL,
        table="t",
        key="i0",
        items=items,
    )
    catalog = Catalog(
        departments={d: Department(d, d, "sqlite://") for d in DEPARTMENTS},
        purposes={p: Purpose(p, p, d) for d, ps in PURPOSES.items() for p in ps},
        resources={"d0.r": resource},
    )
    grants = []
    for n in range(draw(st.integers(1, 5))):
        granted = draw(st.lists(st.sampled_from(ITEMS), unique=True, min_size=1))
        scope = draw(st.lists(st.sampled_from(SCOPE_VALUES), unique=True, max_size=2))
        masks = {i: draw(st.sampled_from(MASKS)) for i in granted if draw(st.booleans())}
        start = draw(st.integers(-10, 5))
        grants.append(
            Grant(
                id=f"G-{n}",
                kind=GrantKind.GRANT,
                consumer="d1",
                resource="d0.r",
                items=tuple(granted),
                purposes=tuple(draw(st.lists(st.sampled_from(PURPOSES["d1"]), unique=True, min_size=1))),
                valid_from=moment(start),
                valid_until=moment(start + draw(st.integers(1, 20))),
                row_scope={"i2": tuple(scope)} if scope else {},
                masks=masks,
                revoked_at=moment(0) if draw(st.integers(0, 5)) == 0 else None,
            )
        )
    return catalog, PolicySet(grants=tuple(grants), version=1)


def reference_answer(catalog, policies, department, purpose, asked, now):
    """The rows and values DOMAIN.md's "Several grants" rule gives, straight from the grants."""
    resource = catalog.resources["d0.r"]

    def unconditional(item):
        return resource.share_type_of(resource.item(item)) == ShareType.UNCONDITIONAL

    live = [
        g
        for g in policies.grants
        if g.consumer == department
        and purpose in g.purposes
        and g.revoked_at is None
        and g.valid_from <= now < g.valid_until
    ]

    def covering(item, row):
        return [g for g in live if item in g.items and all(row[k] in v for k, v in g.row_scope.items())]

    granted = [i for i in asked if not unconditional(i) and any(i in g.items for g in live)]
    if not granted or any(not g.row_scope for i in granted for g in live if i in g.items):
        rows = ROWS
    else:
        rows = [r for r in ROWS if any(covering(i, r) for i in granted)]
    answer = []
    for row in rows:
        shown_row = {}
        for item in asked:
            grants = covering(item, row)
            if unconditional(item) or any(item not in g.masks for g in grants):
                shown_row[item] = row[item]
            elif grants:
                shown_row[item] = parse_mask(grants[0].masks[item]).apply(row[item])
            else:
                shown_row[item] = None
        answer.append(shown_row)
    return answer


def engine_answer(engine, catalog, department, purpose, asked, now):
    """What the data path asks a source for (resolvers.data), evaluated by connectors.base's reference."""
    decision = engine.decide(department, purpose, catalog.resources["d0.r"], asked, now)
    if not any(decision.items[i].allowed for i in asked):
        return None
    query = _source_query(
        _Ctx(),
        catalog.resources["d0.r"],
        decision,
        [i for i in asked if decision.items[i].allowed],
        [],
        hidden=[],
        limit=None,
    )
    rows = [r for r in ROWS if not query.scopes or any(all(holds(c, r) for c in scope) for scope in query.scopes)]
    return [
        {
            i: (shown(next(c for c in query.columns if c.label == i), r) if decision.items[i].allowed else None)
            for i in asked
        }
        for r in rows
    ]


class _Ctx:
    pseudonym_secret = b"s" * 32

    class caller:
        department = "d1"


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    world=overlapping(),
    asks=st.lists(
        st.tuples(st.integers(0, 1), st.lists(st.sampled_from(ITEMS), unique=True, min_size=1), st.integers(-12, 25)),
        min_size=1,
        max_size=6,
    ),
)
def test_overlapping_grants_answer_as_the_reference_row_by_row(world, asks):
    catalog, policies = world
    engine = PolicyEngine(catalog, policies)
    for purpose_index, asked, day in asks:
        purpose, now = PURPOSES["d1"][purpose_index], moment(day)
        got = engine_answer(engine, catalog, "d1", purpose, asked, now)
        expected = reference_answer(catalog, policies, "d1", purpose, asked, now)
        if got is None:  # nothing asked may be read
            assert all(v is None for row in expected for v in row.values()), (asked, now, expected)
            continue
        assert got == expected, (purpose, asked, now, policies.grants)
