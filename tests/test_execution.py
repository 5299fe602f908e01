"""The short path for flat lists (schema.execution) answers exactly what graphql-core's generic path answers:
values, nulls of denied items, masks, aliases, fragments, directives, __typename, and the errors."""

from __future__ import annotations

import pytest
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.execution import FlatListExecutor
from schema.plans import PlanExecutor

QUERIES = [  # (department, purpose, query, whether a list takes the short path)
    (
        "hrss",
        "hrss.insurance-enrolment",
        """query($on: Boolean!) { personList(first: 50) { items {
        __typename idNumber n: name birthDate phone ...F countyCode @include(if: $on) address @skip(if: $on) } } }
        fragment F on Person { ethnicity name }""",
        True,
    ),
    (
        "market",
        "market.licence-review",
        """{ enterpriseList(first: 50) { items { creditCode name registeredCapital
        establishedDate legalRepIdNumber legalRepresentative { name } } } }""",
        False,
    ),  # a link: the generic path
    ("land", "land.property-registration", "{ enterpriseList(first: 30) { items { name legalRepIdNumber } } }", True),
    (
        "market",
        "market.licence-review",
        '{ person(idNumber: "371311197811261792") { enterprises { name status } } }',
        True,
    ),
]


@pytest.mark.parametrize("department,purpose,query,short_path", QUERIES)
async def test_the_short_path_answers_as_the_generic_path(api, department, purpose, query, short_path, monkeypatch):
    variables = {"on": True}
    used = []
    original = FlatListExecutor._make_plan

    def spying(self, *args):
        plan = original(self, *args)
        used.append(plan is not None)
        return plan

    monkeypatch.setattr(FlatListExecutor, "_make_plan", spying)
    monkeypatch.setattr(PlanExecutor, "plans", False)  # the compiled plans answer these first (tests/test_plans.py)
    short = await api.query(query, department, purpose, variables=variables)
    monkeypatch.setattr(
        FlatListExecutor, "complete_list_value", StrawberryGraphQLCoreExecutionContext.complete_list_value
    )
    generic = await api.query(query, department, purpose, variables=variables)
    assert any(used) == short_path
    assert short == generic
