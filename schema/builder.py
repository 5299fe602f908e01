"""Builds the strawberry schema from the published catalog; rebuilt whenever the catalog changes.

For a resource with ``api_name = "person"``: a type ``Person`` (one nullable field per data item, its
Chinese label as description), a lookup ``person(<key>: ...)``, and a list
``personList(filter: PersonFilter, first: Int, after: String): PersonPage`` filtering on the items the
catalog marks filterable. Every data item is nullable: a denied item is null, with its own error.
"""

import dataclasses
import datetime
from typing import Annotated, Optional

import strawberry
import strawberry.federation
from graphql import GraphQLError, ValidationRule
from strawberry.extensions import AddValidationRules, DisableIntrospection, MaxTokensLimiter, ParserCache
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as max_depth_rule
from strawberry.schema.config import StrawberryConfig

from catalog.model import CYCLE_LABELS, Catalog, Link, Resource, ShareType
from govshare.config import Settings
from govshare.expansion import ExpansionBound, ExpansionLimit
from govshare.graphql_http import Schema as QuietSchema
from govshare.logs import logger
from resolvers import data, links
from resolvers.context import RequestContext
from resolvers.data import HIDDEN
from schema.applications import QUERY_FIELDS
from schema.applications import Mutation as ApplicationMutation
from schema.catalog import QUERY_FIELDS as CATALOG_FIELDS
from schema.catalog import CatalogMutation
from schema.corrections import QUERY_FIELDS as CORRECTION_FIELDS
from schema.corrections import Mutation as CorrectionMutation
from schema.execution import field_value
from schema.federation import FEDERATION_VERSION, entities_resolver, service_field
from schema.forms import QUERY_FIELDS as FORM_FIELDS
from schema.freshness import QUERY_FIELDS as FRESHNESS_FIELDS
from schema.plans import PlanExecutor
from schema.selection import field_names, merged_selections, response_keys, sub_selections
from schema.usage import QUERY_FIELDS as USAGE_FIELDS
from schema.views import DepartmentView, SchemaViews

log = logger(__name__)  # govshare.<module>: one logging configuration covers it

PY_TYPES = {"string": str, "integer": int, "decimal": float, "date": datetime.date, "boolean": bool}
SHARE_TYPE_LABELS = {
    ShareType.UNCONDITIONAL: "无条件共享",
    ShareType.CONDITIONAL: "有条件共享",
    ShareType.NOT_SHARED: "不予共享",
}


@strawberry.type(description="分页信息")
class PageInfo:
    has_next_page: bool = strawberry.field(description="是否还有下一页")
    end_cursor: Optional[str] = strawberry.field(description="下一页的游标，传给 after 参数")


@strawberry.input(description="文本信息项的筛选条件")
class StringFilter:
    eq: Optional[str] = strawberry.field(default=None, description="等于")
    in_: Optional[list[str]] = strawberry.field(default=None, name="in", description="属于其中之一")


@strawberry.input(description="整数信息项的筛选条件")
class IntFilter:
    eq: Optional[int] = strawberry.field(default=None, description="等于")
    in_: Optional[list[int]] = strawberry.field(default=None, name="in", description="属于其中之一")
    gte: Optional[int] = strawberry.field(default=None, description="大于或等于")
    lte: Optional[int] = strawberry.field(default=None, description="小于或等于")


@strawberry.input(description="数值信息项的筛选条件")
class FloatFilter:
    eq: Optional[float] = strawberry.field(default=None, description="等于")
    gte: Optional[float] = strawberry.field(default=None, description="大于或等于")
    lte: Optional[float] = strawberry.field(default=None, description="小于或等于")


@strawberry.input(description="日期信息项的筛选条件")
class DateFilter:
    eq: Optional[datetime.date] = strawberry.field(default=None, description="等于")
    gte: Optional[datetime.date] = strawberry.field(default=None, description="不早于")
    lte: Optional[datetime.date] = strawberry.field(default=None, description="不晚于")


@strawberry.input(description="布尔信息项的筛选条件")
class BooleanFilter:
    eq: Optional[bool] = strawberry.field(default=None, description="等于")


