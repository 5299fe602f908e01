"""Builds the schema from the published catalog; follows the catalog when it changes.

For a resource with ``api_name = "person"``: a type ``Person`` (one nullable field per data item, its
Chinese label as description), a lookup ``person(<key>: ...)``, and a list
``personList(filter: PersonFilter, first: Int, after: String): PersonPage`` filtering on the items the
catalog marks filterable. Every data item is nullable: a denied item is null, with its own error.

Two parts, built differently (a city's catalog holds thousands of resources, issue 15):

- the catalog-independent part (caller, applications, usage records, forms, freshness, the catalog workflow,
  corrections, the Mutation type) is a strawberry schema, built once and kept across catalog versions (``_Base``);
- every resource's types are graphql-core objects made directly (no Python class per resource), with plain
  resolvers on the same data path (resolvers.data lookup / list_rows, resolvers.links follow). A resource's types
  are kept from the previous catalog version when neither it nor anything its links lead to changed, so a change to
  one resource rebuilds only it (and the resources whose links lead to it), then the root Query and the
  GraphQLSchema over all of them (``build_schema(..., previous=)``).
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import datetime
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import strawberry
import strawberry.federation
from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLError,
    GraphQLField,
    GraphQLFloat,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInt,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    GraphQLUnionType,
    ValidationRule,
    get_named_type,
    is_input_object_type,
    is_object_type,
    is_union_type,
    validate_schema,
)
from graphql.type.validate import (
    InputObjectDefaultValueCircularRefsValidator,
    InputObjectFiniteValueState,
    SchemaValidationContext,
    detect_input_object_non_finite_values,
)
from strawberry.extensions import AddValidationRules, DisableIntrospection, MaxTokensLimiter, ParserCache
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as max_depth_rule
from strawberry.federation.schema import FederationAny
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema_converter import GraphQLCoreConverter

from catalog.model import CYCLE_LABELS, Catalog, DataItem, Link, Resource, ShareType, Status, changed_resources
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
from schema.execution import ITEM_EXTENSIONS, field_value, item_value
from schema.federation import ENTITY_UNION, FEDERATION_VERSION, entities_resolver, entity_type, service_field
from schema.forms import QUERY_FIELDS as FORM_FIELDS
from schema.freshness import QUERY_FIELDS as FRESHNESS_FIELDS
from schema.oversight import QUERY_FIELDS as OVERSIGHT_FIELDS
from schema.oversight import Mutation as OversightMutation
from schema.plans import PlanExecutor, plans_of
from schema.printing import KEY, print_sdl
from schema.selection import field_names, merged_selections, response_keys, sub_selections
from schema.subjects import QUERY_FIELDS as SUBJECT_FIELDS
from schema.usage import QUERY_FIELDS as USAGE_FIELDS
from schema.views import DepartmentView, SchemaViews

log = logger(__name__)  # govshare.<module>: one logging configuration covers it

# The Python type of each catalog data type, as strawberry maps it to a GraphQL scalar (the base schema's own).
PY_TYPES = {"string": str, "integer": int, "decimal": float, "date": datetime.date, "boolean": bool}
SHARE_TYPE_LABELS = {
    ShareType.UNCONDITIONAL: "无条件共享",
    ShareType.CONDITIONAL: "有条件共享",
    ShareType.NOT_SHARED: "不予共享",
}
QUERY_DESCRIPTION = "临沂市政务信息资源共享：联机查询"

PAGE_INFO = GraphQLObjectType(
    "PageInfo",
    {
        "hasNextPage": GraphQLField(GraphQLNonNull(GraphQLBoolean), resolve=item_value, description="是否还有下一页"),
        "endCursor": GraphQLField(GraphQLString, resolve=item_value, description="下一页的游标，传给 after 参数"),
    },
    description="分页信息",
)


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


@strawberry.federation.type(name="_KeyPlaceholder", keys=["id"])
class _KeyPlaceholder:
    """Makes strawberry's federation schema import `@key` (the `@link` of the schema and the directive's definition)
    for a catalog with entities; it stays in the base schema alone: the served schema has the resources' types."""

    id: str


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


def _item_description(resource: Resource, item: DataItem) -> str:
    if item.share_type and item.share_type != resource.share_type:
        return f"{item.label}（{SHARE_TYPE_LABELS[item.share_type]}）"
    return item.label


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


def _selected(info) -> list:
    """The selections under the field being resolved (every occurrence of its response key), as strawberry's
    ``info.selected_fields`` gives them to its own resolvers: fragments kept, @skip/@include with their values."""
    return merged_selections(strawberry.Info(info, None))  # type: ignore[arg-type]


