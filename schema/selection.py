"""Which data items an operation selects, through fragments, honouring @skip and @include."""

from __future__ import annotations

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection


def _skipped(selection: Selection) -> bool:
    directives = selection.directives or {}
    if directives.get("skip", {}).get("if") is True:
        return True
    return directives.get("include", {}).get("if") is False


def merged_selections(info) -> list[Selection]:
    """The selections under the field being resolved, from every occurrence of its response key: GraphQL merges
    them into one field (`person(idNumber: $i) { name } person(idNumber: $i) { gender }` selects both), while
    strawberry's ``info.selected_fields`` holds one entry per occurrence."""
    return [selection for field in info.selected_fields for selection in field.selections]


def field_names(selections: list[Selection]) -> list[str]:
    """Names (not aliases) of the fields selected directly under a field, fragments flattened."""
    names: list[str] = []
    for selection in selections:
        if _skipped(selection):
            continue
        if isinstance(selection, SelectedField):
            names.append(selection.name)
        elif isinstance(selection, (FragmentSpread, InlineFragment)):
            names.extend(field_names(selection.selections))
    return list(dict.fromkeys(names))


def sub_selections(selections: list[Selection], name: str) -> list[Selection]:
    """The selections under every occurrence of field ``name`` (e.g. ``items`` of a page)."""
    found: list[Selection] = []
    for selection in selections:
        if _skipped(selection):
            continue
        if isinstance(selection, SelectedField) and selection.name == name:
            found.extend(selection.selections)
        elif isinstance(selection, (FragmentSpread, InlineFragment)):
            found.extend(sub_selections(selection.selections, name))
    return found


def response_keys(selections: list[Selection]) -> dict[str, str]:
    """The response key of each field selected directly under a field where it is not its name (an alias), fragments
    flattened; the first one where a field is selected more than once."""
    keys: dict[str, str] = {}
    for selection in selections:
        if _skipped(selection):
            continue
        if isinstance(selection, SelectedField):
            keys.setdefault(selection.name, selection.alias or selection.name)
        elif isinstance(selection, (FragmentSpread, InlineFragment)):
            for name, key in response_keys(selection.selections).items():
                keys.setdefault(name, key)
    return {name: key for name, key in keys.items() if key != name}


def typed_selections(selections: list[Selection], type_name: str, abstract: str) -> list[Selection]:
    """The selections that apply to an object of type ``type_name`` under a field of the abstract type
    ``abstract`` (e.g. ``_Entity``): its fields, and those of the fragments on ``type_name``, on ``abstract`` or
    without a type condition, flattened."""
    found: list[Selection] = []
    for selection in selections:
        if _skipped(selection):
            continue
        if isinstance(selection, SelectedField):
            found.append(selection)
        elif selection.type_condition in (None, type_name, abstract):
            found.extend(typed_selections(selection.selections, type_name, abstract))
    return found
