"""The right to be forgotten: `POST /v1/members/{id}/erase` leaves no personal data anywhere, while the
ledger, the programme's figures and partner settlements stay as they were. The member goes through every
feature first (the export's story), then every text and JSON column of every table is searched, ciphertexts
opened, for what identified them."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import JSON, String, Text, select, text

from loyalty_api.crypto import DecryptionFailed
from loyalty_api.db.base import Base
from loyalty_api.http.problems import all_routes
from loyalty_api.idempotency import service as idempotency
from loyalty_api.members.birthday_keys import birthday_keys
from loyalty_api.members.errors import MemberNotFound
from loyalty_api.privacy import erasure
from loyalty_api.profiles import service as profiles
from loyalty_api.segments.service import compute_segments
from loyalty_api.settings import Settings
from loyalty_api.webhooks.delivery import dispatch_events, send_due
from tests.builders import add_tier, enrol
from tests.checkout.helpers import add_benefit, cart, item
from tests.conftest import bearer, units_of
from tests.databases import is_postgres, lock_waiters, side_engine, until_waiting_for_a_lock
from tests.graphql.helpers import graphql, mutate
from tests.inspect_db import count, events, rows, table_counts
from tests.ledger_checks import assert_ledger_invariant
from tests.partners.helpers import link, register_partner
from tests.points.helpers import cny, earn, set_program
from tests.privacy.conftest import Story
from tests.subscriptions.helpers import add_plan, subscribe, subscribe_paid
from tests.webhooks.endpoint_helpers import add_endpoint
from tests.webhooks.receiver import running_receiver
from tests.webhooks.test_delivery_flow import with_settings

OVERRIDE = {"tier": "gold", "until": "2026-12-31T00:00:00Z", "reason": "x"}
# What identified the story's member: contacts as given and as stored, name, birthday, external ids, the
# partner's customer ref (and their card number, added by the test).
PERSONAL = (
    "13812345678",
    "+8613812345678",
    "li.na@example.cn",
    "李娜",
    "1990-07-08",
    "C-1001",
    "WEB-500087",
    "CAFE-7",
)
WINDOW = {"from": "2026-01-01T00:00:00Z", "to": "2027-01-01T00:00:00Z"}


async def _erase(client: httpx.AsyncClient, admin_key: str, member_id: str) -> dict[str, Any]:
    response = await client.post(f"/v1/members/{member_id}/erase", headers=bearer(admin_key))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _balance(client: httpx.AsyncClient, admin_key: str, member_id: str) -> int:
    points = await client.get(f"/v1/members/{member_id}/points", headers=bearer(admin_key))
    assert points.status_code == 200, points.text
    found: int = points.json()["balance"]
    return found


async def _every_text(app: FastAPI) -> list[tuple[str, str, str]]:
    """(table, column, value) of every text and JSON value in the database, ciphertexts opened."""
    units = units_of(app)
    found: list[tuple[str, str, str]] = []
    async with units.database.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, String | Text | JSON)]
            columns += [c for c in table.columns if c.type.__class__.__name__ in ("JSONB", "Variant")]
            if not columns:
                continue
            for row in (await connection.execute(select(*columns))).all():
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                    found.append((table.name, column.name, _opened(units.vault, text)))
    return found


def _opened(vault: Any, text: str) -> str:
    """The text as a reader would see it: a ciphertext decrypted, JSON with its escapes (`\\u674e`) read."""
    if text.startswith("v1:"):
        try:
            text = str(vault.decrypt(text))
        except (DecryptionFailed, ValueError):
            return text
    try:
        return json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        return text


async def _figures(client: httpx.AsyncClient, admin_key: str) -> dict[str, Any]:
    overview = await client.get("/v1/analytics/overview", params=WINDOW, headers=bearer(admin_key))
    assert overview.status_code == 200, overview.text
    settlement = await client.get("/v1/partners/cafe/settlements", params=WINDOW, headers=bearer(admin_key))
    assert settlement.status_code == 200, settlement.text
    figures: dict[str, Any] = overview.json()
    # A paid plan ends with the erasure, as it does when a member closes: the paying members and revenue
    # are the one thing that changes.
    figures.pop("paying_members")
    figures.pop("monthly_recurring_revenue")
    return {"overview": figures, "settlement": settlement.json()}


async def test_a_member_closed_before_the_erasure_stays_out_of_the_member_counts(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    """Closed members are not counted; erasing one must not count them again (the figures do not move)."""
    await set_program(client, admin_key)
    for member in (stayer := await enrol(client, admin_key), leaver := await enrol(client, admin_key)):
        await earn(client, pos_key, member["id"], 12_990)
    await compute_segments(units_of(app))
    closed = await client.patch(
        f"/v1/members/{leaver['id']}", json={"status": "closed"}, headers=bearer(admin_key)
    )
    assert closed.status_code == 200, closed.text
    overview = await client.get("/v1/analytics/overview", params=WINDOW, headers=bearer(admin_key))
    segments = await client.get("/v1/segments", headers=bearer(admin_key))
    assert overview.json()["members"] == 1, stayer

    await _erase(client, admin_key, leaver["id"])

    after = await client.get("/v1/analytics/overview", params=WINDOW, headers=bearer(admin_key))
    assert after.json() == overview.json()
    assert (await client.get("/v1/segments", headers=bearer(admin_key))).json() == segments.json()


async def _as_a_release_before_0045(app: FastAPI, member: dict[str, Any], status: str) -> None:
    """The member's status set as a process started before revision 0045 sets it during a rolling deploy:
    it knows nothing of `closed_at`, so it neither sets nor clears it."""
    async with units_of(app).database.engine.begin() as connection:
        await connection.execute(
            text("UPDATE members SET status = :s WHERE member_number = :n"),
            {"s": status, "n": member["member_number"]},
        )


async def _members_counted(client: httpx.AsyncClient, admin_key: str) -> tuple[int, dict[str, int]]:
    overview = await client.get("/v1/analytics/overview", params=WINDOW, headers=bearer(admin_key))
    segments = await client.get("/v1/segments", headers=bearer(admin_key))
    assert overview.status_code == segments.status_code == 200, (overview.text, segments.text)
    counts: dict[str, int] = segments.json()["counts"]
    return overview.json()["members"], counts


async def test_a_member_reopened_by_a_process_of_the_release_before_is_counted_again(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    """Closed by an upgraded process, reopened by one not yet upgraded (a rolling deploy): the member is
    active and must be counted, not left out for good by the closed_at nobody cleared, and still once
    erased."""
    await set_program(client, admin_key)
    members = [await enrol(client, admin_key) for _ in range(2)]
    for member in members:
        await earn(client, pos_key, member["id"], 12_990)
    await compute_segments(units_of(app))
    before = await _members_counted(client, admin_key)
    closed = await client.patch(
        f"/v1/members/{members[1]['id']}", json={"status": "closed"}, headers=bearer(admin_key)
    )
    assert closed.status_code == 200, closed.text
    assert (await _members_counted(client, admin_key))[0] == 1

    await _as_a_release_before_0045(app, members[1], "active")

    assert await _members_counted(client, admin_key) == before
    await _erase(client, admin_key, members[1]["id"])  # an erasure moves no figure
    assert await _members_counted(client, admin_key) == before


async def test_a_member_closed_by_a_process_of_the_release_before_stays_out_once_erased(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    """Closed by a process not yet upgraded (no closed_at), then erased by an upgraded one: the erasure
    still sees a closed member, and the counts must not count them again."""
    await set_program(client, admin_key)
    members = [await enrol(client, admin_key) for _ in range(2)]
    for member in members:
        await earn(client, pos_key, member["id"], 12_990)
    await compute_segments(units_of(app))
    await _as_a_release_before_0045(app, members[1], "closed")
    closed = await _members_counted(client, admin_key)
    assert closed[0] == 1

    await _erase(client, admin_key, members[1]["id"])

    assert await _members_counted(client, admin_key) == closed


@pytest.mark.parametrize("ending", ["erase", "close"])
async def test_a_hold_of_a_member_erased_or_closed_is_freed_and_cannot_be_captured(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, ending: str
) -> None:
    await set_program(client, admin_key)
    member = await enrol(client, pos_key)
    await earn(client, pos_key, member["id"], 10_000)
    hold = await client.post(
        f"/v1/members/{member['id']}/holds",
        json={"points": 50, "order_ref": "WEB-9"},
        headers=bearer(pos_key),
    )
    assert hold.status_code == 201, hold.text
    if ending == "erase":
        await _erase(client, admin_key, member["id"])
    else:
        closing = await client.patch(
            f"/v1/members/{member['id']}", json={"status": "closed"}, headers=bearer(admin_key)
        )
        assert closing.status_code == 200, closing.text
    captured = await client.post(f"/v1/holds/{hold.json()['id']}/capture", json={}, headers=bearer(pos_key))
    if ending == "erase":  # an erased member is not there, nor is what was theirs
        assert (captured.status_code, captured.json()["code"]) == (404, "hold_not_found"), captured.text
    else:
        assert captured.status_code == 409, captured.text
        assert captured.json()["code"] == "hold_not_active"
        assert captured.json()["hold_status"] == "released"
    [released] = await events(app, "points.hold_released")
    assert released["payload"]["reason"] == f"member_{ending}d"
    assert not await events(app, "points.hold_captured")
    await assert_ledger_invariant(app)


async def test_another_members_reply_naming_the_same_name_is_kept(
    client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    await set_program(client, admin_key)
    headers = bearer(pos_key, idempotency_key="shop-0001")
    first = await client.post("/v1/members", json={"name": "张伟", "birthday": "1990-05-01"}, headers=headers)
    assert first.status_code == 201, first.text
    namesake = await enrol(client, pos_key, name="张伟", birthday="1990-05-01")
    erased = await _erase(client, admin_key, namesake["id"])
    assert (erased["idempotency_replies_rewritten"], erased["idempotency_replies_dropped"]) == (0, 0)
    again = await client.post("/v1/members", json={"name": "张伟", "birthday": "1990-05-01"}, headers=headers)
    assert again.headers.get("Idempotent-Replayed") == "true"  # not a second member
    assert again.json()["id"] == first.json()["id"]


async def test_a_referred_friends_reply_sharing_the_referrers_birthday_is_kept(
    client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    await set_program(client, admin_key)
    referrer = await enrol(client, pos_key, name="王芳", birthday="1990-05-01")
    body = {"name": "赵磊", "birthday": "1990-05-01", "referral_code": referrer["referral_code"]}
    headers = bearer(pos_key, idempotency_key="friend-0001")
    first = await client.post("/v1/members", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert first.json()["referred_by"] == referrer["id"]
    erased = await _erase(client, admin_key, referrer["id"])
    # the friend's reply names the referrer only by id
    assert (erased["idempotency_replies_rewritten"], erased["idempotency_replies_dropped"]) == (0, 0)
    again = await client.post("/v1/members", json=body, headers=headers)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == first.json()["id"]


async def test_a_partners_refusal_naming_the_ref_in_its_path_replays_without_it(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    await set_program(client, admin_key)
    partner_key = await register_partner(app, client, admin_key, "cafe", earn_rate="1")
    member = await enrol(client, pos_key)
    ref = "PHONE-13812345678"
    await link(client, pos_key, partner_key, member["id"], "cafe", ref)
    body = {"order_ref": "C-1", "amount": cny(1_000)}
    path = f"/v1/partner/members/{ref}/earn"
    earned = await client.post(path, json=body, headers=bearer(partner_key, idempotency_key="t-1"))
    assert earned.status_code == 201, earned.text
    refused = await client.post(path, json=body, headers=bearer(partner_key, idempotency_key="t-2"))
    assert refused.status_code == 409, refused.text
    assert ref in refused.json()["instance"]
    erased = await _erase(client, admin_key, member["id"])
    # the refusal; the earn's reply names no ref
    assert (erased["idempotency_replies_rewritten"], erased["idempotency_replies_dropped"]) == (1, 0)
    assert [hit for hit in await _every_text(app) if ref in hit[2]] == []
    again = await client.post(path, json=body, headers=bearer(partner_key, idempotency_key="t-2"))
    assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (409, "true"), again.text
    assert again.json() == refused.json() | {"instance": "/v1/partner/members/erased/earn"}


@pytest.mark.parametrize("unlinked_by", ["partner", "desk"])
async def test_a_ref_of_a_link_ended_before_the_erasure_is_forgotten_too(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, unlinked_by: str
) -> None:
    """A partner that knew the member by a ref (a phone number, here) and unlinked them before the erasure:
    the replies kept for its Idempotency-Keys (the link, an exchange in) still named that ref after the
    erasure, and replayed it, since only the refs of the links standing at the erasure were looked for."""
    await set_program(client, admin_key)
    partner_key = await register_partner(app, client, admin_key, "cafe", exchange_in_rate="1")
    member = await enrol(client, pos_key)
    ref = "PHONE-13812345678"
    issued = await client.post(
        f"/v1/members/{member['id']}/partner-link-codes", json={"partner": "cafe"}, headers=bearer(pos_key)
    )
    assert issued.status_code == 201, issued.text
    linked = await client.post(
        "/v1/partner/links",
        json={"code": issued.json()["code"], "partner_customer_ref": ref},
        headers=bearer(partner_key, idempotency_key="cafe-link-1"),
    )
    assert linked.status_code == 201 and ref in linked.text, linked.text
    moved = await client.post(
        f"/v1/partner/members/{ref}/exchanges-in",
        json={"partner_ref": "T-1", "partner_points": 100},
        headers=bearer(partner_key, idempotency_key="cafe-in-1"),
    )
    assert moved.status_code == 201, moved.text
    if unlinked_by == "partner":
        ended = await client.delete(f"/v1/partner/links/{ref}", headers=bearer(partner_key))
    else:
        ended = await client.delete(f"/v1/members/{member['id']}/partner-links/cafe", headers=bearer(pos_key))
    assert ended.status_code == 204, ended.text

    erased = await _erase(client, admin_key, member["id"])

    left = [hit for hit in await _every_text(app) if ref in hit[2]]
    assert left == [], "\n".join(f"{t}.{c}: {v[:300]}" for t, c, v in left)
    assert (erased["idempotency_replies_rewritten"], erased["idempotency_replies_dropped"]) == (2, 0)


@pytest.mark.parametrize("short", ["partner_ref", "external_id"])
@pytest.mark.parametrize("request_of", ["earn", "adjustment"])
async def test_another_members_reply_holding_the_erased_members_short_ref_or_reason_is_kept(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, request_of: str, short: str
) -> None:
    """A partner's ref, an external id or an operator's reason is matched only in replies about the erased
    member: a short ref or external id ("1001") dropped another member's earn for order 1001, whose till's
    retry was then 409 order_already_earned, and a reason as plain as "goodwill" dropped another member's
    adjustment, whose retry would have given the points twice."""
    await set_program(client, admin_key)
    partner_key = await register_partner(app, client, admin_key, "cafe", earn_rate="1")
    if short == "external_id":
        erased = await enrol(client, pos_key, external_ids={"pos": "1001"})
    else:
        erased = await enrol(client, pos_key)
        await link(client, pos_key, partner_key, erased["id"], "cafe", "1001")
    other = await enrol(client, pos_key)
    theirs = await client.post(
        f"/v1/members/{erased['id']}/adjustments",
        json={"points": 5, "reason": "goodwill"},
        headers=bearer(admin_key),
    )
    assert theirs.status_code == 201, theirs.text
    if request_of == "earn":
        path, body = f"/v1/members/{other['id']}/earn", {"order_ref": "1001", "amount": cny(1_000)}
        headers = bearer(pos_key, idempotency_key="till-3-1001")
    else:
        path, body = f"/v1/members/{other['id']}/adjustments", {"points": 50, "reason": "goodwill"}
        headers = bearer(admin_key, idempotency_key="desk-1-goodwill")
    first = await client.post(path, json=body, headers=headers)
    assert first.status_code in (200, 201), first.text
    assert other["id"] not in first.text  # the reply names neither member
    balance = await _balance(client, admin_key, other["id"])

    erasure_answer = await _erase(client, admin_key, erased["id"])
    assert (
        erasure_answer["idempotency_replies_rewritten"] == erasure_answer["idempotency_replies_dropped"] == 0
    )

    again = await client.post(path, json=body, headers=headers)
    assert again.status_code == first.status_code, again.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    assert await _balance(client, admin_key, other["id"]) == balance  # done once


@pytest.mark.parametrize("request_of", ["exchange_out", "exchange_in", "exchange_confirm", "perk_redeem"])
async def test_a_reply_naming_the_ref_beside_the_members_exchange_or_perk_replays_without_it(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin_key: str,
    pos_key: str,
    ecommerce_key: str,
    request_of: str,
) -> None:
    """A reply about one of the member's exchanges or perks names the partner's ref and the record, not the
    member: kept as it was, its key replayed the erased member's ref (a phone number, here) after the
    erasure. It replays with `erased` in its place."""
    await set_program(client, admin_key)
    partner_key = await register_partner(
        app, client, admin_key, "cafe", exchange_out_rate="1", exchange_in_rate="1"
    )
    member = await enrol(client, pos_key)
    ref = "PHONE-13812345678"
    await link(client, pos_key, partner_key, member["id"], "cafe", ref)
    given = await client.post(
        f"/v1/members/{member['id']}/adjustments",
        json={"points": 500, "reason": "welcome"},
        headers=bearer(admin_key),
    )
    assert given.status_code == 201, given.text
    if request_of in ("exchange_out", "exchange_confirm"):
        out = await client.post(
            f"/v1/members/{member['id']}/exchanges",
            json={"partner": "cafe", "points": 100},
            headers=bearer(pos_key, idempotency_key="till-1-out"),
        )
        assert out.status_code == 201, out.text
    if request_of == "exchange_out":
        path, key, headers = f"/v1/members/{member['id']}/exchanges", pos_key, "till-1-out"
        body: dict[str, Any] | None = {"partner": "cafe", "points": 100}
    elif request_of == "exchange_confirm":
        path, key, headers = f"/v1/partner/exchanges/{out.json()['id']}/confirm", partner_key, "cafe-ok-1"
        body = None
    elif request_of == "exchange_in":
        path, key, headers = f"/v1/partner/members/{ref}/exchanges-in", partner_key, "cafe-in-1"
        body = {"partner_ref": "T-1", "partner_points": 100}
    else:
        await add_plan(client, admin_key, "video-annual", partner_perks=[{"partner": "cafe", "name": "咖啡"}])
        await subscribe_paid(client, ecommerce_key, member["id"], "video-annual")
        [perk] = (
            await client.get(f"/v1/members/{member['id']}/partner-perks", headers=bearer(pos_key))
        ).json()["items"]
        path, key, headers = f"/v1/partner/perks/{perk['code']}/redeem", partner_key, "cafe-perk-1"
        body = None
    first = await client.post(path, json=body, headers=bearer(key, idempotency_key=headers))
    assert first.status_code in (200, 201), first.text
    assert ref in first.text and member["id"] not in first.text  # names the ref, not the member

    erasure_answer = await _erase(client, admin_key, member["id"])
    assert erasure_answer["idempotency_replies_rewritten"] >= 1
    assert erasure_answer["idempotency_replies_dropped"] == 0

    assert [hit for hit in await _every_text(app) if ref in hit[2]] == []

    # the retry replays what was done, without the ref, and does nothing again
    again = await client.post(path, json=body, headers=bearer(key, idempotency_key=headers))
    assert again.headers.get("Idempotent-Replayed") == "true", again.text
    assert again.status_code == first.status_code
    assert again.json() == json.loads(first.text.replace(ref, "erased"))


class TestRetriesAfterAnErasure:
    """A reply recorded for an Idempotency-Key about the erased member was dropped, so a retry with the key
    ran again: an import's retry imported the whole batch once more (the other members twice, with their
    points), an enrolment's enrolled the erased person anew. The reply is kept with their values rewritten,
    as stored events are, and a retry replays it and changes nothing."""

    async def test_an_imports_retry_replays_and_imports_no_one_twice(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        await set_program(client, admin_key)
        batch = {
            "members": [
                {"name": "李娜", "points": [{"points": 40}]},
                {"name": "王芳", "points": [{"points": 60}]},
            ]
        }
        headers = bearer(admin_key, idempotency_key="import-batch-1")
        first = await client.post("/v1/members/import", json=batch, headers=headers)
        assert first.status_code == 201, first.text
        gone, kept = first.json()["members"]
        erased = await _erase(client, admin_key, gone["id"])
        assert (erased["idempotency_replies_rewritten"], erased["idempotency_replies_dropped"]) == (1, 0)
        written = await table_counts(app, "members", "ledger_entries", "point_lots", "outbox_events")

        again = await client.post("/v1/members/import", json=batch, headers=headers)

        assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (201, "true"), again.text
        assert again.json() == {"members": [gone | {"member_number": "erased"}, kept]}
        assert await table_counts(app, "members", "ledger_entries", "point_lots", "outbox_events") == written
        left = [hit for hit in await _every_text(app) if "李娜" in hit[2] or gone["member_number"] in hit[2]]
        assert left == [], left
        # The other member erased too: the reply rewritten again still answers the same retry.
        await _erase(client, admin_key, kept["id"])
        last = await client.post("/v1/members/import", json=batch, headers=headers)
        assert (last.status_code, last.headers.get("Idempotent-Replayed")) == (201, "true"), last.text
        assert last.json() == {
            "members": [gone | {"member_number": "erased"}, kept | {"member_number": "erased"}]
        }

    async def test_an_enrolments_retry_replays_without_their_data_and_enrols_no_one(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        body = {
            "phone": "138 1234 5678",
            "email": "Li.Na@Example.cn",
            "name": "李娜",
            "birthday": "1990-07-08",
            "external_ids": {"pos": "C-1001"},
        }
        headers = bearer(pos_key, idempotency_key="till-1-0001")
        first = await client.post("/v1/members", json=body, headers=headers)
        assert first.status_code == 201, first.text
        erased = await _erase(client, admin_key, first.json()["id"])
        assert (erased["idempotency_replies_rewritten"], erased["idempotency_replies_dropped"]) == (1, 0)

        again = await client.post("/v1/members", json=body, headers=headers)

        assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (201, "true"), again.text
        assert again.json() == first.json() | {
            "phone": "erased",
            "email": "erased",
            "name": "erased",
            "birthday": None,  # a date, or none
            "member_number": "erased",
            "external_ids": {"pos": "erased"},
        }
        assert await count(app, "members") == 1
        personal = (*PERSONAL, first.json()["member_number"])
        assert [hit for hit in await _every_text(app) if any(p in hit[2] for p in personal)] == []
        # The record no longer holds a plain hash of what was sent (a phone number is quickly guessed from
        # one), and the key still refuses another body.
        sent = idempotency.fingerprint("POST", "/v1/members", json.dumps(body).encode())
        assert sent not in {
            r["fingerprint"] for r in await rows(app, "SELECT fingerprint FROM idempotency_records")
        }
        other = await client.post("/v1/members", json=body | {"name": "王芳"}, headers=headers)
        assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused"), other.text

    async def test_a_record_with_a_plain_hash_from_before_the_upgrade_is_keyed_and_still_replays(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        """Claims are keyed when made; a record claimed before that holds a plain SHA-256 of the request for
        up to 24 hours, and erasing its member keys it."""
        body = {"phone": "138 1234 5678", "name": "李娜"}
        headers = bearer(pos_key, idempotency_key="till-1-0002")
        first = await client.post("/v1/members", json=body, headers=headers)
        assert first.status_code == 201, first.text
        sent = idempotency.fingerprint("POST", "/v1/members", first.request.content)
        async with units_of(app).begin() as uow:
            await uow.session.execute(
                text("UPDATE idempotency_records SET fingerprint = :sent WHERE key = 'till-1-0002'"),
                {"sent": sent},
            )
        await _erase(client, admin_key, first.json()["id"])

        assert sent not in {
            r["fingerprint"] for r in await rows(app, "SELECT fingerprint FROM idempotency_records")
        }
        again = await client.post("/v1/members", json=body, headers=headers)
        assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (201, "true"), again.text
        other = await client.post("/v1/members", json=body | {"name": "王芳"}, headers=headers)
        assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused"), other.text

    async def test_a_graphql_enrolments_retry_replays_without_their_data(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        fields = "member { id name phone email birthday memberNumber }"
        enrolment = {
            "phone": "13812345678",
            "email": "li.na@example.cn",
            "name": "李娜",
            "birthday": "1990-07-08",
        }
        first = await mutate(
            client, pos_key, "loyaltyEnrolMember", fields, enrolment, idempotency_key="app-1"
        )
        assert first["userErrors"] == [], first
        await _erase(client, admin_key, first["member"]["id"])

        again = await mutate(
            client, pos_key, "loyaltyEnrolMember", fields, enrolment, idempotency_key="app-1"
        )

        assert again["replayed"] is True and again["userErrors"] == []
        assert again["member"] == {
            "id": first["member"]["id"],
            "name": "erased",
            "phone": "erased",
            "email": "erased",
            "birthday": None,
            "memberNumber": "erased",
        }

    async def test_a_graphql_enrolments_replay_reads_no_points_of_the_erased_member(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        """The replayed payload names the member; what GraphQL reads of them after is read now, and an erased
        member is found by no read: GET /v1/members/{id}/points is 404 member_not_found, and so is their
        pointsAccount (it answered the erased member's balance, lifetime points and what expires when)."""
        await set_program(client, admin_key)
        enrolled = await mutate(client, pos_key, "loyaltyEnrolMember", "member { id }", {}, "app-2")
        member_id = enrolled["member"]["id"]
        await earn(client, pos_key, member_id, 30_000)
        await _erase(client, admin_key, member_id)
        rest = await client.get(f"/v1/members/{member_id}/points", headers=bearer(pos_key))
        assert (rest.status_code, rest.json()["code"]) == (404, "member_not_found"), rest.text

        replayed = await graphql(
            client,
            pos_key,
            "mutation($key: String) { loyaltyEnrolMember(input: {}, idempotencyKey: $key) { "
            "replayed member { id pointsAccount { balance lifetimeEarned expiring { points } } } } }",
            key="app-2",
        )

        assert replayed["data"] == {"loyaltyEnrolMember": {"replayed": True, "member": None}}, replayed
        [error] = replayed["errors"]
        assert error["path"] == ["loyaltyEnrolMember", "member", "pointsAccount"]
        assert error["extensions"]["code"] == "member_not_found"

    async def test_a_graphql_enrolments_replay_lists_no_subscriptions_of_the_erased_member(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, ecommerce_key: str
    ) -> None:
        """GET /v1/subscriptions/{id} of an erased member's subscription is 404, and so is their list: the
        replayed payload's Member.subscriptions listed them (state, period, paymentRef), read in one
        statement for the request's members without asking whether each was still there."""
        await set_program(client, admin_key)
        await add_plan(client, admin_key, "plus")
        enrolled = await mutate(client, pos_key, "loyaltyEnrolMember", "member { id }", {}, "app-3")
        member_id = enrolled["member"]["id"]
        subscription = await subscribe_paid(client, ecommerce_key, member_id, "plus")
        await _erase(client, admin_key, member_id)
        rest = await client.get(f"/v1/subscriptions/{subscription['id']}", headers=bearer(pos_key))
        assert (rest.status_code, rest.json()["code"]) == (404, "subscription_not_found"), rest.text

        replayed = await graphql(
            client,
            pos_key,
            "mutation($key: String) { loyaltyEnrolMember(input: {}, idempotencyKey: $key) { "
            "replayed member { id subscriptions { id state paymentRef } } } }",
            key="app-3",
        )

        assert "errors" not in replayed, replayed
        assert replayed["data"]["loyaltyEnrolMember"]["member"] == {"id": member_id, "subscriptions": []}


class TestErasure:
    async def test_leaves_no_personal_data_in_any_table(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, story: Story
    ) -> None:
        member_id = story.member["id"]
        # A reply about the member recorded for an Idempotency-Key (encrypted like every reply).
        updated = await mutate(
            client,
            admin_key,
            "loyaltyUpdateMember",
            "member { id }",
            input={"memberId": member_id, "name": "李娜"},
            idempotency_key="rename-1",
        )
        assert updated["userErrors"] == []
        personal = (*PERSONAL, story.member["member_number"])
        before = [hit for hit in await _every_text(app) if any(p in hit[2] for p in personal)]
        # The search finds the data where it was: the scan itself can fail.
        assert {table for table, _, _ in before} >= {"members", "member_external_ids", "partner_links"}
        assert "idempotency_records" in {table for table, _, _ in before}

        erased = await _erase(client, admin_key, member_id)

        assert erased["newly_erased"] is True
        assert erased["external_ids"] == 2 and erased["partner_links"] == ["cafe"]
        assert (erased["idempotency_replies_rewritten"], erased["idempotency_replies_dropped"]) == (1, 0)
        left = [hit for hit in await _every_text(app) if any(p in hit[2] for p in personal)]
        assert left == [], "\n".join(f"{t}.{c}: {v[:300]}" for t, c, v in left)
        vault = units_of(app).vault
        hashes = {
            vault.blind_index("phone", "+8613812345678"),
            vault.blind_index("email", "li.na@example.cn"),
            *birthday_keys(vault, date(1990, 7, 8)),
        }
        assert not [hit for hit in await _every_text(app) if hit[2] in hashes]

    async def test_keeps_the_ledger_the_figures_and_the_settlement(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, story: Story
    ) -> None:
        figures = await _figures(client, admin_key)

        await _erase(client, admin_key, story.member["id"])

        assert await _figures(client, admin_key) == figures
        await assert_ledger_invariant(app)

    async def test_the_member_vanishes_from_lookups_lists_and_graphql(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, story: Story
    ) -> None:
        member = story.member
        await _erase(client, admin_key, member["id"])

        for path, params in (
            (f"/v1/members/{member['id']}", {}),
            ("/v1/members/lookup", {"member_number": member["member_number"]}),
            ("/v1/members/lookup", {"phone": "13812345678"}),
            ("/v1/members/lookup", {"external_system": "pos", "external_id": "C-1001"}),
            (f"/v1/members/{member['id']}/points", {}),
            (f"/v1/members/{member['id']}/export", {}),
        ):
            response = await client.get(path, params=params, headers=bearer(admin_key))
            assert response.status_code == 404, (path, response.text)
            assert response.json()["code"] == "member_not_found"
        listed = (await client.get("/v1/members", params={"limit": 200}, headers=bearer(admin_key))).json()
        assert member["id"] not in {m["id"] for m in listed["items"]}
        found = await graphql(
            client, admin_key, "query($id: ID!) { loyaltyMember(id: $id) { id } }", id=member["id"]
        )
        assert found["data"]["loyaltyMember"] is None
        # Every read of a member by id, as the routes list them, and the writes that name one.
        reads = [
            route.path_format
            for route in all_routes(app.routes)
            if "GET" in (route.methods or ()) and route.param_convertors.keys() == {"member_id"}
        ]
        assert len(reads) > 10
        writes = [
            ("post", f"/v1/members/{member['id']}/earn", {"order_ref": "A-1", "amount": cny(1_000)}),
            ("post", f"/v1/members/{member['id']}/redeem", {"points": 10, "order_ref": "A-2"}),
            ("patch", f"/v1/members/{member['id']}", {"name": "复活"}),
            (
                "put",
                f"/v1/members/{member['id']}/tier/override",
                {"tier": "gold", "until": "2026-12-31T00:00:00Z", "reason": "x"},
            ),
            ("post", f"/v1/members/{member['id']}/subscriptions", {"plan": "plus"}),
            ("post", "/v1/checkout/quote", {"member_id": member["id"], "cart": cart(item("TEA-1", 1_000))}),
        ]
        for path in reads:
            response = await client.get(path.format(member_id=member["id"]), headers=bearer(admin_key))
            assert response.status_code == 404, (path, response.text)
            assert response.json()["code"] == "member_not_found", path
        for method, path, body in writes:
            response = await client.request(method, path, json=body, headers=bearer(admin_key))
            assert response.status_code == 404, (path, response.text)
            assert response.json()["code"] == "member_not_found", path
        used = await client.post(
            f"/v1/coupons/{story.coupon['code']}/use", json={"order_ref": "A-3"}, headers=bearer(admin_key)
        )
        assert used.status_code == 404 and used.json()["code"] == "coupon_not_found", used.text
        # Nor is what was theirs, read by its own id or code.
        subscription = story.subscription["id"]
        for path, code in (
            (f"/v1/holds/{story.hold_id}", "hold_not_found"),
            (f"/v1/subscriptions/{subscription}", "subscription_not_found"),
            (f"/v1/subscriptions/{subscription}/payments", "subscription_not_found"),
        ):
            response = await client.get(path, headers=bearer(admin_key))
            assert (response.status_code, response.json()["code"]) == (404, code), (path, response.text)
        theirs = await graphql(
            client,
            admin_key,
            "query($hold: ID!, $sub: ID!, $r: [_Any!]!) { loyaltyHold(id: $hold) { id } "
            "loyaltySubscription(id: $sub) { id } "
            "_entities(representations: $r) { ... on Coupon { code } } }",
            hold=story.hold_id,
            sub=subscription,
            r=[{"__typename": "Coupon", "code": story.coupon["code"]}],
        )
        assert theirs.get("errors") is None, theirs
        assert theirs["data"] == {"loyaltyHold": None, "loyaltySubscription": None, "_entities": [None]}

    async def test_frees_the_identifiers_for_someone_else(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, story: Story
    ) -> None:
        await _erase(client, admin_key, story.member["id"])

        newcomer = await enrol(
            client, pos_key, phone="138 1234 5678", email="li.na@example.cn", external_ids={"pos": "C-1001"}
        )
        found = await client.get(
            "/v1/members/lookup", params={"phone": "13812345678"}, headers=bearer(pos_key)
        )
        assert found.json()["id"] == newcomer["id"] != story.member["id"]

    async def test_again_changes_nothing_and_tells_the_partner_once(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, story: Story
    ) -> None:
        first = await _erase(client, admin_key, story.member["id"])
        again = await _erase(client, admin_key, story.member["id"])

        assert again["newly_erased"] is False and again["erased_at"] == first["erased_at"]
        assert again["partner_links"] == [] and again["external_ids"] == 0
        async with units_of(app).read() as uow:
            from sqlalchemy import text

            events = (
                (
                    await uow.session.execute(
                        text("SELECT payload FROM outbox_events WHERE type = 'member.erased'")
                    )
                )
                .scalars()
                .all()
            )
        payloads = [p if isinstance(p, dict) else json.loads(p) for p in events]
        assert sorted(((p["member_id"], p["partner"]) for p in payloads), key=str) == [
            (story.member["id"], "cafe"),
            (story.member["id"], None),
        ]

    async def test_keeps_what_others_were_told_about_the_member(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        referrer = await enrol(client, pos_key, phone="13900002222")
        body = {"phone": "13900003333", "referral_code": referrer["referral_code"]}
        headers = bearer(pos_key, idempotency_key="friend-1")
        first = await client.post("/v1/members", json=body, headers=headers)
        assert first.status_code == 201, first.text

        await _erase(client, admin_key, referrer["id"])

        # The friend's till retries: its reply names the referrer only by id, and is replayed as it was.
        again = await client.post("/v1/members", json=body, headers=headers)
        assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()


class TestRefusals:
    async def test_an_unknown_member_is_404(self, client: httpx.AsyncClient, admin_key: str) -> None:
        response = await client.post(
            "/v1/members/0195a3c2-4b1e-7c9d-8f20-6a1d3e5b7c41/erase", headers=bearer(admin_key)
        )
        assert response.status_code == 404
        assert response.json()["code"] == "member_not_found"

    @pytest.mark.parametrize("scope", ["pos", "ecommerce", "billing"])
    async def test_only_an_admin_key_may_erase(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, scope: str
    ) -> None:
        from loyalty_api.auth.principal import Scope
        from tests.builders import make_key
        from tests.conftest import UNLIMITED

        member = await enrol(client, pos_key, phone="13900001111")
        key = await make_key(app, Scope(scope), rate_limit=UNLIMITED)
        response = await client.post(f"/v1/members/{member['id']}/erase", headers=bearer(key))
        assert response.status_code == 403
        still = await client.get(
            "/v1/members/lookup", params={"phone": "13900001111"}, headers=bearer(pos_key)
        )
        assert still.status_code == 200


class TestConcurrency:
    async def test_a_change_read_before_an_erasure_commits_waits_and_finds_no_one(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key, name="旧名")
        member_id = uuid.UUID(member["id"])
        units = units_of(app)

        erasing = await units.start()
        await erasure.erase_member(erasing, member_id)  # not committed yet: the member's row is held

        async def rename() -> str:
            async with units.begin() as uow:
                try:
                    await profiles.update(uow, member_id, name="回来了")
                except MemberNotFound:
                    return "not found"
                return "renamed"

        change = asyncio.create_task(rename())
        await asyncio.sleep(0.2)  # the change has read, and waits for the row (or, on SQLite, its turn)
        assert not change.done()
        await erasing.commit()
        await erasing.close()

        assert await change == "not found"
        assert [hit for hit in await _every_text(app) if "回来了" in hit[2]] == []

    @pytest.mark.parametrize("action", ["benefit use", "unlink"])
    async def test_a_partners_call_during_an_erasure_finds_no_link_after_it(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, action: str
    ) -> None:
        """A benefit use or an unlink that read the link before an erasure committed once went on after it,
        and its event named the member by the partner's ref the erasure had just forgotten."""
        await set_program(client, admin_key)
        lounge = await add_benefit(client, admin_key, "Lounge", "priority_service", description="quiet")
        partner_key = await register_partner(app, client, admin_key, "air", benefit_ids=[lounge])
        member = await enrol(client, pos_key)
        await link(client, pos_key, partner_key, member["id"], "air", "AIR-13812345678")
        units = units_of(app)

        erasing = await units.start()
        await erasure.erase_member(
            erasing, uuid.UUID(member["id"])
        )  # not committed: the member's row is held
        path = "/v1/partner/members/AIR-13812345678"
        call = asyncio.create_task(
            client.post(
                f"{path}/benefit-uses",
                json={"benefit_id": lounge, "use_ref": "V-1"},
                headers=bearer(partner_key),
            )
            if action == "benefit use"
            else client.delete("/v1/partner/links/AIR-13812345678", headers=bearer(partner_key))
        )
        await asyncio.sleep(0.3)  # the call has read the link, and waits for the member's row
        assert not call.done()
        await erasing.commit()
        await erasing.close()

        answered = await call
        assert (answered.status_code, answered.json()["code"]) == (404, "link_not_found"), answered.text
        assert [hit for hit in await _every_text(app) if "13812345678" in hit[2]] == []

    async def test_a_partners_perk_redeemed_during_an_erasure_keeps_no_ref_in_its_reply(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, ecommerce_key: str
    ) -> None:
        """The partner redeems the member's perk, with an Idempotency-Key, while the erasure runs. The redeem
        read the link without waiting for the member's row: on PostgreSQL it still saw the link the erasure
        was deleting, answered with the partner's ref, and its reply, committed after the erasure had
        rewritten the replies it found, kept the ref the erasure forgot everywhere else. Now it waits for the
        erasure and finds the perk ended with the member (404 `perk_not_found`), a reply naming no ref."""
        await set_program(client, admin_key)
        partner_key = await register_partner(app, client, admin_key, "delivery")
        await add_plan(client, admin_key, "video", partner_perks=[{"partner": "delivery", "name": "A month"}])
        member = await enrol(client, pos_key)
        await link(client, pos_key, partner_key, member["id"], "delivery", "D-13812345678")
        await subscribe_paid(client, ecommerce_key, member["id"], "video")
        [perk] = (
            await client.get(f"/v1/members/{member['id']}/partner-perks", headers=bearer(pos_key))
        ).json()["items"]
        units = units_of(app)

        erasing = await units.start()
        # Not committed: the member's row is held.
        await erasure.erase_member(erasing, uuid.UUID(member["id"]))
        call = asyncio.create_task(
            client.post(
                f"/v1/partner/perks/{perk['code']}/redeem",
                headers=bearer(partner_key, idempotency_key="redeem-1"),
            )
        )
        await asyncio.sleep(0.3)  # the redeem waits for the member's row (on SQLite, for its turn)
        await erasing.commit()
        await erasing.close()

        answered = await call
        # The redeem waited for the erasure, which ended the perk with the member: refused, nothing redeemed.
        assert (answered.status_code, answered.json()["code"]) == (404, "perk_not_found"), answered.text
        assert [hit for hit in await _every_text(app) if "13812345678" in hit[2]] == []

    async def test_a_link_code_asked_for_during_an_erasure_is_not_issued(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        """The till asks for a link code while the member is being erased. On PostgreSQL the request read the
        member before the erasure committed and wrote the code after it: the erased member had a consent
        the erasure had removed, and the partner that sent it got 404 member_not_found, not the
        link_code_invalid every spent or unknown code gets."""
        await set_program(client, admin_key)
        await register_partner(app, client, admin_key, "air")
        member = await enrol(client, pos_key)
        units = units_of(app)

        erasing = await units.start()
        # Not committed: the member's row is held.
        await erasure.erase_member(erasing, uuid.UUID(member["id"]))
        call = asyncio.create_task(
            client.post(
                f"/v1/members/{member['id']}/partner-link-codes",
                json={"partner": "air"},
                headers=bearer(pos_key),
            )
        )
        await asyncio.sleep(0.3)  # the request waits for the member's row (on SQLite, for its turn)
        await erasing.commit()
        await erasing.close()

        answered = await call
        assert (answered.status_code, answered.json()["code"]) == (404, "member_not_found"), answered.text
        assert await count(app, "partner_link_codes") == 0


@pytest.mark.skipif(not is_postgres(), reason="holds a link midway from a second PostgreSQL connection")
async def test_a_link_made_while_the_member_is_erased_neither_deadlocks_nor_stays(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, settings: Settings
) -> None:
    """The partner sends the member's link code as the member is erased. The link took the code, then wrote
    the link, whose key check waits for the member's row; the erasure had changed the member's card number
    (which takes the row's strongest lock) before it deleted their link codes, where it waited for the link's
    code: PostgreSQL found a deadlock and failed one of the two. The erasure deletes the codes before it
    changes the row, so the link finishes first and the erasure then forgets it, or the code is gone."""
    await set_program(client, admin_key)
    partner_key = await register_partner(app, client, admin_key, "air")
    member = await enrol(client, pos_key, phone="13812345678")
    issued = await client.post(
        f"/v1/members/{member['id']}/partner-link-codes", json={"partner": "air"}, headers=bearer(pos_key)
    )
    assert issued.status_code == 201, issued.text
    engine = side_engine(settings)
    try:
        async with engine.connect() as gate, engine.connect() as watcher:
            await watcher.execution_options(isolation_level="AUTOCOMMIT")
            # The link stops at writing the link, its code taken; the erasure then runs up to the codes.
            await gate.execute(text("LOCK TABLE partner_links IN SHARE ROW EXCLUSIVE MODE"))
            linking = asyncio.create_task(
                client.post(
                    "/v1/partner/links",
                    json={"code": issued.json()["code"], "partner_customer_ref": "AIR-13812345678"},
                    headers=bearer(partner_key),
                )
            )
            await until_waiting_for_a_lock(watcher, linking)
            erasing = asyncio.create_task(
                client.post(f"/v1/members/{member['id']}/erase", headers=bearer(admin_key))
            )
            for _ in range(500):  # until the erasure waits too (for the link's code)
                if erasing.done() or await lock_waiters(watcher) >= 2:
                    break
                await asyncio.sleep(0.01)
            await gate.rollback()
    finally:
        await engine.dispose()
    linked, erased = await linking, await erasing
    assert linked.status_code == 201, linked.text
    assert erased.status_code == 200, erased.text
    assert erased.json()["partner_links"] == ["air"]
    assert await count(app, "partner_links") == 0
    assert [hit for hit in await _every_text(app) if "13812345678" in hit[2]] == []


async def test_what_operators_wrote_about_the_member_goes_with_them(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    """An adjustment's or an override's reason is free text, and may name the member: the ledger, the tier
    history and the stored events keep the amounts and the changes, not the words. (The audit log is never
    changed, and keeps the replies operators were given.)"""
    await set_program(client, admin_key)
    await add_tier(client, admin_key, "member", rank=0)
    await add_tier(client, admin_key, "gold", rank=1, threshold=1_000_000)
    member = await enrol(client, pos_key, phone="13812345678", name="李娜")
    adjustment = {"points": 50, "reason": "李娜 phoned from 13812345678 about a lost card"}
    adjusted = await client.post(
        f"/v1/members/{member['id']}/adjustments",
        json=adjustment,
        headers=bearer(admin_key, **{"Idempotency-Key": "desk-7"}),
    )
    assert adjusted.status_code == 201, adjusted.text
    overridden = await client.put(
        f"/v1/members/{member['id']}/tier/override",
        json=OVERRIDE | {"reason": "VIP: 李娜"},
        headers=bearer(admin_key),
    )
    assert overridden.status_code == 200, overridden.text

    def naming(hits: list[tuple[str, str, str]]) -> set[str]:
        return {table for table, _, value in hits if "李娜" in value or "13812345678" in value}

    assert naming(await _every_text(app)) >= {
        "ledger_entries",
        "tier_changes",
        "outbox_events",
        "idempotency_records",  # the reply recorded for the key (opened: it is encrypted)
    }
    erased = await _erase(client, admin_key, member["id"])
    assert (erased["idempotency_replies_rewritten"], erased["idempotency_replies_dropped"]) == (1, 0)
    assert naming(await _every_text(app)) <= {"audit_events"}
    await assert_ledger_invariant(app)


@pytest.mark.parametrize("erased", ["sender", "recipient"])
async def test_a_transfer_reversal_s_reason_goes_with_either_member(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, erased: str
) -> None:
    """A reversal's reason is written to both members' entries and events, and may name either: erasing
    one takes it from both (the other keeps the amounts and the transfer's id)."""
    await set_program(client, admin_key, transfers_enabled=True)
    sender = await enrol(client, pos_key, phone="13812345678", name="李娜")
    recipient = await enrol(client, pos_key, phone="13987654321", name="王芳")
    await earn(client, pos_key, sender["id"], 100_000)
    sent = await client.post(
        f"/v1/members/{sender['id']}/transfers",
        json={"to_member_id": recipient["id"], "points": 100},
        headers=bearer(admin_key),
    )
    assert sent.status_code == 201, sent.text
    reversed_ = await client.post(
        f"/v1/members/{sender['id']}/transfers/{sent.json()['transfer_id']}/reversal",
        json={"reason": "李娜 (13812345678) meant to send them to her sister, not to 王芳 (13987654321)"},
        headers=bearer(admin_key),
    )
    assert reversed_.status_code == 201, reversed_.text

    gone = sender if erased == "sender" else recipient

    def holding(words: tuple[str, ...], hits: list[tuple[str, str, str]]) -> set[str]:
        return {table for table, _, value in hits if any(word in value for word in words)}

    reason = ("meant to send them to her sister",)
    assert holding(reason, await _every_text(app)) >= {"ledger_entries", "outbox_events"}
    await _erase(client, admin_key, gone["id"])
    hits = await _every_text(app)
    assert holding(reason, hits) <= {"audit_events"}
    assert holding((gone["name"], gone["phone"][-8:]), hits) <= {"audit_events"}
    reversal = await events(app, "points.transfer_reversed")
    assert sorted(e["payload"]["role"] for e in reversal) == ["recipient", "sender"]
    assert {e["payload"]["reason"] for e in reversal} == {"erased"}
    assert {e["payload"]["transfer_id"] for e in reversal} == {sent.json()["transfer_id"]}
    await assert_ledger_invariant(app)


async def test_a_receivers_answer_to_an_event_sent_before_an_erasure_is_not_kept_after_it(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    """A delivery out when the erasure commits comes back with the receiver's echo of the card number; the
    erasure had forgotten the answers it found, and this one must not be recorded after it."""
    await set_program(client, admin_key)
    units = with_settings(units_of(app), webhook_allow_private_targets=True)  # the receiver is on loopback
    async with running_receiver() as receiver:
        await add_endpoint(units, receiver.url, event_types=["member.enrolled"])
        member = await enrol(client, pos_key)
        released, arrived = asyncio.Event(), asyncio.Event()
        receiver.holds.append(released)
        receiver.bodies.append(json.dumps({"ok": True, "card": member["member_number"]}).encode())
        receiver.answers.append(200)

        async def note_arrival() -> None:
            arrived.set()

        receiver.on_request = note_arrival
        await dispatch_events(units)
        sending = asyncio.create_task(send_due(units))
        await asyncio.wait_for(arrived.wait(), timeout=10)
        await _erase(client, admin_key, member["id"])
        released.set()
        assert await sending == 1
    [attempt] = await rows(app, "SELECT status_code, response_body FROM webhook_attempts")
    assert attempt == {"status_code": 200, "response_body": None}
    assert [hit for hit in await _every_text(app) if member["member_number"] in hit[2]] == []


@pytest.mark.skipif(not is_postgres(), reason="holds the erasure midway from a second PostgreSQL connection")
@pytest.mark.parametrize("change", ["hold release", "subscription cancel", "adjustment"])
async def test_a_change_to_what_was_the_members_racing_an_erasure_finds_nothing(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, settings: Settings, change: str
) -> None:
    """A release of the member's hold, a cancel of their subscription or an operator's adjustment, sent while
    the erasure runs, waits for it and then finds nothing (404), as a change to the member does: not a 500.
    An adjustment read the member unlocked and went ahead beside the erasure: its reason (free text, which
    the erasure removes from the ledger) could be written after the erasure had passed."""
    await set_program(client, admin_key)
    await add_plan(client, admin_key, "plus")
    member = await enrol(client, pos_key)
    await earn(client, pos_key, member["id"], 10_000)
    if change == "hold release":
        held = await client.post(
            f"/v1/members/{member['id']}/holds",
            json={"points": 50, "order_ref": "W-1"},
            headers=bearer(pos_key),
        )
        path, body, code = f"/v1/holds/{held.json()['id']}/release", {}, "hold_not_found"
    elif change == "subscription cancel":
        subscription = await subscribe(client, admin_key, member["id"], "plus", payment_ref="PAY-1")
        path, body, code = f"/v1/subscriptions/{subscription['id']}/cancel", {}, "subscription_not_found"
    else:
        path, code = f"/v1/members/{member['id']}/adjustments", "member_not_found"
        body = {"points": 50, "reason": "Li Na called about her lost card"}
    engine = side_engine(settings)
    try:
        async with engine.connect() as gate:  # the erasure stops at the member's events, its locks taken
            await gate.execute(
                text("SELECT 1 FROM outbox_events WHERE member_id = :m FOR UPDATE"),
                {"m": uuid.UUID(member["id"])},
            )
            erasing = asyncio.create_task(
                client.post(f"/v1/members/{member['id']}/erase", headers=bearer(admin_key))
            )
            await asyncio.sleep(0.5)
            changing = asyncio.create_task(client.post(path, json=body, headers=bearer(admin_key)))
            await asyncio.sleep(0.5)
            await gate.rollback()
    finally:
        await engine.dispose()
    assert (await erasing).status_code == 200
    refused = await changing
    assert (refused.status_code, refused.json()["code"]) == (404, code), refused.text
    assert await rows(app, "SELECT details FROM ledger_entries WHERE type = 'adjust'") == []


async def test_contacts_the_member_had_before_a_change_go_from_the_replies_kept_too(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
) -> None:
    """A member enrolled at a till that sent an Idempotency-Key, then changed their phone, e-mail, name,
    birthday and external id, then asked to be erased. The erasure looked for the values the member's row held
    when it ran, so the enrolment's reply kept for the key (a day) still held the phone, e-mail, name,
    birthday and external id they enrolled with: in their own record (their id), whatever they were then,
    those go too."""
    enrolled = {
        "phone": "138 1234 5678",
        "email": "Li.Na@Example.cn",
        "name": "李娜",
        "birthday": "1990-07-08",
        "external_ids": {"pos": "C-1001"},
    }
    headers = bearer(pos_key, idempotency_key="till-1-0002")
    first = await client.post("/v1/members", json=enrolled, headers=headers)
    assert first.status_code == 201, first.text
    member_id = first.json()["id"]
    changed = await client.patch(
        f"/v1/members/{member_id}",
        json={
            "phone": "139 8765 4321",
            "email": "lina.new@example.cn",
            "name": "李娜娜",
            "birthday": "1991-08-09",
            "external_ids": {"pos": "C-2002"},
        },
        headers=bearer(admin_key),
    )
    assert changed.status_code == 200, changed.text

    await _erase(client, admin_key, member_id)

    before = ("13812345678", "li.na@example.cn", "Li.Na@Example.cn", "1990-07-08", "C-1001")
    left = [hit for hit in await _every_text(app) if any(p in hit[2] for p in before) or '"李娜"' in hit[2]]
    assert left == [], "\n".join(f"{t}.{c}: {v[:300]}" for t, c, v in left)
    again = await client.post("/v1/members", json=enrolled, headers=headers)
    assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (201, "true"), again.text
    assert again.json() == first.json() | {
        "phone": "erased",
        "email": "erased",
        "name": "erased",
        "birthday": None,
        "member_number": "erased",
        "external_ids": {"pos": "erased"},
    }
    assert await count(app, "members") == 1
