"""Turns the catalog's share types, the grants and the restrictions into the Casbin rules of model.conf."""

from __future__ import annotations

from datetime import UTC, datetime

from catalog.model import Catalog, ShareType
from policies.model import Allow, Deny, GrantKind, PolicySet

BEGINNING = "0000"  # sorts before every timestamp
END = "9999"  # sorts after every timestamp


def stamp(moment: datetime) -> str:
    """The text form of a time in rules and requests: UTC, so that text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def related_group(resource: str) -> str:
    return f"related:{resource}"


def compile_rules(catalog: Catalog, policies: PolicySet) -> tuple[list[list[str]], list[list[str]]]:
    """Returns (p rules, g links)."""
    rules: list[list[str]] = []
    links: list[list[str]] = []

    def rule(
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
    ) -> None:
        rules.append([priority, dept, purpose, res, item, since, until, eft, str(reason), ref])

    for resource in catalog.published():
        rule("00", resource.provider, "*", resource.code, "*", BEGINNING, END, "allow", Allow.PROVIDER_OWN)
        for department in resource.related_departments:
            links.append([department, related_group(resource.code)])
        for item in resource.items:
            share_type = resource.share_type_of(item)
            if share_type == ShareType.UNCONDITIONAL and resource.related_departments:
                rule(
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
                rule("60", "*", "*", resource.code, item.name, BEGINNING, END, "deny", Deny.NOT_RELATED_DEPARTMENT)
            elif share_type == ShareType.UNCONDITIONAL:
                rule("30", "*", "*", resource.code, item.name, BEGINNING, END, "allow", Allow.UNCONDITIONAL)
            elif share_type == ShareType.CONDITIONAL:
                rule("60", "*", "*", resource.code, item.name, BEGINNING, END, "deny", Deny.NO_GRANT)
            else:
                rule("60", "*", "*", resource.code, item.name, BEGINNING, END, "deny", Deny.NOT_SHARED)

    for restriction in policies.restrictions:
        targets = [r.code for r in catalog.published()] if restriction.resource == "*" else [restriction.resource]
        for code in targets:
            since = stamp(restriction.valid_from) if restriction.valid_from else BEGINNING
            until = stamp(restriction.valid_until) if restriction.valid_until else END
            rule(
                "10",
                restriction.department,
                "*",
                code,
                "*",
                since,
                until,
                "deny",
                Deny.DEPARTMENT_RESTRICTED,
                restriction.id,
            )

    published = {r.code for r in catalog.published()}
    for grant in policies.grants:
        if grant.resource not in published:  # a retired resource's grants stop: no rule names it any more
            continue
        allow = {GrantKind.LEGAL_BASIS: Allow.LEGAL_BASIS, GrantKind.DEEMED: Allow.DEEMED_APPROVAL}.get(
            grant.kind, Allow.GRANT
        )
        since, until = stamp(grant.valid_from), stamp(grant.valid_until)
        for name in grant.items:
            for purpose in grant.purposes:
                if grant.revoked_at is not None:
                    rule(
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
                    continue
                rule("20", grant.consumer, purpose, grant.resource, name, since, until, "allow", allow, grant.id)
                waiting = Deny.APPLICATION_PENDING if grant.kind == GrantKind.DEEMED else Deny.GRANT_NOT_YET_VALID
                rule("40", grant.consumer, purpose, grant.resource, name, BEGINNING, since, "deny", waiting, grant.id)
                rule(
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
            rule(
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
    return rules, links


def boundaries(rules: list[list[str]]) -> list[str]:
    """Every time at which some rule starts or stops matching, sorted."""
    return sorted({t for r in rules for t in (r[5], r[6]) if t not in (BEGINNING, END)})
