"""The catalog kept by its departments, as GraphQL (resolvers/catalog.py, catalog/workflow.py): department systems
submit and retire their own entries, the coordinating authority approves or returns them; submissions with their
conformance findings per field, the catalog's versions and their field-level diff."""

from __future__ import annotations

import datetime
import json
from typing import Any

import strawberry
from strawberry.scalars import Base64

from catalog import store, workflow
from govshare.i18n import message
from resolvers import catalog as resolve


@strawberry.type(description="数据源核对（第十四条）的一项结果")
class CatalogFinding:
    stage: str = strawberry.field(description="submission（提交时）或 publication（发布前）")
    resource: str = strawberry.field(description="资源编码")
    field: str = strawberry.field(description="字段，如 table、items[address].column、department.source")
    code: str = strawberry.field(description="SOURCE_MISMATCH 或 SOURCE_UNAVAILABLE")
    severity: str = strawberry.field(description="error：阻止发布；warning：供审核参考")
    message: str = strawberry.field(description="说明")


@strawberry.type(description="两版目录之间一个条目的一个字段的差异")
class CatalogFieldChange:
    entry: str = strawberry.field(description="条目，如 resource:police.person、department:police、purpose:…")
    field: str = strawberry.field(description="字段，如 items[address].label（空：整个条目新增或删除）")
    before: str | None = strawberry.field(description="旧值（JSON；空：新增）")
    after: str | None = strawberry.field(description="新值（JSON；空：删除）")


@strawberry.type(description="目录的一个版本")
class CatalogVersionInfo:
    version: int = strawberry.field(description="版本号")
    at: datetime.datetime = strawberry.field(description="时间")
    by: str = strawberry.field(description="操作人（应用密钥编号或操作员）")
    change: str = strawberry.field(description="load（直接加载）、publish（审核发布）或 retire（撤销）")
    department: str = strawberry.field(description="变更的部门（空：整个目录）")
    reason: str = strawberry.field(description="理由")
    submission_id: str = strawberry.field(description="发布的目录编报")


@strawberry.type(description="部门的一次目录编报")
class CatalogSubmission:
    id: strawberry.ID = strawberry.field(description="编报编号")
    department: str = strawberry.field(description="编报部门（提供部门）")
    status: str = strawberry.field(
        description="draft（草稿）、under_review（审核中）、published（已发布）或 returned（已退回）"
    )
    changed_resources: list[str] = strawberry.field(description="新增或变更的资源")
    base_version: int = strawberry.field(description="编报所依据的目录版本")
    findings: list[CatalogFinding] = strawberry.field(description="数据源核对结果（逐字段）")
    created_by: str = strawberry.field(description="编报人（应用密钥编号）")
    created_at: datetime.datetime = strawberry.field(description="编报时间")
    submitted_at: datetime.datetime | None = strawberry.field(description="送审时间")
    decided_by: str | None = strawberry.field(description="审核人")
    decided_at: datetime.datetime | None = strawberry.field(description="审核时间")
    reason: str | None = strawberry.field(description="理由：编报理由，审核后为审核意见或退回理由")
    published_version: int | None = strawberry.field(description="发布后的目录版本")