# -- the catalog-independent part --------------------------------------------------------------------------------


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
    logged by the handler (govshare.graphql_http).

    One instance per catalog version, sharing the strawberry part it was made from (``_Base``): ``_schema`` is the
    GraphQLSchema of that version, ``_resources`` what the next version may keep of its resources' types."""

    views: SchemaViews | None = None  # in production: what each department sees of it (schema.views)

    def __init__(self, *args, entities, **kwargs) -> None:
        # strawberry's federation schema makes `_entities` of ``self.entities_resolver``; the base schema's is never
        # served: each version has its own, deciding every representation on the data path (schema.federation).
        self.entities_resolver = entities
        self._sdl: str | None = None
        self._base: _Base | None = None
        self._resources: dict[str, _Built] = {}
        self._support: frozenset[GraphQLNamedType] = frozenset()  # the non-resource types its resources need
        self._index: _Index = _Index()  # what the next version follows this one by (in proportion to the change)
        self._departments: dict | None = None  # the departments of its catalog (they are in its descriptions)
        self._catalog_resources: dict | None = None  # the resources of its catalog (what the next one follows)
        self._stale = True  # whether some resource's types were kept for an equal resource, not its catalog's own
        super().__init__(*args, **kwargs)

    def as_str(self) -> str:
        return print_sdl(self)

    def federation_sdl(self) -> str:
        """The whole subgraph SDL (every published resource), with @link and @key: what a supergraph is composed of."""
        if self._sdl is None:
            self._sdl = print_sdl(self)
        return self._sdl


@strawberry.type(name="Mutation", description="共享申请与授权的办理；部门目录的编报与审核；数据校核纠错；使用效果反馈")
class Mutation(ApplicationMutation, CatalogMutation, CorrectionMutation, OversightMutation):
    pass


def _unserved_entities(info: strawberry.Info, representations: list[FederationAny]) -> list[FederationAny]:
    raise RuntimeError("the base schema's _entities is never served")


@dataclass(eq=False)
class _Base:
    """The catalog-independent part and what every resource's types are made of, for one set of settings."""

    schema: Schema  # the strawberry schema of the catalog-independent fields (never served itself)
    settings: Settings
    extensions: tuple
    entities: bool  # made for a catalog with entities (its base imports federation's @key)
    limits: list[type[ValidationRule]]
    scalars: dict[str, GraphQLScalarType]  # catalog data type -> the GraphQL scalar of its items
    filters: dict[str, GraphQLInputObjectType]  # catalog data type -> the filter input type of its items
    query_fields: dict[str, GraphQLField]  # the base Query's fields, in order, without `_entities`
    any_scalar: GraphQLScalarType  # federation's _Any
    types: frozenset[GraphQLNamedType] | None = None  # those of a schema of the base alone (_base_types)

    def extensions_for(self, schema: Schema) -> list:
        settings = self.settings
        # In production a document is validated against the caller's department view, and says nothing the caller
        # did not send (schema.views); in development against the whole schema, with graphql-core's suggestions.
        # Either way the expanded size is bounded first (max_expanded_fields), before any rule walks the document.
        expansion = lambda ctx: (settings.max_expanded_fields, ctx.lang)  # noqa: E731
        limits = self.limits
        validation = (
            [lambda: ExpansionBound(expansion), lambda: DepartmentView(schema.views)]
            if settings.production
            else [lambda: ExpansionLimit(expansion)]
        )
        return [
            lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
            ParserCache,
            *([DisableIntrospection] if settings.production else []),
            lambda: AddValidationRules(limits),
            *validation,
            *self.extensions,
        ]


def _filter_types(date: GraphQLScalarType) -> dict[str, GraphQLInputObjectType]:
    def condition(name: str, description: str, scalar: GraphQLScalarType, ops: dict[str, str], listed: bool):
        fields = {"eq": GraphQLInputField(scalar, default_value=None, description="等于")}
        if listed:
            fields["in"] = GraphQLInputField(
                GraphQLList(GraphQLNonNull(scalar)), default_value=None, description="属于其中之一"
            )
        for op, label in ops.items():
            fields[op] = GraphQLInputField(scalar, default_value=None, description=label)
        return GraphQLInputObjectType(name, fields, description=description)

    bounds = {"gte": "大于或等于", "lte": "小于或等于"}
    return {
        "string": condition("StringFilter", "文本信息项的筛选条件", GraphQLString, {}, True),
        "integer": condition("IntFilter", "整数信息项的筛选条件", GraphQLInt, bounds, True),
        "decimal": condition("FloatFilter", "数值信息项的筛选条件", GraphQLFloat, bounds, False),
        "date": condition("DateFilter", "日期信息项的筛选条件", date, {"gte": "不早于", "lte": "不晚于"}, False),
        "boolean": condition("BooleanFilter", "布尔信息项的筛选条件", GraphQLBoolean, {}, False),
    }


