"""The alias limit: the number of aliased fields in an operation, counted through
fragments (a fragment spread twice counts its aliases twice, as they execute twice).
Aliases let one request repeat an expensive field under many names; the cost limit counts
each of them too, this limit refuses the pattern outright. The refusal is
`ALIAS_LIMIT_EXCEEDED` with `aliases` and `maxAliases`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
)
from graphql.language import SKIP, VisitorAction

from gateway.limits.errors import ALIAS_LIMIT_EXCEEDED, limit_error

__all__ = ["alias_limit_rule", "operation_aliases"]

FragmentLookup = Callable[[str], FragmentDefinitionNode | None]


def operation_aliases(operation: OperationDefinitionNode, fragments: FragmentLookup) -> int:
    return _aliases(operation.selection_set, fragments, {}, set())


def _aliases(
    selection_set: SelectionSetNode | None,
    fragments: FragmentLookup,
    known: dict[str, int],
    entered: set[str],
) -> int:
    if selection_set is None:
        return 0
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            total += (selection.alias is not None) + _aliases(
                selection.selection_set, fragments, known, entered
            )
        elif isinstance(selection, InlineFragmentNode):
            total += _aliases(selection.selection_set, fragments, known, entered)
        elif isinstance(selection, FragmentSpreadNode):
            total += _fragment_aliases(selection.name.value, fragments, known, entered)
    return total


def _fragment_aliases(
    name: str, fragments: FragmentLookup, known: dict[str, int], entered: set[str]
) -> int:
    if name in known:
        return known[name]
    fragment = fragments(name)
    if fragment is None or name in entered:  # unknown or a cycle: other rules report it
        return 0
    entered.add(name)
    known[name] = _aliases(fragment.selection_set, fragments, known, entered)
    entered.discard(name)
    return known[name]


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
