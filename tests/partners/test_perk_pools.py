"""Joint-plan perks from a pool of codes the partner uploaded: the partner uploads codes for its perk (a batch
at a time, a code sent again left out) and reads how many are left; each paid period that begins gives the
member the oldest unused code, kept encrypted; an empty pool leaves the perk owed until codes come, then it is
granted and told like any other; the settlement counts pooled perks when they are granted."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from tests.builders import enrol
from tests.conftest import START, bearer
from tests.inspect_db import events, rows
from tests.partners.helpers import VALIDATION, add_partner, link, perks_of, problem
from tests.points.helpers import set_program
from tests.subscriptions.helpers import add_plan, subscribe_paid

POOLED = {"partner": "delivery", "name": "一个月外卖会员", "source": "pool", "perk": "month-pass"}


async def upload(
    client: httpx.AsyncClient, key: str, codes: list[str], perk: str = "month-pass"
) -> httpx.Response:
    return await client.post(
        "/v1/partner/perk-codes", json={"perk": perk, "codes": codes}, headers=bearer(key)
    )


async def pool(client: httpx.AsyncClient, key: str, perk: str = "month-pass") -> dict[str, Any]:
    response = await client.get(f"/v1/partner/perk-codes/{perk}", headers=bearer(key))
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


@pytest.fixture
async def delivery(app: FastAPI, client: httpx.AsyncClient, admin_key: str) -> str:
    """The video card includes a month of the delivery app, from codes the delivery app uploads."""
    await set_program(client, admin_key)
    key = await add_partner(app, client, admin_key, "delivery")
    plan = await add_plan(client, admin_key, "video-annual", partner_perks=[POOLED])
    assert plan["partner_perks"] == [POOLED]
    return key


class TestUpload:
    async def test_codes_uploaded_are_given_oldest_first_and_kept_encrypted(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, ecommerce_key: str, delivery: str
    ) -> None:
        sent = await upload(client, delivery, ["DLV-AAA-1", "DLV-BBB-2", "DLV-AAA-1"])
        assert sent.status_code == 200, sent.text
        assert sent.json() == {
            "perk": "month-pass",
            "added": 2,
            "duplicates": 1,
            "granted": 0,
            "available": 2,
            "owed": 0,
        }
        member = str((await enrol(client, pos_key))["id"])
        await link(client, pos_key, delivery, member, "delivery", "D-9")
        await subscribe_paid(client, ecommerce_key, member, "video-annual")

        [perk] = await perks_of(client, pos_key, member)
        assert (perk["code"], perk["source"], perk["status"]) == ("DLV-AAA-1", "pool", "issued")
        assert perk["granted_at"] is not None
        [told] = await events(app, "partner.perk_granted")
        assert (told["payload"]["code"], told["payload"]["partner_customer_ref"]) == ("DLV-AAA-1", "D-9")
        assert await pool(client, delivery) == {"perk": "month-pass", "available": 1, "owed": 0}
        # a code is a credential: the database holds neither code in the clear
        stored = await rows(app, "SELECT code_hash, code_encrypted FROM partner_perk_codes")
        assert len(stored) == 2
        assert not [r for r in stored for code in ("DLV-AAA-1", "DLV-BBB-2") if code in str(r)]

        # the same upload again adds nothing: a retry is safe
        again = await upload(client, delivery, ["DLV-BBB-2", "DLV-AAA-1"])
        assert (again.json()["added"], again.json()["duplicates"], again.json()["available"]) == (0, 2, 1)

        # the partner redeems its own code through us too, once
        redeemed = await client.post("/v1/partner/perks/DLV-AAA-1/redeem", headers=bearer(delivery))
        assert (redeemed.status_code, redeemed.json()["status"]) == (200, "redeemed"), redeemed.text
        assert redeemed.json()["code"] == "DLV-AAA-1"
        twice = await client.post("/v1/partner/perks/DLV-AAA-1/redeem", headers=bearer(delivery))
        assert problem(twice) == (409, "perk_already_redeemed")
        # an unused code of the pool is no perk yet
        unused = await client.post("/v1/partner/perks/DLV-BBB-2/redeem", headers=bearer(delivery))
        assert problem(unused) == (404, "perk_not_found")

    async def test_the_audit_log_keeps_no_code_of_the_pool(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, delivery: str
    ) -> None:
        """Pool codes are kept encrypted, but the audit entries of the partner's redeems kept them in the
        clear: the subject and path naming the code, and the answer holding it."""
        assert (await upload(client, delivery, ["DLV-AAA-1", "DLV-BBB-2"])).status_code == 200
        member = str((await enrol(client, pos_key))["id"])
        await subscribe_paid(client, admin_key, member, "video-annual")  # an audited key
        redeemed = await client.post("/v1/partner/perks/DLV-AAA-1/redeem", headers=bearer(delivery))
        assert redeemed.status_code == 200, redeemed.text

        entries = await rows(app, "SELECT * FROM audit_events")
        [entry] = [e for e in entries if e["action"] == "redeem_perk"]
        assert (entry["path"], entry["subject_id"], entry["status"]) == (
            "/v1/partner/perks/{code}/redeem",
            None,
            200,
        )
        assert [e for e in entries if "DLV-" in str(e)] == []
        [perk] = await perks_of(client, pos_key, member)
        assert (perk["code"], perk["status"]) == ("DLV-AAA-1", "redeemed")  # the member's list shows it

    async def test_an_empty_pool_owes_the_perk_until_codes_come(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
        clock: FrozenClock,
        delivery: str,
    ) -> None:
        first, second = [str((await enrol(client, pos_key))["id"]) for _ in range(2)]
        await link(client, pos_key, delivery, second, "delivery", "D-2")
        for member in (first, second):
            await subscribe_paid(client, ecommerce_key, member, "video-annual")
        [owed] = await perks_of(client, pos_key, first)
        assert (owed["code"], owed["status"], owed["granted_at"]) == (None, "owed", None)
        assert await events(app, "partner.perk_granted") == []
        assert await pool(client, delivery) == {"perk": "month-pass", "available": 0, "owed": 2}
        day = {
            "from": (START - timedelta(days=1)).isoformat(),
            "to": (START + timedelta(hours=1)).isoformat(),
        }
        statement = await client.get(
            "/v1/partners/delivery/settlements", params=day, headers=bearer(admin_key)
        )
        assert statement.json()["perks_granted"] == 0  # owed is not granted

        clock.advance(timedelta(days=1))
        sent = await upload(client, delivery, ["C-1", "C-2", "C-3"])
        assert (sent.json()["granted"], sent.json()["available"], sent.json()["owed"]) == (2, 1, 0)
        # the oldest owed perk gets the oldest code, and the partner is told of each as of any grant
        assert [(p["code"], p["status"]) for p in await perks_of(client, pos_key, first)] == [
            ("C-1", "issued")
        ]
        assert [p["code"] for p in await perks_of(client, pos_key, second)] == ["C-2"]
        told = await events(app, "partner.perk_granted")
        assert [(e["payload"]["code"], e["payload"]["partner_customer_ref"]) for e in told] == [
            ("C-1", None),
            ("C-2", "D-2"),
        ]
        # counted when granted, the day the codes came
        later = {"from": day["to"], "to": (START + timedelta(days=2)).isoformat()}
        statement = await client.get(
            "/v1/partners/delivery/settlements", params=later, headers=bearer(admin_key)
        )
        assert statement.json()["perks_granted"] == 2

    @pytest.mark.parametrize("ending", ["erase", "close"])
    async def test_a_perk_owed_to_a_member_erased_or_closed_takes_no_code(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
        delivery: str,
        ending: str,
    ) -> None:
        """The codes the partner uploaded went to the perks still owed to a member erased or closed since (an
        event about an erased member; a closed one's even named the partner's customer), and the pool counted
        them as owed. Their owed perks end with them, as their subscriptions do."""
        gone, staying = [str((await enrol(client, pos_key))["id"]) for _ in range(2)]
        await link(client, pos_key, delivery, gone, "delivery", "D-1")
        for member in (gone, staying):
            await subscribe_paid(client, ecommerce_key, member, "video-annual")
        assert await pool(client, delivery) == {"perk": "month-pass", "available": 0, "owed": 2}
        if ending == "erase":
            ended = await client.post(f"/v1/members/{gone}/erase", headers=bearer(admin_key))
        else:
            ended = await client.patch(
                f"/v1/members/{gone}", json={"status": "closed"}, headers=bearer(admin_key)
            )
        assert ended.status_code == 200, ended.text
        assert await pool(client, delivery) == {"perk": "month-pass", "available": 0, "owed": 1}

        sent = await upload(client, delivery, ["C-1", "C-2"])
        assert (sent.json()["granted"], sent.json()["available"], sent.json()["owed"]) == (1, 1, 0)
        assert [p["code"] for p in await perks_of(client, pos_key, staying)] == ["C-1"]
        told = await events(app, "partner.perk_granted")
        assert [(e["payload"]["code"], e["payload"]["partner_customer_ref"]) for e in told] == [("C-1", None)]
        if ending == "close":
            assert await perks_of(client, admin_key, gone) == []  # nothing is owed them any more

    async def test_an_erased_members_pooled_code_ends_and_never_goes_back_to_the_pool(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
        delivery: str,
    ) -> None:
        """The partner was told the code (`partner.perk_granted`) and the member held it: after the erasure
        the partner's redeem of it is 404 `perk_not_found` and writes nothing, and the code stays spent (not
        available, never given to another member, not taken again in an upload)."""
        sent = await upload(client, delivery, ["DLV-1", "DLV-2"])
        assert sent.status_code == 200, sent.text
        gone = str((await enrol(client, pos_key))["id"])
        await subscribe_paid(client, ecommerce_key, gone, "video-annual")
        [perk] = await perks_of(client, pos_key, gone)
        assert (perk["code"], perk["status"]) == ("DLV-1", "issued")
        erased = await client.post(f"/v1/members/{gone}/erase", headers=bearer(admin_key))
        assert erased.status_code == 200, erased.text

        written = len(await rows(app, "SELECT id FROM outbox_events"))
        refused = await client.post("/v1/partner/perks/DLV-1/redeem", headers=bearer(delivery))
        assert (refused.status_code, refused.json()["code"]) == (404, "perk_not_found")
        [stored] = await rows(app, "SELECT status, redeemed_at FROM partner_perks")
        assert stored["redeemed_at"] is None and stored["status"] != "redeemed"
        assert len(await rows(app, "SELECT id FROM outbox_events")) == written
        assert await pool(client, delivery) == {"perk": "month-pass", "available": 1, "owed": 0}

        again = await upload(client, delivery, ["DLV-1"])
        assert (again.json()["added"], again.json()["duplicates"]) == (0, 1)
        newcomer = str((await enrol(client, pos_key))["id"])
        await subscribe_paid(client, ecommerce_key, newcomer, "video-annual")
        assert [p["code"] for p in await perks_of(client, pos_key, newcomer)] == ["DLV-2"]

    async def test_a_perk_owed_to_a_suspended_member_waits_until_they_are_active_again(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
        delivery: str,
    ) -> None:
        """An upload while the member is suspended passes them over; once they are active again they get the
        code it left unused, at once (it stayed unused, and a newer subscriber took it before them)."""
        member = str((await enrol(client, pos_key))["id"])
        await link(client, pos_key, delivery, member, "delivery", "D-1")
        await subscribe_paid(client, ecommerce_key, member, "video-annual")

        async def set_status(status: str) -> None:
            changed = await client.patch(
                f"/v1/members/{member}", json={"status": status}, headers=bearer(admin_key)
            )
            assert changed.status_code == 200, changed.text

        await set_status("suspended")
        assert await pool(client, delivery) == {"perk": "month-pass", "available": 0, "owed": 0}
        sent = await upload(client, delivery, ["C-1"])
        assert (sent.json()["granted"], sent.json()["available"], sent.json()["owed"]) == (0, 1, 0)
        assert await events(app, "partner.perk_granted") == []

        await set_status("active")
        assert await pool(client, delivery) == {"perk": "month-pass", "available": 0, "owed": 0}
        assert [(p["code"], p["status"]) for p in await perks_of(client, pos_key, member)] == [
            ("C-1", "issued")
        ]
        told = await events(app, "partner.perk_granted")
        assert [(e["payload"]["code"], e["payload"]["partner_customer_ref"]) for e in told] == [
            ("C-1", "D-1")
        ]

        # a newer subscriber waits for the next code
        newer = str((await enrol(client, pos_key))["id"])
        await subscribe_paid(client, ecommerce_key, newer, "video-annual")
        assert [p["status"] for p in await perks_of(client, pos_key, newer)] == ["owed"]
        sent = await upload(client, delivery, ["C-2"])
        assert (sent.json()["granted"], sent.json()["available"], sent.json()["owed"]) == (1, 0, 0)
        assert [p["code"] for p in await perks_of(client, pos_key, newer)] == ["C-2"]
        await set_status("suspended")
        await set_status("active")  # nothing more is owed them
        assert [p["code"] for p in await perks_of(client, pos_key, member)] == ["C-1"]
        assert len(await events(app, "partner.perk_granted")) == 2

    async def test_an_upload_gives_owed_perks_every_unused_code_not_only_its_own(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
        delivery: str,
    ) -> None:
        """Codes left unused beside an owed perk (the member came back while the partner was suspended) go to
        the next upload's owed perks, oldest first, though that upload adds fewer codes, or none."""
        older, newer = [str((await enrol(client, pos_key))["id"]) for _ in range(2)]
        for member in (older, newer):
            await subscribe_paid(client, ecommerce_key, member, "video-annual")
        for member in (older, newer):
            suspended = await client.patch(
                f"/v1/members/{member}", json={"status": "suspended"}, headers=bearer(admin_key)
            )
            assert suspended.status_code == 200, suspended.text
        sent = await upload(client, delivery, ["C-1", "C-2"])
        assert (sent.json()["granted"], sent.json()["available"]) == (0, 2)

        async def set_partner(status: str) -> None:
            body = {"name": "delivery", "status": status}
            changed = await client.put("/v1/partners/delivery", json=body, headers=bearer(admin_key))
            assert changed.status_code == 200, changed.text

        await set_partner("suspended")
        for member in (newer, older):  # a suspended partner grants nothing
            active = await client.patch(
                f"/v1/members/{member}", json={"status": "active"}, headers=bearer(admin_key)
            )
            assert active.status_code == 200, active.text
        await set_partner("active")
        assert await pool(client, delivery) == {"perk": "month-pass", "available": 2, "owed": 2}

        sent = await upload(client, delivery, ["C-1"])  # a repeat: it adds nothing
        assert sent.json() == {
            "perk": "month-pass",
            "added": 0,
            "duplicates": 1,
            "granted": 2,
            "available": 0,
            "owed": 0,
        }
        assert [p["code"] for p in await perks_of(client, pos_key, older)] == ["C-1"]
        assert [p["code"] for p in await perks_of(client, pos_key, newer)] == ["C-2"]

    @pytest.mark.parametrize(
        "body",
        [
            {"perk": "month-pass", "codes": []},
            {"perk": "month-pass", "codes": [f"C-{n}" for n in range(1001)]},
            {"perk": "month-pass", "codes": ["has space"]},
            {"perk": "month-pass", "codes": ["AB/CD"]},  # its redeem's path could not name it
            {"perk": "month-pass", "codes": [".."]},  # nor this: clients drop a `..` segment
            {"perk": "month-pass", "codes": ["x" * 65]},
            {"perk": "month-pass", "codes": ["ok", 7]},
            {"perk": "Month Pass", "codes": ["ok"]},
            {"perk": "month-pass"},
            {"perk": "month-pass", "codes": ["ok"], "extra": 1},
        ],
    )
    async def test_a_bad_upload_is_422_and_adds_nothing(
        self, client: httpx.AsyncClient, delivery: str, body: dict[str, Any]
    ) -> None:
        refused = await client.post("/v1/partner/perk-codes", json=body, headers=bearer(delivery))
        assert problem(refused) == (422, VALIDATION), refused.text
        assert await pool(client, delivery) == {"perk": "month-pass", "available": 0, "owed": 0}

    async def test_a_perk_no_plan_offers_from_the_partners_pool_is_404(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, delivery: str
    ) -> None:
        gym = await add_partner(app, client, admin_key, "gym")
        for key, perk in ((delivery, "other-perk"), (gym, "month-pass")):
            refused = await upload(client, key, ["C-1"], perk=perk)
            assert problem(refused) == (404, "perk_pool_not_found")
            read = await client.get(f"/v1/partner/perk-codes/{perk}", headers=bearer(key))
            assert problem(read) == (404, "perk_pool_not_found")
        assert await pool(client, delivery) == {"perk": "month-pass", "available": 0, "owed": 0}

    @pytest.mark.parametrize(
        "perk",
        [
            {"partner": "delivery", "name": "x", "source": "pool"},
            {"partner": "delivery", "name": "x", "perk": "month-pass"},
            {"partner": "delivery", "name": "x", "source": "theirs", "perk": "month-pass"},
        ],
    )
    async def test_a_pooled_perk_names_its_pool_and_only_it_does(
        self, client: httpx.AsyncClient, admin_key: str, delivery: str, perk: dict[str, Any]
    ) -> None:
        refused = await client.post(
            "/v1/plans",
            json={
                "code": "odd",
                "name": "Odd",
                "price": {"amount": 100, "currency": "CNY"},
                "interval": {"unit": "month"},
                "partner_perks": [perk],
            },
            headers=bearer(admin_key),
        )
        assert problem(refused) == (422, VALIDATION), refused.text
        assert refused.json()["errors"][0]["field"].startswith("partner_perks.0")
