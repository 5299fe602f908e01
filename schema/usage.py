"""The access records a provider may read about its own resources (Art 24), and the usage report on them, as
GraphQL."""

import dataclasses
import datetime
from typing import Annotated

import strawberry

from govshare.errors import GovshareError, graphql_error
from oversight import feedback
from resolvers import usage
from schema.oversight import ConsumerFeedback, _feedback


@strawberry.type(description="一次资源访问的记录")
class AccessRecordInfo:
    id: int = strawberry.field(description="记录序号（越大越新）")
    at: datetime.datetime = strawberry.field(description="时间")
    department: str = strawberry.field(description="使用部门")
    application: str = strawberry.field(description="应用")
    operator: str | None = strawberry.field(description="经办人")
    purpose: str | None = strawberry.field(description="用途")
    resource: str = strawberry.field(description="资源")
    operation: str = strawberry.field(
        description="lookup、list、link、entity（Apollo Federation 的 _entities）或 report（数据纠错报告）"
    )
    items_returned: list[str] = strawberry.field(description="返回的信息项")
    items_denied: list[str] = strawberry.field(description="拒绝的信息项及原因（信息项:原因代码）")
    row_count: int = strawberry.field(description="返回行数")
    grants_used: list[str] = strawberry.field(description="依据的共享授权或申请")
    outcome: str = strawberry.field(description="allowed、partial、denied 或 failed")
    error_code: str | None = strawberry.field(description="拒绝或失败的原因代码（整个访问被拒绝或失败时）")


async def resolve_usage(
    info: strawberry.Info, resource: str | None = None, first: int = 50, before: int | None = None
) -> list[AccessRecordInfo]:
    ctx = info.context
    if not 1 <= first <= ctx.settings.max_page_size:
        raise graphql_error(
            GovshareError("PAGE_SIZE_TOO_LARGE", limit=ctx.settings.max_page_size, requested=first), ctx.lang
        )
    rows = await usage.records(ctx, resource=resource, first=first, before_id=before)
    return [
        AccessRecordInfo(
            id=r.id,
            at=r.at,
            department=r.department,
            application=r.application,
            operator=r.operator,
            purpose=r.purpose,
            resource=r.resource,
            operation=r.operation,
            items_returned=list(r.items_returned),
            items_denied=[f"{k}:{v}" for k, v in r.items_denied.items()],
            row_count=r.row_count,
            grants_used=list(r.grants_used),
            outcome=r.outcome,
            error_code=r.error_code,
        )
        for r in rows
    ]


@strawberry.type(description="一组访问记录的统计（每项均为访问记录之和）")
class UsageRow:
    resource: str | None = strawberry.field(description="资源代码（resources 表）")
    period: str | None = strawberry.field(description="时间段的起始日（北京时间，YYYY-MM-DD；trend 表）")
    department: str | None = strawberry.field(description="使用部门（departments 表）")
    purpose: str | None = strawberry.field(description="用途（purposes 表；null 为未声明用途）")
    grant: str | None = strawberry.field(description="依据的共享授权（grants 表；null 为未依授权的访问）")
    outcome: str | None = strawberry.field(description="denied 或 failed（refusals 表）")
    error_code: str | None = strawberry.field(description="整次拒绝或失败的原因代码（refusals 表）")
    item: str | None = strawberry.field(description="被拒绝的信息项（deniedItems 表）")
    reason: str | None = strawberry.field(description="信息项被拒绝的原因代码（deniedItems 表）")
    accesses: int = strawberry.field(description="访问次数")
    rows: int = strawberry.field(description="返回行数")
    values: int = strawberry.field(description="返回数据项：各次访问返回行数 × 返回信息项数之和")
    allowed: int = strawberry.field(description="全部允许的访问")
    partial: int = strawberry.field(description="部分信息项被拒绝的访问")
    denied: int = strawberry.field(description="整次被拒绝的访问")
    failed: int = strawberry.field(description="失败的访问（如数据源不可用）")
    items_denied: int = strawberry.field(description="被拒绝的信息项，按每次访问计")
    masked: int = strawberry.field(description="含脱敏信息项的访问")
    items_masked: int = strawberry.field(
        description="脱敏返回的信息项，按每次访问计（访问记录不写明脱敏的行数，故不统计脱敏的数据值个数）"
    )


@strawberry.type(
    description="一项共享授权某月的使用效果反馈（第二十四条），旁列该授权当月的使用情况（只计当月在报告期间内的日子）"
)
class GrantFeedback:
    grant: str = strawberry.field(description="共享授权编号（逾期视为同意而尚未登记授权的，为申请编号）")
    consumer: str = strawberry.field(description="使用部门")
    resource: str = strawberry.field(description="资源代码")
    month: str = strawberry.field(description="月份（YYYY-MM，北京时间）")
    feedback: ConsumerFeedback | None = strawberry.field(description="使用部门报送的该月使用效果；null 为未报送")
    usage: UsageRow = strawberry.field(
        description="该授权当月在报告期间内的使用情况（period 为该月首日；未依该授权访问的为 0）"
    )


