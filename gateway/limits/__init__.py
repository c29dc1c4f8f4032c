"""Operation limits: what a GraphQL operation may ask for, checked before it executes.

Each is a setting (`PATRON_MAX_*`) and each refusal a GraphQL error with a stable
`extensions.code` and nothing executed (README, Operation limits):

- tokens (`tokens`): the parser stops at `max_tokens` lexical tokens, `TOKEN_LIMIT_EXCEEDED`;
- depth (`depth`): fields nested deeper than `max_depth`, `DEPTH_LIMIT_EXCEEDED`;
- aliases (`aliases`): more than `max_aliases` aliased fields, `ALIAS_LIMIT_EXCEEDED`;
- cost (`cost`): list sizes multiplied out, over `max_cost`, `COST_LIMIT_EXCEEDED`.

`limit_extensions` gives the schema extensions that enforce them.
"""

from gateway.limits.extensions import OperationLimits, limit_extensions

__all__ = ["OperationLimits", "limit_extensions"]