def _make_base(settings: Settings, extensions: tuple, entities: bool) -> _Base:
    fields: dict = {
        "caller": _caller_field(),
        "service": service_field(),
        **QUERY_FIELDS,
        **USAGE_FIELDS,
        **SUBJECT_FIELDS,
        **FORM_FIELDS,
        **FRESHNESS_FIELDS,
        **CATALOG_FIELDS,
        **CORRECTION_FIELDS,
        **OVERSIGHT_FIELDS,
    }
    query = strawberry.type(type("Query", (), fields), name="Query", description=QUERY_DESCRIPTION)
    # The limits' rule classes are made once per base, so that the validation cache (keyed by the document and the
    # rule classes) answers a repeated query without validating it again, whatever the catalog version.
    limits = [
        max_depth_rule(settings.max_query_depth, None),
        max_aliases_rule(settings.max_aliases),
        _max_root_fields_rule(settings.max_root_fields),
    ]

    def unserved(info: strawberry.Info, representations: list[FederationAny]) -> list[FederationAny]:
        return _unserved_entities(info, representations)  # strawberry annotates it: one function per base

    schema = Schema(
        query=query,
        mutation=Mutation,
        types=[_KeyPlaceholder] if entities else [],
        config=StrawberryConfig(disable_field_suggestions=settings.production, default_resolver=field_value),
        execution_context_class=PlanExecutor,
        federation_version=FEDERATION_VERSION,
        entities=unserved,
    )
    converter = schema.schema_converter
    scalars = {kind: converter.from_scalar(python_type) for kind, python_type in PY_TYPES.items()}
    query_fields = {name: f for name, f in schema._schema.query_type.fields.items() if name != "_entities"}
    return _Base(
        schema,
        settings,
        extensions,
        entities,
        limits,
        scalars,
        _filter_types(scalars["date"]),
        query_fields,
        schema._schema.type_map["_Any"],  # type: ignore[arg-type]
    )


# -- one resource's types ---------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Built:
    """One resource's types in one catalog version; kept by the next version while ``resource`` and ``description``
    are the same and every type its links lead to was kept too."""

    resource: Resource
    description: str
    object_type: GraphQLObjectType
    page_type: GraphQLObjectType
    filter_type: GraphQLInputObjectType | None
    lookup: GraphQLField
    listing: GraphQLField

    @property
    def types(self) -> list[GraphQLNamedType]:
        return [self.object_type, self.page_type, *([self.filter_type] if self.filter_type else [])]

    @functools.cached_property
    def support(self) -> frozenset[GraphQLNamedType]:
        """The types other than resources' that its types lead to (scalars, filters of scalars, PageInfo)."""
        own = set(self.types)
        found: set[GraphQLNamedType] = set()
        pending: list[Any] = list(own)
        while pending:
            type_ = pending.pop()
            fields = type_.fields.values() if hasattr(type_, "fields") else ()
            referenced = []
            for field in fields:
                referenced.append(field.type)
                referenced += [arg.type for arg in getattr(field, "args", {}).values()]
            if type_ is self.page_type:
                referenced += [a.type for f in (self.lookup, self.listing) for a in f.args.values()]
            for reference in referenced:
                named = get_named_type(reference)
                if named in own or named in found or KEY in (named.extensions or {}):
                    continue
                found.add(named)
                pending.append(named)
        return frozenset(found)


def _link_field(resource: Resource, link: Link, target: _Built) -> GraphQLField:
    target_resource = target.resource

    async def resolve(root, info):
        ctx: RequestContext = info.context
        selected, link_items, keys = _selection(target_resource, _selected(info))
        return await links.follow(
            ctx, resource, link, _hidden(root), selected, link_items, _response_path(info.path), keys
        )

    target_type = target.object_type
    return GraphQLField(
        GraphQLList(GraphQLNonNull(target_type)) if link.many else target_type,
        resolve=resolve,
        description=f"{link.label}（关联：{link.target}）",
    )


