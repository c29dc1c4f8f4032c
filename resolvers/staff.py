"""Staff views: member search and top customers."""

from __future__ import annotations

import base64
import binascii

import strawberry

from resolvers.members import Member
from resolvers.money import Money
from resolvers.node import serial_number
from resolvers.points import PageInfo


@strawberry.type
class MemberEdge:
    node: Member
    cursor: str


@strawberry.type
class MemberConnection:
    edges: list[MemberEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type
class CustomerSpend:
    member: Member
    spend: Money
    orders: int


def offset_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def parse_offset_cursor(cursor: str) -> int | None:
    try:
        prefix, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return serial_number(value) if prefix == "offset" else None
