"""Who may do what: roles, the viewer behind a request, and the ownership rules.

- a member reads only itself and the members of its household;
- associates read members and award points (within limits), scoped to their store;
- marketers read segments and top customers;
- `service` is for POS and back-office systems; `admin` may do everything;
- an anonymous caller reads the public program and nothing personal.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class Role(enum.StrEnum):
    MEMBER = "member"
    ASSOCIATE = "associate"
    MARKETER = "marketer"
    ADMIN = "admin"
    SERVICE = "service"


STAFF_ROLES = frozenset({Role.ASSOCIATE, Role.MARKETER, Role.ADMIN})


@dataclass(frozen=True, slots=True)
class Viewer:
    """The caller: `sub` is the token's subject (a member's commerce customer id)."""

    sub: str | None = None
    roles: frozenset[Role] = frozenset()
    store: str | None = None

    @classmethod
    def anonymous(cls) -> Viewer:
        return cls()

    @property
    def is_authenticated(self) -> bool:
        return self.sub is not None

    def has(self, *roles: Role) -> bool:
        return Role.ADMIN in self.roles or any(r in self.roles for r in roles)

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & STAFF_ROLES)

    @property
    def reads_any_member(self) -> bool:
        """Staff and service callers read any member; a member only its own."""
        return self.is_staff or Role.SERVICE in self.roles

    @property
    def is_member_only(self) -> bool:
        return self.roles <= {Role.MEMBER} and Role.MEMBER in self.roles


def parse_roles(values: Iterable[str]) -> frozenset[Role]:
    """Known roles from a token's `roles` claim; unknown names are ignored."""
    known = {r.value: r for r in Role}
    return frozenset(known[v] for v in values if v in known)


def may_read_member(
    viewer: Viewer, member_commerce_id: str, household_commerce_ids: Iterable[str] = ()
) -> bool:
    """Whether the viewer may read a member's personal data."""
    if viewer.reads_any_member:
        return True
    if Role.MEMBER not in viewer.roles or viewer.sub is None:
        return False
    return viewer.sub == member_commerce_id or viewer.sub in set(household_commerce_ids)
