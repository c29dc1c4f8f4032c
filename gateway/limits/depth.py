"""The depth limit: how deeply fields nest in an operation, counted through fragments.
`{ me { points { available } } }` is 3 deep. Introspection (`__schema`, `__type`) and
`__typename` do not count: introspection is bounded by graphql-core's
`MaxIntrospectionDepthRule` instead (see `gateway.limits.extensions`). The refusal is
`DEPTH_LIMIT_EXCEEDED` with `depth` and `maxDepth`."""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
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
from gateway.limits.fragments import FragmentLookup, FragmentMeasures

__all__ = ["IntrospectionDepthLimit", "depth_limit_rule", "operation_depth"]


def operation_depth(operation: OperationDefinitionNode, fragments: FragmentLookup) -> int:
    """Each fragment is measured once, so a document that spreads fragments into fragments
    costs its size, not its expansion."""

    def depth(selection_set: SelectionSetNode | None) -> int:
        if selection_set is None:
            return 0
        deepest = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.name.value.startswith("__"):
                    continue
                deepest = max(deepest, 1 + depth(selection.selection_set))
            elif isinstance(selection, InlineFragmentNode):
                deepest = max(deepest, depth(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                deepest = max(deepest, spread(selection.name.value))
        return deepest

    spread = FragmentMeasures(fragments, depth)
    return depth(operation.selection_set)


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
