"""One link code, many simultaneous redemptions by the partner's system (a retry storm): one link."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
from fastapi import FastAPI

from tests.builders import enrol, make_partner_key
from tests.conftest import UNLIMITED, bearer


async def test_one_code_links_once_however_many_tries_arrive_together(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    made = await client.post(
        "/v1/partners", json={"code": "race-books", "name": "Race"}, headers=bearer(admin_key)
    )
    key = await make_partner_key(app, partner_id=uuid.UUID(made.json()["id"]), rate_limit=UNLIMITED)
    member = await enrol(client, pos_key)
    issued = await client.post(
        f"/v1/members/{member['id']}/partner-link-codes",
        json={"partner": "race-books"},
        headers=bearer(pos_key),
    )
    code = issued.json()["code"]

    async def link(n: int) -> httpx.Response:
        body = {"code": code, "partner_customer_ref": f"RACE-{n}"}
        return await client.post("/v1/partner/links", json=body, headers=bearer(key))

    answers = await asyncio.gather(*(link(n) for n in range(12)))
    outcomes = Counter((a.status_code, a.json().get("code")) for a in answers)
    assert outcomes == {(201, None): 1, (404, "link_code_invalid"): 11}
    links = await client.get(f"/v1/members/{member['id']}/partner-links", headers=bearer(pos_key))
    assert len(links.json()["items"]) == 1
