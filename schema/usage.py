"""The access records a provider may read about its own resources (Art 24), as GraphQL."""

import datetime

import strawberry

from govshare.errors import GovshareError, graphql_error
from resolvers import usage


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


QUERY_FIELDS = {
    "usage_records": strawberry.field(
        resolver=resolve_usage,
        description="本部门资源被谁、为何、何时使用（第二十四条）；审计角色可见全部。before 传上一页最后一条的 id",
    ),
}