def _object_type(resource: Resource, description: str, base: _Base, built: dict[str, _Built]) -> GraphQLObjectType:
    def fields() -> dict[str, GraphQLField]:
        made = {
            item.name: GraphQLField(
                base.scalars[item.type],
                resolve=item_value,
                description=_item_description(resource, item),
                extensions=ITEM_EXTENSIONS,
            )
            for item in resource.items
        }
        for link in resource.links:
            target = built.get(link.target)
            if target is not None:  # a link to an unpublished resource is left out of the schema
                made[link.name] = _link_field(resource, link, target)
        return made

    # Each resource type is a federation entity by its catalog key (the lookup's key): `@key(fields: "idNumber")`.
    return GraphQLObjectType(resource.type_name, fields, description=description, extensions={KEY: resource.key})


def _filter_type(resource: Resource, base: _Base) -> GraphQLInputObjectType | None:
    filterable = [i for i in resource.items if i.filterable]
    if not filterable:
        return None
    return GraphQLInputObjectType(
        f"{resource.type_name}Filter",
        {
            item.name: GraphQLInputField(base.filters[item.type], default_value=None, description=item.label)
            for item in filterable
        },
        description=f"{resource.name}的筛选条件",
    )


def _page_type(resource: Resource, object_type: GraphQLObjectType) -> GraphQLObjectType:
    return GraphQLObjectType(
        f"{resource.type_name}Page",
        {
            "items": GraphQLField(
                GraphQLNonNull(GraphQLList(GraphQLNonNull(object_type))), resolve=item_value, description="本页记录"
            ),
            "pageInfo": GraphQLField(GraphQLNonNull(PAGE_INFO), resolve=item_value, description="分页信息"),
        },
        description=f"{resource.name}（分页）",
    )


def _lookup_field(resource: Resource, object_type: GraphQLObjectType, base: _Base) -> GraphQLField:
    key_item = resource.item(resource.key)
    if key_item is None:  # the loader refuses such a catalog
        raise ValueError(f"{resource.code}: its key {resource.key} is none of its items")
    key_name = key_item.name

    async def resolve(root, info, **args):
        ctx: RequestContext = info.context
        selected, link_items, keys = _selection(resource, _selected(info))
        return await data.lookup(ctx, resource, args[key_name], selected, [info.path.key], link_items, keys)

    return GraphQLField(
        object_type,
        args={key_name: GraphQLArgument(GraphQLNonNull(base.scalars[key_item.type]), description=key_item.label)},
        resolve=resolve,
        description=f"按{key_item.label}查询{resource.name}",
    )


