"""Who may run which document: with `PATRON_TRUSTED_DOCUMENTS_ONLY`, staff (associate,
marketer, admin) and services run any document (GraphiQL for staff, back-office tools),
anyone else only the manifest's; without it, anyone runs anything."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.trusted_documents.manifest import document_hash

__all__ = ["TrustPolicy"]


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    manifest: Mapping[str, str] = field(default_factory=dict)
    trusted_only: bool = False

    def unrestricted(self, may_send_any: bool) -> bool:
        """`may_send_any`: the caller is staff or a service."""
        return may_send_any or not self.trusted_only

    def allows(self, query: str, may_send_any: bool) -> bool:
        return self.unrestricted(may_send_any) or document_hash(query) in self.manifest
