"""Compiled plans: the resource fields of a query answered without graphql-core's machinery per row.

graphql-core completes every field of every row through its generic path: a resolve info, a path, a resolver call
and, for a link, a task and a DataLoader ``load`` per parent row; strawberry converts the selection under every link
field again for each row (``info.selected_fields``). For a root field that is a resource lookup (``<api_name>``) or
list (``<api_name>List``) of the catalog, whose selection holds only data items, links, ``items``,
``pageInfo { hasNextPage endCursor }`` and ``__typename``, this executor instead plans the field once: the answer's
shape at every level (graphql-core's own ``collect_subfields``, so fragments, ``@skip``/``@include`` and merged
fields are what the generic path sees), and the data path's arguments at every level (the items, link keys and
aliases strawberry's selection gives the builder's resolvers, computed by the same functions of schema.selection).
Running the plan calls the data path exactly as the generic resolvers do (resolvers.data ``lookup``/``list_rows``,
then per link occurrence and level one ``resolvers.links.hop`` for every parent key gathered), and writes the answer
dicts directly: one dict per answered row, each value read from the row the data path decided, masked and recorded,
and coerced by its scalar type as graphql-core's leaf completion does. No row key outside the selection reaches the
answer: only the planned response keys are written, so the data path's HIDDEN, SEEN and DISPUTED keys never do.

A plan depends only on the operation's text, the values of the variables its ``@skip``/``@include`` read, the schema
and the catalog: never on the caller, the purpose or the policies, which the data path decides on every request (the
decisions memoised by policy version in policies.engine). Plans are kept per schema (so per catalog version) in a
bounded LRU, keyed by the parsed operation (strawberry's ParserCache gives the same document for the same text).

When the field is the operation's only root field and its plan has no link, its access is the request's last: the
plan says so once it has returned (``RequestContext.records_final``), and the record goes to the writer at once, to be
committed while the answer is built (the answer still waits for the commit, server.py).

Anything else goes graphql-core's generic way: other root fields (``caller``, ``_entities``, introspection, the
process fields), mutations, field middleware, and any selection the plan does not know. ``PlanExecutor.plans``
switches the plans off (the differential tests compare both paths); it is no setting.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from graphql import (
    DirectiveNode,
    FieldNode,
    GraphQLObjectType,
    GraphQLSchema,
    Node,
    OperationType,
    VariableNode,
    get_named_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, Undefined
from strawberry.types.nodes import convert_selections

from catalog.model import Catalog, Link, Resource
from resolvers import data, links
from resolvers.data import HIDDEN
from schema.execution import UNCHANGED, FlatListExecutor
from schema.selection import field_names, response_keys, sub_selections

PLAN_CACHE_SIZE = 256
LEAF, TYPENAME, LINK = 0, 1, 2
ITEMS, PAGE_INFO = 3, 4


@dataclass(frozen=True, slots=True)
class LinkPlan:
    """One link occurrence: the response key under its parent, the path of response keys without list indices, and
    what the data path is asked for it."""

    key: str
    link: Link
    parent: Resource
    path: tuple[str, ...]
    selected: list[str]
    link_items: list[str]
    aliases: Mapping[str, str]
    object: ObjectPlan | None  # None: the target is not in the request's catalog (RESOURCE_NOT_FOUND at run time)


@dataclass(frozen=True, slots=True)
class ObjectPlan:
    """The answer of one object (a resource's row): (kind, response key, item name or type name, coerce, unchanged
    type, field details) for each response key in order, and the links among them."""

    fields: tuple[tuple[Any, ...], ...]
    links: tuple[LinkPlan, ...]
    build: Callable[[list[dict], list], list[dict]]  # the answer dicts of rows (``_compile``)


@dataclass(frozen=True, slots=True)
class RootPlan:
    """A resource lookup or list at the root, and the data path's arguments for it (as the builder's resolvers give
    them)."""

    kind: str  # "lookup" | "list"
    resource: Resource
    field: Any  # the GraphQLField
    selected: list[str]
    link_items: list[str]
    aliases: Mapping[str, str]
    items_key: str
    object: ObjectPlan | None  # a lookup's row
    page: tuple[tuple[Any, ...], ...] = ()  # a list's page: (ITEMS, key, ObjectPlan) | (PAGE_INFO, key, fields) | …


class _Plans:
    """The plans made over one schema: root fields by name for the catalog in force, and the LRU of plans."""

    def __init__(self) -> None:
        self.catalog: Catalog | None = None
        self.roots: dict[str, tuple[str, Resource]] = {}
        self.directives: dict[int, tuple[Any, tuple[str, ...]]] = {}
        self.lru: OrderedDict[tuple, tuple[Any, RootPlan | None]] = OrderedDict()
        self.made = 0  # plans made (the tests count them: one per operation and field, not per row or request)

    def roots_of(self, catalog: Catalog) -> dict[str, tuple[str, Resource]]:
        if catalog is not self.catalog:
            self.catalog, self.lru, self.directives = catalog, OrderedDict(), {}
            self.roots = {}
            for resource in catalog.published():
                self.roots[resource.api_name] = ("lookup", resource)
                self.roots[f"{resource.api_name}List"] = ("list", resource)
        return self.roots


_BY_SCHEMA: weakref.WeakKeyDictionary[GraphQLSchema, _Plans] = weakref.WeakKeyDictionary()


def plans_of(schema: GraphQLSchema) -> _Plans:
    found = _BY_SCHEMA.get(schema)
    if found is None:
        found = _BY_SCHEMA[schema] = _Plans()
    return found


def _directive_variables(operation, fragments) -> tuple[str, ...]:
    """The variables any ``@skip``/``@include`` of the document reads: the plan depends on their values."""
    names: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, DirectiveNode):
            if node.name.value not in ("skip", "include"):
                return
            for argument in node.arguments or ():
                if isinstance(argument.value, VariableNode):
                    names.append(argument.value.name.value)
            return
        if isinstance(node, Node):
            for key in node.keys:
                walk(getattr(node, key, None))
        elif isinstance(node, (tuple, list)):
            for child in node:
                walk(child)

    walk(operation)
    for fragment in fragments.values():
        walk(fragment)
    return tuple(sorted(set(names)))


def _selection(resource: Resource, selections) -> tuple[list[str], list[str], dict[str, str]]:
    """What the builder's resolvers give the data path under a field of ``resource``'s type: the data items
    selected, the items the selected links need, the response keys of aliased items."""
    names = field_names(selections)
    items = [n for n in names if resource.item(n) is not None]
    link_items = list(dict.fromkeys(link.item for link in resource.links if link.name in names))
    return items, link_items, response_keys(selections)


class PlanExecutor(FlatListExecutor):
    """graphql-core's executor (with the short path for flat lists), answering planned root fields by their plans."""

    plans = True  # the differential tests switch plans off to compare with the generic path

    def execute_field(self, parent_type, source, field_details_list, path, position_context):
        if path.prev is None and self.plans and self.operation.operation is OperationType.QUERY:
            middleware = self.middleware_manager
            if middleware is None or not middleware.middlewares:
                plan = self._plan(parent_type, field_details_list, path.key)
                if plan is not None:
                    return self._execute_plan(plan, field_details_list, path)
        return super().execute_field(parent_type, source, field_details_list, path, position_context)

    # -- planning -----------------------------------------------------------------------------------------------

    def _plan(self, parent_type: GraphQLObjectType, field_details_list, response_key: str) -> RootPlan | None:
        ctx = self.context_value
        catalog = getattr(ctx, "catalog", None)
        if not isinstance(catalog, Catalog) or parent_type is not self.schema.query_type:
            return None
        store = plans_of(self.schema)
        root = store.roots_of(catalog).get(field_details_list[0].node.name.value)
        if root is None:
            return None
        operation = self.operation
        seen = store.directives.get(id(operation))
        if seen is None or seen[0] is not operation:
            if len(store.directives) >= PLAN_CACHE_SIZE:
                store.directives.clear()
            variables = _directive_variables(operation, self.fragment_definitions)
            seen = store.directives[id(operation)] = (operation, variables)
        coerced = self.variable_values.coerced
        key = (id(operation), response_key, tuple(coerced.get(name) for name in seen[1]))
        cached = store.lru.get(key)
        if cached is not None and cached[0] is operation:
            store.lru.move_to_end(key)
            return cached[1]
        store.made += 1
        plan = self._root_plan(root[0], root[1], parent_type, field_details_list, response_key)
        store.lru[key] = (operation, plan)
        if len(store.lru) > PLAN_CACHE_SIZE:
            store.lru.popitem(last=False)
        return plan

    def _merged(self, field_details_list) -> list:
        """The selections under a field from every occurrence of its response key, as strawberry gives a resolver
        them (schema.selection.merged_selections over ``info.selected_fields``)."""
        info = SimpleNamespace(fragments=self.fragment_definitions, variable_values=self.variable_values.coerced)
        nodes = [details.node for details in field_details_list]
        return [selection for field in convert_selections(info, nodes) for selection in field.selections]  # type: ignore[arg-type]

    def _root_plan(
        self, kind: str, resource: Resource, query_type: GraphQLObjectType, field_details_list, response_key: str
    ) -> RootPlan | None:
        if any(details.fragment_variable_values is not None for details in field_details_list):
            return None
        field = query_type.fields.get(field_details_list[0].node.name.value)
        if field is None or is_non_null_type(field.type) or not is_object_type(field.type):
            return None
        merged = self._merged(field_details_list)
        if kind == "lookup":
            if field.type.name != resource.type_name or resource.item(resource.key) is None:
                return None
            selected, link_items, aliases = _selection(resource, merged)
            obj = self._object_plan(resource, field.type, field_details_list, (response_key,))
            if obj is None:
                return None
            return RootPlan(kind, resource, field, selected, link_items, aliases, "items", obj)
        page_type = field.type
        if page_type.name != f"{resource.type_name}Page" or page_type.is_type_of is not None:
            return None
        selected, link_items, aliases = _selection(resource, sub_selections(merged, "items"))
        items_key = response_keys(merged).get("items", "items")
        grouped, deferred, *_ = self.collect_subfields(page_type, field_details_list)
        if deferred:
            return None
        page: list[tuple[Any, ...]] = []
        for key, details in grouped.items():
            name = details[0].node.name.value
            if name == "__typename":
                page.append((TYPENAME, key, page_type.name))
                continue
            page_field = page_type.fields.get(name)
            if page_field is None or details[0].node.arguments:
                return None
            if name == "items":
                item_type = get_named_type(page_field.type)
                if not is_object_type(item_type):
                    return None
                obj = self._object_plan(resource, item_type, details, (response_key, key))
                if obj is None:
                    return None
                page.append((ITEMS, key, obj))
            elif name == "pageInfo":
                info_type = get_named_type(page_field.type)
                if not is_object_type(info_type) or info_type.is_type_of is not None:
                    return None
                info_fields, info_deferred, *_ = self.collect_subfields(info_type, details)
                if info_deferred:
                    return None
                shown = []
                for info_key, info_details in info_fields.items():
                    info_name = info_details[0].node.name.value
                    if info_name not in ("hasNextPage", "endCursor", "__typename"):
                        return None
                    shown.append((info_key, info_name if info_name != "__typename" else None, info_type.name))
                page.append((PAGE_INFO, key, tuple(shown)))
            else:
                return None
        return RootPlan(kind, resource, field, selected, link_items, aliases, items_key, None, tuple(page))

    def _object_plan(
        self, resource: Resource, object_type: GraphQLObjectType, field_details_list, path: tuple[str, ...]
    ) -> ObjectPlan | None:
        if object_type.name != resource.type_name or object_type.is_type_of is not None:
            return None
        grouped, deferred, *_ = self.collect_subfields(object_type, field_details_list)
        if deferred:
            return None
        by_name = {link.name: link for link in resource.links}
        catalog: Catalog = self.context_value.catalog
        fields: list[tuple[Any, ...]] = []
        planned_links: list[LinkPlan] = []
        for key, details in grouped.items():
            node = details[0].node
            name = node.name.value
            if name == "__typename":
                fields.append((TYPENAME, key, object_type.name, None, None, None))
                continue
            field = object_type.fields.get(name)
            if field is None or field.args or node.arguments:
                return None
            link = by_name.get(name)
            if link is None:
                if resource.item(name) is None or not is_leaf_type(field.type):
                    return None  # not a data item (a non-null leaf would need the generic path's error when null)
                fields.append(
                    (
                        LEAF,
                        key,
                        name,
                        field.type.coerce_output_value,
                        UNCHANGED.get(field.type.name),
                        (details, field.type),
                    )
                )
                continue
            target_type = get_named_type(field.type)
            if is_non_null_type(field.type) or not is_object_type(target_type) or is_list_type(field.type) != link.many:
                return None
            target = catalog.resources.get(link.target)
            link_path = (*path, key)
            if target is None:
                planned_links.append(LinkPlan(key, link, resource, link_path, [], [], {}, None))
            else:
                selected, link_items, aliases = _selection(target, self._merged(details))
                obj = self._object_plan(target, target_type, details, link_path)
                if obj is None:
                    return None
                planned_links.append(LinkPlan(key, link, resource, link_path, selected, link_items, aliases, obj))
            fields.append((LINK, key, name, None, None, None))
        return ObjectPlan(tuple(fields), tuple(planned_links), _compile(tuple(fields)))

    # -- running ------------------------------------------------------------------------------------------------

    async def _execute_plan(self, plan: RootPlan, field_details_list, path: Path) -> Any:
        try:
            first = field_details_list[0]
            field = plan.field
            args = (
                get_argument_values(
                    field, first.node, self.variable_values, first.fragment_variable_values, self.hide_suggestions
                )
                if field.args or first.node.arguments
                else {}
            )
            failures: list[tuple[dict, tuple]] = []
            answer = await self._run(plan, args, path.key, failures)
        except Exception as raw_error:  # as graphql-core's execute_field: the field's located error, null
            self.handle_field_error(raw_error, plan.field.type, field_details_list, path)
            return None
        if failures:  # the answer is walked once for all of them (a search per value would be quadratic)
            where = _paths(answer, {id(values) for values, _ in failures})
            for values, leaf in failures:
                self._leaf_error(where.get(id(values), []), path, values, leaf)
        return answer

    async def _run(self, plan: RootPlan, args: dict[str, Any], response_key: str, failures: list) -> Any:
        ctx = self.context_value
        resource = plan.resource
        if plan.kind == "lookup":
            key_name = resource.item(resource.key).name
            row = await data.lookup(
                ctx, resource, args[key_name], plan.selected, [response_key], plan.link_items, plan.aliases
            )
            obj = plan.object
            if obj is None:  # a lookup's plan always has its object's
                raise RuntimeError("a lookup plan without its object")
            if not obj.links and self._alone():
                ctx.records_final()
            if row is None:
                return None
            answer = _answers(obj, [row], failures)[0]
            await self._links(obj, [(answer, row)], failures)
            return answer
        page = await data.list_rows(
            ctx,
            resource,
            data.filters_of(args.get("filter")),
            args.get("first"),
            args.get("after"),
            plan.selected,
            [response_key],
            plan.link_items,
            plan.aliases,
            items_key=plan.items_key,
        )
        if self._alone() and not any(kind == ITEMS and payload.links for kind, _, payload in plan.page):
            ctx.records_final()
        if page is None:
            return None
        result: dict[str, Any] = {}
        pending = []
        for kind, key, payload in plan.page:
            if kind == ITEMS:
                answers = _answers(payload, page.rows, failures)
                result[key] = answers
                if payload.links:
                    pending.append(self._links(payload, list(zip(answers, page.rows, strict=True)), failures))
            elif kind == PAGE_INFO:
                result[key] = {
                    info_key: (
                        type_name if name is None else page.has_next_page if name == "hasNextPage" else page.end_cursor
                    )
                    for info_key, name, type_name in payload
                }
            else:
                result[key] = payload
        await _together(pending)
        return result

    def _alone(self) -> bool:
        """Whether this root field is the operation's only one: its access, once returned, is then the request's
        last, and its record (a query's records never change once their access has ended) can be handed to the
        writer at once, to commit while the answer is built (the answer still waits for the commit, server.py)."""
        selections = self.operation.selection_set.selections
        return len(selections) == 1 and isinstance(selections[0], FieldNode)

    async def _links(self, plan: ObjectPlan, pairs: list[tuple[dict, dict]], failures: list) -> None:
        """Every link occurrence of ``plan`` for the answered ``pairs`` (answer, row) of one level, side by side."""
        if pairs and plan.links:
            await _together([self._occurrence(link_plan, pairs, failures) for link_plan in plan.links])

    async def _occurrence(self, plan: LinkPlan, pairs: list[tuple[dict, dict]], failures: list) -> None:
        """One link occurrence for all its parent rows of one level: checked as ``resolvers.links.follow`` checks
        each row, then one hop for every parent key, its rows attached to their parents, then the next level."""
        ctx = self.context_value
        link, key = plan.link, plan.key
        target = links.target_of(ctx, link, plan.path)
        if target is None or plan.object is None:
            return  # reported once; every parent's link is null (as planned)
        hidden = HIDDEN + link.item
        waiting: list[tuple[dict, object]] = []
        for answer, row in pairs:
            if hidden not in row:
                links.key_refused(ctx, plan.parent, link, plan.path)
            elif (parent_key := row[hidden]) is None:
                answer[key] = [] if link.many else None
            else:
                waiting.append((answer, parent_key))
        if not waiting:
            return
        values = await links.hop(
            ctx, link, target, [k for _, k in waiting], plan.selected, plan.link_items, plan.path, plan.aliases
        )
        obj = plan.object
        below: list[tuple[dict, dict]] = []
        for (answer, _), value in zip(waiting, values, strict=True):
            if value is None:
                continue
            rows = value if link.many else [value]
            answers = _answers(obj, rows, failures)  # type: ignore[arg-type]
            answer[key] = answers if link.many else answers[0]
            if obj.links:
                below.extend(zip(answers, rows, strict=True))  # type: ignore[arg-type]
        await self._links(obj, below, failures)

    def _leaf_error(self, where: list, root: Path, values: dict, leaf: tuple) -> None:
        """A value its scalar type could not coerce: null, with the located error graphql-core's leaf completion gives
        (the handler masks it as INTERNAL_ERROR and logs it). ``where``: the path of ``values`` in the answer."""
        key, (details, return_type) = leaf[1], leaf[5]
        raw = values[key]
        values[key] = None
        path = root
        for step in [*where, key]:
            path = Path(path, step, None)
        try:
            self.complete_leaf_value(return_type, raw)
            error: Exception = TypeError(f"Expected a value of type '{return_type}' but received: {raw!r}")
        except Exception as raised:
            error = raised
        self.handle_field_error(error, return_type, details, path)


