"""The schema's SDL, as strawberry prints it, with the `@key` of the resources' graphql-core types.

strawberry's printer takes a type's directives from its strawberry definition; the resources' types are graphql-core
objects made without one (schema.builder), so their entity key is kept in their extensions (``KEY``) and printed
here as strawberry prints a federation `@key` (the same directive object, the same text). Everything else is
strawberry's own printer, step by step (``strawberry.printer.print_schema``), so that the SDL of a schema is what it
was when every type was strawberry's.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from graphql import GraphQLNamedType, is_object_type
from graphql.utilities.print_schema import is_defined_type, print_description, print_implemented_interfaces
from strawberry.federation.schema_directives import FieldSet, Key
from strawberry.printer.printer import (
    PrintExtras,
    _get_schema_type_names,
    _print_type,
    _should_print_type,
    is_builtin_directive,
    print_directive,
    print_fields,
    print_schema_definition,
    print_schema_directive,
)
from strawberry.types.scalar import ScalarWrapper
from strawberry.types.unset import UNSET

KEY = "govshare-key"  # a resource type's extensions: the item its federation @key names


def _print_type_with_key(type_: Any, schema: Any, extras: PrintExtras) -> str:
    key = type_.extensions.get(KEY) if is_object_type(type_) else None
    if key is None:
        return _print_type(type_, schema, extras=extras)
    directive = print_schema_directive(Key(fields=FieldSet(key), resolvable=UNSET), schema, extras=extras)
    return (
        print_description(type_)
        + f"type {type_.name}"
        + print_implemented_interfaces(type_)
        + directive
        + print_fields(type_, schema, extras=extras)
    )


def print_sdl(schema: Any) -> str:
    """``schema``'s SDL (a strawberry Schema whose ``_schema`` may hold graphql-core types of the builder's)."""
    graphql_schema = schema._schema
    extras = PrintExtras()
    filtered_directives = [d for d in graphql_schema.directives if not is_builtin_directive(d)]
    type_map = graphql_schema.type_map
    schema_type_names = _get_schema_type_names(schema)
    types = [
        type_
        for type_name in sorted(type_map)
        if is_defined_type(type_ := type_map[type_name]) and _should_print_type(type_, schema_type_names)
    ]
    types_printed = [_print_type_with_key(type_, schema, extras) for type_ in types]
    schema_definition = print_schema_definition(schema, extras=extras)

    def name_of(type_: Any) -> str:
        if hasattr(type_, "name"):
            return type_.name
        if isinstance(type_, ScalarWrapper):
            return type_._scalar_definition.name
        return type_.__name__

    extra_types_printed = []
    for extra in sorted(extras.types, key=name_of):
        graphql_type: GraphQLNamedType = schema.schema_converter.from_type(extra)
        if not _should_print_type(graphql_type, schema_type_names) or graphql_type.name in type_map:
            continue
        extra_types_printed.append(_print_type_with_key(graphql_type, schema, extras))
    directives = [
        printed
        for directive in filtered_directives
        if (printed := print_directive(directive, schema=schema)) is not None and printed not in extras.directives
    ]
    return "\n\n".join(
        chain(
            sorted(extras.directives), filter(None, [schema_definition]), directives, types_printed, extra_types_printed
        )
    )
