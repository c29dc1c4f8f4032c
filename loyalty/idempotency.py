"""Idempotency keys: a hash of a mutation's input, stored with the key and the result in
the same database transaction as the postings it made."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def input_hash(operation: str, payload: Mapping[str, Any]) -> str:
    """A stable SHA-256 of an operation and its (JSON-able) input."""
    canonical = json.dumps(
        {"operation": operation, "input": payload}, sort_keys=True, separators=(",", ":"),
        default=str,
    )  # fmt: skip
    return hashlib.sha256(canonical.encode()).hexdigest()
