"""Messages about a document that name nothing of the schema the caller did not send itself (production).

graphql-core names the schema in its messages: a field's parent type ("on type 'Person'"), a missing
argument and its type ("argument 'idNumber' of type 'String!' is required"), an expected input type, and
offers suggestions ("Did you mean 'idNumber'?"). A schema-recovery tool (clairvoyance) rebuilds a schema
from them. In production, every name of the schema in such a message that the request itself does not
carry (in its document or its variables) is replaced by "…", and no suggestion is left. Whatever the
message's wording, so that a message graphql-core adds in a later version is covered too.

Imports graphql-core only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from graphql import GraphQLError, GraphQLSchema, is_input_object_type, is_interface_type, is_object_type

IDENTIFIER = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")
QUOTED = re.compile(r"'[^']*'")
HIDDEN = "…"
SUGGESTION = "Did you mean"
# Words of graphql-core's own wording ("used in position", "at 'f.x'"): outside quotes they are English,
# even where the schema has a field of that name (StringFilter.in); inside quotes they are names.
WORDING = frozenset(
    {
        "in",
        "at",
        "on",
        "of",
        "to",
        "by",
        "for",
        "and",
        "or",
        "not",
        "is",
        "be",
        "as",
        "type",
        "field",
        "value",
        "values",
        "name",
        "input",
        "argument",
        "operation",
        "item",
        "items",
        "kind",
    }
)


def schema_names(schema: GraphQLSchema) -> frozenset[str]:
    """Every type, field, argument, input field and enum value name of ``schema`` (introspection's own aside)."""
    names: set[str] = set()
    for name, type_ in schema.type_map.items():
        names.add(name)
        if name.startswith("__"):
            continue
        if is_object_type(type_) or is_interface_type(type_):
            for field_name, field in type_.fields.items():
                names.add(field_name)
                names.update(field.args)
        elif is_input_object_type(type_):
            names.update(type_.fields)
        elif hasattr(type_, "values"):
            names.update(type_.values)
    return frozenset(names)


def sent_names(query: str, variables: dict | None) -> set[str]:
    """The names a request carries: anywhere in its document and in its variables (keys and values)."""
    text = query + (json.dumps(variables, ensure_ascii=False, default=str) if variables else "")
    return set(IDENTIFIER.findall(text))


def redact_message(text: str, sent: set[str], names: frozenset[str]) -> str:
    if SUGGESTION in text:
        text = text.split(SUGGESTION)[0].rstrip()

    def names_hidden(part: str, keep: frozenset[str]) -> str:
        return IDENTIFIER.sub(
            lambda m: HIDDEN if m.group() in names and m.group() not in sent and m.group() not in keep else m.group(),
            part,
        )

    pieces, end = [], 0
    for quoted in QUOTED.finditer(text):
        pieces += [names_hidden(text[end : quoted.start()], WORDING), names_hidden(quoted.group(), frozenset())]
        end = quoted.end()
    return "".join(pieces) + names_hidden(text[end:], WORDING)


def redact(errors: Iterable[GraphQLError], sent: set[str], names: frozenset[str]) -> list[GraphQLError]:
    """The errors about the document (no path) with their messages redacted; the others as they are."""
    redacted = []
    for error in errors:
        if error.path is None:
            error = GraphQLError(
                redact_message(error.message, sent, names),
                error.nodes,
                error.source,
                error.positions,
                error.path,
                error.original_error,
                error.extensions,
            )
        redacted.append(error)
    return redacted