def _shown(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _finding(finding: workflow.Finding, lang: str) -> CatalogFinding:
    text = message(finding.code, lang, resource=finding.resource, detail=finding.detail)
    return CatalogFinding(
        stage=finding.stage,
        resource=finding.resource,
        field=finding.field,
        code=finding.code,
        severity=finding.severity,
        message=text,
    )


def _submission(item: workflow.Submission, lang: str) -> CatalogSubmission:
    return CatalogSubmission(
        id=strawberry.ID(item.id),
        department=item.department,
        status=item.status,
        changed_resources=list(item.changed),
        base_version=item.base_version,
        findings=[_finding(f, lang) for f in item.findings],
        created_by=item.created_by,
        created_at=item.created_at,
        submitted_at=item.submitted_at,
        decided_by=item.decided_by,
        decided_at=item.decided_at,
        reason=item.reason,
        published_version=item.published_version,
    )


def _change(change: store.FieldChange) -> CatalogFieldChange:
    return CatalogFieldChange(
        entry=change.entry, field=change.field, before=_shown(change.before), after=_shown(change.after)
    )


@strawberry.type
class CatalogMutation:
    @strawberry.mutation(
        description="部门编报本部门的目录条目（一个部门的目录文件：TOML 文本 catalogFile，或 base64 编码的 .xlsx 工作簿 "
        "workbook，其错误逐单元格指出）：新增或变更的资源送交共享主管部门审核"
        "（draft 为真时只存为草稿）；提交时即核对数据源，结果逐字段记入编报。需本部门密钥的 reviewer 角色"
    )
    async def submit_catalog_entries(
        self,
        info: strawberry.Info,
        reason: str,
        catalog_file: str = "",
        name: str = "catalog.toml",
        draft: bool = False,
        workbook: Base64 | None = None,
    ) -> CatalogSubmission:
        ctx = info.context
        return _submission(
            await resolve.submit(
                ctx,
                name=name,
                text=catalog_file,
                reason=reason,
                draft=draft,
                workbook=bytes(workbook) if workbook else None,
            ),
            ctx.lang,
        )

    @strawberry.mutation(description="把本部门的目录编报草稿送审（重新核对数据源）")
    async def send_catalog_submission(self, info: strawberry.Info, id: strawberry.ID) -> CatalogSubmission:
        return _submission(await resolve.send(info.context, str(id)), info.context.lang)

    @strawberry.mutation(
        description="共享主管部门审核通过并发布目录编报：发布前再次核对数据源，有错误则不发布（CATALOG_NONCONFORMING）"
    )
    async def approve_catalog_submission(
        self, info: strawberry.Info, id: strawberry.ID, reason: str
    ) -> CatalogSubmission:
        return _submission(await resolve.approve(info.context, str(id), reason), info.context.lang)

    @strawberry.mutation(description="共享主管部门退回目录编报，须说明理由")
    async def return_catalog_submission(
        self, info: strawberry.Info, id: strawberry.ID, reason: str
    ) -> CatalogSubmission:
        return _submission(await resolve.return_(info.context, str(id), reason), info.context.lang)

    @strawberry.mutation(
        description="提供部门（或共享主管部门）撤销已发布的资源，须说明理由；资源保留为已撤销，其共享授权随之停止。返回新的目录版本号"
    )
    async def retire_resource(self, info: strawberry.Info, resource: str, reason: str) -> int:
        return await resolve.retire(info.context, resource, reason)


async def resolve_submissions(info: strawberry.Info, status: str | None = None) -> list[CatalogSubmission]:
    ctx = info.context
    return [_submission(s, ctx.lang) for s in await resolve.submissions(ctx, status)]


async def resolve_history(info: strawberry.Info, resource: str | None = None) -> list[CatalogVersionInfo]:
    return [
        CatalogVersionInfo(
            version=v.version,
            at=v.at,
            by=v.by,
            change=v.change,
            department=v.department,
            reason=v.reason,
            submission_id=v.submission_id,
        )
        for v in await resolve.history(info.context, resource)
    ]


async def resolve_diff(info: strawberry.Info, before: int, after: int) -> list[CatalogFieldChange]:
    return [_change(c) for c in await resolve.diff(info.context, before, after)]


QUERY_FIELDS = {
    "catalog_submissions": strawberry.field(
        resolver=resolve_submissions,
        description="本部门的目录编报及其数据源核对结果（共享主管部门可见全部部门的编报）",
    ),
    "catalog_history": strawberry.field(
        resolver=resolve_history,
        description="目录的版本：时间、操作人、变更类型、部门、理由（可只看某个资源变更过的版本）",
    ),
    "catalog_diff": strawberry.field(resolver=resolve_diff, description="逐字段比较目录的两个版本"),
}
