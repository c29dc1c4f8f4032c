"""What a query asks for below a field, read from the selection set (fragments included).

It reads graphql-core's field nodes (`Info._raw_info`) rather than strawberry's
`Info.selected_fields`, which converts the field's whole selection tree into its own
objects: for the member view's `me`, 66 nodes converted to answer one yes-or-no question.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionNode,
)
from strawberry.types import Info


def selects(info: Info[Any, Any], name: str) -> bool:
    """Whether the field being resolved selects a field `name` right below it (directly or
    through a fragment; `@skip`/`@include` are not evaluated: a skipped field counts)."""
    raw = info._raw_info
    return any(
        node.selection_set is not None
        and _has(node.selection_set.selections, name, raw.fragments, set())
        for node in raw.field_nodes
    )


def _has(
    selections: Iterable[SelectionNode],
    name: str,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: set[str],
) -> bool:
    for selection in selections:
        if isinstance(selection, FieldNode):
            if selection.name.value == name:
                return True
        elif isinstance(selection, InlineFragmentNode):
            if _has(selection.selection_set.selections, name, fragments, seen):
                return True
        elif isinstance(selection, FragmentSpreadNode):
            spread = selection.name.value
            fragment = fragments.get(spread)
            if fragment is not None and spread not in seen:
                seen.add(spread)
                if _has(fragment.selection_set.selections, name, fragments, seen):
                    return True
    return False
