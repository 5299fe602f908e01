"""The expanded size of a GraphQL document, bounded before anything else walks it.

A fragment spread twice in a fragment that is itself spread twice doubles at every level:
``fragment F1 on Person { ...F0 ...F0 }`` up to F17 is 763 bytes and 2^17 fields once expanded, and
graphql-core's validation rules, strawberry's depth limiter and ``selected_fields`` all expand fragments
anew wherever they are spread. Here each fragment's size is counted once (memoised), so the bound costs
time linear in the document, and an operation (or fragment) expanding to more than the limit is refused
with ``QUERY_TOO_LARGE`` before validation runs. A fragment that spreads itself, directly or not, has no
finite expansion and is refused the same way.

``ExpansionLimit`` replaces strawberry's ``ValidationCache``: it bounds the document, then validates it
through the same cache.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from strawberry.extensions import SchemaExtension, ValidationCache

from govshare.errors import GovshareError, graphql_error

UNBOUNDED = float("inf")


def _walk(selection_set: SelectionSetNode | None) -> tuple[int, Counter]:
    """The fields written in a selection set (at every nesting level) and the fragments it spreads, with counts."""
    fields, spreads = 0, Counter()
    pending = [selection_set] if selection_set is not None else []
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                fields += 1
                if selection.selection_set is not None:
                    pending.append(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                spreads[selection.name.value] += 1
    return fields, spreads


def expanded_sizes(document: DocumentNode, cap: int) -> dict[str, float]:
    """Fields each operation and fragment holds with every fragment spread expanded, counted up to ``cap + 1``
    (a larger count is reported as ``cap + 1``; a fragment cycle as infinite). Unknown fragments count nothing:
    validation refuses them."""
    walked: dict[str, tuple[int, Counter]] = {}
    operations: dict[str, tuple[int, Counter]] = {}
    for index, definition in enumerate(document.definitions):
        if isinstance(definition, FragmentDefinitionNode):
            walked.setdefault(definition.name.value, _walk(definition.selection_set))
        elif isinstance(definition, OperationDefinitionNode):
            name = definition.name.value if definition.name else f"#{index + 1}"
            operations[f"{definition.operation.value} {name}"] = _walk(definition.selection_set)

    sizes: dict[str, float] = {}
    in_progress: set[str] = set()

    def size_of(fields: int, spreads: Counter) -> float:
        total = fields + sum(count * sizes.get(name, 0) for name, count in spreads.items())
        return min(total, cap + 1)

    for start in walked:
        # Depth-first over the spreads with an explicit stack (a chain of fragments may be deeper than Python's
        # recursion limit); a fragment met again while it is being sized is a cycle.
        stack = [start]
        while stack:
            name = stack[-1]
            if name in sizes:
                stack.pop()
                continue
            in_progress.add(name)
            waiting = [n for n in walked[name][1] if n in walked and n not in sizes]
            cycle = any(n in in_progress for n in waiting)
            if cycle:
                sizes[name] = UNBOUNDED
            elif waiting:
                stack.extend(waiting)
                continue
            else:
                sizes[name] = size_of(*walked[name])
            in_progress.discard(name)
            stack.pop()
    result = {name: size_of(*walk) for name, walk in operations.items()}
    result.update({f"fragment {name}": sizes[name] for name in walked})
    return result


def expansion_error(document: DocumentNode, limit: int, lang: str) -> GraphQLError | None:
    """QUERY_TOO_LARGE when any operation or fragment of ``document`` expands to more than ``limit`` fields."""
    sizes = expanded_sizes(document, limit)
    over = [name for name, size in sizes.items() if size > limit]
    if not over:
        return None
    return graphql_error(
        GovshareError("QUERY_TOO_LARGE", extensions={"limit": limit}, limit=limit, definition=over[0]), lang
    )


class ExpansionBound(SchemaExtension):
    """Bounds the expanded size and nothing else: for production, where the department's view validates next
    (schema.views.DepartmentView validates only a document no extension before it refused). ``limit_of`` reads
    (limit, language) from the request's context value."""

    def __init__(self, limit_of: Callable[[Any], tuple[int, str]]) -> None:
        self.limit_of = limit_of

    def refused(self) -> bool:
        context = self.execution_context
        limit, lang = self.limit_of(context.context)
        error = expansion_error(context.graphql_document, limit, lang)
        if error is not None:
            context.pre_execution_errors = [error]
        return error is not None

    def on_validate(self):
        self.refused()
        yield


class ExpansionLimit(ValidationCache):
    """Bounds the expanded size first; only a document within the bound is validated (through the cache)."""

    def __init__(self, limit_of: Callable[[Any], tuple[int, str]]) -> None:
        super().__init__()
        self.bound = ExpansionBound(limit_of)

    def on_validate(self):
        self.bound.execution_context = self.execution_context
        if self.bound.refused():
            yield
            return
        yield from super().on_validate()
