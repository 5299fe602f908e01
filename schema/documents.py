"""What a trusted document must be to be registered (policies/trusted.py): one GraphQL executable document,
within the token and expanded-size limits a request has, valid against the schema in force. It may hold several
operations (a request picks one with ``operationName``); each is registered with it."""

from __future__ import annotations

from graphql import GraphQLError, GraphQLSchema, OperationDefinitionNode, parse, validate

from govshare.config import Settings
from govshare.errors import GovshareError
from govshare.expansion import expansion_error

MAX_PROBLEMS = 5  # told of an invalid document; the rest are the same kind of fault, further on


def check_document(schema: GraphQLSchema, name: str, text: str, settings: Settings, lang: str) -> tuple[str, ...]:
    """The names of the operations ``text`` holds ("" for an anonymous one), or DOCUMENT_INVALID naming the file
    and the first faults."""
    try:
        document = parse(text, max_tokens=settings.max_tokens)
    except GraphQLError as exc:
        raise GovshareError("DOCUMENT_INVALID", name=name, detail=exc.message) from None
    too_large = expansion_error(document, settings.max_expanded_fields, lang)
    errors = [too_large] if too_large is not None else validate(schema, document)
    if errors:
        raise GovshareError(
            "DOCUMENT_INVALID", name=name, detail="; ".join(error.message for error in errors[:MAX_PROBLEMS])
        )
    operations = tuple(
        definition.name.value if definition.name else ""
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
    )
    if not operations:  # fragments alone: nothing to run
        raise GovshareError("DOCUMENT_INVALID", name=name, detail="the document holds no operation")
    return operations
