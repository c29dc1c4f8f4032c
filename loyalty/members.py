"""Enrolment: a commerce customer becomes a member with a wallet."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from loyalty.errors import DomainError, UserErrorCode
from loyalty.ledger import wallet_accounts
from loyalty.models import Member
from loyalty.store import LedgerSession, LoyaltyStore
from loyalty.unit_of_work import run_once

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class Enrolment:
    commerce_customer_id: str
    cdp_user_id: str | None = None
    email: str | None = None
    referred_by_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class MemberService:
    def __init__(self, store: LoyaltyStore, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock

    async def enroll(self, enrolment: Enrolment, idempotency_key: str | None = None) -> str:
        """Enrol a customer; returns the new member's id."""
        commerce_id = enrolment.commerce_customer_id.strip()
        if not commerce_id or len(commerce_id) > 128:
            raise DomainError(
                UserErrorCode.INVALID_INPUT,
                "commerceCustomerId must be 1 to 128 characters",
                ("commerceCustomerId",),
            )
        cdp_id = (enrolment.cdp_user_id or commerce_id).strip()
        if not cdp_id or len(cdp_id) > 128:
            raise DomainError(
                UserErrorCode.INVALID_INPUT,
                "cdpUserId must be 1 to 128 characters",
                ("cdpUserId",),
            )
        email = enrolment.email.strip().lower() if enrolment.email else None
        if email is not None and (len(email) > 320 or not _EMAIL.match(email)):
            raise DomainError(UserErrorCode.INVALID_INPUT, "not an email address", ("email",))

        async def work(session: LedgerSession) -> dict[str, str]:
            if await session.member_by_commerce_id(commerce_id) is not None:
                raise DomainError(
                    UserErrorCode.ALREADY_MEMBER,
                    "this commerce customer is already a member",
                    ("commerceCustomerId",),
                )
            if await session.member_by_cdp_id(cdp_id) is not None:
                raise DomainError(
                    UserErrorCode.ALREADY_MEMBER,
                    "this CDP user is already a member",
                    ("cdpUserId",),
                )
            if enrolment.referred_by_id is not None and (
                await session.member(enrolment.referred_by_id) is None
            ):
                raise DomainError(
                    UserErrorCode.NOT_FOUND, "no member is the referrer", ("referredBy",)
                )
            member = Member(
                id=str(uuid.uuid4()),
                commerce_customer_id=commerce_id,
                cdp_user_id=cdp_id,
                email=email,
                enrolled_at=self.clock(),
                first_name=enrolment.first_name,
                last_name=enrolment.last_name,
                referred_by_id=enrolment.referred_by_id,
            )
            await session.add_member(member)
            for code, kind in wallet_accounts(member.id):
                await session.ensure_account(code, kind, member_id=member.id)
            return {"member_id": member.id}

        payload = {
            "commerce_customer_id": commerce_id,
            "cdp_user_id": cdp_id,
            "email": email,
            "referred_by_id": enrolment.referred_by_id,
        }
        result = await run_once(self.store, "enrollMember", payload, idempotency_key, work)
        return str(result["member_id"])
