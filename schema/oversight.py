"""GraphQL types and operations of oversight: the consumers' feedback on grants (Art 24) and the coordinator's
evaluation of departments (``departmentEvaluation``, Art 23, 25, 27)."""

import datetime
from typing import Annotated

import strawberry

from oversight import evaluation, feedback
from resolvers import oversight
from resolvers.context import RequestContext


@strawberry.type(description="使用部门对一项共享授权某月使用效果的反馈（第二十四条）")
class ConsumerFeedback:
    id: strawberry.ID = strawberry.field(description="反馈编号")
    grant: str = strawberry.field(description="共享授权编号（逾期视为同意而尚未登记授权的，为申请编号）")
    application: str | None = strawberry.field(description="授权来自的共享申请编号")
    consumer: str = strawberry.field(description="使用部门")
    provider: str = strawberry.field(description="提供部门")
    resource: str = strawberry.field(description="资源代码")
    period: str = strawberry.field(description="月份（YYYY-MM，北京时间）")
    matters_handled: int = strawberry.field(description="利用共享信息办理的事项数")
    documents_spared: int = strawberry.field(description="不再要求群众、企业提交的材料数")
    note: str = strawberry.field(description="说明")
    revision: int = strawberry.field(description="第几次报送（同一授权同一月份再次报送即替换，计数加一）")
    recorded_at: datetime.datetime = strawberry.field(description="报送时间")


def _feedback(row: feedback.Feedback) -> ConsumerFeedback:
    return ConsumerFeedback(
        id=strawberry.ID(row.id),
        grant=row.grant_ref,
        application=row.application_id,
        consumer=row.consumer,
        provider=row.provider,
        resource=row.resource,
        period=row.period,
        matters_handled=row.matters_handled,
        documents_spared=row.documents_spared,
        note=row.note,
        revision=row.revision,
        recorded_at=row.recorded_at,
    )


@strawberry.type(description="评价指标所依据的一条平台记录")
class EvaluationRecord:
    kind: str = strawberry.field(
        description="记录类别：resource（资源）、application（共享申请）、data_error（数据纠错报告）、"
        "access（访问记录）、deny_rule（禁止规则）、feedback（使用效果反馈）"
    )
    id: str = strawberry.field(description="记录编号")
    at: datetime.datetime | None = strawberry.field(description="时间")
    detail: str = strawberry.field(description="记录摘要")


@strawberry.type(description="一项评价指标：数值为所依据记录的条数，得分为数值乘以权重")
class EvaluationFigure:
    key: str = strawberry.field(description="指标编码")
    label: str = strawberry.field(description="指标名称")
    value: int = strawberry.field(description="数值（所依据记录的条数）")
    weight: float = strawberry.field(description="权重（配置）")
    points: float = strawberry.field(description="得分（数值 × 权重）")
    article27: str | None = strawberry.field(description="对应第二十七条的第几项（一至五）；不对应时为空")
    records: list[EvaluationRecord] = strawberry.field(description="所依据的记录")


@strawberry.type(description="一个部门的评价")
class DepartmentScorecard:
    department: str = strawberry.field(description="部门编码")
    name: str = strawberry.field(description="部门名称")
    rank: int = strawberry.field(description="排名（得分相同者名次相同）")
    score: float = strawberry.field(description="总分")
    figures: list[EvaluationFigure] = strawberry.field(description="各项指标")


@strawberry.type(description="各部门政务信息资源共享工作评价（第二十三、二十五、二十七条）")
class DepartmentEvaluation:
    start: datetime.date = strawberry.field(name="from", description="评价期间首日")
    end: datetime.date = strawberry.field(name="to", description="评价期间末日")
    computed_at: datetime.datetime = strawberry.field(description="计算时间")
    departments: list[DepartmentScorecard] = strawberry.field(description="按排名排列的各部门评价")


def _evaluation(found: evaluation.Evaluation, lang: str) -> DepartmentEvaluation:
    return DepartmentEvaluation(
        start=found.start,
        end=found.end,
        computed_at=found.computed_at,
        departments=[
            DepartmentScorecard(
                department=card.department,
                name=card.name,
                rank=card.rank,
                score=card.score,
                figures=[
                    EvaluationFigure(
                        key=f.key,
                        label=evaluation.label(f.key, lang),
                        value=f.value,
                        weight=f.weight,
                        points=f.points,
                        article27=evaluation.ART27.get(f.key),
                        records=[EvaluationRecord(kind=e.kind, id=e.id, at=e.at, detail=e.detail) for e in f.evidence],
                    )
                    for f in card.figures
                ],
            )
            for card in found.cards
        ],
    )


@strawberry.type(description="使用效果反馈")
class Mutation:
    @strawberry.mutation(
        description="报送本部门持有的一项共享授权（或已批准的共享申请）某月的使用效果（第二十四条）；"
        "同一授权同一月份再次报送即替换原数据，留有流程记录"
    )
    async def record_feedback(
        self,
        info: strawberry.Info,
        grant: strawberry.ID,
        period: str,
        matters_handled: int,
        documents_spared: int,
        note: str = "",
    ) -> ConsumerFeedback:
        ctx: RequestContext = info.context
        found = await oversight.record_feedback(
            ctx,
            grant=str(grant),
            period=period,
            matters_handled=matters_handled,
            documents_spared=documents_spared,
            note=note,
        )
        return _feedback(found)


async def resolve_feedback(
    info: strawberry.Info,
    grant: strawberry.ID | None = None,
    resource: str | None = None,
    from_period: str | None = None,
    to_period: str | None = None,
) -> list[ConsumerFeedback]:
    rows = await oversight.read_feedback(
        info.context,
        grant=str(grant) if grant is not None else None,
        resource=resource,
        first_period=from_period,
        last_period=to_period,
    )
    return [_feedback(r) for r in rows]


async def resolve_evaluation(
    info: strawberry.Info,
    start: Annotated[datetime.date, strawberry.argument(name="from", description="评价期间首日")],
    end: Annotated[datetime.date, strawberry.argument(name="to", description="评价期间末日（含）")],
) -> DepartmentEvaluation:
    ctx: RequestContext = info.context
    return _evaluation(await oversight.department_evaluation(ctx, start=start, end=end), ctx.lang)


QUERY_FIELDS = {
    "consumer_feedback": strawberry.field(
        resolver=resolve_feedback,
        description="使用效果反馈：本部门报送的，及针对本部门资源的；共享主管部门与审计可见全部。"
        "fromPeriod、toPeriod 为月份（YYYY-MM，含）",
    ),
    "department_evaluation": strawberry.field(
        resolver=resolve_evaluation,
        description="各部门共享工作评价与排名（第二十三、二十五、二十七条），每项指标附所依据的记录；"
        "仅限共享主管部门（coordinator 角色）与审计（auditor 角色）",
    ),
}
