"""GraphQL types and operations of the share-application process (共享申请, Art 17-21)."""

import datetime

import strawberry

from resolvers import applications as process
from resolvers.context import RequestContext


@strawberry.type(description="申请或授权的一个环节：谁、何时、做了什么、为什么")
class ProcessStep:
    at: datetime.datetime = strawberry.field(description="时间")
    kind: str = strawberry.field(
        description="环节：submitted、approved、refused、deemed_approved、coordination_requested、"
        "coordination_approved、coordination_refused、revoked、expired、refused_action"
    )
    department: str = strawberry.field(description="部门")
    actor: str = strawberry.field(description="操作的应用密钥编号")
    reason: str | None = strawberry.field(description="理由")
    grant_id: str | None = strawberry.field(description="相关共享授权")


@strawberry.type(description="共享申请")
class Application:
    id: strawberry.ID = strawberry.field(description="申请编号")
    consumer: str = strawberry.field(description="申请（使用）部门")
    resource: str = strawberry.field(description="资源编码")
    items: list[str] = strawberry.field(description="申请的信息项")
    purpose: str = strawberry.field(description="用途（履职事项编码）")
    users: str = strawberry.field(description="使用对象")
    share_mode: str = strawberry.field(description="共享方式")
    valid_from: datetime.datetime = strawberry.field(description="起始时间")
    valid_until: datetime.datetime = strawberry.field(description="截止时间")
    submitted_at: datetime.datetime = strawberry.field(description="提交时间")
    deadline: datetime.datetime = strawberry.field(description="答复期限（10 个工作日）")
    deadline_provisional: bool = strawberry.field(
        description="期限是否暂定（该年节假日安排尚未加载，仅按周一至周五计算）"
    )
    status: str = strawberry.field(
        description="状态：pending、approved、refused、deemed_approved、coordinating、"
        "coordination_approved、coordination_refused"
    )
    grant_id: str | None = strawberry.field(description="生效的共享授权")
    history: list[ProcessStep] = strawberry.field(description="全部环节")


@strawberry.input(description="行范围：信息项取值限于所列值")
class ScopeInput:
    item: str
    values: list[str]


@strawberry.input(description="共享申请（第十七、二十一条）")
class ShareApplicationInput:
    resource: str = strawberry.field(description="资源编码，如 police.person")
    items: list[str] = strawberry.field(description="信息项")
    purpose: str = strawberry.field(description="用途：本部门已登记的履职事项编码")
    users: str = strawberry.field(description="使用对象")
    valid_from: datetime.date = strawberry.field(description="起始日期")
    valid_until: datetime.date = strawberry.field(description="截止日期（含当日）")
    acknowledged: bool = strawberry.field(description="承诺仅按申请用途使用、不向第三方提供（第二十二条）")
    share_mode: str = strawberry.field(
        default="online_query", description="共享方式：online_query、exchange、interface"
    )
    row_scope: list[ScopeInput] | None = strawberry.field(default=None, description="行范围")


def _application(row, steps) -> Application:
    return Application(
        id=strawberry.ID(row.id),
        consumer=row.consumer,
        resource=row.resource,
        items=list(row.items),
        purpose=row.purpose,
        users=row.users,
        share_mode=row.share_mode,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        submitted_at=row.submitted_at,
        deadline=row.deadline_at,
        deadline_provisional=bool(row.deadline_provisional),
        status=row.status,
        grant_id=row.grant_id,
        history=[_step(s) for s in steps],
    )


def _scope(scope: list[ScopeInput] | None) -> dict[str, list[str]]:
    return {s.item: list(s.values) for s in scope or []}


async def _one(ctx: RequestContext, application_id: str) -> Application:
    rows = await process.read(ctx, application_id=application_id)
    if not rows:
        return None
    return _application(*rows[0])


