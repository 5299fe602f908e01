"""The admin GraphQL API at POST /admin/graphql: the console's operations for scripts, under the same staff
authorization (a staff session: Bearer token from POST /admin/session, or the console's cookie plus its
CSRF token). Department application keys are refused.

Refused changes are GraphQL errors with a stable ``extensions.code``; an invalid document also carries
``extensions.problems`` (rule, field, code, reason, and the reason again as message) for every fault found. Any
other failure is INTERNAL_ERROR, logged, without a word of its own (govshare/graphql_http.py, the handler this
endpoint shares with /graphql).
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from datetime import datetime

import strawberry
from graphql import GraphQLError
from starlette.requests import Request
from strawberry.extensions import SchemaExtension
from strawberry.scalars import JSON

from admin import operations
from admin.accounts import Staff
from admin.auth import console_language, csrf_ok, is_application_key, signed_in
from admin.runtime import AdminRuntime
from admin.runtime import runtime as runtime_of
from catalog import freshness
from govshare.errors import AuthError, GovshareError, graphql_error
from govshare.expansion import ExpansionLimit
from govshare.graphql_http import Execution, GraphQLEndpoint, Schema, simple_execution
from policies import documents
from policies.explain import describe_cover


@strawberry.type(description="允许规则：安全管理人员直接设定的共享规则。")
class PolicyRule:
    id: str
    department: str
    resource: str
    items: list[str]
    purposes: list[str]
    valid_from: datetime
    valid_until: datetime
    row_scope: JSON = strawberry.field(description="信息项 → 允许的取值")
    masks: JSON = strawberry.field(description="信息项 → 脱敏方式")
    legal_basis: str | None
    note: str

    @staticmethod
    def of(rule: documents.Rule) -> PolicyRule:
        return PolicyRule(
            id=rule.id,
            department=rule.department,
            resource=rule.resource,
            items=list(rule.items),
            purposes=list(rule.purposes),
            valid_from=rule.valid_from,
            valid_until=rule.valid_until,
            row_scope={k: list(v) for k, v in rule.row_scope.items()},
            masks=dict(rule.masks),
            legal_basis=rule.legal_basis,
            note=rule.note,
        )


@strawberry.type(description="禁止规则：限制某部门使用某资源（“*”为全部资源）。")
class DenyRule:
    id: str
    department: str
    resource: str
    reason: str
    valid_from: datetime | None
    valid_until: datetime | None
    overdue: JSON = strawberry.field(
        description="因逾期未更新而限制时（第二十条）所依据的事实：resource、update_cycle、last_change、due_by"
    )

    @staticmethod
    def of(rule: documents.DenyRule) -> DenyRule:
        return DenyRule(
            id=rule.id,
            department=rule.department,
            resource=rule.resource,
            reason=rule.reason,
            valid_from=rule.valid_from,
            valid_until=rule.valid_until,
            overdue=[dataclasses.asdict(fact) for fact in rule.overdue],
        )


@strawberry.type(description="资源的更新状态（第十六、二十条）：按更新周期与数据源最后更新时间计算。")
class ResourceFreshness:
    resource: str
    provider: str
    update_cycle: str = strawberry.field(description="更新周期")
    last_change: datetime | None = strawberry.field(description="数据源最后更新时间（平台记录的）")
    due_by: datetime | None = strawberry.field(description="应更新期限")
    overdue: bool
    state: str = strawberry.field(description="current、overdue、irregular 或 unknown")
    checked_at: datetime | None = strawberry.field(description="平台最后一次读取数据源的时间")
    error: str | None = strawberry.field(description="最后一次读取失败的原因")
    indexed: bool = strawberry.field(description="变更时间列是否有索引（max() 是否廉价）")

    @staticmethod
    def of(state: freshness.Freshness) -> ResourceFreshness:
        return ResourceFreshness(
            resource=state.resource,
            provider=state.provider,
            update_cycle=state.update_cycle,
            last_change=state.last_change,
            due_by=state.due_by,
            overdue=state.overdue,
            state=state.status,
            checked_at=state.checked_at,
            error=state.error,
            indexed=state.indexed,
        )


@strawberry.type(description="策略规则的一个版本。")
class PolicyVersion:
    version: int
    at: datetime
    author: str
    reason: str
    action: str
    restored_version: int | None
    digest: str
    _document: strawberry.Private[documents.PolicyDocument]

    @strawberry.field
    def rules(self) -> list[PolicyRule]:
        return [PolicyRule.of(r) for r in self._document.rules]

    @strawberry.field
    def deny_rules(self) -> list[DenyRule]:
        return [DenyRule.of(r) for r in self._document.deny]

    @strawberry.field(description="本版本的 TOML 导出（可用 importPolicy 或 govshare policy import 导入）。")
    def export(self) -> str:
        return documents.to_toml(self._document)

    @staticmethod
    def of(v: documents.Version) -> PolicyVersion:
        return PolicyVersion(
            version=v.version,
            at=v.at,
            author=v.author,
            reason=v.reason,
            action=v.action,
            restored_version=v.restored_version,
            digest=v.digest,
            _document=v.document,
        )


@strawberry.type
class FieldChange:
    field: str
    before: JSON | None
    after: JSON | None


@strawberry.type(description="两个版本之间一条规则的变化。")
class RuleChange:
    rule: str
    kind: str
    change: str
    fields: list[FieldChange]


@strawberry.type
class PolicyDiff:
    changes: list[RuleChange]
    text: str = strawberry.field(description="统一差异格式")


@strawberry.type
class ItemExplanation:
    item: str
    label: str
    share_type: str
    allowed: bool
    reason: str
    decided_by: str | None
    mask: str | None
    contributions: list[str] = strawberry.field(
        description="参与决定的每项授权及其范围和脱敏（G-1: countyCode ∈ 371311 · keep:6,4）"
    )
    message: str


@strawberry.type
class Explanation:
    department: str
    purpose: str
    resource: str
    at: datetime
    policy_version: int
    refused: str | None
    refused_message: str | None
    items: list[ItemExplanation]
    row_scope: JSON


@strawberry.type
class GrantInForce:
    id: str
    kind: str
    department: str
    resource: str
    items: list[str]
    purposes: list[str]
    valid_from: datetime
    valid_until: datetime
    source: str
    row_scope: JSON
    masks: JSON


@strawberry.type
class PolicyChange:
    version: int | None = strawberry.field(description="新版本号；与现行规则相同时为空（未产生新版本）")
    rule_id: str | None = None


@strawberry.input
class RuleInput:
    id: str | None = strawberry.field(default=None, description="修改时填写；新增时留空，自动编号")
    department: str
    resource: str
    items: list[str]
    purposes: list[str]
    valid_from: datetime
    valid_until: datetime
    row_scope: JSON | None = None
    masks: JSON | None = None
    legal_basis: str | None = None
    note: str | None = None


@strawberry.input
class DenyRuleInput:
    id: str | None = None
    department: str
    resource: str = "*"
    reason: str
    valid_from: datetime | None = None
    valid_until: datetime | None = None


@dataclass(frozen=True)
class AdminContext:
    """What an admin API operation runs with: the runtime, the signed-in staff member, the message language."""

    runtime: AdminRuntime
    staff: Staff
    lang: str


def _refused(info, exc: GovshareError) -> GraphQLError:
    return graphql_error(exc, info.context.lang)


def _entry(value) -> dict:
    data = {k: v for k, v in vars(value).items() if v is not None}
    for name in ("valid_from", "valid_until"):
        if name in data:
            data[name] = data[name].isoformat()
    return data


@strawberry.type(description="为应用登记的可信文档（policies/trusted.py）。")
class TrustedDocument:
    id: str = strawberry.field(description="sha256:<文本 UTF-8 编码的 SHA-256>")
    name: str
    operations: list[str] = strawberry.field(description="所含操作的名称（匿名操作为空串）")
    registered_at: datetime | None = None
    registered_by: str | None = None
    new: bool | None = strawberry.field(default=None, description="登记时：此前是否未登记")


@strawberry.input(description="一份待登记的 GraphQL 文档：名称（如文件名）与原文。")
class TrustedDocumentInput:
    name: str
    text: str


@strawberry.type
class Query:
    @strawberry.field(description="密钥所在应用登记的可信文档。")
    async def trusted_documents(self, info: strawberry.Info, key_id: str) -> list[TrustedDocument]:
        _, registered = await _run(info, operations.trusted_documents(info.context.runtime, key_id))
        return [
            TrustedDocument(
                id=d.id,
                name=d.name,
                operations=list(d.operations),
                registered_at=d.registered_at,
                registered_by=d.registered_by,
            )
            for d in registered
        ]

    @strawberry.field(description="现行（或指定版本的）策略规则。")
    async def policy(self, info: strawberry.Info, version: int | None = None) -> PolicyVersion | None:
        runtime = info.context.runtime
        try:
            if version is None:
                history = await operations.history(runtime)
                return PolicyVersion.of(history[0]) if history else None
            return PolicyVersion.of(await operations.version(runtime, version))
        except GovshareError as exc:
            raise _refused(info, exc) from None

    @strawberry.field(description="允许规则，可按部门、资源、用途筛选。")
    async def rules(
        self, info: strawberry.Info, department: str = "", resource: str = "", purpose: str = ""
    ) -> list[PolicyRule]:
        _, document = await operations.document_in_force(info.context.runtime)
        return [
            PolicyRule.of(r)
            for r in document.rules
            if operations.matches(r, department=department, resource=resource, purpose=purpose)
        ]

    @strawberry.field(description="禁止规则，可按部门、资源筛选。")
    async def deny_rules(self, info: strawberry.Info, department: str = "", resource: str = "") -> list[DenyRule]:
        _, document = await operations.document_in_force(info.context.runtime)
        return [
            DenyRule.of(r) for r in document.deny if operations.matches(r, department=department, resource=resource)
        ]

    @strawberry.field(
        description="资源的更新状态（默认只列逾期未更新的；department：只列该提供部门的）。取自平台记录，不查询数据源。"
    )
    async def freshness(
        self, info: strawberry.Info, department: str = "", overdue_only: bool = True
    ) -> list[ResourceFreshness]:
        states = await _run(info, operations.freshness_states(info.context.runtime, provider=department))
        return [ResourceFreshness.of(s) for s in states if s.overdue or not overdue_only]

    @strawberry.field(description="当前生效的授权（共享申请、法定共享、直接授权与允许规则）。")
    async def grants_in_force(
        self, info: strawberry.Info, department: str = "", resource: str = "", purpose: str = ""
    ) -> list[GrantInForce]:
        found = await operations.grants_in_force(
            info.context.runtime, department=department, resource=resource, purpose=purpose
        )
        return [
            GrantInForce(
                id=g.id,
                kind=str(g.kind),
                department=g.consumer,
                resource=g.resource,
                items=list(g.items),
                purposes=list(g.purposes),
                valid_from=g.valid_from,
                valid_until=g.valid_until,
                source=f.source,
                row_scope={k: list(v) for k, v in g.row_scope.items()},
                masks=dict(g.masks),
            )
            for f in found
            for g in [f.grant]
        ]

    @strawberry.field(description="策略规则的全部版本，新的在前。")
    async def policy_history(self, info: strawberry.Info) -> list[PolicyVersion]:
        return [PolicyVersion.of(v) for v in await operations.history(info.context.runtime)]

    @strawberry.field(description="两个版本之间的差异。")
    async def policy_diff(self, info: strawberry.Info, from_version: int, to_version: int) -> PolicyDiff:
        runtime = info.context.runtime
        try:
            a, b = await operations.version(runtime, from_version), await operations.version(runtime, to_version)
        except GovshareError as exc:
            raise _refused(info, exc) from None
        changes = [
            RuleChange(
                rule=c.rule,
                kind=c.kind,
                change=c.change,
                fields=[FieldChange(field=k, before=v[0], after=v[1]) for k, v in c.fields.items()],
            )
            for c in documents.diff(a.document, b.document)
        ]
        return PolicyDiff(
            changes=changes, text=documents.text_diff(a.document, b.document, f"v{from_version}", f"v{to_version}")
        )

    @strawberry.field(description="逐项解释某部门以某用途查询某资源时的决定（与查询服务同一决策代码）。")
    async def explain(
        self, info: strawberry.Info, department: str, purpose: str, resource: str, at: datetime | None = None
    ) -> Explanation:
        if at is not None and at.tzinfo is None:
            raise _refused(info, GovshareError("POLICY_TIME_NO_OFFSET", value=at.isoformat()))
        result = await operations.explain_access(
            info.context.runtime, department, purpose, resource, at, info.context.lang
        )
        return Explanation(
            department=result.department,
            purpose=result.purpose,
            resource=result.resource,
            at=result.at,
            policy_version=result.policy_version,
            refused=result.refused,
            refused_message=result.refused_message,
            items=[
                ItemExplanation(
                    item=i.item,
                    label=i.label,
                    share_type=i.share_type,
                    allowed=i.allowed,
                    reason=i.reason,
                    decided_by=i.ref,
                    mask=i.mask,
                    message=i.message,
                    contributions=[describe_cover(c) for c in i.covers],
                )
                for i in result.items
            ],
            row_scope={k: list(v) for k, v in result.row_scope.items()},
        )

    @strawberry.field(description="校验一份 TOML 策略规则（不保存）：返回发现的问题，无问题时为空列表。")
    async def validate_policy(self, info: strawberry.Info, document: str) -> list[JSON]:
        try:
            await operations.validate_document(info.context.runtime, document)
        except documents.PolicyInvalid as exc:
            return exc.entries(info.context.lang)
        return []


async def _run(info, operation):
    try:
        return await operation
    except GovshareError as exc:
        raise _refused(info, exc) from None


@strawberry.type
class Mutation:
    @strawberry.mutation(description="新增（不填 id）或修改（填 id）一条允许规则；须说明理由。")
    async def put_rule(
        self, info: strawberry.Info, rule: RuleInput, reason: str, based_on: int | None = None
    ) -> PolicyChange:
        ctx = info.context
        rule_id, version = await _run(
            info, operations.put_rule(ctx.runtime, ctx.staff, _entry(rule), reason=reason, based_on=based_on)
        )
        return PolicyChange(version=version, rule_id=rule_id)

    @strawberry.mutation(description="新增或修改一条禁止规则；须说明理由。")
    async def put_deny_rule(
        self, info: strawberry.Info, rule: DenyRuleInput, reason: str, based_on: int | None = None
    ) -> PolicyChange:
        ctx = info.context
        rule_id, version = await _run(
            info, operations.put_deny(ctx.runtime, ctx.staff, _entry(rule), reason=reason, based_on=based_on)
        )
        return PolicyChange(version=version, rule_id=rule_id)

    @strawberry.mutation(
        description="因部门未按更新周期更新其资源（第二十条）限制其使用全部资源：一条附逾期事实的禁止规则；"
        "该部门没有逾期资源时拒绝（DEPARTMENT_NOT_OVERDUE）。以 removeRule 解除。须说明理由。"
    )
    async def restrict_lagging_department(
        self, info: strawberry.Info, department: str, reason: str, based_on: int | None = None
    ) -> PolicyChange:
        ctx = info.context
        rule_id, version, _ = await _run(
            info, operations.restrict_lagging(ctx.runtime, ctx.staff, department, reason=reason, based_on=based_on)
        )
        return PolicyChange(version=version, rule_id=rule_id)

    @strawberry.mutation(description="删除一条允许规则或禁止规则；须说明理由。")
    async def remove_rule(
        self, info: strawberry.Info, id: str, reason: str, based_on: int | None = None
    ) -> PolicyChange:
        ctx = info.context
        version = await _run(info, operations.remove_rule(ctx.runtime, ctx.staff, id, reason=reason, based_on=based_on))
        return PolicyChange(version=version, rule_id=id)

    @strawberry.mutation(description="以 TOML 文档整体替换现行策略规则（与 govshare policy import 相同）；须说明理由。")
    async def import_policy(
        self, info: strawberry.Info, document: str, reason: str, based_on: int | None = None
    ) -> PolicyChange:
        ctx = info.context
        version = await _run(
            info, operations.import_document(ctx.runtime, ctx.staff, document, reason=reason, based_on=based_on)
        )
        return PolicyChange(version=version)

    @strawberry.mutation(description="回滚到早先版本（作为新版本保存）；须说明理由。")
    async def rollback_policy(
        self, info: strawberry.Info, version: int, reason: str, based_on: int | None = None
    ) -> PolicyChange:
        ctx = info.context
        saved = await _run(info, operations.rollback(ctx.runtime, ctx.staff, version, reason=reason, based_on=based_on))
        return PolicyChange(version=saved)

    @strawberry.mutation(
        description="为密钥所在的应用登记可信文档（与 govshare key documents add 相同）：先按现行模式校验，有一份无效则一份也不登记。"
    )
    async def register_trusted_documents(
        self, info: strawberry.Info, key_id: str, documents: list[TrustedDocumentInput], reason: str | None = None
    ) -> list[TrustedDocument]:
        ctx = info.context
        texts = [(d.name, d.text) for d in documents]
        done = await _run(
            info,
            operations.register_documents(
                ctx.runtime, ctx.staff, key_id, texts, check=ctx.runtime.check_document, reason=reason
            ),
        )
        return [TrustedDocument(id=r.id, name=r.name, operations=list(r.operations), new=r.new) for r in done]

    @strawberry.mutation(description="撤回已登记的可信文档（按编号）；须说明理由。")
    async def withdraw_trusted_document(
        self, info: strawberry.Info, key_id: str, document_id: str, reason: str
    ) -> bool:
        ctx = info.context
        await _run(info, operations.withdraw_document(ctx.runtime, ctx.staff, key_id, document_id, reason=reason))
        return True

    @strawberry.mutation(description="限制密钥只能发送已登记的文档（only: false 解除）；返回是否有改动。")
    async def restrict_key_to_trusted_documents(
        self, info: strawberry.Info, key_id: str, only: bool, reason: str | None = None
    ) -> bool:
        ctx = info.context
        return await _run(info, operations.restrict_key(ctx.runtime, ctx.staff, key_id, only=only, reason=reason))


class TokenLimit(SchemaExtension):
    """The query service's max_tokens, read from the settings in force (this schema exists before any are read)."""

    def on_operation(self):
        context = self.execution_context
        context.parse_options["max_tokens"] = context.context.runtime.settings.max_tokens
        yield