def _grant_feedback(row: feedback.GrantMonth) -> GrantFeedback:
    keys = {"resource": row.resource, "department": row.consumer, "grant": row.grant, "period": row.month + "-01"}
    usage_row = UsageRow(**{**dict.fromkeys(usage.KEY_FIELDS), **keys, **dataclasses.asdict(row.usage)})
    return GrantFeedback(
        grant=row.grant,
        consumer=row.consumer,
        resource=row.resource,
        month=row.month,
        feedback=_feedback(row.feedback) if row.feedback is not None else None,
        usage=usage_row,
    )


@strawberry.type(description="本部门资源的使用情况报告（第二十四条），由平台访问记录统计")
class UsageReport:
    provider: str | None = strawberry.field(description="提供部门（null 为全部部门，仅共享主管部门与审计角色）")
    first: datetime.date = strawberry.field(description="起始日（北京时间，含）")
    last: datetime.date = strawberry.field(description="截止日（北京时间，含）")
    granularity: str = strawberry.field(description="趋势表的时间粒度：day、week（周一起）或 month")
    resources: list[UsageRow] = strawberry.field(description="各资源使用情况")
    trend: list[UsageRow] = strawberry.field(description="使用趋势：期间内每个时间段，无访问的为 0")
    departments: list[UsageRow] = strawberry.field(description="按使用部门，访问最多的在前")
    purposes: list[UsageRow] = strawberry.field(description="按用途，使用最多的在前")
    grants: list[UsageRow] = strawberry.field(description="按共享授权（一次访问依据两项授权的，两项各计一次）")
    refusals: list[UsageRow] = strawberry.field(description="整次拒绝或失败的访问，按原因代码")
    denied_items: list[UsageRow] = strawberry.field(description="被拒绝的信息项，按原因代码")
    feedback: list[GrantFeedback] = strawberry.field(
        description="使用部门对报告所涉资源的使用效果反馈（第二十四条）：期间涉及的各月中，每项有反馈或有依其访问的"
        "授权每月一行，按资源、使用部门、授权、月份排列；可见范围同 consumerFeedback 中提供部门与共享主管部门所见，"
        "即本部门资源上的反馈（共享主管部门与审计角色为所指定部门或全部部门的）"
    )


async def resolve_usage_report(
    info: strawberry.Info,
    provider: Annotated[
        str | None,
        strawberry.argument(description="提供部门代码（仅共享主管部门与审计角色；默认本部门，它们默认全部部门）"),
    ] = None,
    resource: Annotated[str | None, strawberry.argument(description="只看该资源（须为可见的资源）")] = None,
    from_: Annotated[
        datetime.date | None, strawberry.argument(name="from", description="起始日（北京时间，含；默认截止日前 29 天）")
    ] = None,
    to: Annotated[datetime.date | None, strawberry.argument(description="截止日（北京时间，含；默认今天）")] = None,
    granularity: Annotated[str, strawberry.argument(description="day、week 或 month")] = "day",
) -> UsageReport:
    ctx = info.context
    try:
        found = await usage.report(
            ctx, provider=provider, resource=resource, first=from_, last=to, granularity=granularity
        )
    except GovshareError as exc:
        raise graphql_error(exc, ctx.lang) from None
    tables = {name: [UsageRow(**row) for row in rows] for name, rows in found.tables.items()}
    return UsageReport(
        provider=found.provider,
        first=found.period.first,
        last=found.period.last,
        granularity=found.period.granularity,
        resources=tables["resources"],
        trend=tables["trend"],
        departments=tables["departments"],
        purposes=tables["purposes"],
        grants=tables["grants"],
        refusals=tables["refusals"],
        denied_items=tables["denied_items"],
        feedback=[_grant_feedback(row) for row in found.feedback],
    )


QUERY_FIELDS = {
    "usage_report": strawberry.field(
        resolver=resolve_usage_report,
        description="本部门资源的使用情况报告（第二十四条）：访问次数、返回行数与数据项、拒绝与脱敏，按资源、使用部门、"
        "用途、共享授权、时间段与原因代码统计；共享主管部门与审计角色可指定 provider 或查看全部部门。"
        "另一部门的资源或部门返回 USAGE_NOT_YOURS",
    ),
    "usage_records": strawberry.field(
        resolver=resolve_usage,
        description="本部门资源被谁、为何、何时使用（第二十四条）；审计角色可见全部。before 传上一页最后一条的 id",
    ),
}
