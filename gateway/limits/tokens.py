"""The token limit: the parser stops after `max_tokens` lexical tokens (graphql-core's
`max_lexical_tokens`; comments do not count), so a huge document costs no more than that to
refuse. The refusal is `TOKEN_LIMIT_EXCEEDED` with `maxTokens`.

`TokenLimitedParser` replaces strawberry's `ParserCache`: the same bounded LRU of parsed
documents, keyed by the query text and the limit. A document that fails to parse is not
cached: strawberry parses it again, with the same limit (`parse_options`), inside its own
error handling, so the error reaches the client on every transport (HTTP and WebSocket);
this extension then gives a token-limit error its code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from functools import cache, lru_cache

from graphql import DocumentNode, GraphQLError, GraphQLSyntaxError, Source, TokenKind, parse
from graphql.language import Lexer
from strawberry.extensions import SchemaExtension

from gateway.limits.errors import TOKEN_LIMIT_EXCEEDED

__all__ = ["TokenLimitedParser", "exceeds_tokens"]

DEFAULT_CACHE_SIZE = 256


@cache
def _cached_parse(maxsize: int) -> Callable[[str, int], DocumentNode]:
    """One LRU per size, shared by every request (as strawberry's ParserCache does)."""

    def parse_limited(query: str, max_tokens: int) -> DocumentNode:
        return parse(query, max_lexical_tokens=max_tokens)

    return lru_cache(maxsize=maxsize)(parse_limited)


def exceeds_tokens(query: str, max_tokens: int) -> bool:
    """Whether the document has more than `max_tokens` lexical tokens (comments aside);
    it stops reading at the first token over. False when it cannot be read that far."""
    lexer = Lexer(Source(query))
    count = 0
    try:
        while lexer.advance().kind != TokenKind.EOF:
            count += 1
            if count > max_tokens:
                return True
    except GraphQLSyntaxError:
        return False
    return False


class TokenLimitedParser(SchemaExtension):
    def __init__(self, max_tokens: int, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self.max_tokens = max_tokens
        self.parse = _cached_parse(cache_size)

    def on_operation(self) -> Iterator[None]:
        # Every parse of this operation, strawberry's own included, stops at the limit.
        # (strawberry's ParseOptions names only the deprecated `max_tokens`.)
        options = self.execution_context.parse_options
        options["max_lexical_tokens"] = self.max_tokens  # type: ignore[typeddict-unknown-key]
        yield

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.graphql_document is None and ctx.query is not None:
            # On failure strawberry parses it again and reports the error (see the module).
            with contextlib.suppress(GraphQLError):
                ctx.graphql_document = self.parse(ctx.query, self.max_tokens)
        yield
        query = ctx.query
        for error in ctx.pre_execution_errors or ():
            if isinstance(error, GraphQLSyntaxError) and query and self.exceeded(query):
                error.message = f"the document has more than {self.max_tokens} tokens"
                error.extensions = {"code": TOKEN_LIMIT_EXCEEDED, "maxTokens": self.max_tokens}

    def exceeded(self, query: str) -> bool:
        return exceeds_tokens(query, self.max_tokens)
