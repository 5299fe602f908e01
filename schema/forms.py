"""The form search as GraphQL (Art 19 ¶2, "don't ask the citizen again"): ``formFields(labels:, purpose:)``."""

from __future__ import annotations

import strawberry

from resolvers import forms

SHARE_TYPE_NAMES = {"unconditional": "无条件共享", "conditional": "有条件共享", "not_shared": "不予共享"}


@strawberry.type(description="在一个用途下，按资源主键查询时对该信息项的决定（与查询本身的决定相同，不读取数据）")
class FormPurposeDecision:
    purpose: str = strawberry.field(description="用途（履职事项编码）")
    readable: bool = strawberry.field(description="现在按该用途、以资源主键查询能否得到该信息项")
    code: str = strawberry.field(
        description="对信息项的决定代码：允许（GRANT、UNCONDITIONAL、LEGAL_BASIS…）或拒绝（NO_GRANT、NOT_SHARED…）"
    )
    mask: str | None = strawberry.field(description="授权要求的脱敏方式（如 id_number）")
    row_scoped: bool = strawberry.field(description="仅限授权的行范围")
    lookup_code: str | None = strawberry.field(
        description="信息项虽允许、但按主键查询被拒绝的原因（主键的决定代码，或 MASKED）"
    )


@strawberry.type(description="提供某表单字段的一个目录信息项")
class FormFieldSource:
    resource: str = strawberry.field(description="资源编码")
    resource_name: str = strawberry.field(description="资源名称")
    provider: str = strawberry.field(description="提供部门编码")
    provider_name: str = strawberry.field(description="提供部门名称")
    item: str = strawberry.field(description="信息项（GraphQL 字段名）")
    label: str = strawberry.field(description="信息项中文名称")
    lookup_key: str = strawberry.field(description="资源主键（按它查询，如 idNumber）")
    match: str = strawberry.field(
        description="匹配方式：label（名称相同）、synonym（同义词）、partial（互相包含，如 姓名/男方姓名，使用前请核对）"
    )
    matched_text: str = strawberry.field(description="匹配到的目录名称或同义词")
    share_type: str = strawberry.field(description="共享类型：unconditional、conditional、not_shared")
    readable_now: bool = strawberry.field(description="现在至少在一个用途下可以取得")
    decisions: list[FormPurposeDecision] = strawberry.field(description="各用途下的决定")


@strawberry.type(description="一个表单字段的检索结果")
class FormField:
    label: str = strawberry.field(description="表单字段名称（原样）")
    synonyms: list[str] = strawberry.field(description="一并检索的同义词")
    sources: list[FormFieldSource] = strawberry.field(description="提供该字段的目录信息项，最相符的在前")
    providers: list[str] = strawberry.field(description="按名称或同义词提供该字段的部门")
    several_providers: bool = strawberry.field(description="由不止一个部门提供（一数一源：应由目录确定唯一的采集来源）")


@strawberry.type(description="需要提出的共享申请")
class FormApplication:
    resource: str = strawberry.field(description="资源编码")
    resource_name: str = strawberry.field(description="资源名称")
    provider: str = strawberry.field(description="提供部门编码")
    items: list[str] = strawberry.field(description="须申请的信息项（含按其查询的主键）")
    mutation: str = strawberry.field(description="申请所用的变更操作（applyForShare）")
    needs_decision: bool = strawberry.field(
        description="含不予共享类信息项：须提供部门作出决定（逾期不视为同意），不同意的可提请协调（requestCoordination）"
    )
    purposes: list[str] = strawberry.field(description="可在申请中声明的用途（本部门已登记的履职事项）")


@strawberry.type(description="申请也无法取得的信息项")
class FormBlockedItem:
    resource: str = strawberry.field(description="资源编码")
    item: str = strawberry.field(description="信息项")
    code: str = strawberry.field(
        description="原因：DEPARTMENT_RESTRICTED（本部门被限制，第二十条）或 APPLICATION_PENDING（已有申请待答复）"
    )


@strawberry.type(description="表单字段检索：哪些字段可由共享平台提供，不得再向群众和企业索取（第十九条第二款）")
class FormSearch:
    # Not "fields": production hides every schema name a message did not carry, and "fields" is a word of messages.
    answers: list[FormField] = strawberry.field(description="各字段的结果，按所给顺序")
    to_apply: list[FormApplication] = strawberry.field(description="现在取不到、须申请的信息项，按资源")
    blocked: list[FormBlockedItem] = strawberry.field(description="申请也无法取得的信息项")
    purposes: list[str] = strawberry.field(description="据以决定的用途")


def _source(source: forms.Source) -> FormFieldSource:
    return FormFieldSource(
        resource=source.resource.code,
        resource_name=source.resource.name,
        provider=source.resource.provider,
        provider_name=source.provider_name,
        item=source.item,
        label=source.label,
        lookup_key=source.resource.key,
        match=source.match.value,
        matched_text=source.matched_text,
        share_type=source.share_type.value,
        readable_now=source.readable,
        decisions=[
            FormPurposeDecision(
                purpose=d.purpose,
                readable=d.readable,
                code=d.code,
                mask=d.mask,
                row_scoped=d.row_scoped,
                lookup_code=d.lookup_code,
            )
            for d in source.decisions
        ],
    )


async def resolve_form_fields(
    info: strawberry.Info,
    labels: list[str],
    purpose: str | None = None,
) -> FormSearch:
    answer = await forms.form_fields(info.context, list(labels), purpose)
    return FormSearch(
        answers=[
            FormField(
                label=f.label,
                synonyms=list(f.synonyms),
                sources=[_source(s) for s in f.sources],
                providers=list(f.providers),
                several_providers=f.several_providers,
            )
            for f in answer.fields
        ],
        to_apply=[
            FormApplication(
                resource=a.resource.code,
                resource_name=a.resource.name,
                provider=a.resource.provider,
                items=list(a.items),
                mutation=a.mutation,
                needs_decision=a.needs_decision,
                purposes=list(a.purposes),
            )
            for a in answer.to_apply
        ],
        blocked=[FormBlockedItem(resource=b.resource, item=b.item, code=b.code) for b in answer.blocked],
        purposes=list(answer.purposes),
    )


QUERY_FIELDS = {
    "form_fields": strawberry.field(
        resolver=resolve_form_fields,
        description="表单设计：给出表单字段名称（如 姓名、身份证号、户籍地址），返回提供它们的目录信息项、"
        "现在各用途下能否取得、以及须申请的资源和信息项；不读取任何部门数据（第十九条第二款）",
    ),
}
