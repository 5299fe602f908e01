"""Turns the catalog's share types, the grants and the restrictions into the Casbin rules of model.conf."""

from __future__ import annotations

from datetime import UTC, datetime

from catalog.model import Catalog, Resource, ShareType, Status
from policies.model import Allow, Deny, Grant, GrantKind, PolicySet, Restriction

BEGINNING = "0000"  # sorts before every timestamp
END = "9999"  # sorts after every timestamp


def stamp(moment: datetime) -> str:
    """The text form of a time in rules and requests: UTC, so that text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def related_group(resource: str) -> str:
    return f"related:{resource}"


def _rule(
    priority: str,
    dept: str,
    purpose: str,
    res: str,
    item: str,
    since: str,
    until: str,
    eft: str,
    reason: object,
    ref: str = "",
) -> list[str]:
    return [priority, dept, purpose, res, item, since, until, eft, str(reason), ref]


def share_rules(resource: Resource) -> list[list[str]]:
    """The rules of a published resource's share types: its provider's own, and each item's default."""
    rules = [_rule("00", resource.provider, "*", resource.code, "*", BEGINNING, END, "allow", Allow.PROVIDER_OWN)]
    for item in resource.items:
        share_type = resource.share_type_of(item)
        if share_type == ShareType.UNCONDITIONAL and resource.related_departments:
            rules.append(
                _rule(
                    "30",
                    related_group(resource.code),
                    "*",
                    resource.code,
                    item.name,
                    BEGINNING,
                    END,
                    "allow",
                    Allow.RELATED_DEPARTMENT,
                )
            )
            rules.append(
                _rule("60", "*", "*", resource.code, item.name, BEGINNING, END, "deny", Deny.NOT_RELATED_DEPARTMENT)
            )
        elif share_type == ShareType.UNCONDITIONAL:
            rules.append(_rule("30", "*", "*", resource.code, item.name, BEGINNING, END, "allow", Allow.UNCONDITIONAL))
        elif share_type == ShareType.CONDITIONAL:
            rules.append(_rule("60", "*", "*", resource.code, item.name, BEGINNING, END, "deny", Deny.NO_GRANT))
        else:
            rules.append(_rule("60", "*", "*", resource.code, item.name, BEGINNING, END, "deny", Deny.NOT_SHARED))
    return rules


def related_links(resource: Resource) -> list[list[str]]:
    """The g links of a published resource: each related department a member of its group."""
    return [[department, related_group(resource.code)] for department in resource.related_departments]


def restriction_rule(restriction: Restriction, code: str) -> list[str]:
    since = stamp(restriction.valid_from) if restriction.valid_from else BEGINNING
    until = stamp(restriction.valid_until) if restriction.valid_until else END
    return _rule(
        "10", restriction.department, "*", code, "*", since, until, "deny", Deny.DEPARTMENT_RESTRICTED, restriction.id
    )


def grant_rules(grant: Grant) -> list[list[str]]:
    """The rules of a grant on a published resource."""
    rules: list[list[str]] = []
    allow = {GrantKind.LEGAL_BASIS: Allow.LEGAL_BASIS, GrantKind.DEEMED: Allow.DEEMED_APPROVAL}.get(
        grant.kind, Allow.GRANT
    )
    since, until = stamp(grant.valid_from), stamp(grant.valid_until)
    for name in grant.items:
        for purpose in grant.purposes:
            if grant.revoked_at is not None:
                rules.append(
                    _rule(
                        "40",
                        grant.consumer,
                        purpose,
                        grant.resource,
                        name,
                        BEGINNING,
                        END,
                        "deny",
                        Deny.GRANT_REVOKED,
                        grant.id,
                    )
                )
                continue
            rules.append(
                _rule("20", grant.consumer, purpose, grant.resource, name, since, until, "allow", allow, grant.id)
            )
            waiting = Deny.APPLICATION_PENDING if grant.kind == GrantKind.DEEMED else Deny.GRANT_NOT_YET_VALID
            rules.append(
                _rule("40", grant.consumer, purpose, grant.resource, name, BEGINNING, since, "deny", waiting, grant.id)
            )
            rules.append(
                _rule(
                    "40",
                    grant.consumer,
                    purpose,
                    grant.resource,
                    name,
                    until,
                    END,
                    "deny",
                    Deny.GRANT_EXPIRED,
                    grant.id,
                )
            )
        rules.append(
            _rule(
                "50",
                grant.consumer,
                "*",
                grant.resource,
                name,
                BEGINNING,
                END,
                "deny",
                Deny.PURPOSE_NOT_APPROVED,
                grant.id,
            )
        )
    return rules


def compile_rules(catalog: Catalog, policies: PolicySet) -> tuple[list[list[str]], list[list[str]]]:
    """Returns (p rules, g links)."""
    rules: list[list[str]] = []
    links: list[list[str]] = []
    published = catalog.published()
    for resource in published:
        rules += share_rules(resource)
        links += related_links(resource)
    for restriction in policies.restrictions:
        targets = [r.code for r in published] if restriction.resource == "*" else [restriction.resource]
        rules += [restriction_rule(restriction, code) for code in targets]
    codes = {r.code for r in published}
    for grant in policies.grants:
        if grant.resource in codes:  # a retired resource's grants stop: no rule names it any more
            rules += grant_rules(grant)
    return rules, links


class Targets:
    """The grants of a policy set by resource, and its restrictions: what ``resource_rules`` reads for one resource."""

    def __init__(self, policies: PolicySet) -> None:
        self.restrictions = policies.restrictions
        self.grants: dict[str, list[Grant]] = {}
        for grant in policies.grants:
            self.grants.setdefault(grant.resource, []).append(grant)
        # the resources a restriction names by code (their rules stand whether or not the resource is published)
        self.named = {r.resource for r in policies.restrictions if r.resource != "*"}


def resource_rules(code: str, resource: Resource | None, targets: Targets) -> list[list[str]]:
    """The rules of ``compile_rules`` naming resource ``code`` (``resource``: its entry in the catalog, if any), in
    the order ``compile_rules`` gives them: its share types' rules, the restrictions' and the grants' (the last two
    only where it is published, but for a restriction naming it)."""
    published = resource is not None and resource.status == Status.PUBLISHED
    rules = share_rules(resource) if published else []  # type: ignore[arg-type]
    for restriction in targets.restrictions:
        if restriction.resource == code or (published and restriction.resource == "*"):
            rules.append(restriction_rule(restriction, code))
    if published:
        for grant in targets.grants.get(code, ()):
            rules += grant_rules(grant)
    return rules
