"""The member card: a signed code that the member's QR encodes and the POS scans.

`PTN1.<member id>.<signature>` where the signature is the first 16 bytes of
HMAC-SHA256(card secret, "PTN1.<member id>") in unpadded base64url. The code carries no
personal data; a forged or altered code does not verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

PREFIX = "PTN1"


def card_code(member_id: str, secret: str) -> str:
    payload = f"{PREFIX}.{member_id}"
    return f"{payload}.{_signature(payload, secret)}"


def member_id_from_card(code: str, secret: str) -> str | None:
    """The member id a valid code carries, or None for anything forged or malformed."""
    parts = code.strip().split(".")
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1]:
        return None
    payload = f"{parts[0]}.{parts[1]}"
    # As bytes: compare_digest refuses str with non-ASCII characters (a forged code may
    # hold any), and a code that is not ours must be None, not an error.
    given = parts[2].encode("utf-8", "replace")
    if not hmac.compare_digest(_signature(payload, secret).encode(), given):
        return None
    return parts[1]


def _signature(payload: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
