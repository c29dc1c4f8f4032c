"""The statements of the member view's reads, built once.

Every member view runs these (through the DataLoaders). Building a SQLAlchemy statement and
its cache key costs about as much as running it, so they are built at import with bound
parameters (`expanding` for the key lists) and only executed per request: a prebuilt
statement memoizes its cache key and goes straight to the compiled-statement cache.
"""

from __future__ import annotations

from sqlalchemy import and_, bindparam, func, or_, select

from adapters.db import tables as t
from loyalty.models import AccountKind, TransactionKind, TransactionStatus

__all__ = [
    "ACCOUNT_BALANCES",
    "ACTIVE_TIER_ASSIGNMENTS",
    "CLAWED_FROM_PENDING",
    "DUE_PENDING_EARNS",
    "EARNED_KINDS",
    "HELD_TIERS",
    "HOUSEHOLDS_BY_IDS",
    "HOUSEHOLDS_OF_MEMBERS",
    "HOUSEHOLD_INVITATIONS_OF_MEMBERS",
    "LIFETIME_EARNED",
    "MEMBERS_BY_COMMERCE_IDS",
    "MEMBERS_BY_IDS",
    "OFFERS_FOR_MEMBERS",
    "QUALIFYING_SPEND",
    "WALLET_MOVES",
]

# Lifetime earned: everything earned, net of the points clawed back by returns.
EARNED_KINDS = (
    TransactionKind.EARN.value,
    TransactionKind.BONUS.value,
    TransactionKind.AWARD.value,
    TransactionKind.REFERRAL.value,
    TransactionKind.RETURN.value,
)

_m, _a, _tx, _p = t.members, t.ledger_accounts, t.ledger_transactions, t.ledger_postings

# --- members (:ids) -----------------------------------------------------------------------
_active = select(_m).where(_m.c.forgotten_at.is_(None))
MEMBERS_BY_IDS = _active.where(_m.c.id.in_(bindparam("ids", expanding=True)))
MEMBERS_BY_COMMERCE_IDS = _active.where(
    _m.c.commerce_customer_id.in_(bindparam("ids", expanding=True))
)

# --- households (:ids): one row per member, the households' ids or their members' --------
_h, _hm = t.households, t.household_members
_household_rows = (
    select(_h.c.id, _h.c.owner_id, _h.c.created_at, _hm.c.member_id)
    .join(_hm, _hm.c.household_id == _h.c.id)
    .order_by(_h.c.id, _hm.c.joined_at, _hm.c.member_id)
)
HOUSEHOLDS_BY_IDS = _household_rows.where(_h.c.id.in_(bindparam("ids", expanding=True)))
HOUSEHOLDS_OF_MEMBERS = _household_rows.where(
    _h.c.id.in_(
        select(_hm.c.household_id).where(_hm.c.member_id.in_(bindparam("ids", expanding=True)))
    )
)
# Pending invitations to join a household (:ids, :now), newest first.
_hi = t.household_invitations
HOUSEHOLD_INVITATIONS_OF_MEMBERS = (
    select(_hi)
    .where(_hi.c.member_id.in_(bindparam("ids", expanding=True)))
    .where(_hi.c.expires_at > bindparam("now"))
    .order_by(_hi.c.member_id, _hi.c.created_at.desc(), _hi.c.household_id)
)
# The same, sent by households (:ids, :now), newest first.
HOUSEHOLD_INVITATIONS_OF_HOUSEHOLDS = (
    select(_hi)
    .where(_hi.c.household_id.in_(bindparam("ids", expanding=True)))
    .where(_hi.c.expires_at > bindparam("now"))
    .order_by(_hi.c.household_id, _hi.c.created_at.desc(), _hi.c.member_id)
)