FILTER_TYPES = {
    "string": StringFilter,
    "integer": IntFilter,
    "decimal": FloatFilter,
    "date": DateFilter,
    "boolean": BooleanFilter,
}


@strawberry.type(description="已登记的履职事项（查询用途）")
class PurposeInfo:
    code: str = strawberry.field(description="用途编码，在 X-Purpose 头中声明")
    name: str = strawberry.field(description="履职事项名称")


@strawberry.type(description="当前调用方")
class CallerInfo:
    department: str = strawberry.field(description="部门编码")
    department_name: str = strawberry.field(description="部门名称")
    application: str = strawberry.field(description="应用名称")
    purposes: list[PurposeInfo] = strawberry.field(description="本部门已登记的履职事项")


def _resource_description(resource: Resource, catalog: Catalog) -> str:
    provider = catalog.departments[resource.provider].name
    parts = [
        f"{resource.name}（{resource.code}）",
        f"提供部门：{provider}",
        f"共享类型：{SHARE_TYPE_LABELS[resource.share_type]}",
    ]
    if resource.related_departments:
        parts.append(
            "仅在相关部门间共享：" + "、".join(catalog.departments[d].name for d in resource.related_departments)
        )
    parts.append(f"更新周期：{CYCLE_LABELS.get(resource.update_cycle, resource.update_cycle)}")
    if resource.abstract:
        parts.append(resource.abstract)
    return "\n".join(parts)


def _item_description(resource: Resource, item) -> str:
    if item.share_type and item.share_type != resource.share_type:
        return f"{item.label}（{SHARE_TYPE_LABELS[item.share_type]}）"
    return item.label


def _plain_class(resource: Resource):
    """The resource's class before strawberry sees it, so that link fields can refer to any other type."""
    namespace: dict = {"__annotations__": {}}
    for item in resource.items:
        namespace["__annotations__"][item.name] = Optional[PY_TYPES[item.type]]
        namespace[item.name] = strawberry.field(
            default=None, description=_item_description(resource, item), name=item.name
        )
    return type(resource.type_name, (), namespace)


def _hidden(row: dict) -> dict[str, object]:
    """The link keys a row carries under HIDDEN-prefixed keys (no GraphQL name can reach them)."""
    return {k[len(HIDDEN) :]: v for k, v in row.items() if k.startswith(HIDDEN)}


def _response_path(path) -> tuple:
    """The field's path of response keys without its list indices: one link occurrence of the operation, whatever
    the row (its errors are anchored at a row by the handler, govshare.graphql_http.anchor)."""
    keys = []
    while path is not None:
        if isinstance(path.key, str):
            keys.append(path.key)
        path = path.prev
    return tuple(reversed(keys))


def _selection(resource: Resource, selections) -> tuple[list[str], list[str], dict[str, str]]:
    """(data items selected, items that the selected links need, the response keys of aliased items) under a field
    of ``resource``'s type."""
    names = field_names(selections)
    items = [n for n in names if resource.item(n) is not None]
    link_items = list(dict.fromkeys(link.item for link in resource.links if link.name in names))
    return items, link_items, response_keys(selections)


def _link_field(resource: Resource, link: Link, target: Resource, target_type):
    async def resolve(root, info: strawberry.Info):
        ctx: RequestContext = info.context
        selected, link_items, keys = _selection(target, merged_selections(info))
        return await links.follow(
            ctx, resource, link, _hidden(root), selected, link_items, _response_path(info.path), keys
        )

    resolve.__annotations__["return"] = Optional[list[target_type]] if link.many else Optional[target_type]
    return strawberry.field(resolver=resolve, name=link.name, description=f"{link.label}（关联：{link.target}）")


def _filter_type(resource: Resource):
    filterable = [i for i in resource.items if i.filterable]
    if not filterable:
        return None
    namespace: dict = {"__annotations__": {}}
    for item in filterable:
        namespace["__annotations__"][item.name] = Optional[FILTER_TYPES[item.type]]
        namespace[item.name] = strawberry.field(default=None, description=item.label, name=item.name)
    name = f"{resource.type_name}Filter"
    return strawberry.input(type(name, (), namespace), name=name, description=f"{resource.name}的筛选条件")


