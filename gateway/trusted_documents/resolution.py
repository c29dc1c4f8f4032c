"""From a request's parameters to the document to run, before strawberry parses anything.

A client names a document in one of three ways:

- `documentId: "sha256:<hex>"` (GraphQL over HTTP, persisted documents; a bare 64-hex id,
  as GraphQL Codegen sends, is read the same), with no `query`;
- `extensions.persistedQuery: {"version": 1, "sha256Hash": "<hex>"}` (Apollo's APQ), with
  no `query` (a lookup) or with it (a registration: the hash is checked, the document
  stored, then run);
- `query`, the document itself.

A hash is looked up in the manifest, then in the APQ store. `PATRON_TRUSTED_DOCUMENTS_ONLY`
lets callers who are not staff or services (anonymous callers, members) run only the
manifest's documents, by hash or by their exact text, and register nothing.

Refusals (each a GraphQL error with its code; nothing runs):

- 400 `INVALID_DOCUMENT_ID`: a malformed `documentId` or `persistedQuery`, or a
  `documentId` sent with a `query`;
- 200 `PERSISTED_QUERY_NOT_FOUND`, message `PersistedQueryNotFound`: an unknown hash.
  Apollo's clients look for exactly this, then send the document with its hash;
- 400 `PERSISTED_QUERY_HASH_MISMATCH`: a registration whose document is not its hash's;
- 403 `TRUSTED_DOCUMENT_REQUIRED`: trusted documents only, and a caller neither staff nor
  a service sends (or registers) a document that is not in the manifest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from graphql import GraphQLError

from gateway.trusted_documents.manifest import document_hash
from gateway.trusted_documents.persisted import PersistedQueries
from gateway.trusted_documents.policy import TrustPolicy

__all__ = [
    "INVALID_DOCUMENT_ID",
    "PERSISTED_QUERY_HASH_MISMATCH",
    "PERSISTED_QUERY_NOT_FOUND",
    "TRUSTED_DOCUMENT_REQUIRED",
    "DocumentParams",
    "DocumentRefusal",
    "TrustedDocuments",
    "not_trusted",
]

INVALID_DOCUMENT_ID = "INVALID_DOCUMENT_ID"
PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
TRUSTED_DOCUMENT_REQUIRED = "TRUSTED_DOCUMENT_REQUIRED"

_SHA256 = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")


@dataclass(frozen=True, slots=True)
class DocumentParams:
    """The request's parameters that name its document (as sent: not yet checked)."""

    query: str | None
    document_id: object = None
    extensions: Mapping[str, object] | None = None


class DocumentRefusal(Exception):
    """Raised by `TrustedDocuments.resolve`: the HTTP status and the GraphQL error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def error(self) -> GraphQLError:
        return GraphQLError(self.message, extensions={"code": self.code})


class TrustedDocuments:
    def __init__(self, policy: TrustPolicy, persisted: PersistedQueries | None) -> None:
        """`persisted`: the APQ store; None turns registration off."""
        self.policy = policy
        self.manifest = policy.manifest
        self.persisted = persisted

    async def resolve(self, params: DocumentParams, may_send_any: bool) -> str | None:
        """The document to run (None: the request names none), or DocumentRefusal.
        `may_send_any`: the caller is staff or a service."""
        unrestricted = self.policy.unrestricted(may_send_any)
        if params.document_id is not None:
            if params.query is not None:
                raise _invalid("send either documentId or query, not both")
            return await self._lookup(_document_id(params.document_id), unrestricted)
        apq = (params.extensions or {}).get("persistedQuery")
        if apq is not None:
            sha256 = _persisted_query_hash(apq)
            if params.query is None:
                return await self._lookup(sha256, unrestricted)
            return await self._register(sha256, params.query, unrestricted)
        if params.query is not None and not self.policy.allows(params.query, may_send_any):
            raise not_trusted()
        return params.query

    async def _lookup(self, sha256: str, unrestricted: bool) -> str:
        if sha256 in self.manifest:
            return self.manifest[sha256]
        if not unrestricted:
            raise not_trusted()
        found = await self.persisted.get(sha256) if self.persisted is not None else None
        if found is None:
            raise DocumentRefusal(200, PERSISTED_QUERY_NOT_FOUND, "PersistedQueryNotFound")
        return found

    async def _register(self, sha256: str, query: str, unrestricted: bool) -> str:
        if document_hash(query) != sha256:
            raise DocumentRefusal(
                400, PERSISTED_QUERY_HASH_MISMATCH, "the query's SHA-256 is not sha256Hash"
            )
        if sha256 in self.manifest:
            return query
        if not unrestricted:
            raise not_trusted()
        if self.persisted is not None:
            await self.persisted.put(sha256, query)
        return query


def _document_id(value: object) -> str:
    match = _SHA256.match(value) if isinstance(value, str) else None
    if match is None:
        raise _invalid('documentId must be "sha256:" and 64 lowercase hexadecimal digits')
    return match[1]


def _persisted_query_hash(value: object) -> str:
    if not isinstance(value, Mapping) or value.get("version") != 1:
        raise _invalid("extensions.persistedQuery must be {version: 1, sha256Hash}")
    sha256 = value.get("sha256Hash")
    match = _SHA256.match(sha256) if isinstance(sha256, str) and ":" not in sha256 else None
    if match is None:
        raise _invalid("persistedQuery.sha256Hash must be 64 lowercase hexadecimal digits")
    return match[1]


def _invalid(message: str) -> DocumentRefusal:
    return DocumentRefusal(400, INVALID_DOCUMENT_ID, message)


def not_trusted() -> DocumentRefusal:
    return DocumentRefusal(
        403,
        TRUSTED_DOCUMENT_REQUIRED,
        "this gateway runs only its apps' trusted documents: send one by documentId",
    )