@strawberry.type(description="共享申请与授权的办理")
class Mutation:
    @strawberry.mutation(description="提出共享申请；不合格的申请当即退回，并逐项说明原因")
    async def apply_for_share(self, info: strawberry.Info, input: ShareApplicationInput) -> Application | None:
        ctx: RequestContext = info.context
        application_id = await process.apply(
            ctx,
            resource=input.resource,
            items=list(input.items),
            purpose=input.purpose,
            users=input.users,
            share_mode=input.share_mode,
            row_scope=_scope(input.row_scope),
            valid_from=input.valid_from,
            valid_until=input.valid_until,
            acknowledged=input.acknowledged,
        )
        return await _one(ctx, application_id)

    @strawberry.mutation(description="提供部门同意（可缩小信息项、行范围或截止日期）")
    async def approve_application(
        self,
        info: strawberry.Info,
        id: strawberry.ID,
        items: list[str] | None = None,
        valid_until: datetime.date | None = None,
        row_scope: list[ScopeInput] | None = None,
    ) -> Application | None:
        ctx: RequestContext = info.context
        await process.approve(ctx, str(id), items=items, valid_until=valid_until, row_scope=_scope(row_scope) or None)
        return await _one(ctx, str(id))

    @strawberry.mutation(description="提供部门不同意，须说明理由")
    async def refuse_application(self, info: strawberry.Info, id: strawberry.ID, reason: str) -> Application | None:
        ctx: RequestContext = info.context
        await process.refuse(ctx, str(id), reason)
        return await _one(ctx, str(id))

    @strawberry.mutation(description="申请部门提请共享主管部门协调（被拒绝的申请，或不予共享类资源的申请）")
    async def request_coordination(self, info: strawberry.Info, id: strawberry.ID, reason: str) -> Application | None:
        ctx: RequestContext = info.context
        await process.request_coordination(ctx, str(id), reason)
        return await _one(ctx, str(id))

    @strawberry.mutation(description="共享主管部门作出协调决定，为最终决定")
    async def decide_coordination(
        self, info: strawberry.Info, id: strawberry.ID, approve: bool, reason: str
    ) -> Application | None:
        ctx: RequestContext = info.context
        await process.decide_coordination(ctx, str(id), approve, reason)
        return await _one(ctx, str(id))

    @strawberry.mutation(
        description="共享主管部门记录依法共享授权（依法应与特定部门共享，须引用法律依据），返回授权编号"
    )
    async def record_legal_basis_grant(
        self,
        info: strawberry.Info,
        consumer: str,
        resource: str,
        items: list[str],
        purposes: list[str],
        valid_from: datetime.date,
        valid_until: datetime.date,
        legal_basis: str,
    ) -> str:
        return await process.record_legal_basis_grant(
            info.context,
            consumer=consumer,
            resource=resource,
            items=items,
            purposes=purposes,
            valid_from=valid_from,
            valid_until=valid_until,
            legal_basis=legal_basis,
        )

    @strawberry.mutation(description="提供部门或共享主管部门撤销共享授权，须说明理由")
    async def revoke_grant(self, info: strawberry.Info, id: strawberry.ID, reason: str) -> bool:
        await process.revoke(info.context, str(id), reason)
        return True


async def resolve_applications(info: strawberry.Info, id: strawberry.ID | None = None) -> list[Application]:
    rows = await process.read(info.context, application_id=str(id) if id else None)
    return [_application(row, steps) for row, steps in rows]


async def resolve_inbox(info: strawberry.Info) -> list[Application]:
    return [_application(row, steps) for row, steps in await process.read(info.context, inbox=True)]


def _step(s) -> ProcessStep:
    return ProcessStep(
        at=s.at, kind=s.kind, department=s.department, actor=s.actor, reason=s.reason, grant_id=s.grant_id
    )


async def resolve_grant_history(info: strawberry.Info, id: strawberry.ID) -> list[ProcessStep]:
    return [_step(s) for s in await process.grant_history(info.context, str(id))]


QUERY_FIELDS = {
    "grant_history": strawberry.field(
        resolver=resolve_grant_history, description="共享授权（及其来源申请）的全部环节：授权、协调、撤销、到期"
    ),
    "applications": strawberry.field(
        resolver=resolve_applications,
        description="本部门提出的、针对本部门资源的共享申请（审计、协调角色可见全部），含全部环节",
    ),
    "application_inbox": strawberry.field(
        resolver=resolve_inbox, description="待本部门答复的共享申请及其答复期限（协调角色另含待协调的申请）"
    ),
}