def _page_type(resource: Resource, object_type):
    namespace = {
        "__annotations__": {"items": list[object_type], "page_info": PageInfo},
        "items": strawberry.field(description="本页记录"),
        "page_info": strawberry.field(description="分页信息"),
    }
    name = f"{resource.type_name}Page"
    return strawberry.type(type(name, (), namespace), name=name, description=f"{resource.name}（分页）")


def _filters(filter_value) -> list[data.Filter]:
    filters = []
    if filter_value is None:
        return filters
    for field in dataclasses.fields(filter_value):
        condition = getattr(filter_value, field.name)
        if condition is None:
            continue
        for op_field in dataclasses.fields(condition):
            value = getattr(condition, op_field.name)
            if value is not None:
                filters.append(data.Filter(field.name, op_field.name.rstrip("_"), value))
    return filters


def _lookup_field(resource: Resource, object_type):
    key_item = resource.item(resource.key)
    key_type = PY_TYPES[key_item.type]

    async def resolve(
        info: strawberry.Info,
        key: Annotated[key_type, strawberry.argument(name=key_item.name, description=key_item.label)],
    ) -> Optional[object_type]:
        ctx: RequestContext = info.context
        selected, link_items, keys = _selection(resource, merged_selections(info))
        row = await data.lookup(ctx, resource, key, selected, [info.path.key], link_items, keys)
        return row

    return strawberry.field(
        resolver=resolve, name=resource.api_name, description=f"按{key_item.label}查询{resource.name}"
    )


def _list_field(resource: Resource, object_type, page_type, filter_type):

    async def resolve(
        info: strawberry.Info,
        filter: Annotated[Optional[filter_type], strawberry.argument(description="筛选条件")] = None,
        first: Annotated[Optional[int], strawberry.argument(description="每页条数")] = None,
        after: Annotated[Optional[str], strawberry.argument(description="从该游标之后开始")] = None,
    ) -> Optional[page_type]:
        ctx: RequestContext = info.context
        page_selections = merged_selections(info)
        selected, link_items, keys = _selection(resource, sub_selections(page_selections, "items"))
        page = await data.list_rows(
            ctx,
            resource,
            _filters(filter),
            first,
            after,
            selected,
            [info.path.key],
            link_items,
            keys,
            items_key=response_keys(page_selections).get("items", "items"),
        )
        if page is None:
            return None
        return page_type(
            items=page.rows, page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor)
        )

    if filter_type is None:

        async def resolve_unfiltered(
            info: strawberry.Info,
            first: Annotated[Optional[int], strawberry.argument(description="每页条数")] = None,
            after: Annotated[Optional[str], strawberry.argument(description="从该游标之后开始")] = None,
        ) -> Optional[page_type]:
            return await resolve(info, None, first, after)

        return strawberry.field(
            resolver=resolve_unfiltered, name=f"{resource.api_name}List", description=f"分页列出{resource.name}"
        )
    return strawberry.field(resolver=resolve, name=f"{resource.api_name}List", description=f"分页列出{resource.name}")


def _caller_field():
    def resolve(info: strawberry.Info) -> CallerInfo:
        ctx: RequestContext = info.context
        department = ctx.caller.department
        return CallerInfo(
            department=department,
            department_name=ctx.catalog.departments[department].name if department in ctx.catalog.departments else "",
            application=ctx.caller.application,
            purposes=[
                PurposeInfo(code=p.code, name=p.name)
                for p in ctx.catalog.purposes.values()
                if p.department == department
            ],
        )

    return strawberry.field(resolver=resolve, description="当前应用密钥所属部门、应用及其可声明的用途")


def _max_root_fields_rule(limit: int) -> type[ValidationRule]:
    """A validation rule refusing operations with more than ``limit`` root fields (one class per schema, so
    strawberry's validation cache keeps working)."""

    class MaxRootFields(ValidationRule):
        def enter_operation_definition(self, node, *_args):
            count = len(node.selection_set.selections)
            if count > limit:
                self.report_error(
                    GraphQLError(
                        f"{count} root fields; at most {limit} in one operation",
                        node,
                        extensions={"code": "TOO_MANY_ROOT_FIELDS"},
                    )
                )

    return MaxRootFields


