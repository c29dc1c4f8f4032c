"""Segment webhook events (the destination's wire format) as the domain's `CdpEvent`.

Relied on: `type` and `messageId` (deliveries are deduplicated on it) always; `userId` when
present; `event` (track); `traits` (identify; an object). Segment adds `"version": 1` and
much more (`context`, `timestamp`, ...), all ignored.
"""

from __future__ import annotations

from typing import Any

from loyalty.cdp_events import CdpEvent

MAX_ID_LENGTH = 255  # `webhook_deliveries.message_id`


class MalformedCdpEvent(ValueError):
    """A field we rely on is missing or of the wrong type."""


def parse_event(data: Any) -> CdpEvent:
    if not isinstance(data, dict):
        raise MalformedCdpEvent("an event must be a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str) or not kind.strip():
        raise MalformedCdpEvent("type: expected a string")
    message_id = data.get("messageId")
    if not isinstance(message_id, str) or not 0 < len(message_id.strip()) <= MAX_ID_LENGTH:
        raise MalformedCdpEvent(f"messageId: expected 1 to {MAX_ID_LENGTH} characters")
    user_id = data.get("userId")
    if user_id is not None and not isinstance(user_id, str):
        raise MalformedCdpEvent("userId: expected a string")
    event = data.get("event")
    if kind == "track" and not isinstance(event, str):
        raise MalformedCdpEvent("event: expected a string in a track event")
    traits = data.get("traits")
    if traits is not None and not isinstance(traits, dict):
        raise MalformedCdpEvent("traits: expected an object")
    return CdpEvent(
        message_id=message_id,
        type=kind.strip(),
        user_id=(user_id.strip() or None) if user_id else None,
        event=event if isinstance(event, str) else None,
        traits=traits or {},
    )