def _list_field(resource: Resource, page_type: GraphQLObjectType, filter_type: GraphQLInputObjectType | None):
    async def resolve(root, info, filter=None, first=None, after=None):
        ctx: RequestContext = info.context
        page_selections = _selected(info)
        selected, link_items, keys = _selection(resource, sub_selections(page_selections, "items"))
        page = await data.list_rows(
            ctx,
            resource,
            data.filters_of(filter),
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
        return {"items": page.rows, "pageInfo": {"hasNextPage": page.has_next_page, "endCursor": page.end_cursor}}

    args = {}
    if filter_type is not None:
        args["filter"] = GraphQLArgument(filter_type, default_value=None, description="筛选条件")
    args["first"] = GraphQLArgument(GraphQLInt, default_value=None, description="每页条数")
    args["after"] = GraphQLArgument(GraphQLString, default_value=None, description="从该游标之后开始")
    return GraphQLField(page_type, args=args, resolve=resolve, description=f"分页列出{resource.name}")


def _build_resource(resource: Resource, description: str, base: _Base, built: dict[str, _Built]) -> _Built:
    object_type = _object_type(resource, description, base, built)
    page_type = _page_type(resource, object_type)
    filter_type = _filter_type(resource, base)
    return _Built(
        resource,
        description,
        object_type,
        page_type,
        filter_type,
        _lookup_field(resource, object_type, base),
        _list_field(resource, page_type, filter_type),
    )


@dataclass(eq=False)
class _Index:
    """What one version keeps beside its resources' types so that the next one follows it in proportion to the change,
    not the catalog: each structure is copied (a copy of a list or dict is a C loop) and patched for the resources
    rebuilt, added or gone, never made again by a pass over every resource."""

    # (api_name, code) of every published resource, sorted: the Query's resource fields in that order
    order: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    # the resources' object types sorted by name (the `_Entity` union's members), and their names (for bisect)
    members: list[GraphQLObjectType] = dataclasses.field(default_factory=list)
    member_names: list[str] = dataclasses.field(default_factory=list)
    entities: dict[str, Resource] = dataclasses.field(default_factory=dict)  # type name -> resource (`_entities`)
    # target code -> the published resources whose links lead to it (what is rebuilt when it is)
    linking: dict[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    # the non-resource types the resources' types lead to, with the number of resources leading to each
    support: dict[GraphQLNamedType, int] = dataclasses.field(default_factory=dict)
    # the Query's resource fields by name: ("lookup" | "list", resource), what schema.plans plans root fields by
    roots: dict[str, tuple[str, Resource]] = dataclasses.field(default_factory=dict)


def _changes(
    catalog: Catalog, kept: dict[str, _Built], departments: dict | None, candidates: Iterable[str] | None = None
) -> tuple[set[str], set[str], dict[str, str], list[str]]:
    """(the published resources whose types cannot be kept: new or changed ones; the resources of ``kept`` no longer
    published; the descriptions of the new or changed ones; the resources kept being equal, not the same object). A
    resource is kept by identity (the catalog read
    following the one before reuses the objects of unchanged entries, catalog.model ``Catalog.from_document``), else
    by equality; with ``departments`` (those of the catalog before), a kept resource naming a department whose entry
    changed keeps its types only if its description (department names) is the same. With ``candidates`` (the codes
    of the resources that are not the objects ``kept`` was built of: catalog.model ``changed_resources``), only those
    are looked at, unless a department changed."""
    renamed: set[str] = set()
    if departments is not None and departments != catalog.departments:
        renamed = {c for c in {*departments, *catalog.departments} if departments.get(c) != catalog.departments.get(c)}
    changed: set[str] = set()
    descriptions: dict[str, str] = {}
    equal: list[str] = []
    removed: set[str] = set()
    resources = catalog.resources
    every = candidates is None or bool(renamed)
    if every:
        looked: list[tuple[str, Resource | None]] = list(resources.items())
    else:
        looked = [(code, resources.get(code)) for code in candidates]  # type: ignore[union-attr]
        for code, resource in looked:
            if code in kept and (resource is None or resource.status != Status.PUBLISHED):
                removed.add(code)
    present = 0
    for code, resource in looked:
        if resource is None:
            continue
        old = kept.get(code)
        if old is not None and old.resource is resource and not renamed:
            present += 1
            continue
        if resource.status != Status.PUBLISHED:
            continue
        if old is not None:
            present += 1
            if old.resource is resource or old.resource == resource:
                if not (renamed & {resource.provider, *resource.related_departments}):
                    if old.resource is not resource:
                        equal.append(code)
                    continue
                description = _resource_description(resource, catalog)
                if description == old.description:
                    if old.resource is not resource:
                        equal.append(code)
                    continue
                descriptions[code] = description
                changed.add(code)
                continue
        changed.add(code)
        descriptions[code] = _resource_description(resource, catalog)
    if every and present < len(kept):
        removed = {c for c in kept if (r := resources.get(c)) is None or r.status != Status.PUBLISHED}
    return changed, removed, descriptions, equal


def _linking(index: _Index, gone: list[_Built], made: list[Resource]) -> dict[str, frozenset[str]]:
    """``index.linking`` without the links of the resources ``gone`` (as they were), with those of ``made``."""
    if not gone and not made:
        return index.linking
    linking = dict(index.linking)
    for b in gone:
        for link in b.resource.links:
            linking[link.target] = linking.get(link.target, frozenset()) - {b.resource.code}
            if not linking[link.target]:
                del linking[link.target]
    for resource in made:
        for link in resource.links:
            linking[link.target] = linking.get(link.target, frozenset()) | {resource.code}
    return linking


def _followed(index: _Index, gone: list[_Built], made: list[_Built], linking: dict[str, frozenset[str]]) -> _Index:
    """The index of the version whose resources are ``index``'s without ``gone``, with ``made``."""
    if not index.order and not gone:  # a first build: sorted once
        support: dict[GraphQLNamedType, int] = {}
        for b in made:
            for type_ in b.support:
                support[type_] = support.get(type_, 0) + 1
        members = sorted((b.object_type for b in made), key=lambda t: t.name)
        roots: dict[str, tuple[str, Resource]] = {}
        for b in made:
            roots[b.resource.api_name] = ("lookup", b.resource)
            roots[f"{b.resource.api_name}List"] = ("list", b.resource)
        return _Index(
            sorted((b.resource.api_name, b.resource.code) for b in made),
            members,
            [t.name for t in members],
            {b.object_type.name: b.resource for b in made},
            linking,
            support,
            roots,
        )
    order, members, names = index.order, list(index.members), list(index.member_names)
    before = {(b.resource.api_name, b.resource.code) for b in gone}
    after = {(b.resource.api_name, b.resource.code) for b in made}
    if before != after:
        order = list(order)
        for key in before - after:
            del order[bisect.bisect_left(order, key)]
        for key in after - before:
            bisect.insort(order, key)
    entities = dict(index.entities)
    support = dict(index.support)
    roots = dict(index.roots)
    for b in gone:
        for key in (b.resource.api_name, f"{b.resource.api_name}List"):
            if key in roots and roots[key][1] is b.resource:
                del roots[key]
        name = b.object_type.name
        at = bisect.bisect_left(names, name)
        while members[at] is not b.object_type:  # two types of one name are refused later (_patched)
            at += 1
        del members[at], names[at]
        if entities.get(name) is b.resource:
            del entities[name]
        for type_ in b.support:
            support[type_] -= 1
            if not support[type_]:
                del support[type_]
    for b in made:
        name = b.object_type.name
        at = bisect.bisect_right(names, name)
        members.insert(at, b.object_type)
        names.insert(at, name)
        entities[name] = b.resource
        roots[b.resource.api_name] = ("lookup", b.resource)
        roots[f"{b.resource.api_name}List"] = ("list", b.resource)
        for type_ in b.support:
            support[type_] = support.get(type_, 0) + 1
    return _Index(order, members, names, entities, linking, support, roots)


# -- the schema of one catalog version ---------------------------------------------------------------------------


def _compatible(previous: Schema | None, settings: Settings, extensions: tuple, entities: bool) -> _Base | None:
    base = previous._base if previous is not None else None
    if base is None or base.entities != entities or base.extensions != extensions or base.settings != settings:
        return None
    return base


def build_schema(
    catalog: Catalog, settings: Settings, *, extensions: Iterable = (), previous: Schema | None = None
) -> Schema:
    """The schema of ``catalog``'s published resources. With ``previous`` (the schema of the catalog version before,
    built with the same settings and extensions), what did not change is taken from it: the strawberry part, and
    every resource's types where neither the resource nor what its links lead to changed; and every step is a patch
    of what ``previous`` holds for the resources rebuilt, added or gone (``_Index``), not a pass over the catalog."""
    extra = tuple(extensions)
    entities = any(r.status == Status.PUBLISHED for r in catalog.resources.values())
    kept_base = base = _compatible(previous, settings, extra, entities)
    following = kept_base is not None and previous is not None
    if base is None:
        base = _make_base(settings, extra, entities)
    kept = previous._resources if following else {}
    index = previous._index if following else _Index()
    # the codes of the resources that are not the objects the schema before was built of (when every resource it
    # kept is its catalog's own object): only those are looked at
    candidates = None
    if following and not previous._stale and previous._catalog_resources is not None:  # type: ignore[union-attr]
        candidates = changed_resources(previous._catalog_resources, catalog)  # type: ignore[union-attr]
    changed, removed, descriptions, equal = _changes(
        catalog,
        kept,
        previous._departments if following else None,
        candidates,  # type: ignore[union-attr]
    )
    gone = [kept[code] for code in (*changed, *removed) if code in kept]
    linking = _linking(index, gone, [catalog.resources[code] for code in changed])
    # a resource whose link leads to one rebuilt, added or gone is rebuilt with it (its link field is another, or
    # comes or goes): the same resource, so the same description
    pending = [*changed, *removed]
    while pending:
        for code in linking.get(pending.pop(), ()):
            if code not in changed:
                changed.add(code)
                pending.append(code)
                descriptions[code] = kept[code].description
                gone.append(kept[code])
    built = dict(kept)
    for code in removed:
        del built[code]
    for code in sorted(changed):  # sorted: a build does not depend on the order of a set
        built[code] = _build_resource(catalog.resources[code], descriptions[code], base, built)
    made = [built[code] for code in sorted(changed)]
    index = _followed(index, gone, made, linking)

    union = GraphQLUnionType(ENTITY_UNION, list(index.members), resolve_type=entity_type) if index.members else None
    entities_field = (
        GraphQLField(
            GraphQLNonNull(GraphQLList(union)),
            args={"representations": GraphQLArgument(GraphQLNonNull(GraphQLList(GraphQLNonNull(base.any_scalar))))},
            resolve=entities_resolver(index.entities),
        )
        if union is not None
        else None
    )
    before_fields = previous._schema.query_type.fields if following else None  # type: ignore[union-attr]
    if (
        before_fields is not None
        and index.order is previous._index.order
        and ("_entities" in before_fields) == (union is not None)
    ):
        # the same Query field names in the same order: the fields before, the rebuilt resources' replaced
        query_fields = dict(before_fields)
        if entities_field is not None:
            query_fields["_entities"] = entities_field
        for b in made:
            query_fields[b.resource.api_name] = b.lookup
            query_fields[f"{b.resource.api_name}List"] = b.listing
    else:
        query_fields = {"_entities": entities_field} if entities_field is not None else {}
        query_fields.update(base.query_fields)
        for api_name, code in index.order:
            b = built[code]
            query_fields[api_name] = b.lookup
            query_fields[f"{api_name}List"] = b.listing
    query = GraphQLObjectType("Query", query_fields, description=QUERY_DESCRIPTION)
    support = frozenset(index.support)
    if not following:
        full = base.schema._schema
        graphql_schema = GraphQLSchema(
            query, full.mutation_type, types=[base.any_scalar], directives=full.directives, extensions={}
        )
    else:
        # graphql-core checks every field name of a type when its fields are first read: of this Query only those of
        # the fields made here are new (validated below, _FreshTypes), the others were checked with the version before.
        query.__dict__["fields"] = query_fields  # the value of its cached_property ``fields``
        graphql_schema = _patched(previous, base, query, union, made, gone, support)  # type: ignore[arg-type]
    # graphql-core validates a schema at its first execution: here instead, off the request path, as strawberry does;
    # of a schema following another, only what this version made (the types kept were validated with the one before).
    fresh: list[GraphQLNamedType] | None = None
    if following:
        # The Query's own fields made here (its others were validated with the versions before), the union of the
        # new members alone (the others are members validated before), and the new types.
        own = {"_entities": entities_field} if entities_field is not None else {}
        for b in made:
            own[b.resource.api_name] = b.lookup
            own[f"{b.resource.api_name}List"] = b.listing
        fresh = [GraphQLObjectType("Query", own)]
        if made:
            fresh.append(GraphQLUnionType(ENTITY_UNION, [b.object_type for b in made]))
        for b in made:
            fresh += [b.object_type, b.page_type, *([b.filter_type] if b.filter_type else [])]
    errors = _validate(graphql_schema, fresh)
    if errors:
        raise ValueError("Invalid Schema. Errors:\n\n" + "\n\n".join(f"❌ {error.message}" for error in errors))
    schema = _version(base, graphql_schema, built, support)
    schema._index = index
    # The plans' root fields over this schema (schema.plans), from the index rather than a pass over the catalog at
    # its first request: each the catalog's own resource object (a resource kept by equality is another object).
    plans = plans_of(graphql_schema)
    plans.roots = index.roots
    if equal:
        plans.roots = dict(index.roots)
        for code in equal:
            resource = catalog.resources[code]
            plans.roots[resource.api_name] = ("lookup", resource)
            plans.roots[f"{resource.api_name}List"] = ("list", resource)
    plans.catalog = catalog
    schema._departments = catalog.departments
    schema._catalog_resources = catalog.resources
    schema._stale = bool(equal)  # some resource's types were kept for an equal resource, not the catalog's own
    if settings.production:
        views = previous.views if following else None
        schema.views = SchemaViews(
            graphql_schema,
            catalog,
            base.limits,
            settings.max_root_fields,
            previous=views,
            changes=(set(changed), removed) if views is not None else None,
            shared=sorted(_base_types(base) | support, key=lambda t: t.name) if views is not None else None,
        )
    if previous is not None:
        log.debug("schema: %d resources rebuilt, %d gone, of %d", len(changed), len(removed), len(built))
    return schema


def _base_types(base: _Base) -> frozenset[GraphQLNamedType]:
    """The types of the schema of the base alone (no resource), which no change of the catalog takes away."""
    if base.types is None:
        full = base.schema._schema
        alone = GraphQLSchema(
            GraphQLObjectType("Query", base.query_fields),
            full.mutation_type,
            types=[base.any_scalar],
            directives=full.directives,
        )
        base.types = frozenset(alone.type_map.values())
    return base.types


def _patched(
    previous: Schema,
    base: _Base,
    query: GraphQLObjectType,
    union: GraphQLUnionType | None,
    made: list[_Built],
    gone: list[_Built],
    support: frozenset[GraphQLNamedType],
) -> GraphQLSchema:
    """The GraphQLSchema of a catalog version following ``previous``'s, as graphql-core's constructor makes it, from
    the type map before: the types of the resources rebuilt or gone out (``gone``: as they were), theirs in
    (``made``), the other types they need (scalars, filters, PageInfo) in or out, a new Query and `_Entity`.
    graphql-core's constructor walks every field of every type (a third of a second for 10,000 resources); this walks
    what changed. Refuses two types of one name as the constructor does."""
    before: GraphQLSchema = previous._schema
    type_map = dict(before.type_map)
    support_before: frozenset[GraphQLNamedType] = previous._support
    keep = _base_types(base)
    for b in gone:
        for type_ in b.types:
            if type_map.get(type_.name) is type_:
                del type_map[type_.name]
    for type_ in support_before - support - keep:
        if type_map.get(type_.name) is type_:
            del type_map[type_.name]
    type_map.pop(ENTITY_UNION, None)
    added = [type_ for b in made for type_ in b.types] + [t for t in support - support_before if t.name not in type_map]
    for type_ in [query, *([union] if union is not None else []), *added]:
        other = type_map.get(type_.name)
        if other is not None and other is not type_ and type_ is not query:
            raise TypeError(
                f"Schema must contain uniquely named types but contains multiple types named '{type_.name}'."
            )
        type_map[type_.name] = type_
    schema = GraphQLSchema.__new__(GraphQLSchema)
    schema.assume_valid = False
    schema._validation_errors = None
    schema.description = before.description
    schema.extensions = {}
    schema.ast_node = None
    schema.extension_ast_nodes = ()
    schema.query_type = query
    schema.mutation_type = before.mutation_type
    schema.subscription_type = before.subscription_type
    schema.directives = before.directives
    schema.type_map = type_map
    schema._sub_type_map = {}
    schema._implementations_map = before._implementations_map  # no resource type implements an interface
    return schema


class _FreshTypes(SchemaValidationContext):
    """graphql-core's schema validation (validate_schema) of the root types, the directives and the given types only."""

    def __init__(self, schema: GraphQLSchema, types: list[GraphQLNamedType]) -> None:
        super().__init__(schema)
        self.types = types

    def validate_types(self) -> None:  # graphql-core's validate_types, over ``self.types`` instead of the type map
        circular_defaults = InputObjectDefaultValueCircularRefsValidator(self)
        finite: dict[GraphQLInputObjectType, InputObjectFiniteValueState] = {}
        for type_ in self.types:
            self.validate_name(type_)
            if is_object_type(type_):
                self.validate_fields(type_)
                self.validate_interfaces(type_)
            elif is_union_type(type_):
                self.validate_union_members(type_)
            elif is_input_object_type(type_):
                self.validate_input_fields(type_)
                finite[type_] = InputObjectFiniteValueState(type_)
                circular_defaults(type_)
            else:  # the builder makes no other kind of type
                self.report_error(f"Unexpected type {type_.name} made for a resource.")
        detect_input_object_non_finite_values(self, finite)


def _validate(schema: GraphQLSchema, fresh: list[GraphQLNamedType] | None) -> list[GraphQLError]:
    """Validates ``schema`` (graphql-core's validate_schema, whose result it keeps for execution), or with ``fresh``
    only those types beside its Query: every other type is one a schema validated before had, leading only to such
    types (a resource's types are kept only with every type they lead to, schema.builder._changed)."""
    if fresh is None:
        return validate_schema(schema)
    context = _FreshTypes(schema, fresh)
    context.validate_root_types()
    context.validate_directives()
    context.validate_types()
    schema._validation_errors = context.errors
    return context.errors


def _version(
    base: _Base, graphql_schema: GraphQLSchema, built: dict[str, _Built], support: frozenset[GraphQLNamedType]
) -> Schema:
    """A Schema serving ``graphql_schema``: the base's strawberry schema, with this version's GraphQLSchema."""
    schema = copy.copy(base.schema)
    schema._schema = graphql_schema
    graphql_schema.extensions[GraphQLCoreConverter.DEFINITION_BACKREF] = schema
    graphql_schema._strawberry_schema = schema  # type: ignore[attr-defined]  # strawberry's Info.schema reads it
    schema._sdl = None
    schema.views = None
    schema._base = base
    schema._resources = built
    schema._support = support
    schema.extensions = tuple(base.extensions_for(schema))
    return schema
