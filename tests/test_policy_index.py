"""The rule index (policies.engine) decides exactly as one Casbin enforcer over all the rules: same outcome,
same reason, same citing grant or restriction, for random catalogs, grants, restrictions, clocks and requests."""

from __future__ import annotations

import casbin
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