async def _together(waiting: list) -> None:
    if len(waiting) == 1:
        await waiting[0]
    elif waiting:
        await asyncio.gather(*waiting)


def _answers(plan: ObjectPlan, rows: list[dict], failures: list) -> list[dict]:
    """One answer dict per row: the planned response keys only, each value coerced by its scalar type as graphql-core
    completes a leaf (strings and booleans as they are); links are null until their hop attaches them."""
    return plan.build(rows, failures)


class _Failed:
    """A value its scalar type could not coerce (the generic path's error is made for it once the answer is built)."""

    __slots__ = ("raw",)

    def __init__(self, raw: object) -> None:
        self.raw = raw


def _coerced(coerce: Callable[[Any], Any], value: object) -> object:
    try:
        result = coerce(value)
    except Exception:
        return _Failed(value)
    return _Failed(value) if result is None or result is Undefined else result


def _failed(values: dict, failures: list, leaves: dict) -> None:
    for key, value in values.items():
        if type(value) is _Failed:
            values[key] = value.raw
            failures.append((values, leaves[key]))


def _compile(fields: tuple[tuple[Any, ...], ...]) -> Callable[[list[dict], list], list[dict]]:
    """The builder of one object's answer dicts, as a function of its own: one dict display per row, each leaf read
    and checked inline (a loop over the fields costs three times as much on a 1000-row page). Only GraphQL names
    (response keys, item and type names, ``[_A-Za-z][_0-9A-Za-z]*``) are written into its text, as literals."""
    env: dict[str, Any] = {"Failed": _Failed, "fix": _coerced, "failed": _failed, "leaves": {}}
    lines = [
        "def build(rows, failures):",
        "    out = []",
        "    append = out.append",
        "    for row in rows:",
        "        get = row.get",
        "        bad = False",
    ]
    entries = []
    for index, (kind, key, name, coerce, unchanged, _) in enumerate(fields):
        if not (key.isidentifier() and key.isascii() and name.isidentifier() and name.isascii()):
            raise ValueError(f"not a GraphQL name: {key!r}, {name!r}")
        if kind == LEAF:
            env[f"c{index}"], env[f"u{index}"] = coerce, unchanged
            env["leaves"][key] = fields[index]
            check = f"type(v{index}) is not u{index}" if unchanged is not None else "True"
            lines += [
                f"        v{index} = get({name!r})",
                f"        if v{index} is not None and {check}:",
                f"            v{index} = fix(c{index}, v{index})",
                f"            if type(v{index}) is Failed:",
                "                bad = True",
            ]
            entries.append(f"{key!r}: v{index}")
        elif kind == TYPENAME:
            entries.append(f"{key!r}: {name!r}")
        else:
            entries.append(f"{key!r}: None")
    lines += [
        "        values = {" + ", ".join(entries) + "}",
        "        if bad:",
        "            failed(values, failures, leaves)",
        "        append(values)",
        "    return out",
    ]
    exec("\n".join(lines), env)  # noqa: S102 (the text holds GraphQL names only, checked above, as literals)
    return env["build"]


def _paths(answer: Any, wanted: set[int]) -> dict[int, list]:
    """The path (response keys and list indices) in ``answer`` of each dict whose id is in ``wanted``: one walk."""
    found: dict[int, list] = {}
    pending: list[tuple[Any, list]] = [(answer, [])]
    while pending and len(found) < len(wanted):
        value, path = pending.pop()
        if isinstance(value, dict):
            if id(value) in wanted and id(value) not in found:
                found[id(value)] = path
            pending.extend((child, [*path, key]) for key, child in value.items())
        elif isinstance(value, list):
            pending.extend((child, [*path, index]) for index, child in enumerate(value))
    return found