# The same bounds on the document as the query service's: tokens while parsing, then the expanded size before
# validation (govshare/expansion.py).
schema = Schema(
    query=Query,
    mutation=Mutation,
    extensions=[TokenLimit, lambda: ExpansionLimit(lambda ctx: (ctx.runtime.settings.max_expanded_fields, ctx.lang))],
)


class AdminEndpoint(GraphQLEndpoint):
    """POST /admin/graphql: a staff session (a Bearer token, or the console's cookie with its CSRF token), never a
    department application key. GET is refused (405 METHOD_NOT_ALLOWED): scripts POST, and a GET would carry the
    console's cookie from any page."""

    allows_get = False

    def language(self, request: Request) -> str:
        return console_language(request, runtime_of(request).settings.language)

    async def authenticate(self, request: Request, lang: str) -> Staff:
        signed = await signed_in(request)
        if signed is None:
            key = await is_application_key(request)
            raise AuthError("APPLICATION_KEY_NOT_STAFF" if key else "STAFF_UNAUTHENTICATED")
        if not csrf_ok(request, signed, None):
            raise GovshareError("CSRF_FAILED", http_status=403)
        if signed.staff.department:  # a department's catalog staff: the console's catalog page only
            raise GovshareError("STAFF_OFFICE_ONLY", http_status=403, department=signed.staff.department)
        return signed.staff

    def execution(
        self, request: Request, principal: Staff, lang: str, request_id: str
    ) -> contextlib.AbstractAsyncContextManager[Execution]:
        return simple_execution(schema, AdminContext(runtime_of(request), principal, lang))
