"""govshare as an Apollo Federation v2 subgraph: `_service { sdl }` and `_entities(representations:)`.

Every resource type is an entity by its catalog key, the key its lookup takes (`type Person @key(fields:
"idNumber")`, printed by schema.printing); strawberry's federation schema adds the `@link` to federation v2 and the
`_Any` scalar, schema.builder the `_Entity` union of the resources' types (``entity_type`` resolves it). Two things
are ours, not strawberry's:

- `_entities` resolves no representation by itself. strawberry's own resolver builds the type's object from the
  representation (echoing whatever fields the caller put in it) or calls a `resolve_reference` per item, outside
  any root field. Here a representation is a lookup by its key: the representations of one type in one
  `_entities` field are one access (operation `entity`) on the data path (resolvers.data.entities): purpose
  required, the items decided once, the key a filter value (a masked or denied key refused exactly as a lookup by
  it is), all the keys in one source statement, the denied items null with one error each, rows outside the
  caller's scope null with NOT_FOUND_IN_SCOPE, the access recorded. Only the rows the source gave are answered;
  nothing of a representation but its type and key is read.
- `_service { sdl }` answers, in production, the caller's department view (the resources and items it can read,
  schema.views), never the whole schema; in development, the whole subgraph SDL. `govshare schema sdl
  --federation` prints the whole SDL for composing a supergraph offline.
"""

from __future__ import annotations

import asyncio
import datetime
import math

import strawberry
from graphql import GraphQLError
from graphql.type.scalars import GRAPHQL_MAX_INT, GRAPHQL_MIN_INT

from catalog.model import DataItem, Resource
from govshare.errors import GovshareError, error_entry
from resolvers import data
from resolvers.context import RequestContext
from schema.selection import field_names, merged_selections, typed_selections

FEDERATION_VERSION = "2.11"  # the federation spec version of the @link (strawberry 0.341 and @apollo/gateway 2.14)
ENTITY_UNION = "_Entity"


@strawberry.type(name="_Service", description="Apollo Federation：本子图的 SDL")
class Service:
    sdl: str = strawberry.field(description="子图 SDL（生产环境中只含本部门可读的资源和信息项）")


def service_field():
    def resolve(info: strawberry.Info) -> Service:
        schema = info.schema
        sdl = schema.federation_sdl()
        views = getattr(schema, "views", None)
        if views is not None:  # production: the caller's department view, as validation sees it
            ctx: RequestContext = info.context
            sdl = views.sdl_for(sdl, ctx.policy, ctx.caller.department, ctx.now)
        return Service(sdl=sdl)

    return strawberry.field(resolver=resolve, name="_service", description="Apollo Federation：子图的服务信息")


class EntityRow(dict):
    """A row answered for a representation: a dict (read as any row is) that names its type for the `_Entity` union."""

    __slots__ = ("type_name",)

    def __init__(self, row: dict, type_name: str) -> None:
        super().__init__(row)
        self.type_name = type_name


def entity_type(value: object, _info: object, _union: object) -> str | None:
    """The `_Entity` union's type resolver: the type an answered row was made for."""
    return value.type_name if isinstance(value, EntityRow) else None


def _key_value(item: DataItem, value: object) -> object:
    """A representation's key as a value of the key item's type (ValueError when it is none): only what the
    lookup's argument (a GraphQL Int, Float, …) could carry. `_Any` carries any JSON number, and a number the
    source's column cannot take fails there as the source's fault, counted against its circuit breaker."""
    kind = item.type
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "integer" and isinstance(value, int) and not isinstance(value, bool):
        if not GRAPHQL_MIN_INT <= value <= GRAPHQL_MAX_INT:
            raise ValueError(kind)
        return value
    if kind == "decimal" and isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            raise ValueError(kind) from None
        if math.isfinite(number):  # JSON as Python reads it takes NaN and Infinity
            return number
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "date" and isinstance(value, str):
        return datetime.date.fromisoformat(value)
    raise ValueError(kind)


