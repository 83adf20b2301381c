"""The member's QR code: the app shows a code good for five minutes, and the till finds the member with it;
a copy stops working once its minutes are over, and a changed or foreign code finds no one."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from loyalty_api.crypto import Vault, generate_key
from loyalty_api.profiles import qr_codes
from tests.builders import enrol
from tests.conftest import bearer
from tests.graphql.helpers import graphql

LOOKUP = "/v1/members/lookup"


async def issue(client: httpx.AsyncClient, key: str, member_id: str) -> dict[str, Any]:
    response = await client.post(f"/v1/members/{member_id}/qr-code", headers=bearer(key))
    assert response.status_code == 201, response.text
    issued: dict[str, Any] = response.json()
    return issued


async def scan(client: httpx.AsyncClient, key: str, code: str) -> httpx.Response:
    return await client.get(LOOKUP, params={"qr_code": code}, headers=bearer(key))


async def test_the_till_finds_the_member_by_the_code_their_app_shows(
    client: httpx.AsyncClient, clock: FrozenClock, ecommerce_key: str, pos_key: str
) -> None:
    member = await enrol(client, pos_key)
    shown = await issue(client, ecommerce_key, member["id"])
    assert shown["qr_code"].startswith("LQ1") and len(shown["qr_code"]) == 51
    assert set(shown["qr_code"]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567LQ1")  # QR's alphanumeric mode
    assert shown["expires_at"] == "2026-03-16T10:05:00Z"
    found = await scan(client, pos_key, shown["qr_code"])
    assert found.status_code == 200, found.text
    by_card = await client.get(
        LOOKUP, params={"member_number": member["member_number"]}, headers=bearer(pos_key)
    )
    assert found.json() == by_card.json()

    # Until its five minutes are over; then the member shows a fresh one.
    clock.advance(timedelta(minutes=5) - timedelta(seconds=1))
    assert (await scan(client, pos_key, shown["qr_code"])).status_code == 200
    clock.advance(timedelta(seconds=1))
    old = await scan(client, pos_key, shown["qr_code"])
    assert (old.status_code, old.json()["code"]) == (422, "qr_code_expired")
    assert old.json()["expired_at"] == "2026-03-16T10:05:00Z"
    fresh = await issue(client, ecommerce_key, member["id"])
    assert (await scan(client, pos_key, fresh["qr_code"])).json()["id"] == member["id"]


async def test_a_changed_or_foreign_code_finds_no_one(
    client: httpx.AsyncClient, clock: FrozenClock, ecommerce_key: str, pos_key: str
) -> None:
    member, other = await enrol(client, pos_key), await enrol(client, pos_key)
    code = (await issue(client, ecommerce_key, member["id"]))["qr_code"]
    # The other member's id in this code's place, with this code's MAC.
    payload = base64.b32decode(code[3:])
    forged = "LQ1" + base64.b32encode(uuid.UUID(other["id"]).bytes + payload[16:]).decode()
    # Another programme's code (another encryption key), for this very member.
    foreign = qr_codes.issue(Vault(generate_key()), uuid.UUID(member["id"]), clock.now())
    last = code[-1]
    for bad in (
        forged,
        foreign.code,
        code[:-1] + ("A" if last != "A" else "B"),
        code[:-4],
        "LQ1" + "0" * 48,  # 0 is not base32
        member["member_number"],
        "",
    ):
        refused = await scan(client, pos_key, bad)
        assert (refused.status_code, refused.json()["code"]) in (
            (422, "qr_code_invalid"),
            (422, "lookup_needs_one_identifier"),  # the empty string: left out, so no identifier at all
        ), (bad, refused.text)


async def test_codes_are_for_active_members_and_a_lookup_takes_one_identifier(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    member = await enrol(client, pos_key)
    code = (await issue(client, pos_key, member["id"]))["qr_code"]
    both = await client.get(
        LOOKUP, params={"qr_code": code, "member_number": member["member_number"]}, headers=bearer(pos_key)
    )
    assert (both.status_code, both.json()["code"]) == (422, "lookup_needs_one_identifier")

    suspended = await client.patch(
        f"/v1/members/{member['id']}", json={"status": "suspended"}, headers=bearer(admin_key)
    )
    assert suspended.status_code == 200, suspended.text
    refused = await client.post(f"/v1/members/{member['id']}/qr-code", headers=bearer(pos_key))
    assert (refused.status_code, refused.json()["code"]) == (409, "member_not_active")
    # A code shown before still finds them, as their card number would: the till sees the status.
    assert (await scan(client, pos_key, code)).json()["status"] == "suspended"

    missing = await client.post(f"/v1/members/{uuid.uuid4()}/qr-code", headers=bearer(pos_key))
    assert (missing.status_code, missing.json()["code"]) == (404, "member_not_found")


async def test_graphql_finds_the_member_by_the_code_too(
    client: httpx.AsyncClient, ecommerce_key: str, pos_key: str
) -> None:
    member = await enrol(client, pos_key)
    code = (await issue(client, ecommerce_key, member["id"]))["qr_code"]
    query = "query($code: String!) { loyaltyMemberLookup(qrCode: $code) { id memberNumber } }"
    found = await graphql(client, pos_key, query, code=code)
    assert found["data"]["loyaltyMemberLookup"] == {
        "id": member["id"],
        "memberNumber": member["member_number"],
    }
    changed = await graphql(client, pos_key, query, code=code[:-1] + ("A" if code[-1] != "A" else "B"))
    assert changed["errors"][0]["extensions"]["code"] == "qr_code_invalid"


async def test_an_erased_members_code_finds_no_one(
    client: httpx.AsyncClient, admin_key: str, ecommerce_key: str, pos_key: str
) -> None:
    member = await enrol(client, pos_key)
    code = (await issue(client, ecommerce_key, member["id"]))["qr_code"]
    assert (await scan(client, pos_key, code)).json()["id"] == member["id"]
    # A scanner's line break is refused as every control character is (the till sends the code alone).
    typed = await scan(client, pos_key, code + "\r\n")
    assert (typed.status_code, typed.json()["code"]) == (422, "validation_error")
    erased = await client.post(f"/v1/members/{member['id']}/erase", headers=bearer(admin_key))
    assert erased.status_code == 200, erased.text
    gone = await scan(client, pos_key, code)
    assert (gone.status_code, gone.json()["code"]) == (404, "member_not_found")
