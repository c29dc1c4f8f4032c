"""The depth limit: how deeply fields nest in an operation, counted through fragments.
`{ me { points { available } } }` is 3 deep. Introspection (`__schema`, `__type`) and
`__typename` do not count: introspection is bounded by graphql-core's
`MaxIntrospectionDepthRule` instead (see `gateway.limits.extensions`). The refusal is
`DEPTH_LIMIT_EXCEEDED` with `depth` and `maxDepth`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
)
from graphql.language import SKIP, VisitorAction
from graphql.validation import MaxIntrospectionDepthRule

from gateway.limits.errors import DEPTH_LIMIT_EXCEEDED, limit_error

__all__ = ["IntrospectionDepthLimit", "depth_limit_rule", "operation_depth"]

FragmentLookup = Callable[[str], FragmentDefinitionNode | None]


def operation_depth(operation: OperationDefinitionNode, fragments: FragmentLookup) -> int:
    return _depth(operation.selection_set, fragments, {}, set())


def _depth(
    selection_set: SelectionSetNode | None,
    fragments: FragmentLookup,
    known: dict[str, int],
    entered: set[str],
) -> int:
    """The depth of a selection set; each fragment is measured once (`known`), so a
    document that spreads fragments into fragments costs its size, not its expansion."""
    if selection_set is None:
        return 0
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value.startswith("__"):
                continue
            depth = 1 + _depth(selection.selection_set, fragments, known, entered)
        elif isinstance(selection, InlineFragmentNode):
            depth = _depth(selection.selection_set, fragments, known, entered)
        elif isinstance(selection, FragmentSpreadNode):
            depth = _fragment_depth(selection.name.value, fragments, known, entered)
        else:  # pragma: no cover - the three kinds of selection
            continue
        deepest = max(deepest, depth)
    return deepest


def _fragment_depth(
    name: str, fragments: FragmentLookup, known: dict[str, int], entered: set[str]
) -> int:
    if name in known:
        return known[name]
    fragment = fragments(name)
    if fragment is None or name in entered:  # unknown or a cycle: other rules report it
        return 0
    entered.add(name)
    known[name] = _depth(fragment.selection_set, fragments, known, entered)
    entered.discard(name)
    return known[name]


def depth_limit_rule(max_depth: int) -> type[ValidationRule]:
    """A validation rule refusing each operation deeper than `max_depth`. Made once per
    schema (strawberry's validation cache keys on the rule classes)."""

    class DepthLimit(ValidationRule):
        def enter_operation_definition(
            self, node: OperationDefinitionNode, *_args: Any
        ) -> VisitorAction:
            depth = operation_depth(node, self.context.get_fragment)
            if depth > max_depth:
                self.report_error(
                    limit_error(
                        DEPTH_LIMIT_EXCEEDED,
                        f"the operation is {depth} fields deep; the limit is {max_depth}",
                        [node],
                        depth=depth,
                        maxDepth=max_depth,
                    )
                )
            return SKIP

    return DepthLimit


class IntrospectionDepthLimit(MaxIntrospectionDepthRule):
    """graphql-core's bound on introspection (lists of `__Type` fields nested 3 deep at
    most: `__schema { types { fields { type { fields ...`), with our code."""

    def report_error(self, error: GraphQLError) -> None:
        error.extensions = {"code": DEPTH_LIMIT_EXCEEDED}
        super().report_error(error)
