"""The policy engine on its own: time windows, revocation, scope combination, restrictions, memo invalidation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from catalog.loader import load_catalog
from policies.engine import PolicyEngine
from policies.model import Grant, GrantKind, PolicySet, Restriction
from tests.conftest import REPO

START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(REPO / "catalog" / "demo")


def grant(id_, items, purposes=("hrss.insurance-enrolment",), scope=None, masks=None, revoked=None, **kw):
    return Grant(id=id_, kind=GrantKind.GRANT, consumer=kw.get("consumer", "hrss"), resource=kw.get("resource", "police.person"),
                 items=tuple(items), purposes=tuple(purposes), valid_from=START, valid_until=END,
                 row_scope=scope or {}, masks=masks or {}, revoked_at=revoked)


def decide(engine, catalog, items, when, department="hrss", purpose="hrss.insurance-enrolment", resource="police.person"):
    return engine.decide(department, purpose, catalog.resources[resource], items, when)


def test_one_engine_follows_the_clock_across_a_grant_window(catalog):
    engine = PolicyEngine(catalog, PolicySet(grants=(grant("G-1", ["name"]),)))
    before, during, after = START - timedelta(seconds=1), START + timedelta(days=1), END
    assert decide(engine, catalog, ["name"], before).items["name"].reason == "GRANT_NOT_YET_VALID"
    assert decide(engine, catalog, ["name"], during).items["name"].reason == "GRANT"
    assert decide(engine, catalog, ["name"], END - timedelta(seconds=1)).items["name"].allowed
    expired = decide(engine, catalog, ["name"], after).items["name"]
    assert not expired.allowed and expired.reason == "GRANT_EXPIRED" and expired.ref == "G-1"
    # and back again: the memo is per time window, not "latest answer"
    assert decide(engine, catalog, ["name"], during).items["name"].allowed


def test_purpose_outside_the_grant(catalog):
    engine = PolicyEngine(catalog, PolicySet(grants=(grant("G-1", ["name"]),)))
    decision = decide(engine, catalog, ["name", "gender"], START, purpose="hrss.employment-subsidy")
    assert decision.items["name"].reason == "PURPOSE_NOT_APPROVED"
    assert decision.items["gender"].reason == "UNCONDITIONAL"  # item looser than its resource


def test_a_grant_never_narrows_an_unconditional_item(catalog):
    engine = PolicyEngine(catalog, PolicySet(grants=(grant("G-1", ["countyCode"]),)))
    decision = decide(engine, catalog, ["countyCode"], START, purpose="hrss.employment-subsidy")
    assert decision.items["countyCode"].allowed


def test_revoked_grant(catalog):
    engine = PolicyEngine(catalog, PolicySet(grants=(grant("G-1", ["name"], revoked=START),)))
    assert decide(engine, catalog, ["name"], START + timedelta(days=1)).items["name"].reason == "GRANT_REVOKED"


def test_several_grants_are_decided_together(catalog):
    engine = PolicyEngine(catalog, PolicySet(grants=(
        grant("G-1", ["name"], scope={"countyCode": ("371311", "371302")}),
        grant("G-2", ["name", "address"], scope={"countyCode": ("371302", "371312")}, masks={"address": "full"}),
        grant("G-3", ["address"], scope={"countyCode": ("371312",)}),
    )))
    decision = decide(engine, catalog, ["name", "address"], START + timedelta(days=1))
    # The rows: the union of the scopes of the granted items touched, not their intersection.
    assert decision.scopes == ((("countyCode", ("371311", "371302")),), (("countyCode", ("371302", "371312")),),
                               (("countyCode", ("371312",)),))
    assert decision.values_in_scope("countyCode") == {"371311", "371302", "371312"}
    assert set(decision.grants_used) == {"G-1", "G-2", "G-3"}
    name, address = decision.items["name"], decision.items["address"]
    assert [c.ref for c in name.covers] == ["G-1", "G-2"] and name.mask is None
    # address: masked by G-2, in clear by G-3: masked only in the rows G-3 does not cover.
    assert [(c.ref, c.mask) for c in address.covers] == [("G-2", "full"), ("G-3", None)]
    assert address.mask is None and address.masked_somewhere


def test_a_grant_without_a_scope_opens_every_row_and_unconditional_items_add_none(catalog):
    engine = PolicyEngine(catalog, PolicySet(grants=(
        grant("G-1", ["name"], scope={"countyCode": ("371311",)}),
        grant("G-2", ["address"]),
    )))
    when = START + timedelta(days=1)
    assert decide(engine, catalog, ["name"], when).scopes == ((("countyCode", ("371311",)),),)
    assert decide(engine, catalog, ["name", "address"], when).scopes is None  # G-2 covers every row
    assert decide(engine, catalog, ["gender", "countyCode"], when).scopes is None  # unconditional only: every row
    assert decide(engine, catalog, ["name", "gender"], when).scopes == ((("countyCode", ("371311",)),),)


def test_restriction_beats_grants_but_not_the_providers_own_reading(catalog):
    policies = PolicySet(grants=(grant("G-1", ["name"]),), restrictions=(Restriction("R-1", "hrss", "*", "迟报"),
                                                                          Restriction("R-2", "police", "*", "x")))
    engine = PolicyEngine(catalog, policies)
    restricted = decide(engine, catalog, ["name"], START + timedelta(days=1)).items["name"]
    assert restricted.reason == "DEPARTMENT_RESTRICTED" and restricted.params["detail"] == "迟报"
    own = decide(engine, catalog, ["phone"], START, department="police", purpose="police.household-admin")
    assert own.items["phone"].reason == "PROVIDER_OWN"


def test_legal_basis_opens_not_shared_items_only_for_its_items(catalog):
    legal = Grant(id="G-L", kind=GrantKind.LEGAL_BASIS, consumer="police", resource="civil.subsidy", items=("name",),
                  purposes=("police.case-investigation",), valid_from=START, valid_until=END, legal_basis="法")
    engine = PolicyEngine(catalog, PolicySet(grants=(legal,)))
    decision = decide(engine, catalog, ["name", "startDate"], START, department="police",
                      purpose="police.case-investigation", resource="civil.subsidy")
    assert decision.items["name"].reason == "LEGAL_BASIS"
    assert decision.items["startDate"].reason == "NOT_SHARED"


def test_unknown_item_is_denied(catalog):
    engine = PolicyEngine(catalog, PolicySet())
    assert decide(engine, catalog, ["nope"], START).items["nope"].reason == "ITEM_UNKNOWN"
