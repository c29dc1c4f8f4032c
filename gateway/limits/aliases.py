"""The alias limit: the number of aliased fields in an operation, counted through
fragments (a fragment spread twice counts its aliases twice, as they execute twice).
Aliases let one request repeat an expensive field under many names; the cost limit counts
each of them too, this limit refuses the pattern outright. The refusal is
`ALIAS_LIMIT_EXCEEDED` with `aliases` and `maxAliases`."""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
)
from graphql.language import SKIP, VisitorAction

from gateway.limits.errors import ALIAS_LIMIT_EXCEEDED, limit_error
from gateway.limits.fragments import FragmentLookup, FragmentMeasures

__all__ = ["alias_limit_rule", "operation_aliases"]


def operation_aliases(operation: OperationDefinitionNode, fragments: FragmentLookup) -> int:
    def aliases(selection_set: SelectionSetNode | None) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += (selection.alias is not None) + aliases(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                total += aliases(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                total += spread(selection.name.value)
        return total

    spread = FragmentMeasures(fragments, aliases)
    return aliases(operation.selection_set)


def alias_limit_rule(max_aliases: int) -> type[ValidationRule]:
    """A validation rule refusing each operation with more than `max_aliases` aliases."""

    class AliasLimit(ValidationRule):
        def enter_operation_definition(
            self, node: OperationDefinitionNode, *_args: Any
        ) -> VisitorAction:
            aliases = operation_aliases(node, self.context.get_fragment)
            if aliases > max_aliases:
                self.report_error(
                    limit_error(
                        ALIAS_LIMIT_EXCEEDED,
                        f"the operation has {aliases} aliases; the limit is {max_aliases}",
                        [node],
                        aliases=aliases,
                        maxAliases=max_aliases,
                    )
                )
            return SKIP

    return AliasLimit
