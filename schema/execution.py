"""A shorter completion path for the common answer: a list of records whose selected fields are all data items.

graphql-core completes every field of every row through the generic machinery (a resolve info, a path
and a resolver call per value), which costs several times the source query on a 1000-row page. Here a
list of objects whose selection holds only scalar fields with strawberry's default resolver or resources' data
items (``ITEM``: no arguments, no resolver of ours, no link) is built directly: each value read as the default resolver
would read it and coerced by its scalar type, exactly what the generic path returns. Anything else,
or any value the fast path cannot complete, goes the generic way.

It adds no data: the rows are those the data path already decided, masked and recorded (resolvers.data);
a denied item is absent from its row and completes to null as before, its error reported by the data path.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLList, is_leaf_type, is_non_null_type, is_object_type
from graphql.pyutils import Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

DEFINITION = "strawberry-definition"  # where strawberry keeps a GraphQL field's own definition
TYPENAME = object()
# Values these scalars return unchanged (graphql-core's String and Boolean coercion of a str or a bool).
UNCHANGED = {"String": str, "ID": str, "Boolean": bool}
# A resource's data item, built by schema.builder as a graphql-core field (no strawberry definition): its extensions
# are this mapping and its resolver ``item_value``; both together mark a plain item read from its row by its name.
ITEM = "govshare-item"
ITEM_EXTENSIONS: dict[str, Any] = {ITEM: True}


def field_value(obj: Any, name: str) -> Any:
    """Strawberry's default resolver, reading rows (dicts, absent items are null; an entity's row is a dict of its
    own type, schema.federation) as well as objects."""
    return obj.get(name) if type(obj) is dict or isinstance(obj, dict) else getattr(obj, name)


def item_value(obj: Any, info: Any) -> Any:
    """The resolver of a resource's data item (and of a page's fields): the row's value under the field's name, as
    ``field_value`` reads it (a denied item is absent from its row: null)."""
    return field_value(obj, info.field_name)


class FlatListExecutor(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._flat_plans: dict[tuple[int, int], tuple[Any, list | None]] = {}

    def complete_list_value(self, return_type: GraphQLList, field_details_list, info, path, result, position_context):
        # Field middleware (a strawberry extension's resolve hook) must see every field: then no short path.
        middleware = self.middleware_manager
        if type(result) is list and (middleware is None or not middleware.middlewares):
            plan = self._flat_plan(return_type, field_details_list, path)
            if plan is not None:
                completed = _complete_flat(plan, result)
                if completed is not None:
                    return completed
        return super().complete_list_value(return_type, field_details_list, info, path, result, position_context)

    def _flat_plan(self, return_type: GraphQLList, field_details_list, path) -> list | None:
        key = (id(return_type), id(field_details_list))
        cached = self._flat_plans.get(key)
        if cached is None:
            # Like graphql-core's own memo, keep the list alive with the plan so its id is not reused.
            cached = self._flat_plans[key] = (
                field_details_list,
                self._make_plan(return_type, field_details_list, path),
            )
        return cached[1]

    def _make_plan(self, return_type: GraphQLList, field_details_list, path) -> list | None:
        item_type = return_type.of_type
        if is_non_null_type(item_type):
            item_type = item_type.of_type
        if not is_object_type(item_type) or item_type.is_type_of is not None:
            return None
        if self.get_stream_usage(field_details_list, path) is not None:
            return None
        grouped_field_set, new_defer_usages, _ = self.collect_subfields(item_type, field_details_list)
        if new_defer_usages:
            return None
        plan = []
        for response_name, details in grouped_field_set.items():
            node = details[0].node
            name = node.name.value
            if name == "__typename":
                plan.append((response_name, TYPENAME, item_type.name, None))
                continue
            field_def = item_type.fields.get(name)
            if field_def is None or field_def.args or node.arguments or not is_leaf_type(field_def.type):
                return None  # a non-null leaf would need the generic path's error when null
            extensions = field_def.extensions or {}
            if extensions.get(ITEM) is True and field_def.resolve is item_value:
                # a resource's data item (schema.builder): read from the row by its own name
                plan.append(
                    (response_name, name, field_def.type.coerce_output_value, UNCHANGED.get(field_def.type.name))
                )
                continue
            definition = extensions.get(DEFINITION)
            if (
                definition is None
                or definition.base_resolver is not None
                or definition.extensions
                or definition.permission_classes
                or not getattr(field_def.resolve, "_is_default", False)
            ):
                return None
            plan.append(
                (
                    response_name,
                    definition.python_name,
                    field_def.type.coerce_output_value,
                    UNCHANGED.get(field_def.type.name),
                )
            )
        return plan


def _complete_flat(plan: list, rows: list) -> list | None:
    """The completed rows, or None to let the generic path complete them (and report what went wrong)."""
    completed = []
    append = completed.append
    try:
        for row in rows:
            if type(row) is dict:
                get = row.get
            elif row is None:
                return None
            else:

                def get(name, row=row):
                    return getattr(row, name)

            values = {}
            for response_name, name, coerce, unchanged in plan:
                if name is TYPENAME:
                    values[response_name] = coerce
                    continue
                value = get(name)
                if value is not None and type(value) is not unchanged:
                    value = coerce(value)
                    if value is None or value is Undefined:
                        return None
                values[response_name] = value
            append(values)
    except Exception:
        return None
    return completed
