"""What a query asks for below a field, read from the selection set (fragments included)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from strawberry.types import Info
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection


def selects(info: Info[Any, Any], name: str) -> bool:
    """Whether the field being resolved selects a field `name` right below it (directly or
    through a fragment; `@skip`/`@include` are not evaluated: a skipped field counts)."""
    return any(_has(field.selections, name) for field in info.selected_fields)


def _has(selections: Iterable[Selection], name: str) -> bool:
    for selection in selections:
        if isinstance(selection, SelectedField) and selection.name == name:
            return True
        if isinstance(selection, FragmentSpread | InlineFragment) and _has(
            selection.selections, name
        ):
            return True
    return False
