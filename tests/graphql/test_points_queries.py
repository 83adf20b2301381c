"""Points reads over GraphQL answer what REST's answer: the account, the ledger page by page, a hold."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx

from loyalty_api.clock import FrozenClock
from tests.builders import enrol
from tests.conftest import bearer
from tests.graphql.helpers import graphql
from tests.points.helpers import cny, earn, set_program

ACCOUNT = """
query($id: ID!) {
  loyaltyMember(id: $id) {
    pointsAccount {
      balance held available lifetimeEarned availableValue { amount currency }
      expiring { month points expiresAt }
    }
  }
}
"""

LEDGER = """
query(
  $id: ID!, $first: Int!, $after: String, $types: [LedgerEntryType!], $since: DateTime, $until: DateTime
) {
  loyaltyMember(id: $id) {
    ledger(first: $first, after: $after, types: $types, since: $since, until: $until) {
      edges {
        cursor
        node {
          id type amount balanceAfter heldChange heldAfter orderRef holdId details actorKeyId createdAt
        }
      }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""

HOLD = """
query($id: ID!) {
  loyaltyHold(id: $id) {
    id memberId orderRef points capturedPoints status createdAt expiresAt resolvedAt balance available
  }
}
"""


def _as_rest(node: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL ledger entry under REST's names."""
    return {
        "id": node["id"],
        "type": node["type"],
        "amount": node["amount"],
        "balance_after": node["balanceAfter"],
        "held_change": node["heldChange"],
        "held_after": node["heldAfter"],
        "order_ref": node["orderRef"],
        "hold_id": node["holdId"],
        "details": node["details"],
        "actor_key_id": node["actorKeyId"],
        "created_at": node["createdAt"],
    }


async def _ledger(
    client: httpx.AsyncClient, key: str, member_id: str, first: int, after: str | None = None, **extra: Any
) -> dict[str, Any]:
    body = await graphql(client, key, LEDGER, id=member_id, first=first, after=after, **extra)
    assert "errors" not in body, body["errors"]
    ledger: dict[str, Any] = body["data"]["loyaltyMember"]["ledger"]
    return ledger


async def _busy_member(
    client: httpx.AsyncClient, pos_key: str, admin_key: str, clock: FrozenClock
) -> tuple[str, str]:
    """A member with five ledger entries of four types, a minute apart; answers the member and hold ids."""
    member = await enrol(client, pos_key)
    member_id = member["id"]
    await earn(client, pos_key, member_id, 100_000, order_ref="Q-1")
    clock.advance(timedelta(minutes=1))
    await earn(client, pos_key, member_id, 50_000, order_ref="Q-2")
    clock.advance(timedelta(minutes=1))
    redeemed = await client.post(
        f"/v1/members/{member_id}/redeem", json={"points": 300, "order_ref": "Q-3"}, headers=bearer(pos_key)
    )
    assert redeemed.status_code == 200, redeemed.text
    clock.advance(timedelta(minutes=1))
    adjusted = await client.post(
        f"/v1/members/{member_id}/adjustments",
        json={"points": 25, "reason": "goodwill"},
        headers=bearer(admin_key),
    )
    assert adjusted.status_code == 201, adjusted.text
    clock.advance(timedelta(minutes=1))
    held = await client.post(
        f"/v1/members/{member_id}/holds", json={"points": 200, "order_ref": "Q-4"}, headers=bearer(pos_key)
    )
    assert held.status_code == 201, held.text
    return member_id, held.json()["id"]


class TestPointsAccount:
    async def test_is_what_rest_answers(
        self, client: httpx.AsyncClient, pos_key: str, admin_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key, expiry_months=12)
        member_id, _ = await _busy_member(client, pos_key, admin_key, clock)
        body = await graphql(client, pos_key, ACCOUNT, id=member_id)
        assert "errors" not in body, body["errors"]
        account = body["data"]["loyaltyMember"]["pointsAccount"]
        rest = (await client.get(f"/v1/members/{member_id}/points", headers=bearer(pos_key))).json()

        # 1000 + 500 earned, 300 redeemed, 25 added, 200 of it held
        assert (account["balance"], account["held"], account["available"]) == (1225, 200, 1025)
        assert account["availableValue"] == cny(1025)
        assert account["lifetimeEarned"] == rest["lifetime_earned"] == 1500
        assert [account["balance"], account["held"], account["available"]] == [
            rest["balance"],
            rest["held"],
            rest["available"],
        ]
        assert account["availableValue"] == rest["available_value"]
        assert account["expiring"] != []
        assert account["expiring"] == [
            {"month": e["month"], "points": e["points"], "expiresAt": e["expires_at"]}
            for e in rest["expiring"]
        ]


class TestLedger:
    async def test_pages_as_rest_pages_and_takes_its_cursors(
        self, client: httpx.AsyncClient, pos_key: str, admin_key: str, clock: FrozenClock
    ) -> None:
        member_id, _ = await _busy_member(client, pos_key, admin_key, clock)
        url = f"/v1/members/{member_id}/ledger"

        first = await _ledger(client, pos_key, member_id, first=2)
        rest_first = (await client.get(url, params={"limit": 2}, headers=bearer(pos_key))).json()
        assert [_as_rest(e["node"]) for e in first["edges"]] == rest_first["items"]
        assert [e["node"]["type"] for e in first["edges"]] == ["hold", "adjust"]  # newest first
        assert first["pageInfo"] == {"hasNextPage": True, "endCursor": rest_first["next_cursor"]}
        assert first["edges"][-1]["cursor"] == rest_first["next_cursor"]

        # REST's cursor pages GraphQL on, and an edge's cursor REST
        second = await _ledger(client, pos_key, member_id, first=2, after=rest_first["next_cursor"])
        rest_second = (
            await client.get(
                url, params={"limit": 2, "cursor": first["edges"][-1]["cursor"]}, headers=bearer(pos_key)
            )
        ).json()
        assert [_as_rest(e["node"]) for e in second["edges"]] == rest_second["items"]
        assert [e["node"]["type"] for e in second["edges"]] == ["redeem", "earn"]

        last = await _ledger(client, pos_key, member_id, first=2, after=second["pageInfo"]["endCursor"])
        assert [e["node"]["orderRef"] for e in last["edges"]] == ["Q-1"]
        # The last page's end cursor is its last edge's, as Relay has it: a client keeps its place.
        assert last["pageInfo"] == {"hasNextPage": False, "endCursor": last["edges"][-1]["cursor"]}
        beyond = await _ledger(client, pos_key, member_id, first=2, after=last["pageInfo"]["endCursor"])
        assert beyond["edges"] == [] and beyond["pageInfo"] == {"hasNextPage": False, "endCursor": None}

    async def test_filters_by_type_as_rest_does(
        self, client: httpx.AsyncClient, pos_key: str, admin_key: str, clock: FrozenClock
    ) -> None:
        member_id, hold_id = await _busy_member(client, pos_key, admin_key, clock)
        page = await _ledger(client, pos_key, member_id, first=10, types=["hold", "adjust"])
        rest = await client.get(
            f"/v1/members/{member_id}/ledger",
            params=[("type", "hold"), ("type", "adjust")],
            headers=bearer(pos_key),
        )
        nodes = [e["node"] for e in page["edges"]]
        assert [_as_rest(n) for n in nodes] == rest.json()["items"]
        assert [(n["type"], n["amount"], n["heldChange"], n["holdId"]) for n in nodes] == [
            ("hold", 0, 200, hold_id),
            ("adjust", 25, 0, None),
        ]
        assert nodes[1]["details"]["reason"] == "goodwill"

    async def test_since_and_until_bound_it_as_rest_bounds_it(
        self, client: httpx.AsyncClient, pos_key: str, admin_key: str, clock: FrozenClock
    ) -> None:
        member_id, _ = await _busy_member(client, pos_key, admin_key, clock)
        url = f"/v1/members/{member_id}/ledger"
        everything = (await client.get(url, headers=bearer(pos_key))).json()["items"]
        since, until = everything[3]["created_at"], everything[1]["created_at"]  # Q-2's earn, the adjustment
        page = await _ledger(client, pos_key, member_id, first=10, since=since, until=until)
        rest = await client.get(url, params={"since": since, "until": until}, headers=bearer(pos_key))
        assert [_as_rest(e["node"]) for e in page["edges"]] == rest.json()["items"]
        assert [e["node"]["type"] for e in page["edges"]] == ["redeem", "earn"]  # since inclusive, until not

        naive = await graphql(client, pos_key, LEDGER, id=member_id, first=10, since="2026-03-16T10:00:00")
        assert [e["extensions"]["code"] for e in naive["errors"]] == ["validation_error"]
        assert naive["errors"][0]["extensions"]["errors"][0]["field"] == "since"

        # The forms REST refuses, which strawberry's own DateTime took (dateutil's isoparse)
        for written in ("2026-03-16T24:00:00Z", "2026-03-16", "20260316T100000Z", "20260316", "1773651600"):
            odd = await graphql(client, pos_key, LEDGER, id=member_id, first=10, since=written)
            assert odd.get("data") is None, written
            assert [e["extensions"]["code"] for e in odd["errors"]] == ["BAD_USER_INPUT"], written

    async def test_a_bad_page_size_or_cursor_is_refused(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        for first, after in ((0, None), (101, None), (5, "not-a-cursor")):
            body = await graphql(client, pos_key, LEDGER, id=member["id"], first=first, after=after)
            assert body["data"]["loyaltyMember"] is None
            assert [e["extensions"]["code"] for e in body["errors"]] == ["validation_error"]


class TestHold:
    async def test_reads_a_hold_as_rest_does(
        self, client: httpx.AsyncClient, pos_key: str, admin_key: str, clock: FrozenClock
    ) -> None:
        member_id, hold_id = await _busy_member(client, pos_key, admin_key, clock)
        body = await graphql(client, pos_key, HOLD, id=hold_id)
        assert "errors" not in body, body["errors"]
        hold = body["data"]["loyaltyHold"]
        rest = (await client.get(f"/v1/holds/{hold_id}", headers=bearer(pos_key))).json()
        assert hold == {
            "id": rest["id"],
            "memberId": member_id,
            "orderRef": "Q-4",
            "points": 200,
            "capturedPoints": 0,
            "status": "active",
            "createdAt": rest["created_at"],
            "expiresAt": rest["expires_at"],
            "resolvedAt": None,
            "balance": None,
            "available": None,
        }

    async def test_an_unknown_hold_is_null_and_a_malformed_id_an_error(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        unknown = await graphql(client, pos_key, HOLD, id=str(uuid.uuid4()))
        assert unknown == {"data": {"loyaltyHold": None}}
        malformed = await graphql(client, pos_key, HOLD, id="H-1")
        assert [e["extensions"]["code"] for e in malformed["errors"]] == ["validation_error"]

    async def test_a_key_without_a_till_scope_is_refused(
        self, client: httpx.AsyncClient, pos_key: str, billing_key: str, admin_key: str, clock: FrozenClock
    ) -> None:
        _, hold_id = await _busy_member(client, pos_key, admin_key, clock)
        body = await graphql(client, billing_key, HOLD, id=hold_id)
        assert body["data"] == {"loyaltyHold": None}
        assert [e["extensions"]["code"] for e in body["errors"]] == ["scope_not_allowed"]
        rest = await client.get(f"/v1/holds/{hold_id}", headers=bearer(billing_key))
        assert rest.status_code == 403
