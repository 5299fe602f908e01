"""Who looked at my data: ``subjectAccesses``, for service halls (keys with the role ``subject_service``)."""

import datetime
from typing import Annotated

import strawberry

from govshare.errors import GovshareError, graphql_error
from resolvers import subjects


@strawberry.type(description="一次涉及该数据主体的数据访问")
class SubjectAccess:
    at: datetime.datetime = strawberry.field(description="访问时间")
    department: str = strawberry.field(description="使用部门代码")
    department_name: str | None = strawberry.field(description="使用部门名称")
    application: str = strawberry.field(description="使用部门的应用")
    operator: str | None = strawberry.field(description="经办人")
    purpose: str | None = strawberry.field(description="用途（履职事项代码）")
    purpose_name: str | None = strawberry.field(description="履职事项名称")
    resource: str = strawberry.field(description="访问的资源（目录标识）")
    resource_name: str | None = strawberry.field(description="资源名称")
    operation: str = strawberry.field(
        description="访问方式：lookup（按主键查询）、list（列表）、link（关联）、entity（Apollo Federation 的 _entities）、"
        "report（数据纠错报告）或 subject（本查询：查询该主体的访问记录）"
    )
    grants_used: list[str] = strawberry.field(description="依据的共享授权或申请")
    items_returned: list[str] = strawberry.field(description="返回的信息项")
    items_masked: list[str] = strawberry.field(description="脱敏返回的信息项")
    subject_items: list[str] = strawberry.field(
        description="以哪些信息项涉及该主体（记录本身的主键，或记录中另一主体的证件号码，如法定代表人的身份证号）"
    )
    outcome: str = strawberry.field(description="allowed（允许）或 partial（部分信息项被拒绝）")


@strawberry.type(description="一页访问记录，最新的在前")
class SubjectAccessPage:
    items: list[SubjectAccess] = strawberry.field(description="访问记录")
    has_next_page: bool = strawberry.field(description="是否还有下一页")
    end_cursor: str | None = strawberry.field(description="下一页的 after 参数")


async def resolve_subject_accesses(
    info: strawberry.Info,
    id_number: Annotated[
        str | None, strawberry.argument(description="自然人的公民身份号码（18 位，校验码须正确）")
    ] = None,
    credit_code: Annotated[
        str | None, strawberry.argument(description="法人的统一社会信用代码（18 位，校验码须正确）")
    ] = None,
    first: Annotated[int, strawberry.argument(description="每页条数")] = 20,
    after: Annotated[str | None, strawberry.argument(description="上一页的 endCursor")] = None,
) -> SubjectAccessPage:
    ctx = info.context
    try:
        found = await subjects.accesses(ctx, id_number=id_number, credit_code=credit_code, first=first, after=after)
    except GovshareError as refused:
        raise graphql_error(refused, ctx.lang) from None
    catalog = ctx.catalog
    page = []
    for access in found.accesses:
        r = access.row
        department = catalog.departments.get(r.department)
        resource = catalog.resources.get(r.resource)
        purpose = catalog.purpose_for(r.department, r.purpose) if r.purpose else None
        page.append(
            SubjectAccess(
                at=r.at,
                department=r.department,
                department_name=department.name if department is not None else None,
                application=r.application,
                operator=r.operator,
                purpose=r.purpose,
                purpose_name=purpose.name if purpose is not None else None,
                resource=r.resource,
                resource_name=resource.name if resource is not None else None,
                operation=r.operation,
                grants_used=list(r.grants_used),
                items_returned=list(r.items_returned),
                items_masked=list(r.items_masked),
                subject_items=list(access.items),
                outcome=r.outcome,
            )
        )
    return SubjectAccessPage(items=page, has_next_page=found.has_next_page, end_cursor=found.end_cursor)


QUERY_FIELDS = {
    "subject_accesses": strawberry.field(
        resolver=resolve_subject_accesses,
        description="谁查看了我的数据：按公民身份号码（idNumber）或统一社会信用代码（creditCode，二者给且只给一个）列出"
        "涉及该自然人或法人的全部数据访问（时间、部门、应用、经办人、用途、授权、信息项、访问方式），供政务服务大厅答复"
        "群众和企业；仅限具有 subject_service 角色的密钥，须提供经办人（X-Operator），每次查询本身也记入访问记录。",
    ),
}
