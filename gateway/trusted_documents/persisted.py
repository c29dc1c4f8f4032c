"""Automatic persisted queries (Apollo's APQ): documents registered by their SHA-256, kept
`PATRON_APQ_TTL` seconds (a day; each registration renews it), in the cache store: Redis
under `patron:apq:` when configured (every replica knows a document one has registered),
else a bounded in-process LRU. A Redis failure is a miss (the client sends the document
again), never a failed request."""

from __future__ import annotations

from adapters.cache.store import CacheStore
from gateway.trusted_documents.manifest import document_hash

__all__ = ["MAX_IN_PROCESS", "PersistedQueries"]

MAX_IN_PROCESS = 2000  # documents kept by one process without Redis
KEY = "apq:"


class PersistedQueries:
    def __init__(self, store: CacheStore, ttl: float) -> None:
        self.store = store
        self.ttl = ttl

    async def get(self, sha256: str) -> str | None:
        found = (await self.store.get_many([KEY + sha256])).get(KEY + sha256)
        if found is None:
            return None
        document = found.decode()
        return document if document_hash(document) == sha256 else None

    async def put(self, sha256: str, document: str) -> None:
        """Register `document`, whose hash the caller has checked."""
        await self.store.set_many({KEY + sha256: document.encode()}, self.ttl)
