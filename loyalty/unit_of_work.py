"""Running a unit of work exactly once: idempotency keys and retries on write conflicts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from loyalty.errors import DomainError, UserErrorCode
from loyalty.idempotency import input_hash
from loyalty.store import ConcurrentWrite, LedgerSession, LoyaltyStore

Work = Callable[[LedgerSession], Awaitable[dict[str, Any]]]

MAX_ATTEMPTS = 8
# The longest key kept (idempotency_keys.key): a UUID is 36, a Stripe-style key up to 255.
MAX_IDEMPOTENCY_KEY = 255


async def run_once(
    store: LoyaltyStore,
    operation: str,
    payload: Mapping[str, Any],
    key: str | None,
    work: Work,
) -> dict[str, Any]:
    """Run `work` in one database transaction, at most once per idempotency key.

    A repeat of `key` with the same input returns the first result and runs nothing; with
    another input it is an `IDEMPOTENCY_CONFLICT`. The key and its result are saved in the
    same transaction as the work's writes. A `ConcurrentWrite` (another writer won a race)
    retries the whole unit, which then sees the winner's writes.
    """
    digest = input_hash(operation, payload)
    if key is not None and not key.strip():
        raise DomainError(
            UserErrorCode.INVALID_INPUT, "idempotencyKey must not be blank", ("idempotencyKey",)
        )
    if key is not None and len(key) > MAX_IDEMPOTENCY_KEY:
        raise DomainError(
            UserErrorCode.INVALID_INPUT,
            f"idempotencyKey must be at most {MAX_IDEMPOTENCY_KEY} characters",
            ("idempotencyKey",),
        )
    for attempt in range(MAX_ATTEMPTS):
        try:
            async with store.session() as session:
                if key is not None:
                    prior = await session.find_result(key)
                    if prior is not None:
                        if prior.operation != operation or prior.input_hash != digest:
                            raise DomainError(
                                UserErrorCode.IDEMPOTENCY_CONFLICT,
                                "this idempotencyKey was already used with a different input",
                                ("idempotencyKey",),
                            )
                        return prior.result
                result = await work(session)
                if key is not None:
                    await session.save_result(key, operation, digest, result)
                return result
        except ConcurrentWrite:
            if attempt + 1 == MAX_ATTEMPTS:
                raise
    raise AssertionError("unreachable")
