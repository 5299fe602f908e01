"""What a department sees of the schema in production: only the resources and data items it can read.

As Hasura does per role, a department's view holds a resource's fields and types only if it may read one of
its items under some purpose registered for it, and of that resource only the items it may read (masked
counts as read), decided by the same ``PolicyEngine.decide`` the data path uses, at the request's time.
Validation runs against the view, so an invisible field fails exactly as an unknown one does; execution
then goes the normal way over the one schema, and the data path still decides every item.

The view is not built for the whole catalog: validating a document reads only the fields and types it
reaches, so the view a request is validated against holds the resources its operations reach in the full
schema (root fields, named types, links), filtered, beside every non-data field and type, and validates the
document exactly as the department's whole view would. Its cost follows the document, not the catalog
(bench/views.py); views are cached by what they hold, and validations by view and document text.

Imports ``catalog``, ``policies`` (through the request context) and graphql-core; builds no strawberry schema.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import OrderedDict
from collections.abc import Iterable

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLArgument,
    GraphQLError,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    TypeInfo,
    TypeInfoVisitor,
    ValidationRule,
    Visitor,
    get_named_type,
    get_operation_ast,
    validate,
    visit,
)
from graphql.execution.values import get_variable_values
from graphql.language import (
    InputObjectTypeDefinitionNode,
    ObjectTypeDefinitionNode,
    StringValueNode,
    TypeDefinitionNode,
    UnionTypeDefinitionNode,
    parse,
    print_ast,
)
from graphql.language.visitor import SKIP
from strawberry.extensions import SchemaExtension
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from catalog.model import Catalog, Resource
from schema.redaction import redact, sent_names

VIEW_CACHE_SIZE = 512
ENTITIES, ENTITY_UNION = "_entities", "_Entity"  # Apollo Federation's entry point and its union (schema.federation)
VALIDATION_CACHE_SIZE = 256
NAMES_CACHE_SIZE = 1024


class _Cache(OrderedDict):
    """A bounded LRU. Keyed by a document's text (str caches its hash), never by the parsed document, whose
    hash walks the whole tree each time (graphql-core's ParserCache gives the same document for a text)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size, self.hits = size, 0

    def get_or_make(self, key, make):
        if key in self:
            self.hits += 1
            self.move_to_end(key)
            return self[key]
        value = self[key] = make()
        if len(self) > self.size:
            self.popitem(last=False)
        return value


Visible = frozenset[tuple[str, frozenset[str]]]  # (resource code, the items visible) for each resource shown


@dataclasses.dataclass(frozen=True, eq=False)
class _Shape:
    """Where one resource lives in the full schema (the builder's names, read back from the built schema)."""

    resource: Resource
    object_type: GraphQLObjectType
    lookup: str  # the Query field of the lookup by key
    list: str  # the Query field of the paginated list
    page_type: GraphQLObjectType
    filter_type: GraphQLInputObjectType | None
    fields: tuple[GraphQLField, GraphQLField]  # the lookup's and the list's Query fields themselves

    @property
    def names(self) -> set[str]:
        names = {self.lookup, self.list, self.object_type.name, self.page_type.name}
        return names | ({self.filter_type.name} if self.filter_type else set())

    @functools.cached_property
    def schema_names(self) -> frozenset[str]:
        """What schema.redaction.schema_names collects of this resource's types and Query fields."""
        names = set(self.names)
        for field in self.fields:
            names.update(field.args)
        for type_ in (self.object_type, self.page_type):
            for name, field in type_.fields.items():
                names.add(name)
                names.update(field.args)
        if self.filter_type is not None:
            names.update(self.filter_type.fields)
        return frozenset(names)


class _Names:
    """Every type, field, argument, input field and enum value name of a schema (schema.redaction.schema_names), as
    the names of its non-data part and a count of each name of its resources' parts (kept across versions)."""

    def __init__(self, common: frozenset[str], counts: dict[str, int]) -> None:
        self.common, self.counts = common, counts

    def __contains__(self, name: object) -> bool:
        return name in self.common or name in self.counts

    def __iter__(self):
        return iter(self.common | self.counts.keys())


def _common_names(types: Iterable, query_fields: dict[str, GraphQLField]) -> frozenset[str]:
    names: set[str] = set()
    for type_ in types:
        names.add(type_.name)
        if type_.name.startswith("__"):
            continue
        if isinstance(type_, (GraphQLObjectType, GraphQLInterfaceType)):
            for name, field in type_.fields.items():
                names.add(name)
                names.update(field.args)
        elif isinstance(type_, GraphQLInputObjectType):
            names.update(type_.fields)
        elif hasattr(type_, "values"):
            names.update(type_.values)
    for name, field in query_fields.items():
        names.add(name)
        names.update(field.args)
    return frozenset(names)


def _rewrap(type_, named):
    """``type_`` with its named type replaced by ``named`` (same list and non-null wrappers)."""
    if isinstance(type_, GraphQLNonNull):
        return GraphQLNonNull(_rewrap(type_.of_type, named))
    if isinstance(type_, GraphQLList):
        return GraphQLList(_rewrap(type_.of_type, named))
    return named


def _field(field: GraphQLField, type_, args: dict | None = None) -> GraphQLField:
    return GraphQLField(
        type_,
        args=field.args if args is None else args,
        resolve=field.resolve,
        description=field.description,
        extensions=field.extensions,
    )


class _Reach(Visitor):
    """Collects the names of the types a document's fields have, the types it names, and its fragment spreads."""

    def __init__(self, type_info: TypeInfo, query_type: GraphQLObjectType, reached: set[str]) -> None:
        super().__init__()
        self.type_info, self.query_type, self.reached, self._spreads = type_info, query_type, reached, []

    def enter_field(self, node, *_args):
        type_ = self.type_info.get_type()
        if type_ is not None:
            self.reached.add(get_named_type(type_).name)
        if self.type_info.get_parent_type() is self.query_type:
            self.reached.add(node.name.value)  # a root field's name maps to its resource (lookup, list), if known

    def enter_named_type(self, node, *_args):
        self.reached.add(node.name.value)

    def enter_fragment_spread(self, node, *_args):
        self._spreads.append(node.name.value)

    def take_spreads(self) -> list[str]:
        spreads, self._spreads = self._spreads, []
        return spreads


class SchemaViews:
    """The views over one built schema (one catalog version), cached by the resources and items they show."""

    def __init__(
        self,
        schema: GraphQLSchema,
        catalog: Catalog,
        limits: Iterable[type[ValidationRule]] = (),
        max_root_fields: int = 10,
        previous: SchemaViews | None = None,
        *,
        changes: tuple[set[str], set[str]] | None = None,
        shared: Iterable[GraphQLNamedType] | None = None,
    ) -> None:
        """``previous``: the views over the schema of the catalog version before, whose resources' shapes are kept
        where the resource and its types are the same objects in ``schema`` (schema.builder keeps them). With
        ``changes`` (the builder's: the resources rebuilt, and those gone, since ``previous``; every other resource's
        Query fields are the objects ``previous`` had) and ``shared`` (the schema's types other than the resources',
        its roots among them), the views follow ``previous`` in proportion to the change: only the shapes of those
        resources are made or dropped, and the index of names is patched, never made again from the whole schema."""
        self.schema = schema
        # The document's own limits, checked over the full schema before any view is made for it. Production
        # has no GraphiQL: applications send one operation, so max_root_fields bounds the whole document.
        self.limits = (*limits, _document_root_fields_rule(max_root_fields))
        query = schema.query_type
        old = previous._shapes if previous is not None else {}
        query_fields = query.fields
        if previous is not None and changes is not None:
            rebuilt, removed = changes
            self._shapes = dict(old)
            for code in removed:
                self._shapes.pop(code, None)
            candidates = [catalog.resources[code] for code in rebuilt]
        else:
            self._shapes = {}
            candidates = catalog.published()
        for resource in candidates:
            kept = old.get(resource.code)
            # The same Query field objects lead to the same types (the builder keeps a resource's types together,
            # schema.builder._Built), made for an equal resource.
            if (
                kept is not None
                and kept.lookup == resource.api_name
                and query_fields.get(kept.lookup) is kept.fields[0]
                and query_fields.get(kept.list) is kept.fields[1]
            ):
                self._shapes[resource.code] = kept
                continue
            listing_name, lookup_name = f"{resource.api_name}List", resource.api_name
            listing, lookup = query_fields[listing_name], query_fields[lookup_name]
            filter_arg = listing.args.get("filter")
            self._shapes[resource.code] = _Shape(
                resource,
                schema.type_map[resource.type_name],
                lookup_name,
                listing_name,
                get_named_type(listing.type),
                get_named_type(filter_arg.type) if filter_arg else None,
                (lookup, listing),
            )
        # What changed since ``previous``: the shapes it had that are not kept, and those made here.
        if previous is not None and changes is not None:
            touched = {*changes[0], *changes[1]}
            gone = [old[code] for code in touched if code in old and self._shapes.get(code) is not old[code]]
            made = [
                self._shapes[code]
                for code in touched
                if code in self._shapes and old.get(code) is not self._shapes[code]
            ]
        else:
            gone = [shape for code, shape in old.items() if self._shapes.get(code) is not shape]
            made = [shape for code, shape in self._shapes.items() if old.get(code) is not shape]
        self._by_name: dict[str, set[str]] = dict(previous._by_name) if previous is not None else {}
        counts: dict[str, int] = dict(previous.names.counts) if previous is not None else {}
        for shapes, sign in ((gone, -1), (made, 1)):
            for shape in shapes:
                code = shape.resource.code
                for name in shape.names:
                    codes = set(self._by_name.get(name, ()))
                    codes.add(code) if sign > 0 else codes.discard(code)
                    if codes:
                        self._by_name[name] = codes
                    else:
                        self._by_name.pop(name, None)
                for name in shape.schema_names:
                    count = counts.get(name, 0) + sign
                    if count:
                        counts[name] = count
                    else:
                        counts.pop(name, None)
        roots = {t.name for t in (query, schema.mutation_type, schema.subscription_type) if t}
        # Non-data fields and types (caller, applications, usage records, filters of scalars...) are in every view.
        # Federation's `_entities` and its `_Entity` union are data: a view holds them with the entity types it
        # shows (those whose key the department can read, as it is offered their lookup), or not at all.
        self._entities = query_fields.get(ENTITIES)
        if previous is not None and changes is not None and shared is not None:
            resource_names = {n for s in made for n in (s.lookup, s.list)}
            self._data_free_fields = {
                n: query_fields[n] for n in previous._data_free_fields if n in query_fields and n not in resource_names
            }
            types = [
                t
                for t in shared
                if schema.type_map.get(t.name) is t
                and t.name not in self._by_name
                and t.name not in roots
                and not t.name.startswith("__")
                and t.name != ENTITY_UNION
            ]
            same = {id(t) for t in types} == {id(t) for t in previous._shared_types}
            self._shared_types = previous._shared_types if same else types
        else:
            resource_fields = {n for s in self._shapes.values() for n in (s.lookup, s.list)}
            self._data_free_fields = {
                n: f for n, f in query_fields.items() if n not in resource_fields and n != ENTITIES
            }
            self._shared_types = [
                t
                for n, t in schema.type_map.items()
                if n not in self._by_name and n not in roots and not n.startswith("__") and n != ENTITY_UNION
            ]
            same = False
        self._purposes: dict[str, list[str]] = {}
        for purpose in catalog.purposes.values():
            self._purposes.setdefault(purpose.department, []).append(purpose.code)
        if (
            same
            and previous is not None
            and previous._data_free_fields.keys() == self._data_free_fields.keys()
            and (previous._entities is None) == (self._entities is None)
        ):
            common_names = previous.names.common  # the same non-data part: the same names
        else:
            common = [
                *self._shared_types,
                *(t for n, t in schema.type_map.items() if n.startswith("__") or n == ENTITY_UNION),
                *(t for t in (schema.mutation_type, schema.subscription_type) if t),
            ]
            fields = {**self._data_free_fields, **({ENTITIES: self._entities} if self._entities else {})}
            common_names = _common_names(common, fields) | {query.name}
        self.names = _Names(common_names, counts)
        self._views = _Cache(VIEW_CACHE_SIZE)  # visible parts -> view, shared by departments that see alike
        self._mentioned = _Cache(NAMES_CACHE_SIZE)  # document text -> resources it reaches
        self.validations = _Cache(VALIDATION_CACHE_SIZE)  # (schema or view, text, rules) -> errors
        self._sdls = _Cache(VIEW_CACHE_SIZE)  # visible parts -> the federation SDL of that view

    def validate(self, schema: GraphQLSchema, text: str, document: DocumentNode, rules: tuple) -> list[GraphQLError]:
        return self.validations.get_or_make(
            (schema, text, rules), lambda: validate(schema, document, rules, hide_suggestions=True)
        )

    # -- what a document names ------------------------------------------------------------------------------

    def _reached(self, document: DocumentNode) -> frozenset[str]:
        """The resources the document's operations reach in the full schema: their root fields, the types they
        name (fragments, variables) and the links they follow. A fragment no operation uses is left out: its
        fields are then unknown in the view, whatever they are, and the document is refused for it anyway."""
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        reached: set[str] = set()
        type_info = TypeInfo(self.schema)
        collector = _Reach(type_info, self.schema.query_type, reached)
        used = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        seen: set[str] = set()
        while used:
            definition = used.pop()
            visit(definition, TypeInfoVisitor(type_info, collector))
            for name in collector.take_spreads():
                if name in fragments and name not in seen:
                    seen.add(name)
                    used.append(fragments[name])
        return frozenset(code for name in reached for code in self._by_name.get(name, ()))

    # -- what a department may read ---------------------------------------------------------------------------

    def visible_items(self, policy, department: str, resource: Resource, now) -> frozenset[str]:
        """The items of ``resource`` that ``department`` may read (or read masked) under some purpose of its own."""
        pending = [item.name for item in resource.items]
        visible: list[str] = []
        for purpose in self._purposes.get(department, ()):
            decision = policy.decide(department, purpose, resource, pending, now)
            allowed = {name for name, item in decision.items.items() if item.allowed}
            visible += [name for name in pending if name in allowed]
            pending = [name for name in pending if name not in allowed]
            if not pending:
                break
        return frozenset(visible)

    def view_for(self, text: str, document: DocumentNode, policy, department: str, now) -> GraphQLSchema:
        """The department's view, holding what ``document`` reaches: built once for the same visible parts."""
        visible: set[tuple[str, frozenset[str]]] = set()
        for code in self._mentioned.get_or_make(text, lambda: self._reached(document)):
            items = self.visible_items(policy, department, self._shapes[code].resource, now)
            if items:
                visible.add((code, items))
        key: Visible = frozenset(visible)
        return self._views.get_or_make(key, lambda: self._build(dict(key)))

    def sdl_for(self, sdl: str, policy, department: str, now) -> str:
        """The federation SDL ``sdl`` of the whole schema cut down to ``department``'s whole view (every resource
        and item it can read under some purpose of its own): what `_service { sdl }` answers it in production."""
        visible: set[tuple[str, frozenset[str]]] = set()
        for code, shape in self._shapes.items():
            items = self.visible_items(policy, department, shape.resource, now)
            if items:
                visible.add((code, items))
        key: Visible = frozenset(visible)
        view = self._views.get_or_make(key, lambda: self._build(dict(key)))
        return self._sdls.get_or_make(key, lambda: _cut_sdl(sdl, view))

    # -- building a view --------------------------------------------------------------------------------------

    def _build(self, visible: dict[str, frozenset[str]]) -> GraphQLSchema:
        objects: dict[str, GraphQLObjectType] = {}

        def object_fields(code: str):
            shape, items = self._shapes[code], visible[code]
            fields = {name: f for name, f in shape.object_type.fields.items() if name in items}
            for link in shape.resource.links:
                target = self._shapes.get(link.target)
                # A link is shown when its key is readable on both sides, as the data path would follow it.
                if target is not None and link.item in items and link.target_item in visible.get(link.target, ()):
                    original = shape.object_type.fields[link.name]
                    fields[link.name] = _field(original, _rewrap(original.type, objects[link.target]))
            return fields

        for code in visible:
            original = self._shapes[code].object_type
            objects[code] = GraphQLObjectType(
                original.name, lambda code=code: object_fields(code), description=original.description
            )
        query_fields = dict(self._data_free_fields)
        original_query = self.schema.query_type.fields
        for code, items in visible.items():
            shape = self._shapes[code]
            page = shape.page_type
            page_copy = GraphQLObjectType(
                page.name,
                {
                    name: _field(f, _rewrap(f.type, objects[code]))
                    if get_named_type(f.type) is shape.object_type
                    else f
                    for name, f in page.fields.items()
                },
                description=page.description,
            )
            listing = original_query[shape.list]
            args = dict(listing.args)
            filterable = {n: f for n, f in shape.filter_type.fields.items() if n in items} if shape.filter_type else {}
            if filterable:
                filter_copy = GraphQLInputObjectType(
                    shape.filter_type.name,
                    filterable,
                    description=shape.filter_type.description,
                    out_type=shape.filter_type.out_type,
                )
                args["filter"] = GraphQLArgument(
                    _rewrap(listing.args["filter"].type, filter_copy), description=listing.args["filter"].description
                )
            else:
                args.pop("filter", None)
            query_fields[shape.list] = _field(listing, _rewrap(listing.type, page_copy), args)
            if shape.resource.key in items:  # a lookup by an item the department cannot read is not offered
                lookup = original_query[shape.lookup]
                query_fields[shape.lookup] = _field(lookup, _rewrap(lookup.type, objects[code]))
        # Federation: `_entities` resolves only the entity types whose lookup the view offers (the same key).
        entity_codes = sorted(code for code, items in visible.items() if self._shapes[code].resource.key in items)
        if self._entities is not None and entity_codes:
            union = get_named_type(self._entities.type)
            # every resource's object type is a member of `_Entity` (schema.builder): those of the view's shapes
            members = [
                objects[code] for code in entity_codes if self.schema.type_map.get(objects[code].name) is not None
            ]
            if members:
                entity_union = GraphQLUnionType(
                    union.name, members, resolve_type=union.resolve_type, description=union.description
                )
                query_fields[ENTITIES] = _field(self._entities, _rewrap(self._entities.type, entity_union))
        full = self.schema
        query = GraphQLObjectType(full.query_type.name, query_fields, description=full.query_type.description)
        return GraphQLSchema(
            query,
            full.mutation_type,
            full.subscription_type,
            types=self._shared_types,
            directives=full.directives,
            description=full.description,
        )


def _key_shown(directive, fields) -> bool:
    """False for a `@key` naming a field the view does not have (keys are plain field names here)."""
    if directive.name.value != "key":
        return True
    for argument in directive.arguments or ():
        if argument.name.value == "fields" and isinstance(argument.value, StringValueNode):
            return all(name in fields for name in argument.value.value.split())
    return False


def _cut_sdl(sdl: str, view: GraphQLSchema) -> str:
    """``sdl`` (the whole schema's, with its federation directives) holding only the types, fields and union members
    ``view`` has: a type the view lacks is left out, and so is every field it lacks of the types it has."""
    document = parse(sdl)
    kept = []
    for definition in document.definitions:
        if not isinstance(definition, TypeDefinitionNode):
            kept.append(definition)  # the schema's @link, directive definitions
            continue
        shown = view.type_map.get(definition.name.value)
        if shown is None:
            continue
        if isinstance(definition, (ObjectTypeDefinitionNode, InputObjectTypeDefinitionNode)):
            fields = shown.fields  # type: ignore[union-attr]
            # A type shown without its key (the department cannot read it, so no lookup either) is no entity here.
            directives = tuple(d for d in definition.directives or () if _key_shown(d, fields))
            definition = definition.__class__(
                **{
                    **{k: getattr(definition, k) for k in definition.keys},
                    "fields": tuple(f for f in definition.fields or () if f.name.value in fields),
                    "directives": directives,
                }
            )
        elif isinstance(definition, UnionTypeDefinitionNode):
            members = {t.name for t in shown.types}  # type: ignore[union-attr]
            definition = definition.__class__(
                **{
                    **{k: getattr(definition, k) for k in definition.keys},
                    "types": tuple(t for t in definition.types or () if t.name.value in members),
                }
            )
        kept.append(definition)
    return print_ast(document.__class__(definitions=tuple(kept)))


def _document_root_fields_rule(limit: int) -> type[ValidationRule]:
    """Refuses a document whose operations together hold more than ``limit`` root fields, fragments spread at
    the root included: what a view is built for must stay small whatever the document, and this counts the
    document alone, never the schema, so that the refusal says nothing of what exists."""

    class DocumentRootFields(ValidationRule):
        def enter_document(self, node: DocumentNode, *_args):
            fragments = {d.name.value: d for d in node.definitions if isinstance(d, FragmentDefinitionNode)}
            spread: set[str] = set()

            def count(selection_set) -> int:
                total = 0
                for selection in selection_set.selections:
                    if isinstance(selection, FieldNode):
                        total += 1
                    elif isinstance(selection, InlineFragmentNode):
                        total += count(selection.selection_set)
                    elif selection.name.value in fragments and selection.name.value not in spread:
                        spread.add(selection.name.value)
                        total += count(fragments[selection.name.value].selection_set)
                return total

            found = sum(count(d.selection_set) for d in node.definitions if isinstance(d, OperationDefinitionNode))
            if found > limit:
                self.report_error(
                    GraphQLError(
                        f"{found} root fields in the document; at most {limit}",
                        extensions={"code": "TOO_MANY_ROOT_FIELDS"},
                    )
                )
            return SKIP

    return DocumentRootFields


class DepartmentView(SchemaExtension):
    """Production validation: against the caller's department view, with messages naming only what was sent.

    Takes the place of strawberry's ValidationCache (keyed the same way, by the view instead of the schema).
    Variables are coerced against the view too, before execution, so that an input field the department
    cannot see is refused exactly as an unknown one, not accepted by the full schema's input type.
    """

    def __init__(self, views: SchemaViews) -> None:
        self.views = views
        self._made: GraphQLSchema | None = None  # this request's view, once made

    def _view(self) -> GraphQLSchema:
        if self._made is None:
            ctx = self.execution_context
            request = ctx.context
            self._made = self.views.view_for(
                self._text, ctx.graphql_document, request.policy, request.caller.department, request.now
            )
        return self._made

    @property
    def _text(self) -> str:
        # The caches are keyed by the document's text; the server always gives it (never a parsed document alone).
        if self.execution_context.query is None:
            raise RuntimeError("DepartmentView needs the query text")
        return self.execution_context.query

    def _sent(self) -> set[str]:
        ctx = self.execution_context
        return sent_names(self._text, ctx.variables)

    def on_validate(self):
        ctx = self.execution_context
        if ctx.pre_execution_errors is None:  # not already refused by an extension before this one
            ctx.pre_execution_errors = self.views.validate(
                self.views.schema, self._text, ctx.graphql_document, self.views.limits
            )
        if not ctx.pre_execution_errors:
            # strawberry's own two rules, as its validate_document adds them
            rules = (*ctx.validation_rules, MaybeNullValidationRule, OneOfInputValidationRule)
            ctx.pre_execution_errors = self.views.validate(self._view(), self._text, ctx.graphql_document, rules)
        if ctx.pre_execution_errors:
            ctx.pre_execution_errors = redact(ctx.pre_execution_errors, self._sent(), self.views.names)
        yield

    def on_execute(self):
        ctx = self.execution_context
        operation = get_operation_ast(ctx.graphql_document, ctx.operation_name)
        if operation is not None and operation.variable_definitions:
            coerced = get_variable_values(
                self._view(), operation.variable_definitions, ctx.variables or {}, hide_suggestions=True
            )
            if isinstance(coerced, list):  # refused: graphql-core's own answer for bad variables, redacted
                ctx.result = ExecutionResult(data=None, errors=redact(coerced, self._sent(), self.views.names))
        yield
        result = ctx.result
        if result is not None and result.errors:
            result.errors = redact(result.errors, self._sent(), self.views.names)
