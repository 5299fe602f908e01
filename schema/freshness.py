"""The freshness of resources (Art 16, 20), for department systems: a provider sees its own resources, the
coordinator (the ``coordinator`` role) every resource; from what the platform recorded, no source is asked."""

import datetime

import strawberry

from resolvers import freshness


@strawberry.type(description="资源的更新状态：按《资源目录》公布的更新周期与数据源最后更新时间计算")
class ResourceFreshness:
    resource: str = strawberry.field(description="资源代码")
    provider: str = strawberry.field(description="提供部门")
    update_cycle: str = strawberry.field(
        description="更新周期：realtime、daily、weekly、monthly、quarterly、half-yearly、yearly、irregular"
    )
    last_change: datetime.datetime | None = strawberry.field(description="数据源最后更新时间（未知时为空）")
    due_by: datetime.datetime | None = strawberry.field(description="应更新期限（不定期或未知时为空）")
    overdue: bool = strawberry.field(description="是否逾期未更新")
    state: str = strawberry.field(description="current、overdue、irregular 或 unknown")


async def resolve_overdue(info: strawberry.Info, all: bool = False) -> list[ResourceFreshness]:
    return [
        ResourceFreshness(
            resource=s.resource,
            provider=s.provider,
            update_cycle=s.update_cycle,
            last_change=s.last_change,
            due_by=s.due_by,
            overdue=s.overdue,
            state=s.status,
        )
        for s in freshness.visible(info.context)
        if all or s.overdue
    ]


QUERY_FIELDS = {
    "overdue_resources": strawberry.field(
        resolver=resolve_overdue,
        description="逾期未更新的资源（第十六、二十条）：本部门提供的；统筹协调角色可见全部。all: true 列出全部资源的更新状态",
    ),
}
