"""Joint-plan perks: a paid plan that includes a partner's perk gives the member a code each paid period (not
in a trial), once per period however often the period is reached; the partner is told, redeems the code once,
and reaches no other partner's perks. The settlement counts them."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from dateutil.relativedelta import relativedelta
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from tests.builders import enrol
from tests.conftest import START, bearer
from tests.inspect_db import count, events, rows
from tests.partners.helpers import add_partner, link, perks_of
from tests.points.helpers import set_program
from tests.subscriptions.helpers import add_plan, pay, read, run_job, subscribe, subscribe_paid

PERK = {"partner": "delivery", "name": "一个月外卖会员"}


@pytest.fixture
async def delivery(app: FastAPI, client: httpx.AsyncClient, admin_key: str) -> str:
    """The video platform's annual card includes a month of the delivery app's membership."""
    await set_program(client, admin_key)
    key = await add_partner(app, client, admin_key, "delivery")
    plan = await add_plan(client, admin_key, "video-annual", price=19_800, partner_perks=[PERK])
    assert plan["partner_perks"] == [PERK | {"source": "ours", "perk": None}]  # we issue its codes
    return key


class TestJointPlanPerks:
    async def test_a_paid_period_gives_one_perk_the_partner_redeems_once(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
        delivery: str,
    ) -> None:
        member = str((await enrol(client, pos_key))["id"])
        await link(client, pos_key, delivery, member, "delivery", "D-77")
        await subscribe_paid(client, ecommerce_key, member, "video-annual")

        [perk] = await perks_of(client, pos_key, member)
        assert (perk["partner"], perk["name"], perk["plan"], perk["period"], perk["status"]) == (
            "delivery",
            "一个月外卖会员",
            "video-annual",
            1,
            "issued",
        )
        [told] = await events(app, "partner.perk_granted")
        assert told["payload"]["code"] == perk["code"]
        assert told["payload"]["partner_customer_ref"] == "D-77"
        assert "member_id" not in told["payload"]

        redeemed = await client.post(
            f"/v1/partner/perks/{perk['code'].lower()}/redeem", headers=bearer(delivery)
        )
        assert redeemed.status_code == 200, redeemed.text
        assert (redeemed.json()["status"], redeemed.json()["partner_customer_ref"]) == ("redeemed", "D-77")
        again = await client.post(f"/v1/partner/perks/{perk['code']}/redeem", headers=bearer(delivery))
        assert (again.status_code, again.json()["code"]) == (409, "perk_already_redeemed")
        [after] = await perks_of(client, pos_key, member)
        assert after["status"] == "redeemed"

    async def test_each_paid_period_gives_its_perk_once_and_a_trial_none(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
        billing_key: str,
        clock: FrozenClock,
        delivery: str,
    ) -> None:
        member = str((await enrol(client, pos_key))["id"])
        sub = await subscribe_paid(client, ecommerce_key, member, "video-annual")
        await pay(client, billing_key, sub["id"], period=2, amount=19_800)
        clock.set(START + relativedelta(years=1))
        await run_job(app)
        assert (await read(client, ecommerce_key, sub["id"]))["period"] == 2
        await run_job(app)  # the period reached again: nothing more
        perks = await perks_of(client, pos_key, member)
        assert sorted(p["period"] for p in perks) == [1, 2]
        assert len({p["code"] for p in perks}) == 2
        assert len(await events(app, "partner.perk_granted")) == 2

        await add_plan(client, admin_key, "video-trial", trial_days=7, partner_perks=[PERK])
        trying = str((await enrol(client, pos_key))["id"])
        await subscribe(client, ecommerce_key, trying, "video-trial")
        assert await perks_of(client, pos_key, trying) == []

    async def test_another_partner_cannot_redeem_or_see_the_perk(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
        delivery: str,
    ) -> None:
        other = await add_partner(app, client, admin_key, "gym")
        member = str((await enrol(client, pos_key))["id"])
        await subscribe_paid(client, ecommerce_key, member, "video-annual")
        [perk] = await perks_of(client, pos_key, member)
        for code in (perk["code"], "not-a-code", "2222-2222-2222-2222"):
            refused = await client.post(f"/v1/partner/perks/{code}/redeem", headers=bearer(other))
            assert (refused.status_code, refused.json()["code"]) == (404, "perk_not_found")
            assert member not in refused.text
        # the member is not linked to the delivery app: it redeems the code without learning who it is
        redeemed = await client.post(f"/v1/partner/perks/{perk['code']}/redeem", headers=bearer(delivery))
        assert redeemed.status_code == 200, redeemed.text
        assert redeemed.json()["partner_customer_ref"] is None
        assert member not in redeemed.text

    async def test_the_audit_entry_of_a_redeem_names_the_member_the_partner_is_not_shown(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
        delivery: str,
    ) -> None:
        """An operator asked what was done about a member (GET /v1/audit-events?member_id=) sees the partner
        redeem their perk, as they see every other write about them; the partner still learns no member id."""
        member = str((await enrol(client, pos_key))["id"])
        await subscribe_paid(client, ecommerce_key, member, "video-annual")
        [perk] = await perks_of(client, pos_key, member)
        redeemed = await client.post(f"/v1/partner/perks/{perk['code']}/redeem", headers=bearer(delivery))
        assert redeemed.status_code == 200, redeemed.text
        assert member not in redeemed.text

        about = await client.get("/v1/audit-events", params={"member_id": member}, headers=bearer(admin_key))
        assert about.status_code == 200, about.text
        [entry] = [e for e in about.json()["items"] if e["action"] == "redeem_perk"]
        assert (entry["member_id"], entry["subject_id"], entry["path"]) == (
            member,
            None,  # the code is a credential: not kept
            "/v1/partner/perks/{code}/redeem",
        )
        assert perk["code"] not in str(entry)

    async def test_the_settlement_counts_perks_granted_and_redeemed(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
        clock: FrozenClock,
        delivery: str,
    ) -> None:
        codes = []
        for _ in range(3):
            member = str((await enrol(client, pos_key))["id"])
            await subscribe_paid(client, ecommerce_key, member, "video-annual")
            codes += [p["code"] for p in await perks_of(client, pos_key, member)]
        clock.set(START + timedelta(days=2))
        redeemed = await client.post(f"/v1/partner/perks/{codes[0]}/redeem", headers=bearer(delivery))
        assert redeemed.status_code == 200
        period = {
            "from": (START - timedelta(days=1)).isoformat(),
            "to": (START + timedelta(days=1)).isoformat(),
        }
        first = await client.get(
            "/v1/partners/delivery/settlements", params=period, headers=bearer(admin_key)
        )
        assert (first.json()["perks_granted"], first.json()["perks_redeemed"]) == (3, 0)
        whole = {"from": period["from"], "to": (START + timedelta(days=3)).isoformat()}
        both = await client.get("/v1/partner/settlements", params=whole, headers=bearer(delivery))
        assert (both.json()["perks_granted"], both.json()["perks_redeemed"]) == (3, 1)

    async def test_an_erased_members_unredeemed_perk_ends_with_them_and_others_stand(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
        delivery: str,
    ) -> None:
        """An erasure ends what was the member's to use: the partner's redeem of their unredeemed perk is
        404 `perk_not_found`, as their coupon's use is `coupon_not_found`, and writes nothing. Another
        member's perk is redeemed as before; a perk redeemed before the erasure keeps its redemption, which
        the settlement still counts."""
        gone, staying, redeemed_then_gone = [str((await enrol(client, pos_key))["id"]) for _ in range(3)]
        await link(client, pos_key, delivery, gone, "delivery", "D-1")
        codes = {}
        for member in (gone, staying, redeemed_then_gone):
            await subscribe_paid(client, ecommerce_key, member, "video-annual")
            [perk] = await perks_of(client, pos_key, member)
            codes[member] = perk["code"]
        used = await client.post(
            f"/v1/partner/perks/{codes[redeemed_then_gone]}/redeem", headers=bearer(delivery)
        )
        assert used.status_code == 200, used.text
        for member in (gone, redeemed_then_gone):
            erased = await client.post(f"/v1/members/{member}/erase", headers=bearer(admin_key))
            assert erased.status_code == 200, erased.text

        written = await count(app, "outbox_events")
        refused = await client.post(f"/v1/partner/perks/{codes[gone]}/redeem", headers=bearer(delivery))
        assert (refused.status_code, refused.json()["code"]) == (404, "perk_not_found")
        assert "D-1" not in refused.text and gone not in refused.text
        [stored] = await rows(
            app, "SELECT status, redeemed_at FROM partner_perks WHERE code = :c", c=codes[gone]
        )
        assert stored["redeemed_at"] is None and stored["status"] != "redeemed"  # no redemption recorded
        assert await count(app, "outbox_events") == written  # and nothing told

        redeemed = await client.post(f"/v1/partner/perks/{codes[staying]}/redeem", headers=bearer(delivery))
        assert (redeemed.status_code, redeemed.json()["status"]) == (200, "redeemed")

        [kept] = await rows(
            app, "SELECT status, redeemed_at FROM partner_perks WHERE code = :c", c=codes[redeemed_then_gone]
        )
        assert kept["status"] == "redeemed" and kept["redeemed_at"] is not None
        again = await client.post(
            f"/v1/partner/perks/{codes[redeemed_then_gone]}/redeem", headers=bearer(delivery)
        )
        assert (again.status_code, again.json()["code"]) == (404, "perk_not_found")  # nor is what was theirs
        period = {
            "from": (START - timedelta(days=1)).isoformat(),
            "to": (START + timedelta(days=1)).isoformat(),
        }
        statement = await client.get("/v1/partner/settlements", params=period, headers=bearer(delivery))
        assert (statement.json()["perks_granted"], statement.json()["perks_redeemed"]) == (3, 2)

    @pytest.mark.parametrize("status", ["suspended", "closed"])
    async def test_a_member_not_active_cannot_have_their_perk_redeemed(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
        delivery: str,
        status: str,
    ) -> None:
        """A suspended or closed member holds no benefits, as their coupon's use is refused: the partner's
        redeem of their perk is 409 `member_not_active` and records nothing; a suspended member's perk is
        redeemed once they are active again. A perk redeemed already is still `perk_already_redeemed`."""
        member, other = [str((await enrol(client, pos_key))["id"]) for _ in range(2)]
        codes = []
        for someone in (member, other):
            await subscribe_paid(client, ecommerce_key, someone, "video-annual")
            [perk] = await perks_of(client, pos_key, someone)
            codes.append(perk["code"])
        used = await client.post(f"/v1/partner/perks/{codes[1]}/redeem", headers=bearer(delivery))
        assert used.status_code == 200, used.text
        for someone in (member, other):
            changed = await client.patch(
                f"/v1/members/{someone}", json={"status": status}, headers=bearer(admin_key)
            )
            assert changed.status_code == 200, changed.text

        written = await count(app, "outbox_events")
        refused = await client.post(f"/v1/partner/perks/{codes[0]}/redeem", headers=bearer(delivery))
        assert (refused.status_code, refused.json()["code"]) == (409, "member_not_active")
        assert member not in refused.text
        [listed] = await perks_of(client, pos_key, member)
        assert (listed["status"], listed["redeemed_at"]) == ("issued", None)
        assert await count(app, "outbox_events") == written
        again = await client.post(f"/v1/partner/perks/{codes[1]}/redeem", headers=bearer(delivery))
        assert (again.status_code, again.json()["code"]) == (409, "perk_already_redeemed")

        if status == "suspended":
            back = await client.patch(
                f"/v1/members/{member}", json={"status": "active"}, headers=bearer(admin_key)
            )
            assert back.status_code == 200, back.text
            redeemed = await client.post(f"/v1/partner/perks/{codes[0]}/redeem", headers=bearer(delivery))
            assert (redeemed.status_code, redeemed.json()["status"]) == (200, "redeemed")

    async def test_a_plan_naming_an_unknown_partner_is_refused(
        self, client: httpx.AsyncClient, admin_key: str, delivery: str
    ) -> None:
        refused = await client.post(
            "/v1/plans",
            json={
                "code": "ghost",
                "name": "Ghost",
                "price": {"amount": 100, "currency": "CNY"},
                "interval": {"unit": "month"},
                "partner_perks": [{"partner": "nobody", "name": "x"}],
            },
            headers=bearer(admin_key),
        )
        assert (refused.status_code, refused.json()["code"]) == (422, "validation_error")
        assert refused.json()["errors"][0]["field"] == "partner_perks.0.partner"
