"""The demo's seeding run again over a database an operator has changed since (`serve --demo` does so at
each start): it starts, and keeps what the operator chose."""

from __future__ import annotations

from typing import Any

import httpx

from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.demo.data import demo_members
from loyalty_api.demo.seed import create_demo_keys, seed_programme
from tests.conftest import bearer

# A demo member with a PLUS trial and no demo order: enrolled anew, as a whole, when run again after erasure.
TRIAL_WITHOUT_AN_ORDER = 6


async def _member(client: httpx.AsyncClient, admin_key: str, n: int) -> httpx.Response:
    return await client.get(
        "/v1/members/lookup", params={"phone": demo_members()[n].phone}, headers=bearer(admin_key)
    )


async def _take_plus_off_sale(client: httpx.AsyncClient, admin_key: str) -> None:
    plan = (await client.get("/v1/plans/plus", headers=bearer(admin_key))).json()
    terms: dict[str, Any] = {
        "name": plan["name"],
        "price": plan["price"],
        "interval": plan["interval"],
        "trial_days": plan["trial_days"],
        "grace_days": plan["grace_days"],
        "benefit_ids": [benefit["id"] for benefit in plan["benefits"]],
        "coupons": plan["coupons"],
        "partner_perks": plan["partner_perks"],
        "active": False,
    }
    replaced = await client.put("/v1/plans/plus", json=terms, headers=bearer(admin_key))
    assert replaced.status_code == 200, replaced.text


class TestSeed:
    async def test_a_new_database_has_members_with_plus_paid_and_on_trial(
        self, client: httpx.AsyncClient, units: UnitsOfWork, admin_key: str
    ) -> None:
        # README: "three dozen members ..., some with an opening balance and some with PLUS".
        await seed_programme(units)

        states = []
        for n in (1, TRIAL_WITHOUT_AN_ORDER):
            found = await _member(client, admin_key, n)
            assert found.status_code == 200, found.text
            subscriptions = await client.get(
                f"/v1/members/{found.json()['id']}/subscriptions", headers=bearer(admin_key)
            )
            states.append([(s["plan"]["code"], s["state"]) for s in subscriptions.json()["items"]])
        assert states == [[("plus", "active")], [("plus", "trialing")]]


class TestSeedAgain:
    async def test_after_plus_was_taken_off_sale_it_runs_and_sells_plus_to_nobody(
        self, client: httpx.AsyncClient, units: UnitsOfWork, admin_key: str
    ) -> None:
        await seed_programme(units)
        found = await _member(client, admin_key, TRIAL_WITHOUT_AN_ORDER)
        assert found.status_code == 200, found.text
        erased = await client.post(f"/v1/members/{found.json()['id']}/erase", headers=bearer(admin_key))
        assert erased.status_code == 200, erased.text
        await _take_plus_off_sale(client, admin_key)

        await seed_programme(units)

        plan = await client.get("/v1/plans/plus", headers=bearer(admin_key))
        assert plan.json()["active"] is False  # the operator's choice stands
        again = await _member(client, admin_key, TRIAL_WITHOUT_AN_ORDER)
        assert again.status_code == 200, again.text  # enrolled anew, without the plan no longer sold
        subscriptions = await client.get(
            f"/v1/members/{again.json()['id']}/subscriptions", headers=bearer(admin_key)
        )
        assert subscriptions.json()["items"] == []


class TestDemoKeys:
    async def test_each_key_the_demo_makes_is_in_the_audit_log_as_made_on_the_host(
        self, client: httpx.AsyncClient, units: UnitsOfWork, admin_key: str
    ) -> None:
        # README: every key change made with the CLI is an entry, `init` included; the demo's keys too.
        made = await create_demo_keys(units)

        params = {"action": "keys_create"}
        audit = await client.get("/v1/audit-events", params=params, headers=bearer(admin_key))
        assert audit.status_code == 200, audit.text
        entries = [(e["channel"], e["subject_id"], e["after"]["scopes"]) for e in audit.json()["items"]]
        expected = [("cli", token.split("_")[1], [scope]) for scope, token in made.items()]
        assert sorted(entries) == sorted(expected)


class TestTheDocumentsExamplesOnTheDemo:
    async def test_the_enrolment_at_the_till_enrols_someone_new_there(
        self, client: httpx.AsyncClient, units: UnitsOfWork, pos_key: str
    ) -> None:
        # The examples tell the demo programme's story, and Swagger UI's "Try it out" on `serve --demo` sends
        # one as written: the till's enrolment was 409 member_exists, its phone being a demo member's.
        await seed_programme(units)
        document = (await client.get("/openapi.json")).json()
        example = document["paths"]["/v1/members"]["post"]["requestBody"]["content"]["application/json"]
        enrolment = example["examples"]["at_the_till"]["value"]

        enrolled = await client.post("/v1/members", json=enrolment, headers=bearer(pos_key))

        assert enrolled.status_code == 201, enrolled.text
