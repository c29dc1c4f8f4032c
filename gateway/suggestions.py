"""No field suggestions in production: GraphQL's "Did you mean ...?" hints name fields,
arguments, types and enum values close to what a client typed, which lets anyone map a
schema whose introspection is off. `HideSuggestions` strips the hint from every error of a
result; the rest of the message stays ("Cannot query field 'mee' on type 'Query'.").

graphql-core words every hint as one sentence, " Did you mean X?" (`did_you_mean`, and the
enum, argument, input field and scalar-leaf rules), always at the end of the message and
with no "?" inside (the suggestions are names). strawberry's own `disable_field_suggestions`
covers only "Cannot query field" messages; this covers all of them, wherever they arise
(validation, or variables coerced at execution).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

__all__ = ["HideSuggestions", "without_suggestions"]

_SUGGESTION = re.compile(r"\s*Did you mean\b[^?]*\?")


def without_suggestions(message: str) -> str:
    return _SUGGESTION.sub("", message)


class HideSuggestions(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        for error in (result.errors if result is not None else None) or ():
            _strip(error)


def _strip(error: GraphQLError) -> None:
    message = without_suggestions(error.message)
    if message != error.message:
        error.message = message  # in place: a cached validation error is stripped for good
