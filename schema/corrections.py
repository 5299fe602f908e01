"""GraphQL types and operations of data corrections (校核纠错): report a wrong value, answer it, see the outcome."""

import datetime

import strawberry

from resolvers import corrections
from resolvers.context import RequestContext
from schema.applications import ProcessStep, _step


@strawberry.type(description="数据纠错报告（校核纠错）")
class DataErrorReport:
    id: strawberry.ID = strawberry.field(description="报告编号")
    resource: str = strawberry.field(description="资源编码")
    item: str = strawberry.field(description="有误的信息项")
    key: str | None = strawberry.field(
        description="记录的主键值（仅报告部门与提供部门可见；其他部门与共享主管部门为 null）"
    )
    proposed: str | None = strawberry.field(description="报告部门认为正确的值（可见范围同主键值）")
    reason: str = strawberry.field(description="报告理由")
    reporter: str = strawberry.field(description="报告部门")
    reported_at: datetime.datetime = strawberry.field(description="报告时间")
    deadline: datetime.datetime = strawberry.field(description="提供部门答复期限（工作日）")
    deadline_provisional: bool = strawberry.field(description="期限是否暂定（该年节假日安排尚未加载）")
    status: str = strawberry.field(
        description="状态：open（待答复）、escalated（逾期，已转共享主管部门）、corrected（已更正）、rejected（不予更正）"
    )
    escalated_at: datetime.datetime | None = strawberry.field(description="转共享主管部门的时间")
    answered_at: datetime.datetime | None = strawberry.field(description="答复时间")
    answer: str | None = strawberry.field(description="答复理由")
    history: list[ProcessStep] = strawberry.field(description="全部环节")


def _report(row, shown, steps) -> DataErrorReport:
    key, proposed = shown
    return DataErrorReport(
        id=strawberry.ID(row.id),
        resource=row.resource,
        item=row.item,
        key=key,
        proposed=proposed,
        reason=row.reason,
        reporter=row.reporter,
        reported_at=row.reported_at,
        deadline=row.deadline_at,
        deadline_provisional=bool(row.deadline_provisional),
        status=row.status,
        escalated_at=row.escalated_at,
        answered_at=row.answered_at,
        answer=row.answer_reason,
        history=[_step(s) for s in steps],
    )


async def _one(ctx: RequestContext, report_id: str) -> DataErrorReport | None:
    rows = await corrections.read(ctx, report_id=report_id)
    return _report(*rows[0]) if rows else None


@strawberry.type(description="数据校核纠错")
class Mutation:
    @strawberry.mutation(
        description="报告数据有误（须声明用途 X-Purpose，且本部门在该用途下可读取该记录的该信息项）；"
        "提供部门在期限内答复，逾期转共享主管部门"
    )
    async def report_data_error(
        self,
        info: strawberry.Info,
        resource: str,
        key: str,
        item: str,
        proposed: str,
        reason: str,
    ) -> DataErrorReport | None:
        ctx: RequestContext = info.context
        report_id = await corrections.report(
            ctx, resource=resource, key=key, item=item, proposed=proposed, reason=reason
        )
        return await _one(ctx, report_id)

    @strawberry.mutation(description="提供部门答复数据纠错报告：corrected（已更正）或 rejected（不予更正），须说明理由")
    async def answer_data_error(
        self, info: strawberry.Info, id: strawberry.ID, outcome: str, reason: str
    ) -> DataErrorReport | None:
        ctx: RequestContext = info.context
        await corrections.answer(ctx, str(id), outcome, reason)
        return await _one(ctx, str(id))


async def resolve_reports(info: strawberry.Info, id: strawberry.ID | None = None) -> list[DataErrorReport]:
    rows = await corrections.read(info.context, report_id=str(id) if id else None)
    return [_report(*r) for r in rows]


async def resolve_inbox(info: strawberry.Info) -> list[DataErrorReport]:
    return [_report(*r) for r in await corrections.read(info.context, inbox=True)]


QUERY_FIELDS = {
    "data_error_reports": strawberry.field(
        resolver=resolve_reports,
        description="本部门报告的、针对本部门资源的数据纠错报告及其结果（共享主管部门可见全部，不含主键值）",
    ),
    "data_error_inbox": strawberry.field(
        resolver=resolve_inbox,
        description="待本部门答复的数据纠错报告及其期限（共享主管部门另含逾期转来的报告）",
    ),
}
