"""The trusted documents: the operations the storefront, the mobile app and the associate
app send, readable in `examples/<app>/<Name>.graphql` (one named operation per file, named
as the file, with the fragments it uses), and the manifest made from them by
`patron trusted-documents` (`make documents`): `examples/manifest.json`.

The manifest is `{"<sha256 hex>": "<document>"}`, keys sorted: the format of GraphQL
Codegen's persisted documents (the client preset's `persistedDocuments`), which Apollo's
and other clients can read. Each document is its file printed by graphql-core (comments
dropped, layout normalised), and its key the SHA-256 of that text in UTF-8: what a client
sends as `documentId: "sha256:<hex>"` or `extensions.persistedQuery.sha256Hash`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

from graphql import GraphQLError, OperationDefinitionNode, parse, print_ast

__all__ = [
    "DEFAULT_MANIFEST",
    "EXAMPLES_DIR",
    "ManifestError",
    "build_manifest",
    "document_hash",
    "example_documents",
    "load_manifest",
    "manifest_text",
]

# The project's own examples/ folder, wherever the gateway is started from.
EXAMPLES_DIR = Path(__file__).resolve().parent.parent.parent / "examples"
DEFAULT_MANIFEST = EXAMPLES_DIR / "manifest.json"


class ManifestError(ValueError):
    """An example or a manifest that cannot be trusted; the message names the file."""


def document_hash(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def example_documents(directory: Path) -> dict[str, str]:
    """Each example's document as the manifest holds it, by its path under `directory`."""
    documents: dict[str, str] = {}
    for path in sorted(directory.rglob("*.graphql")):
        name = path.relative_to(directory).as_posix()
        try:
            document = parse(path.read_text(encoding="utf-8"))
        except GraphQLError as exc:
            raise ManifestError(f"{name}: {exc.message}") from exc
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if len(operations) != 1 or operations[0].name is None:
            raise ManifestError(f"{name}: a trusted document holds exactly one named operation")
        if operations[0].name.value != path.stem:
            raise ManifestError(f"{name}: the operation is {operations[0].name.value}")
        documents[name] = print_ast(document)
    return documents


def build_manifest(directory: Path = EXAMPLES_DIR) -> dict[str, str]:
    return {document_hash(d): d for d in example_documents(directory).values()}


def manifest_text(manifest: Mapping[str, str]) -> str:
    return json.dumps(dict(manifest), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def load_manifest(path: Path) -> dict[str, str]:
    """The manifest at `path`, each document checked against its hash."""
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ManifestError(f"{path}: not a JSON object of hash to document")
    for key, document in loaded.items():
        if not isinstance(document, str) or document_hash(document) != key:
            raise ManifestError(f"{path}: the document under {key[:16]}... is not its hash's")
    return loaded
