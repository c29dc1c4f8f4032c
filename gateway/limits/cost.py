"""The cost of an operation, computed from the list sizes it asks for, before it runs.

- Every field costs 1. `__typename` costs nothing, and introspection (`__schema`,
  `__type`) is exempt: its size is the schema's, not the data's, it does no I/O, and its
  nesting is bounded by graphql-core's `MaxIntrospectionDepthRule` (production turns it
  off altogether).
- A field with a `first` argument returns a page of `first` items: the literal, else the
  variable's value, else the variable's default, else the argument's default (`orders`
  10, `members` 20). A list (`orders(first: 5)`, `topCustomers`) multiplies the cost of
  its subtree by `first`; a connection (`members`, `transactions`) multiplies the subtree
  of its `edges` by `first`, while its `pageInfo` and `totalCount` count once.
- Federation's `_entities(representations:)` returns one item per representation: its
  subtree is multiplied by their number.
- Any other list of objects multiplies its subtree by its bound in `LIST_SIZES` (the most
  items it holds in practice), else `DEFAULT_LIST_SIZE`. A list of scalars is one field.
- Fragments and inline fragments add their fields where they are spread. The fragments of
  an abstract type (`node { ... on Member { } ... on Household { } }`) all add up, and a
  field under `@skip` or `@include` counts: the cost is an upper bound, never less than
  what runs.

So `members(first: 1000) { edges { node { orders(first: 100) { id } } } }` costs
1 + (1 + 1000 * (1 + (1 + 100 * 1))) = 102,002, while the storefront's member view
(`examples/storefront/MemberView.graphql`) costs 178.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
)
from graphql.utilities import get_operation_ast

__all__ = ["DEFAULT_LIST_SIZE", "LIST_SIZES", "PAGE_ARGUMENT", "operation_cost"]

PAGE_ARGUMENT = "first"
ITEMS_ARGUMENT = "representations"  # federation's _entities: one item per representation
# The lists of objects without a `first` argument, by `Type.field`: the most items one
# holds in practice. A test fails when a new list is not sized here.
LIST_SIZES: Mapping[str, int] = {
    "Cart.lineItems": 20,
    "Household.members": 10,  # the programs allow 4 to 6
    "Member.sentHouseholdInvitations": 10,  # with the members, at most max_members
    "Member.offers": 10,
    "Member.householdInvitations": 10,  # the newest 10 are shown (resolvers/members.py)
    "Program.tiers": 10,
    "EnrollMemberPayload.userErrors": 5,
    "ForgetMemberPayload.userErrors": 5,
    "HouseholdPayload.userErrors": 5,
    "MemberPayload.userErrors": 5,
    "PointsPayload.userErrors": 5,
}
DEFAULT_LIST_SIZE = 20
CONNECTION_EDGES = "edges"


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None = None,
    variables: Mapping[str, object] | None = None,
) -> int:
    """The cost of the operation `operation_name` of a validated document (see the module)."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return 0
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    defaults = {
        d.variable.name.value: int(d.default_value.value)
        for d in operation.variable_definitions or ()
        if isinstance(d.default_value, IntValueNode)
    }
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    walk = _CostWalk(schema, fragments, dict(variables or {}), defaults)
    return walk.selection_set(operation.selection_set, root, edges_page=None)


@dataclass
class _CostWalk:
    schema: GraphQLSchema
    fragments: dict[str, FragmentDefinitionNode]
    variables: dict[str, object]
    variable_defaults: dict[str, int]
    # Each fragment is costed once per page it meets (a fragment spread into fragments
    # costs its size to walk, not its expansion).
    known: dict[tuple[str, int | None], int] = field(default_factory=dict)
    entered: set[str] = field(default_factory=set)

    def selection_set(
        self, selection_set: SelectionSetNode, parent: GraphQLNamedType, edges_page: int | None
    ) -> int:
        """`edges_page`: the page size of the connection whose fields these are."""
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, edges_page)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                on = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selection_set(selection.selection_set, on or parent, edges_page)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value, edges_page)
        return total

    def fragment(self, name: str, edges_page: int | None) -> int:
        key = (name, edges_page)
        if key in self.known:
            return self.known[key]
        fragment = self.fragments.get(name)
        if fragment is None or name in self.entered:  # validation refuses these
            return 0
        on = self.schema.get_type(fragment.type_condition.name.value)
        if on is None:
            return 0
        self.entered.add(name)
        self.known[key] = self.selection_set(fragment.selection_set, on, edges_page)
        self.entered.discard(name)
        return self.known[key]

    def field(self, node: FieldNode, parent: GraphQLNamedType, edges_page: int | None) -> int:
        name = node.name.value
        if name.startswith("__"):
            return 0  # __typename, and introspection (see the module)
        definition = _field_of(parent, name)
        if definition is None or node.selection_set is None:
            return 1
        returns = get_named_type(definition.type)
        page = self.page_size(node, definition)
        if page is None:
            page = self.items(node, definition)
        if page is not None and _is_connection(returns):
            return 1 + self.selection_set(node.selection_set, returns, edges_page=page)
        children = self.selection_set(node.selection_set, returns, edges_page=None)
        if page is not None:
            return 1 + page * children
        if isinstance(get_nullable_type(definition.type), GraphQLList):  # type: ignore[arg-type]
            if name == CONNECTION_EDGES and edges_page is not None:
                return 1 + edges_page * children
            return 1 + LIST_SIZES.get(f"{parent.name}.{name}", DEFAULT_LIST_SIZE) * children
        return 1 + children

    def page_size(self, node: FieldNode, definition: GraphQLField) -> int | None:
        """The `first` a field asks for; None for a field without that argument."""
        argument = definition.args.get(PAGE_ARGUMENT)
        if argument is None:
            return None
        value: object = argument.default_value
        for given in node.arguments or ():
            if given.name.value != PAGE_ARGUMENT:
                continue
            if isinstance(given.value, IntValueNode):
                value = int(given.value.value)
            elif isinstance(given.value, VariableNode):
                variable = given.value.name.value
                value = self.variables.get(variable, self.variable_defaults.get(variable, value))
        if not isinstance(value, int) or isinstance(value, bool):
            return DEFAULT_LIST_SIZE  # execution refuses it; cost what it would have been
        return max(0, value)

    def items(self, node: FieldNode, definition: GraphQLField) -> int | None:
        """How many items a list argument asks for (`_entities(representations:)`); None
        for a field without it."""
        if ITEMS_ARGUMENT not in definition.args:
            return None
        for given in node.arguments or ():
            if given.name.value != ITEMS_ARGUMENT:
                continue
            if isinstance(given.value, ListValueNode):
                return len(given.value.values)
            if isinstance(given.value, VariableNode):
                value = self.variables.get(given.value.name.value)
                return len(value) if isinstance(value, list) else 1  # a single value: one
        return 0


def _field_of(parent: GraphQLNamedType, name: str) -> GraphQLField | None:
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        found: GraphQLField | None = parent.fields.get(name)
        return found
    return None


def _is_connection(named: GraphQLNamedType) -> bool:
    return isinstance(named, GraphQLObjectType) and CONNECTION_EDGES in named.fields