class Schema(QuietSchema, strawberry.federation.Schema):
    """The query schema, an Apollo Federation v2 subgraph (schema.federation); its unexpected errors are masked and
    logged by the handler (govshare.graphql_http)."""

    views: SchemaViews | None = None  # in production: what each department sees of it (schema.views)

    def __init__(self, *args, entities, **kwargs) -> None:
        # strawberry's federation schema makes `_entities` of ``self.entities_resolver``: ours decides every
        # representation on the data path (schema.federation), never strawberry's, which builds objects from them.
        self.entities_resolver = entities
        self._sdl: str | None = None
        super().__init__(*args, **kwargs)

    def federation_sdl(self) -> str:
        """The whole subgraph SDL (every published resource), with @link and @key: what a supergraph is composed of."""
        if self._sdl is None:
            from strawberry.printer import print_schema

            self._sdl = print_schema(self)
        return self._sdl


@strawberry.type(name="Mutation", description="共享申请与授权的办理；部门目录的编报与审核；数据校核纠错")
class Mutation(ApplicationMutation, CatalogMutation, CorrectionMutation):
    pass


def build_schema(catalog: Catalog, settings: Settings, *, extensions: list = ()) -> Schema:
    fields: dict = {
        "caller": _caller_field(),
        "service": service_field(),
        **QUERY_FIELDS,
        **USAGE_FIELDS,
        **FORM_FIELDS,
        **FRESHNESS_FIELDS,
        **CATALOG_FIELDS,
        **CORRECTION_FIELDS,
    }
    published = {r.code: r for r in sorted(catalog.published(), key=lambda r: r.api_name)}
    classes = {code: _plain_class(r) for code, r in published.items()}
    for code, resource in published.items():
        for link in resource.links:
            if link.target in published:  # a link to an unpublished resource is left out of the schema
                setattr(
                    classes[code], link.name, _link_field(resource, link, published[link.target], classes[link.target])
                )
    # Each resource type is a federation entity by its catalog key (the lookup's key): `@key(fields: "idNumber")`.
    object_types = {
        code: strawberry.federation.type(
            classes[code], name=r.type_name, description=_resource_description(r, catalog), keys=[r.key]
        )
        for code, r in published.items()
    }
    for code, resource in published.items():
        object_type = object_types[code]
        fields[resource.api_name] = _lookup_field(resource, object_type)
        fields[f"{resource.api_name}List"] = _list_field(
            resource, object_type, _page_type(resource, object_type), _filter_type(resource)
        )
    query = strawberry.type(type("Query", (), fields), name="Query", description="临沂市政务信息资源共享：联机查询")
    # The limits' rule classes are made once per schema, so that the validation cache (keyed by the document
    # and the rule classes) answers a repeated query without validating it again.
    limits = [
        max_depth_rule(settings.max_query_depth, None),
        max_aliases_rule(settings.max_aliases),
        _max_root_fields_rule(settings.max_root_fields),
    ]
    # In production a document is validated against the caller's department view, and says nothing the caller
    # did not send (schema.views); in development against the whole schema, with graphql-core's suggestions.
    # Either way the expanded size is bounded first (max_expanded_fields), before any rule walks the document.
    expansion = lambda ctx: (settings.max_expanded_fields, ctx.lang)  # noqa: E731
    validation = (
        [lambda: ExpansionBound(expansion), lambda: DepartmentView(schema.views)]
        if settings.production
        else [lambda: ExpansionLimit(expansion)]
    )
    schema = Schema(
        query=query,
        mutation=Mutation,
        extensions=[
            lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
            ParserCache,
            *([DisableIntrospection] if settings.production else []),
            lambda: AddValidationRules(limits),
            *validation,
            *extensions,
        ],
        config=StrawberryConfig(disable_field_suggestions=settings.production, default_resolver=field_value),
        execution_context_class=PlanExecutor,
        federation_version=FEDERATION_VERSION,
        entities=entities_resolver({r.type_name: (r, object_types[code]) for code, r in published.items()}),
    )
    if settings.production:
        schema.views = SchemaViews(schema._schema, catalog, limits, settings.max_root_fields)
    return schema
