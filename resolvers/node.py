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


# The largest serial id (a PostgreSQL INTEGER: points transactions) and the largest offset a
# cursor may carry. A larger number is no id of ours: it is refused as one that does not
# exist, never sent to the database (where it would overflow the column's type).
MAX_SERIAL = 2**31 - 1


def serial_number(text: str) -> int | None:
    """The number that `text` writes in ASCII digits, from 0 to MAX_SERIAL, or None (for
    other digits too: `"²".isdigit()` is true, and `int("²")` fails)."""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_SERIAL)):
        return None
    value = int(text)
    return value if value <= MAX_SERIAL else None


def local_id(global_id: str, expected_type: str) -> str | None:
    """The local id of a global id of the expected type, or None."""
    decoded = from_global_id(global_id)
    if decoded is None or decoded[0] != expected_type:
        return None
    return decoded[1]
