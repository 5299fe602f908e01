"""Decides the data items of one resource for one request: Casbin over the compiled rules, memoised.

A decision depends on (department, purpose, resource, item) and on the time only through the
boundaries at which some rule starts or stops; the memo is dropped when the clock passes the next
boundary, and the whole engine is replaced when the catalog or the policies change.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import casbin
from casbin.persist.adapter import Adapter

from catalog.model import Catalog, Resource, ShareType, Status, changed_resources
from govshare.clock import CHINA
from policies.disclosure import undone_masks
from policies.model import AccessDecision, Allow, Cover, Deny, Grant, ItemDecision, PolicySet, Scope
from policies.rules import BEGINNING, END, Targets, related_links, resource_rules, stamp

MODEL_PATH = Path(__file__).with_name("model.conf")


def _china(moment: datetime) -> str:
    """How a grant's start or end is told to people: Beijing time."""
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M (UTC+8)")


class _RulesAdapter(Adapter):  # type: ignore[misc]  # pycasbin is untyped
    """Hands compiled rules to Casbin; rules are saved only as grants and restrictions, never as lines."""

    def __init__(self, rules: list[list[str]], links: list[list[str]]) -> None:
        self._rules, self._links = rules, links

    def load_policy(self, model: Any) -> None:
        for line in self._rules:
            model.add_policy("p", "p", line)
        for link in self._links:
            model.add_policy("g", "g", link)


# resource code -> department -> (position among the resource's rules, rule)
_Rules = dict[str, dict[str, list[tuple[int, list[str]]]]]


class _RuleIndex:
    """The rules by resource and department, so that a decision reads only the rules that could match it.

    model.conf matches a rule only on its own resource, and only for its department "*", the requesting
    department itself, or a group the department belongs to (g). Each (resource, department) gets a Casbin
    enforcer over that subset, in the original order: the first match in priority order is the same rule as
    over all rules, and deciding does not grow with the rules of other departments and resources.

    ``rules``: resource code -> its rules in ``compile_rules``' order (``resource_rules``); ``groups``: department ->
    the groups it is a member of (g links).
    """

    def __init__(self, rules: _Rules, groups: dict[str, set[str]]) -> None:
        self._rules = rules
        self._groups = groups
        self._enforcers: dict[tuple[str, str], casbin.Enforcer] = {}

    @staticmethod
    def by_department(rules: list[list[str]]) -> dict[str, list[tuple[int, list[str]]]]:
        """One resource's rules by department, each with its position among them (the order a subset keeps)."""
        found: dict[str, list[tuple[int, list[str]]]] = {}
        for position, rule in enumerate(rules):
            found.setdefault(rule[1], []).append((position, rule))
        return found

    def forget(self) -> None:
        self._enforcers.clear()

    def _memberships(self, department: str) -> set[str]:
        found, todo = set(), [department]
        while todo:
            for group in self._groups.get(todo.pop(), ()):
                if group not in found:
                    found.add(group)
                    todo.append(group)
        return found

    def enforcer(self, resource: str, department: str) -> casbin.Enforcer:
        enforcer = self._enforcers.get((resource, department))
        if enforcer is None:
            groups = self._memberships(department)
            by_department = self._rules.get(resource, {})
            rules = sorted(
                (
                    entry
                    for name in ("*", department, *groups)
                    if name in by_department
                    for entry in by_department[name]
                ),
                key=lambda entry: entry[0],
            )
            links = [[department, group] for group in sorted(groups)]
            links += [[member, group] for member in groups for group in sorted(self._groups.get(member, ()))]
            enforcer = casbin.Enforcer(str(MODEL_PATH), _RulesAdapter([rule for _, rule in rules], links))
            self._enforcers[(resource, department)] = enforcer
        return enforcer


