"""The rule index (policies.engine) decides exactly as one Casbin enforcer over all the rules: same outcome,
same reason, same citing grant or restriction, for random catalogs, grants, restrictions, clocks and requests."""

from __future__ import annotations

import dataclasses

import casbin
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.model import ShareType, Status
from policies.engine import MODEL_PATH, PolicyEngine, _RulesAdapter
from policies.rules import compile_rules, stamp
from tests.test_policy_properties import DEPARTMENTS, EXAMPLES, ITEMS, PURPOSES, moment, worlds


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    world=worlds(),
    asks=st.lists(
        st.tuples(
            st.sampled_from([*DEPARTMENTS, "elsewhere"]),
            st.integers(0, 1),
            st.integers(0, 2),
            st.sampled_from(ITEMS),
            st.integers(-40, 100),
        ),
        min_size=1,
        max_size=12,
    ),
)
def test_the_index_decides_as_all_the_rules_do(world, asks):
    catalog, policies = world
    engine = PolicyEngine(catalog, policies)
    flat = casbin.Enforcer(str(MODEL_PATH), _RulesAdapter(*compile_rules(catalog, policies)))
    codes = sorted(catalog.resources)
    for department, purpose_index, resource_index, item, day in asks:
        code = codes[resource_index % len(codes)]
        purpose = PURPOSES.get(department, ["elsewhere.p0", "elsewhere.p1"])[purpose_index]
        now = stamp(moment(day))
        indexed = engine._index.enforcer(code, department).enforce_ex(department, purpose, code, item, now)
        assert indexed == flat.enforce_ex(department, purpose, code, item, now), (department, purpose, code, item, now)


@st.composite
def changed_catalogs(draw, catalog):
    """``catalog`` with some resources changed (share types, related departments), retired, gone or added; every
    other resource the same object."""
    resources = {}
    for code, resource in catalog.resources.items():
        change = draw(st.sampled_from(["same", "same", "share", "related", "retired", "gone"]))
        if change == "gone":
            continue
        if change == "share":
            share_type = draw(st.sampled_from(list(ShareType)))
            items = tuple(
                dataclasses.replace(i, share_type=draw(st.none() | st.sampled_from(list(ShareType))))
                for i in resource.items
            )
            resource = dataclasses.replace(resource, share_type=share_type, items=items)
        elif change == "related":
            related = tuple(draw(st.lists(st.sampled_from(DEPARTMENTS), unique=True, max_size=2)))
            resource = dataclasses.replace(resource, share_type=ShareType.UNCONDITIONAL, related_departments=related)
        elif change == "retired":
            resource = dataclasses.replace(resource, status=Status.RETIRED)
        resources[code] = resource
    if draw(st.booleans()):
        first = next(iter(catalog.resources.values()))
        resources["d1.r9"] = dataclasses.replace(first, code="d1.r9", api_name="r9", provider="d1")
    return dataclasses.replace(catalog, resources=resources, version=catalog.version + 1)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), world=worlds(), days=st.lists(st.integers(-40, 100), min_size=1, max_size=2))
def test_an_engine_following_a_catalog_change_is_the_engine_built_whole(data, world, days):
    """The rules of the resources changed, retired, gone or added are compiled again and every other resource's kept
    (the same objects): the index, the groups, the rule count and the time boundaries are those of the engine built
    whole over the new catalog, and so is every decision."""
    catalog, policies = world
    before = PolicyEngine(catalog, policies)
    changed = data.draw(changed_catalogs(catalog))
    followed = PolicyEngine(changed, policies, previous=before)
    whole = PolicyEngine(changed, policies)
    assert followed._index._rules == whole._index._rules
    assert followed._index._groups == whole._index._groups
    assert followed.rule_count == whole.rule_count == len(compile_rules(changed, policies)[0])
    assert followed._boundaries == whole._boundaries
    for code, resource in changed.resources.items():  # an unchanged resource's rules are the ones compiled before
        if catalog.resources.get(code) is resource and code in before._index._rules:
            assert followed._index._rules[code] is before._index._rules[code]
    resources = {**catalog.resources, **changed.resources}
    for day in days:
        for department in [*DEPARTMENTS, "elsewhere"]:
            for purpose in PURPOSES.get(department, ["elsewhere.p0"]):
                for resource in resources.values():
                    now = moment(day)
                    assert followed.decide(department, purpose, resource, ITEMS, now) == whole.decide(
                        department, purpose, resource, ITEMS, now
                    )
