"""The schema extensions that enforce the operation limits, in the order they act: the
parser's token limit, then the depth and alias limits (validation rules, cached with the
rest of validation), then the cost limit (at the start of execution, where the variables
are known)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from graphql import ASTValidationRule
from graphql.validation import MaxIntrospectionDepthRule
from strawberry.extensions import SchemaExtension

from gateway.limits.aliases import alias_limit_rule
from gateway.limits.cost_limit import CostLimit, OperationCosts
from gateway.limits.depth import IntrospectionDepthLimit, depth_limit_rule
from gateway.limits.tokens import TokenLimitedParser

__all__ = ["OperationLimits", "limit_extensions"]


@dataclass(frozen=True, slots=True)
class OperationLimits:
    """`PATRON_MAX_TOKENS`, `PATRON_MAX_DEPTH`, `PATRON_MAX_ALIASES`, `PATRON_MAX_COST`."""

    max_tokens: int = 2000
    max_depth: int = 10
    max_aliases: int = 15
    max_cost: int = 5000


def limit_extensions(limits: OperationLimits) -> list[Callable[[], SchemaExtension]]:
    """Put first in the schema's extensions: a refusal then ends the operation before any
    other extension has begun."""
    # The rule classes are made once: strawberry's validation cache keys on them.
    rules = (depth_limit_rule(limits.max_depth), alias_limit_rule(limits.max_aliases))
    costs = OperationCosts()
    return [
        lambda: TokenLimitedParser(limits.max_tokens),
        lambda: LimitRules(rules),
        lambda: CostLimit(limits.max_cost, costs),
    ]


class LimitRules(SchemaExtension):
    """Adds the depth and alias rules to validation, and gives graphql-core's own bound on
    introspection (one of its specified rules) our code."""

    def __init__(self, rules: Sequence[type[ASTValidationRule]]) -> None:
        self.rules = tuple(rules)

    def on_operation(self) -> Iterator[None]:
        ctx = self.execution_context
        specified = (
            IntrospectionDepthLimit if rule is MaxIntrospectionDepthRule else rule
            for rule in ctx.validation_rules
        )
        ctx.validation_rules = (*specified, *self.rules)
        yield