# --- wallets (:codes, :available, :now, :earns) -------------------------------------------
ACCOUNT_BALANCES = select(_a.c.code, _a.c.balance).where(
    _a.c.code.in_(bindparam("codes", expanding=True))
)
# Earns whose return window has passed but that the job has not moved to available yet.
DUE_PENDING_EARNS = (
    select(_a.c.code, _tx.c.id, _tx.c.available_at, _p.c.amount)
    .select_from(_p.join(_tx, _tx.c.id == _p.c.transaction_id))
    .join(_a, _a.c.id == _p.c.destination_id)
    .where(
        _a.c.code.in_(bindparam("codes", expanding=True)),
        _tx.c.status == TransactionStatus.PENDING.value,
        _tx.c.available_at <= bindparam("now"),
    )
)
_returns = _tx.alias("returns")
# What returns clawed back from the pending points of these earns.
CLAWED_FROM_PENDING = (
    select(_returns.c.reverses_id, func.sum(_p.c.amount))
    .select_from(_p.join(_returns, _returns.c.id == _p.c.transaction_id))
    .join(_a, _a.c.id == _p.c.source_id)
    .where(
        _returns.c.reverses_id.in_(bindparam("earns", expanding=True)),
        _returns.c.kind == TransactionKind.RETURN.value,
        _a.c.kind == AccountKind.WALLET_PENDING.value,
    )
    .group_by(_returns.c.reverses_id)
)
_destination, _source = _a.alias("destination"), _a.alias("source")
# Every posting into or out of these available accounts: (to, from, when, points).
WALLET_MOVES = (
    select(_destination.c.code, _source.c.code, _tx.c.occurred_at, _p.c.amount)
    .select_from(_p.join(_tx, _tx.c.id == _p.c.transaction_id))
    .join(_destination, _destination.c.id == _p.c.destination_id)
    .join(_source, _source.c.id == _p.c.source_id)
    .where(
        or_(
            _destination.c.code.in_(bindparam("available", expanding=True)),
            _source.c.code.in_(bindparam("available", expanding=True)),
        )
    )
)
LIFETIME_EARNED = (
    select(_tx.c.member_id, func.sum(_tx.c.points))
    .where(_tx.c.member_id.in_(bindparam("ids", expanding=True)), _tx.c.kind.in_(EARNED_KINDS))
    .group_by(_tx.c.member_id)
)

# --- tiers (:ids, :since, :until) ---------------------------------------------------------
_pu, _ta, _mt = t.purchases, t.tier_assignments, t.member_tiers
QUALIFYING_SPEND = (
    select(
        _pu.c.member_id, func.sum(_pu.c.program_amount_minor - _pu.c.returned_program_amount_minor)
    )
    .where(
        _pu.c.member_id.in_(bindparam("ids", expanding=True)),
        _pu.c.occurred_at >= bindparam("since"),
        _pu.c.occurred_at < bindparam("until"),
    )
    .group_by(_pu.c.member_id)
)
ACTIVE_TIER_ASSIGNMENTS = (
    select(_ta)
    .where(_ta.c.member_id.in_(bindparam("ids", expanding=True)), _ta.c.revoked_at.is_(None))
    .order_by(_ta.c.assigned_at)
)
HELD_TIERS = select(_mt).where(_mt.c.member_id.in_(bindparam("ids", expanding=True)))

# --- offers (:ids, :now) ------------------------------------------------------------------
_o = t.offers
# The program-wide offers usable now, and every offer of these members (used or not: a
# member's own row of a key hides the program-wide offer of that key from it).
OFFERS_FOR_MEMBERS = (
    select(_o)
    .where(
        or_(
            and_(
                _o.c.member_id.is_(None),
                _o.c.active.is_(True),
                _o.c.redeemed_at.is_(None),
                or_(_o.c.valid_from.is_(None), _o.c.valid_from <= bindparam("now")),
                or_(_o.c.valid_until.is_(None), _o.c.valid_until > bindparam("now")),
            ),
            _o.c.member_id.in_(bindparam("ids", expanding=True)),
        )
    )
    .order_by(_o.c.created_at, _o.c.id)
)
