"""Many simultaneous requests for one member, then the ledger invariant. Each request runs in its own
transaction on its own pooled connection; on PostgreSQL they really race for the account row."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from tests.builders import enrol
from tests.checkout.helpers import cart, quote
from tests.concurrency.closing import during_a_close
from tests.conftest import bearer
from tests.coupons.helpers import coupon_code, coupons_of
from tests.coupons.helpers import use as use_coupon
from tests.inspect_db import count, events, rows
from tests.ledger_checks import assert_ledger_invariant
from tests.points.helpers import earn, hold_points, points, set_program
from tests.rewards.helpers import add_reward
from tests.rewards.helpers import redeem as redeem_reward


@pytest.fixture
async def member_with_1000(client: httpx.AsyncClient, admin_key: str, pos_key: str) -> str:
    await set_program(client, admin_key)
    member = await enrol(client, pos_key)
    await earn(client, pos_key, member["id"], 100_000)
    return str(member["id"])


class TestConcurrentSpending:
    async def test_fifty_redeems_for_ten_redeems_worth_of_points(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_with_1000: str
    ) -> None:
        member_id = member_with_1000

        async def redeem(n: int) -> httpx.Response:
            return await client.post(
                f"/v1/members/{member_id}/redeem",
                json={"points": 100, "order_ref": f"C-{n}"},
                headers=bearer(pos_key),
            )

        responses = await asyncio.gather(*(redeem(n) for n in range(50)))
        outcomes = Counter(
            (r.status_code, r.json().get("code")) if r.status_code != 200 else (200, None) for r in responses
        )
        assert outcomes == {(200, None): 10, (422, "insufficient_points"): 40}
        assert (await points(client, pos_key, member_id))["balance"] == 0
        assert await count(app, "ledger_entries") == 11
        await assert_ledger_invariant(app, member_id)

    async def test_holds_and_redeems_racing_never_overspend(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_with_1000: str
    ) -> None:
        member_id = member_with_1000

        async def spend(n: int) -> httpx.Response:
            if n % 2:
                return await client.post(
                    f"/v1/members/{member_id}/holds",
                    json={"points": 70, "order_ref": f"H-{n}"},
                    headers=bearer(pos_key),
                )
            return await client.post(
                f"/v1/members/{member_id}/redeem",
                json={"points": 70, "order_ref": f"R-{n}"},
                headers=bearer(pos_key),
            )

        responses = await asyncio.gather(*(spend(n) for n in range(40)))
        succeeded = [r for r in responses if r.status_code in (200, 201)]
        refused = [r for r in responses if r.status_code == 422]
        assert len(succeeded) + len(refused) == 40
        assert len(succeeded) == 1000 // 70
        assert all(r.json()["code"] == "insufficient_points" for r in refused)
        summary = await points(client, pos_key, member_id)
        assert summary["available"] == 1000 - 70 * len(succeeded)
        await assert_ledger_invariant(app, member_id)

    async def test_concurrent_earns_for_one_order_earn_once(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_with_1000: str
    ) -> None:
        member_id = member_with_1000
        body = {"order_ref": "SAME", "amount": {"amount": 5_000, "currency": "CNY"}}
        responses = await asyncio.gather(
            *(
                client.post(f"/v1/members/{member_id}/earn", json=body, headers=bearer(pos_key))
                for _ in range(20)
            )
        )
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {200: 1, 409: 19}
        assert (await points(client, pos_key, member_id))["balance"] == 1050
        await assert_ledger_invariant(app, member_id)

    async def test_many_members_in_parallel_keep_their_own_books(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_with_1000: str
    ) -> None:
        members = [member_with_1000] + [str((await enrol(client, pos_key))["id"]) for _ in range(5)]

        async def traffic(member_id: str, n: int) -> None:
            earned = await client.post(
                f"/v1/members/{member_id}/earn",
                json={"order_ref": f"{member_id[-6:]}-{n}", "amount": {"amount": 1_000, "currency": "CNY"}},
                headers=bearer(pos_key),
            )
            assert earned.status_code == 200, earned.text
            redeemed = await client.post(
                f"/v1/members/{member_id}/redeem",
                json={"points": 7, "order_ref": f"{member_id[-6:]}-r{n}"},
                headers=bearer(pos_key),
            )
            assert redeemed.status_code == 200, redeemed.text

        await asyncio.gather(*(traffic(m, n) for m in members for n in range(8)))
        for member_id in members:
            ledger = await client.get(
                f"/v1/members/{member_id}/ledger", params={"limit": 200}, headers=bearer(pos_key)
            )
            kinds = Counter(entry["type"] for entry in ledger.json()["items"])
            assert kinds["earn"] >= 8 and kinds["redeem"] == 8, (member_id, kinds)
        await assert_ledger_invariant(app)


class TestConcurrentHoldExpiry:
    async def test_racing_spends_free_each_expired_hold_once(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, member_with_1000: str, clock: FrozenClock
    ) -> None:
        member_id = member_with_1000
        for n in range(10):
            response = await client.post(
                f"/v1/members/{member_id}/holds",
                json={"points": 100, "order_ref": f"EXP-{n}", "ttl_seconds": 60},
                headers=bearer(pos_key),
            )
            assert response.status_code == 201
        clock.advance(timedelta(minutes=2))

        async def redeem(n: int) -> httpx.Response:
            return await client.post(
                f"/v1/members/{member_id}/redeem",
                json={"points": 50, "order_ref": f"X-{n}"},
                headers=bearer(pos_key),
            )

        responses = await asyncio.gather(*(redeem(n) for n in range(30)))
        assert Counter((r.status_code, r.json().get("code")) for r in responses) == {
            (200, None): 20,
            (422, "insufficient_points"): 10,
        }
        summary = await points(client, pos_key, member_id)
        assert (summary["balance"], summary["held"]) == (0, 0)
        assert len(await events(app, "points.hold_released")) == 10
        await assert_ledger_invariant(app, member_id)


class TestConcurrentHolds:
    """A web shop's checkouts: retries, double clicks and open tabs send holds, captures and releases at
    once."""

    async def test_captures_and_releases_of_one_hold_at_once_end_it_once(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, member_with_1000: str
    ) -> None:
        member_id = member_with_1000
        hold_id = await hold_points(client, ecommerce_key, member_id, 300, "WEB-RACE", ttl=900)

        async def resolve(n: int) -> httpx.Response:
            url = f"/v1/holds/{hold_id}/{('release', 'capture', 'capture')[n % 3]}"
            body = {"points": 100 + n} if n % 3 == 1 else None  # a part, or the whole
            return await client.post(url, json=body, headers=bearer(ecommerce_key))

        responses = await asyncio.gather(*(resolve(n) for n in range(30)))
        [won] = [r for r in responses if r.status_code == 200]
        assert all(r.json()["code"] == "hold_not_active" for r in responses if r is not won)
        spent = won.json()["captured_points"]
        summary = await points(client, ecommerce_key, member_id)
        assert (summary["balance"], summary["held"]) == (1000 - spent, 0)
        ended = await events(app, "points.hold_captured") + await events(app, "points.hold_released")
        assert len(ended) == 1
        await assert_ledger_invariant(app, member_id)

    async def test_holds_for_one_order_at_once_make_one_hold_for_one_member(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, ecommerce_key: str, member_with_1000: str
    ) -> None:
        others = [str((await enrol(client, pos_key))["id"]) for _ in range(3)]
        for other in others:
            await earn(client, pos_key, other, 10_000)

        async def hold(member_id: str) -> httpx.Response:
            return await client.post(
                f"/v1/members/{member_id}/holds",
                json={"points": 50, "order_ref": "WEB-ONE"},
                headers=bearer(ecommerce_key),
            )

        responses = await asyncio.gather(*(hold(m) for m in [member_with_1000] * 10 + others * 3))
        [made] = [r for r in responses if r.status_code == 201]
        refused = Counter(r.json()["code"] for r in responses if r is not made)
        owner = made.json()["member_id"]
        same_member = 9 if owner == member_with_1000 else 2
        assert refused == {"hold_exists": same_member, "order_belongs_to_another_member": 18 - same_member}
        assert len(await events(app, "points.held")) == 1
        await assert_ledger_invariant(app)

    async def test_holds_at_once_never_hold_more_than_the_balance_and_the_quote_offers_the_rest(
        self, app: FastAPI, client: httpx.AsyncClient, ecommerce_key: str, member_with_1000: str
    ) -> None:
        member_id = member_with_1000
        sizes = [70, 130, 90, 210, 50] * 6

        async def hold(n: int) -> httpx.Response:
            return await client.post(
                f"/v1/members/{member_id}/holds",
                json={"points": sizes[n], "order_ref": f"TAB-{n}"},
                headers=bearer(ecommerce_key),
            )

        responses = await asyncio.gather(*(hold(n) for n in range(len(sizes))))
        held = sum(sizes[n] for n, r in enumerate(responses) if r.status_code == 201)
        refused = [r for r in responses if r.status_code != 201]
        assert all(r.json()["code"] == "insufficient_points" for r in refused)
        left = 1000 - held
        assert 0 <= left < min(sizes[n] for n, r in enumerate(responses) if r.status_code != 201)
        summary = await points(client, ecommerce_key, member_id)
        assert (summary["balance"], summary["held"], summary["available"]) == (1000, held, left)
        offered = await quote(client, ecommerce_key, member_id, cart(subtotal=100_000), points_to_use=1_000)
        assert offered["points"]["applied"] == left
        await assert_ledger_invariant(app, member_id)


class TestConcurrentEnrolment:
    async def test_racing_enrolments_with_one_phone_get_one_member_and_409s(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        body = {"phone": "+8613711112222", "external_ids": {"pos": "RACE-1"}}
        responses = await asyncio.gather(
            *(client.post("/v1/members", json=body, headers=bearer(pos_key)) for _ in range(8))
        )
        outcomes = Counter((r.status_code, r.json().get("code")) for r in responses)
        assert outcomes == {(201, None): 1, (409, "member_exists"): 7}
        assert await count(app, "members") == 1


class TestClosingWhileHolding:
    @pytest.mark.parametrize("ending", ["close", "erase"])
    async def test_no_hold_outlives_a_close_or_erasure_that_raced_it(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        member_with_1000: str,
        ending: str,
    ) -> None:
        member_id = member_with_1000

        async def hold(n: int) -> httpx.Response:
            # Holds and redeems: each locks what it changes in its own order, and neither may deadlock with
            # the close that frees the member's holds.
            kind = "holds" if n % 2 else "redeem"
            return await client.post(
                f"/v1/members/{member_id}/{kind}",
                json={"points": 100, "order_ref": f"H-{n}"},
                headers=bearer(pos_key),
            )

        async def end_membership() -> httpx.Response:
            if ending == "erase":
                return await client.post(f"/v1/members/{member_id}/erase", headers=bearer(admin_key))
            return await client.patch(
                f"/v1/members/{member_id}", json={"status": "closed"}, headers=bearer(admin_key)
            )

        *holds, ended = await asyncio.gather(*(hold(n) for n in range(8)), end_membership())
        assert ended.status_code == 200, ended.text
        assert {r.status_code for r in holds} <= {200, 201, 404, 409}
        active = await rows(app, "SELECT id FROM holds WHERE status = 'active'")
        assert active == []  # every hold made before the close was freed by it, none was made after
        await assert_ledger_invariant(app)

    @pytest.mark.parametrize("spend", ["redeem", "reward", "coupon"])
    async def test_a_spend_waits_for_a_close_under_way_and_is_refused_once_it_lands(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        member_with_1000: str,
        spend: str,
    ) -> None:
        member_id = member_with_1000
        reward = await add_reward(client, admin_key, cost_points=100)
        code = await coupon_code(app, member_id)
        if spend == "redeem":
            call = client.post(
                f"/v1/members/{member_id}/redeem",
                json={"points": 100, "order_ref": "AT-CLOSE"},
                headers=bearer(pos_key),
            )
        elif spend == "reward":
            call = redeem_reward(client, pos_key, member_id, reward["id"])
        else:
            call = use_coupon(client, pos_key, code, order_ref="AT-CLOSE")
        refused = await during_a_close(app, member_id, call)
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "member_not_active"
        assert (await points(client, pos_key, member_id))["balance"] == 1000
        assert [c["status"] for c in await coupons_of(client, pos_key, member_id)] == ["active"]
        assert await events(app, "coupon.used") == []
        await assert_ledger_invariant(app)
