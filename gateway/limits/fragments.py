"""Measuring an operation through its fragments, for the depth and alias limits: each
fragment is measured once per operation (a fragment spread many times, or a fragment bomb,
costs one walk), and an unknown fragment or a cycle measures 0 (other validation rules
report those)."""

from __future__ import annotations

from collections.abc import Callable

from graphql import FragmentDefinitionNode, SelectionSetNode

__all__ = ["FragmentLookup", "FragmentMeasures"]

FragmentLookup = Callable[[str], FragmentDefinitionNode | None]


class FragmentMeasures:
    """The measure of each fragment of one operation, computed on first use by `measure`."""

    def __init__(
        self, fragments: FragmentLookup, measure: Callable[[SelectionSetNode], int]
    ) -> None:
        self.fragments = fragments
        self.measure = measure
        self.known: dict[str, int] = {}
        self.entered: set[str] = set()

    def __call__(self, name: str) -> int:
        if name in self.known:
            return self.known[name]
        fragment = self.fragments(name)
        if fragment is None or name in self.entered:
            return 0
        self.entered.add(name)
        self.known[name] = self.measure(fragment.selection_set)
        self.entered.discard(name)
        return self.known[name]
