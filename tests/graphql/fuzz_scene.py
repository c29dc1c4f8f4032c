"""The world the fuzzer attacks (tests/graphql/test_fuzz.py): the demo's three customers
enrolled with their orders, profiles and carts, two households, and a token per role; what
each caller must never see; and the real ids the generated documents draw from, so that
`member(id:)`, `node(id:)`, `giftPoints(toMemberId:)` and the rest aim at real members of
real households, not only at ids that do not exist."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from gateway.demo import DEMO_ASSOCIATE, DEMO_CUSTOMERS
from tests.conftest import token

# The fuzzing member: Ava (demo-ava). Ben and Chloé are the others, whose personal data
# Ava must never see. Ava owns a household of her own; Ben owns another.
FUZZER = "demo-ava"

ADMIN = token("fuzz-admin", "admin")


@dataclass(frozen=True)
class Scene:
    """What the seeded data turned out to be."""

    member_ids: dict[str, str]  # global Member ids by commerce customer id
    household_ids: dict[str, str]  # global Household ids by the owner's commerce id
    other_ids: tuple[str, ...]  # offers and points transactions: the other Node types
    secrets: dict[str, tuple[str, ...]]  # personal data by commerce customer id
    card_codes: tuple[str, ...]

    @property
    def ids(self) -> tuple[str, ...]:
        return (*self.member_ids.values(), *self.household_ids.values(), *self.other_ids)

    def tokens(self) -> dict[str, str | None]:
        """A caller per role, the fuzzing member first (before any staff mutation can change
        what it may see)."""
        store = DEMO_ASSOCIATE[1]
        return {
            "member": token(FUZZER, "member"),
            "anonymous": None,
            "associate": token(DEMO_ASSOCIATE[0], "associate", store=store),
            "marketer": token("fuzz-marketer", "marketer"),
            "service": token("fuzz-pos", "service", store=store),
            "admin": ADMIN,
        }

    def forbidden(self, role: str) -> dict[str, str]:
        """The strings a role's answers must never hold, each with whose it is: the other
        customers' personal data for the fuzzing member, everyone's for an anonymous caller.
        Staff may read members; what they see is the authorization tests' business."""
        if role == "member":
            owners = [c for c in self.secrets if c != FUZZER]
        elif role == "anonymous":
            owners = list(self.secrets)
        else:
            owners = []
        return {secret: owner for owner in owners for secret in self.secrets[owner]}


SCENE_QUERY = """
query Scene {
  members(first: 10) {
    edges { node {
      id
      externalIds { commerceCustomerId email }
      card { code }
      household { id owner { externalIds { commerceCustomerId } } }
      offers { id }
      transactions(first: 3) { edges { node { id } } }
    } }
  }
}
"""

CREATE_HOUSEHOLD = """
mutation CreateHousehold($owner: ID!) {
  createHousehold(input: {ownerId: $owner}) { household { id } userErrors { code } }
}
"""


async def build_scene(client: httpx.AsyncClient) -> Scene:
    """Give Ava and Ben a household each, then read back every id and secret as an admin."""
    admin = {"Authorization": f"Bearer {ADMIN}"}
    members = await _members(client, admin)
    for owner in (FUZZER, "demo-ben"):
        member_id = members[owner]["id"]
        answer = await _post(client, admin, CREATE_HOUSEHOLD, {"owner": member_id})
        assert answer["data"]["createHousehold"]["userErrors"] == [], answer
    members = await _members(client, admin)
    households = {
        commerce_id: node["household"]["id"]
        for commerce_id, node in members.items()
        if node["household"] is not None
    }
    assert set(households) == {FUZZER, "demo-ben"}, households
    others: list[str] = []
    for node in members.values():
        others += [offer["id"] for offer in node["offers"]]
        others += [edge["node"]["id"] for edge in node["transactions"]["edges"]]
    return Scene(
        member_ids={c: node["id"] for c, node in members.items()},
        household_ids=households,
        other_ids=tuple(dict.fromkeys(others)),
        secrets={c: _secrets(c, node) for c, node in members.items()},
        card_codes=tuple(node["card"]["code"] for node in members.values()),
    )


def _secrets(commerce_id: str, node: dict[str, Any]) -> tuple[str, ...]:
    """A customer's personal data as the gateway would show it: email, names, external id,
    card code and order numbers (the demo's `HR-<NAME>-nnnn`)."""
    customer = next(c for c in DEMO_CUSTOMERS if c.commerce_id == commerce_id)
    order_prefix = f"HR-{commerce_id[5:].upper()}-"
    return (
        customer.email,
        customer.last_name,
        commerce_id,
        node["card"]["code"],
        order_prefix,
    )


async def _members(client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, Any]:
    answer = await _post(client, admin, SCENE_QUERY, {})
    edges = answer["data"]["members"]["edges"]
    nodes = {e["node"]["externalIds"]["commerceCustomerId"]: e["node"] for e in edges}
    assert set(nodes) == {c.commerce_id for c in DEMO_CUSTOMERS}, nodes
    return nodes


async def _post(
    client: httpx.AsyncClient, headers: dict[str, str], query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert "errors" not in answer, answer
    return answer