def _selection(resource: Resource, selections) -> tuple[list[str], list[str]]:
    names = field_names(selections)
    items = [n for n in names if resource.item(n) is not None]
    link_items = list(dict.fromkeys(link.item for link in resource.links if link.name in names))
    return items, link_items


def entities_resolver(types: dict[str, Resource]):
    """The `_entities` field's resolver (graphql-core's) over the schema's entity types (type name -> resource)."""

    async def resolve(_root: object, info, representations: list) -> list:
        return await _entities(strawberry.Info(info, None), types, representations)  # type: ignore[arg-type]

    return resolve


async def _entities(info: strawberry.Info, types: dict[str, Resource], representations: list) -> list:
    ctx: RequestContext = info.context
    limit = ctx.settings.max_representations
    if len(representations) > limit:  # refused before anything is read: the whole field, nothing recorded
        raise GovshareError("REPRESENTATIONS_TOO_MANY", limit=limit, requested=len(representations))
    field = info.path.key  # the response name (an alias, or `_entities`)
    views = getattr(info.schema, "views", None)
    results: list[object] = [None] * len(representations)

    def report(index: int, code: str, **params: object) -> None:
        ctx.item_errors.append({**error_entry(GovshareError(code, **params), ctx.lang), "path": [field, index]})

    visible: dict[str, bool] = {}

    def entity_resource(name: object) -> Resource | None:
        """The entity type a representation names, if the caller's schema has it: in production only a type whose
        key its department can read (the lookup its view offers), so that any other is unknown, as in the view."""
        found = types.get(name) if isinstance(name, str) else None
        if found is None or views is None:
            return found
        resource = found
        if resource.code not in visible:
            items = views.visible_items(ctx.policy, ctx.caller.department, resource, ctx.now)
            visible[resource.code] = resource.key in items
        return found if visible[resource.code] else None

    groups: dict[str, list[tuple[int, object]]] = {}
    for index, representation in enumerate(representations):
        found = entity_resource(representation.get("__typename") if isinstance(representation, dict) else None)
        if found is None:  # the type is never named back: it is the caller's text
            report(index, "ENTITY_TYPE_UNKNOWN")
            continue
        resource = found
        key_item = resource.item(resource.key)
        try:
            key = _key_value(key_item, representation.get(key_item.name))
        except ValueError:
            report(index, "REPRESENTATION_INVALID", field=key_item.name, type=resource.type_name)
            continue
        if isinstance(key, str) and not data.storable(key):
            report(index, "FILTER_VALUE_INVALID", item=key_item.name)
            continue
        groups.setdefault(resource.type_name, []).append((index, key))

    selections = merged_selections(info)

    async def answer(type_name: str, wanted: list[tuple[int, object]]) -> None:
        resource = types[type_name]
        selected, link_items = _selection(resource, typed_selections(selections, type_name, ENTITY_UNION))
        # The denied items are reported once for the type, at its first representation (a real response path).
        first = wanted[0][0]
        try:
            got = await data.entities(ctx, resource, [key for _, key in wanted], selected, link_items, [field, first])
        except GraphQLError as error:  # the access refused: every representation of the type
            for index, _ in wanted:
                ctx.item_errors.append({**error.formatted, "path": [field, index]})
            return
        if got is None:  # nothing selected may be read: the items' errors are reported, the objects are null
            return
        rows, scoped = got
        made: dict[object, EntityRow] = {}
        for index, key in wanted:
            row = rows.get(key)
            if row is None:
                if scoped:  # as a lookup says of a record outside the grant's rows
                    error = GovshareError("NOT_FOUND_IN_SCOPE", extensions={"resource": resource.code})
                    ctx.item_errors.append({**error_entry(error, ctx.lang), "path": [field, index]})
                continue
            if key not in made:
                made[key] = EntityRow(row, type_name)
            results[index] = made[key]

    await asyncio.gather(*(answer(name, wanted) for name, wanted in groups.items()))
    return results