class PolicyEngine:
    """The decisions over one catalog and policy set. With ``previous`` (the engine of the catalog before, over the
    same grants and restrictions), the rules follow the catalog's change: those of the resources that are not the
    objects ``previous`` was made of are compiled again, every other resource's are ``previous``'s (the rules of a
    resource depend on that resource and the policies alone, policies.rules ``resource_rules``); decisions and
    enforcers start afresh."""

    def __init__(self, catalog: Catalog, policies: PolicySet, previous: PolicyEngine | None = None) -> None:
        self.catalog = catalog
        self.policies = policies
        targets = Targets(policies)
        rules: _Rules
        groups: dict[str, set[str]]
        times: dict[str, int]
        if (
            previous is not None
            and previous.policies.grants == policies.grants
            and previous.policies.restrictions == policies.restrictions
        ):
            rules, groups, times, count = self._followed(previous, catalog, targets)
        else:
            rules, groups, times, count = {}, {}, {}, 0
            codes = [r.code for r in catalog.published()]
            codes += sorted(targets.named - set(codes))  # restrictions naming a resource not published
            for code in codes:
                count += self._add(rules, times, code, catalog.resources.get(code), targets)
            for resource in catalog.published():
                for member, group in related_links(resource):
                    groups.setdefault(member, set()).add(group)
        self.rule_count = count
        self._times = times  # every time some rule starts or stops -> the number of resources whose rules hold it
        self._boundaries = sorted(times)
        self._index = _RuleIndex(rules, groups)
        self._grants: dict[str, Grant] = {g.id: g for g in policies.grants}
        self._grants_of: dict[tuple[str, str], list[Grant]] = {}  # (consumer, resource) -> grants, in order
        for grant in policies.grants:
            if grant.revoked_at is None:
                self._grants_of.setdefault((grant.consumer, grant.resource), []).append(grant)
        self._restrictions = {r.id: r for r in policies.restrictions}
        # Masks the policies in force undo (a catalog change, a grant revoked, rows written by hand): what they
        # would show is denied, whatever put it there (policies.disclosure; saving refuses such masks already).
        self.undone = undone_masks(catalog, policies, now=datetime.now(UTC))
        self._memo: dict[tuple[str, str, str, str], ItemDecision] = {}
        self._memo_window: tuple[str, str] = ("", "")

    @staticmethod
    def _add(rules: _Rules, times: dict[str, int], code: str, resource: Resource | None, targets: Targets) -> int:
        """Resource ``code``'s rules into ``rules`` and their times into ``times``; the number of its rules."""
        own = resource_rules(code, resource, targets)
        if own:
            rules[code] = _RuleIndex.by_department(own)
        for moment in {t for r in own for t in (r[5], r[6]) if t not in (BEGINNING, END)}:
            times[moment] = times.get(moment, 0) + 1
        return len(own)

    @staticmethod
    def _followed(
        previous: PolicyEngine, catalog: Catalog, targets: Targets
    ) -> tuple[_Rules, dict[str, set[str]], dict[str, int], int]:
        """(rules, groups, times, rule count) of ``previous`` with the resources changed since its catalog compiled
        again: a resource whose object differs, or that came or went."""
        before, after = previous.catalog.resources, catalog.resources
        changed = changed_resources(before, catalog)
        index = previous._index
        rules, groups, times = dict(index._rules), dict(index._groups), dict(previous._times)
        count = previous.rule_count
        for code in changed:
            own = rules.pop(code, {})
            count -= sum(len(entries) for entries in own.values())
            for moment in {t for entries in own.values() for _, r in entries for t in (r[5], r[6])}:
                if moment in times:
                    times[moment] -= 1
                    if not times[moment]:
                        del times[moment]
            old, new = before.get(code), after.get(code)
            for resource, add in ((old, False), (new, True)):
                if resource is None or resource.status != Status.PUBLISHED:
                    continue
                for member, group in related_links(resource):
                    members = set(groups.get(member, ()))
                    members.add(group) if add else members.discard(group)
                    if members:
                        groups[member] = members
                    else:
                        groups.pop(member, None)
            count += PolicyEngine._add(rules, times, code, new, targets)
        return rules, groups, times, count

    @property
    def version(self) -> tuple[int, int]:
        return self.catalog.version, self.policies.version

    def forget(self) -> None:
        """Forget every decision and index enforcer, as a new engine would (the bench times cold decisions)."""
        self._memo.clear()
        self._memo_window = ("", "")
        self._index.forget()

    def _window(self, now: str) -> tuple[str, str]:
        index = bisect.bisect_right(self._boundaries, now)
        low = self._boundaries[index - 1] if index else ""
        high = self._boundaries[index] if index < len(self._boundaries) else "~"
        return low, high

    def decide(
        self, department: str, purpose: str, resource: Resource, items: Iterable[str], now: datetime
    ) -> AccessDecision:
        moment = stamp(now)
        low, high = self._memo_window
        if not (low <= moment < high):
            self._memo.clear()
            self._memo_window = self._window(moment)
        decisions: dict[str, ItemDecision] = {}
        in_force = self.catalog.resources.get(resource.code)
        if in_force is None or in_force.status != Status.PUBLISHED:
            # Whatever still names it (a request on a schema of before, a gateway's supergraph, a grant): it is not
            # available, for every item and every department, its provider included.
            reason = Deny.RESOURCE_RETIRED if in_force is not None and in_force.status == Status.RETIRED else None
            code = reason or Deny.RESOURCE_NOT_PUBLISHED
            for item in items:
                decisions[item] = ItemDecision(item, False, code, params={"resource": resource.code, "item": item})
            return self._combine(resource, decisions)
        for item in items:
            key = (department, purpose, resource.code, item)
            decision = self._memo.get(key)
            if decision is None:
                decision = self._memo[key] = self._decide_item(department, purpose, resource, item, moment)
            decisions[item] = decision
        return self._combine(resource, decisions)

    def _decide_item(self, department: str, purpose: str, resource: Resource, item: str, moment: str) -> ItemDecision:
        params = {"resource": resource.code, "item": item, "purpose": purpose}
        if resource.item(item) is None:
            return ItemDecision(item, False, Deny.ITEM_UNKNOWN, params=params)
        allowed, line = self._index.enforcer(resource.code, department).enforce_ex(
            department, purpose, resource.code, item, moment
        )
        if not line:  # no rule matched at all: deny, and say the item is not shared
            return ItemDecision(item, False, Deny.NOT_SHARED, params=params)
        reason, ref = line[8], line[9] or None
        grant = self._grants.get(ref) if ref else None
        if grant is not None:
            params |= {"grant": grant.id, "since": _china(grant.valid_from), "until": _china(grant.valid_until)}
        if ref in self._restrictions:
            params["detail"] = self._restrictions[ref].reason
        if not allowed:
            return ItemDecision(item, False, reason, ref, None, params)
        covers = self._covers(department, purpose, resource, item, moment, reason)
        if not covers:  # every grant covering it masks it with a mask the policies undo
            return ItemDecision(item, False, Deny.MASK_UNDONE, ref, None, params)
        masks = {c.mask for c in covers}
        mask = masks.pop() if len(masks) == 1 else None
        return ItemDecision(item, True, reason, ref, mask, params, covers)

    def _covers(
        self, department: str, purpose: str, resource: Resource, item: str, moment: str, reason: str
    ) -> tuple[Cover, ...]:
        """Every way the caller may see an allowed item. The first matching rule said whether it is allowed;
        when a grant allowed it, every live grant for the same department, purpose, resource and item counts
        (several grants are decided together: a row shows the item when any of them covers the row, masked
        only when every one covering the row masks it)."""
        if reason not in (Allow.GRANT, Allow.LEGAL_BASIS, Allow.DEEMED_APPROVAL):
            return (Cover(None),)  # the provider's own data, or the item's share type: every row, in clear
        covers = [
            Cover(grant.id, _scope(grant.row_scope), grant.masks.get(item), conditional=True)
            for grant in self._grants_of.get((department, resource.code), ())
            if item in grant.items
            and purpose in grant.purposes
            and stamp(grant.valid_from) <= moment < stamp(grant.valid_until)
            and not (item in grant.masks and (grant.id, item) in self.undone)
        ]
        data_item = resource.item(item)
        if (
            data_item is not None
            and resource.share_type_of(data_item) == ShareType.UNCONDITIONAL
            and (not resource.related_departments or department in resource.related_departments)
        ):
            covers.append(Cover(None))  # granted too, but shared with everyone anyway: restricts nothing
        return tuple(covers)

    def _combine(self, resource: Resource, decisions: dict[str, ItemDecision]) -> AccessDecision:
        """The rows a request sees: the union of the scopes of the granted items it touches (selects, filters on,
        looks up or links by); a grant without a scope opens every row; items shared unconditionally with the
        caller (or its own data) add no rows and restrict none."""
        scopes: list[Scope] = []
        every_row = False
        used: list[str] = []
        for decision in decisions.values():
            if not decision.allowed:
                continue
            for cover in decision.covers:
                if cover.ref is not None and cover.ref not in used:
                    used.append(cover.ref)
            if any(not c.conditional for c in decision.covers):
                continue
            for cover in decision.covers:
                if not cover.scope:
                    every_row = True
                elif cover.scope not in scopes:
                    scopes.append(cover.scope)
        return AccessDecision(resource.code, decisions, None if every_row or not scopes else tuple(scopes), tuple(used))


def _scope(row_scope: dict[str, tuple[str, ...]]) -> Scope:
    return tuple(sorted((item, tuple(values)) for item, values in row_scope.items()))


class Unenforced:
    """Every known item allowed, unmasked and unscoped: what ``Settings.enforce = False`` puts in place of the
    engine so that the bench can measure what enforcement costs. Never served (govshare.config, server)."""

    def __init__(self, engine: PolicyEngine) -> None:
        self.catalog, self.policies = engine.catalog, engine.policies

    def decide(
        self, department: str, purpose: str, resource: Resource, items: Iterable[str], now: datetime
    ) -> AccessDecision:
        decisions = {
            item: ItemDecision(item, True, "UNENFORCED", covers=(Cover(None),))
            if resource.item(item) is not None
            else ItemDecision(item, False, Deny.ITEM_UNKNOWN)
            for item in items
        }
        return AccessDecision(resource.code, decisions, None, ())
