"""Oversight over GraphQL: the consumers' feedback on grants (Art 24) and the coordinator's evaluation of
departments (Art 23, 25, 27); refusals as GraphQL errors with stable codes."""

from __future__ import annotations

from datetime import date

from govshare.errors import GovshareError, graphql_error
from oversight import evaluation, feedback
from resolvers.context import RequestContext

EVALUATORS = ("coordinator", "auditor")


async def record_feedback(
    ctx: RequestContext, *, grant: str, period: str, matters_handled: int, documents_spared: int, note: str
) -> feedback.Feedback:
    """The caller's department reports (or replaces) its feedback on a grant it holds for a month."""
    try:
        async with ctx.platform.begin() as conn:
            return await feedback.record(
                conn,
                ctx.catalog,
                ctx.caller,
                grant=grant,
                period=period,
                matters_handled=matters_handled,
                documents_spared=documents_spared,
                note=note,
                operator=ctx.operator,
                now=ctx.now,
                silence_approves=ctx.settings.silence_approves,
            )
    except GovshareError as exc:
        raise graphql_error(exc, ctx.lang) from None


async def read_feedback(
    ctx: RequestContext,
    *,
    grant: str | None,
    resource: str | None,
    first_period: str | None,
    last_period: str | None,
) -> list[feedback.Feedback]:
    """The feedback the caller may read: its department's as consumer or provider; every one for the
    coordinator and auditors."""
    try:
        async with ctx.platform.connect() as conn:
            return await feedback.listing(
                conn,
                departments=feedback.visible_to(ctx.caller),
                grant=grant,
                resource=resource,
                first_period=first_period,
                last_period=last_period,
            )
    except GovshareError as exc:
        raise graphql_error(exc, ctx.lang) from None


async def department_evaluation(ctx: RequestContext, *, start: date, end: date) -> evaluation.Evaluation:
    """Every department's scorecard over the days ``start`` … ``end``: for the coordinator and auditors only."""
    try:
        if not set(EVALUATORS) & set(ctx.caller.roles):
            raise GovshareError("EVALUATION_ROLE_REQUIRED")
        weights = evaluation.load_weights(ctx.settings.expand(ctx.settings.evaluation_weights_file))
        return await evaluation.run(ctx.platform, ctx.settings, start=start, end=end, now=ctx.now, weights=weights)
    except GovshareError as exc:
        raise graphql_error(exc, ctx.lang) from None
