"""Trusted documents only, on every transport: an HTTP request is checked when its
document is resolved (`resolution`), before parsing; a WebSocket `subscribe` message
carries its document to strawberry directly, so this extension checks the document again
at execution (after the operation limits) and refuses it with `TRUSTED_DOCUMENT_REQUIRED`."""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from gateway.trusted_documents.policy import TrustPolicy
from gateway.trusted_documents.resolution import not_trusted

__all__ = ["TrustedDocumentsOnly"]


class TrustedDocumentsOnly(SchemaExtension):
    def __init__(self, policy: TrustPolicy) -> None:
        self.policy = policy

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        viewer = getattr(ctx.context, "viewer", None)
        may_send_any = viewer is not None and viewer.reads_any_member
        if ctx.query is not None and not self.policy.allows(ctx.query, may_send_any):
            raise not_trusted().error()
        yield
