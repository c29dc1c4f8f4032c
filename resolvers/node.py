"""Global object ids (`Node.id`): base64 of "<TypeName>:<local id>", opaque to clients."""

from __future__ import annotations

import base64
import binascii

import strawberry


@strawberry.interface(description="An object with a globally unique id.")
class Node:
    id: strawberry.ID


def to_global_id(type_name: str, local_id: str | int) -> strawberry.ID:
    return strawberry.ID(base64.urlsafe_b64encode(f"{type_name}:{local_id}".encode()).decode())


def from_global_id(global_id: str) -> tuple[str, str] | None:
    """(type name, local id) of a global id, or None when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(global_id.encode() + b"=" * (-len(global_id) % 4))
        type_name, _, local_id = raw.decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not type_name or not local_id:
        return None
    return type_name, local_id


def local_id(global_id: str, expected_type: str) -> str | None:
    """The local id of a global id of the expected type, or None."""
    decoded = from_global_id(global_id)
    if decoded is None or decoded[0] != expected_type:
        return None
    return decoded[1]
