from __future__ import annotations

from typing import cast

import strawberry
from strawberry.scalars import JSON

from loyalty.upstreams import Profile as DomainProfile


@strawberry.type(description="The member's profile in the CDP.")
class Profile:
    user_id: str
    first_name: str | None
    last_name: str | None
    email: str | None
    birthday: str | None = strawberry.field(description="YYYY-MM-DD")
    audiences: list[str] = strawberry.field(
        description="Audience keys the member belongs to (boolean traits that are true)."
    )
    traits: JSON

    @classmethod
    def of(cls, profile: DomainProfile) -> Profile:
        return cls(
            user_id=profile.user_id,
            first_name=profile.first_name,
            last_name=profile.last_name,
            email=profile.email,
            birthday=profile.birthday,
            audiences=list(profile.audiences),
            traits=cast(JSON, profile.traits),
        )
