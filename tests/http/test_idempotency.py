from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from loyalty_api.clock import FrozenClock
from loyalty_api.idempotency import service as idempotency
from loyalty_api.idempotency.errors import IdempotencyClaimLost
from tests.builders import enrol, unique_phone
from tests.conftest import START, bearer
from tests.coupons.helpers import coupon_code
from tests.inspect_db import count, events, rows
from tests.points.helpers import cny, earn, points, set_program


def with_key(api_key: str, idempotency_key: str) -> dict[str, str]:
    return {**bearer(api_key), "Idempotency-Key": idempotency_key}


async def claim_elsewhere(
    app: FastAPI, client: httpx.AsyncClient, api_key: str, idempotency_key: str, body: dict[str, str]
) -> None:
    """Claim the key for an enrolment with `body`, as another request of that API key would."""
    content = client.build_request("POST", "/v1/members", json=body).content
    fingerprint = idempotency.fingerprint("POST", "/v1/members", content)
    owner = api_key.split("_")[1]
    await idempotency.claim(app.state.units, owner=owner, key=idempotency_key, fingerprint=fingerprint)


class TestReplay:
    async def test_retries_replay_the_first_response_and_enrol_once(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        body = {"phone": unique_phone(), "name": "重试"}
        responses = [
            await client.post("/v1/members", json=body, headers=with_key(pos_key, "till-7-receipt-1"))
            for _ in range(5)
        ]
        assert {r.status_code for r in responses} == {201}
        assert len({r.content for r in responses}) == 1
        assert "idempotent-replayed" not in responses[0].headers
        assert all(r.headers["idempotent-replayed"] == "true" for r in responses[1:])
        assert await count(app, "members") == 1
        assert await count(app, "outbox_events") == 1

    async def test_key_order_and_whitespace_in_the_body_do_not_matter(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        phone = unique_phone()
        first = await client.post(
            "/v1/members",
            content=f'{{"phone": "{phone}", "name": "甲"}}',
            headers={**with_key(pos_key, "k1"), "content-type": "application/json"},
        )
        second = await client.post(
            "/v1/members",
            content=f'{{"name":"甲","phone":"{phone}"}}',
            headers={**with_key(pos_key, "k1"), "content-type": "application/json"},
        )
        assert second.status_code == 201
        assert second.content == first.content

    async def test_a_number_written_another_way_is_the_same_body(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        """The service reads 100, 100.0 and 1e2 as one number (a strict integer takes 12.0 as 12), so a retry
        that writes it another way (a client that went through a float) replays, rather than being refused
        as another body."""
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        await earn(client, pos_key, member["id"], 100_000)
        redeem, headers = f"/v1/members/{member['id']}/redeem", with_key(pos_key, "till-4-r-1")
        headers["content-type"] = "application/json"
        first = await client.post(redeem, content='{"points": 100, "order_ref": "R-1"}', headers=headers)
        assert first.status_code == 200, first.text
        for written in ("100.0", "1e2", "1.00E+2"):
            content = '{"order_ref": "R-1", "points": ' + written + "}"
            again = await client.post(redeem, content=content, headers=headers)
            assert (again.status_code, again.content) == (200, first.content), (written, again.text)
            assert again.headers["idempotent-replayed"] == "true"
        other = await client.post(redeem, content='{"points": 100.5, "order_ref": "R-1"}', headers=headers)
        assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
        assert (await points(client, pos_key, member["id"]))["balance"] == 900

    async def test_the_member_named_in_another_spelling_of_its_id_is_the_same_request(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        """The path takes a member's id in upper case, without dashes, in braces or as a URN, all one member:
        a retry that spells it otherwise (a till that upper-cases what it scanned) replays the first answer,
        rather than being refused as another request with the key, and credits the points once."""
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        body = {"order_ref": "SPELT-1", "amount": cny(10_000)}
        headers = with_key(pos_key, "till-9-receipt-1")
        first = await client.post(f"/v1/members/{member['id']}/earn", json=body, headers=headers)
        assert first.status_code == 200, first.text
        earned = first.json()["points_earned"]
        assert earned > 0
        spellings = (
            member["id"].upper(),
            member["id"].replace("-", ""),
            f"{{{member['id'].upper()}}}",
            f"urn:uuid:{member['id']}",
        )
        for spelling in spellings:
            again = await client.post(f"/v1/members/{spelling}/earn", json=body, headers=headers)
            assert (again.status_code, again.content) == (200, first.content), (spelling, again.text)
            assert again.headers["idempotent-replayed"] == "true"
        assert (await points(client, pos_key, member["id"]))["balance"] == earned
        other = await enrol(client, pos_key)
        elsewhere = await client.post(f"/v1/members/{other['id'].upper()}/earn", json=body, headers=headers)
        assert (elsewhere.status_code, elsewhere.json()["code"]) == (422, "idempotency_key_reused")

    async def test_the_coupon_named_in_another_spelling_of_its_code_is_the_same_request(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        """A coupon's code may be typed in any case, with or without its hyphens, all one coupon: a retry
        that types it otherwise (the cashier types it again after a lost answer) replays the first answer,
        rather than being refused as another request with the key, and uses the coupon once."""
        member = await enrol(client, pos_key)
        code = await coupon_code(app, member["id"])
        body = {"order_ref": "SPELT-2"}
        headers = with_key(pos_key, "till-9-receipt-2")
        first = await client.post(f"/v1/coupons/{code}/use", json=body, headers=headers)
        assert first.status_code == 200, first.text
        for spelling in (code.lower(), code.replace("-", ""), code.lower().replace("-", " ")):
            again = await client.post(f"/v1/coupons/{spelling}/use", json=body, headers=headers)
            assert (again.status_code, again.content) == (200, first.content), (spelling, again.text)
            assert again.headers["idempotent-replayed"] == "true"
        assert len(await events(app, "coupon.used")) == 1
        other = await coupon_code(app, member["id"])
        elsewhere = await client.post(f"/v1/coupons/{other.lower()}/use", json=body, headers=headers)
        assert (elsewhere.status_code, elsewhere.json()["code"]) == (422, "idempotency_key_reused")
        unknown = await client.post("/v1/coupons/not-a-code/use", json=body, headers=headers)
        assert (unknown.status_code, unknown.json()["code"]) == (422, "idempotency_key_reused")

    @pytest.mark.parametrize("call", ["capture", "release"])
    @pytest.mark.parametrize(("first", "retry"), [(None, "{}"), ("{}", None), ("null", None), ("{}", "null")])
    async def test_no_body_and_an_empty_object_are_the_same_body(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        ecommerce_key: str,
        call: str,
        first: str | None,
        retry: str | None,
    ) -> None:
        """A hold's capture (or release) means the same with no body, with `{}` and with `null`: a checkout
        whose retry serialises "no options" another way is replayed, not refused as idempotency_key_reused."""
        await set_program(client, admin_key)
        member = await enrol(client, ecommerce_key)
        await earn(client, ecommerce_key, member["id"], 10_000)
        held = await client.post(
            f"/v1/members/{member['id']}/holds",
            json={"points": 40, "order_ref": "WEB-FP-1"},
            headers=bearer(ecommerce_key),
        )
        assert held.status_code == 201, held.text
        url = f"/v1/holds/{held.json()['id']}/{call}"
        headers = {**with_key(ecommerce_key, f"web/{call}-1"), "content-type": "application/json"}
        answers = [await client.post(url, content=body or b"", headers=headers) for body in (first, retry)]
        assert [a.status_code for a in answers] == [200, 200], answers[1].text
        assert answers[1].content == answers[0].content
        assert answers[1].headers["idempotent-replayed"] == "true"
        balance = (await points(client, ecommerce_key, member["id"]))["balance"]
        assert balance == (60 if call == "capture" else 100)  # captured, or released, once

    async def test_a_decimal_string_written_another_way_is_another_body(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        """Rates travel as strings, and strings are compared as sent: "2.5" and "2.50" are two bodies (the
        rule is the same; the key says which request is meant, so send the retry as it was sent)."""
        rule = {"name": "Monday", "kind": "member_day", "properties": {"weekday": 1, "multiplier": "2.5"}}
        headers = with_key(admin_key, "backoffice-rule-1")
        first = await client.post("/v1/earning-rules", json=rule, headers=headers)
        assert first.status_code == 201, first.text
        rule["properties"] = {"weekday": 1, "multiplier": "2.50"}
        again = await client.post("/v1/earning-rules", json=rule, headers=headers)
        assert (again.status_code, again.json()["code"]) == (422, "idempotency_key_reused")

    async def test_a_refusal_is_replayed_too(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        body = {"phone": unique_phone(), "referral_code": "NOSUCH99"}
        first = await client.post("/v1/members", json=body, headers=with_key(pos_key, "k-refused"))
        again = await client.post("/v1/members", json=body, headers=with_key(pos_key, "k-refused"))
        assert first.status_code == again.status_code == 422
        assert first.content == again.content
        assert again.headers["idempotent-replayed"] == "true"

    async def test_concurrent_twins_do_the_work_once(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        body = {"phone": unique_phone()}
        responses = await asyncio.gather(
            *[client.post("/v1/members", json=body, headers=with_key(pos_key, "twin")) for _ in range(8)]
        )
        statuses = sorted(r.status_code for r in responses)
        assert set(statuses) <= {201, 409}
        assert 201 in statuses
        created = {r.content for r in responses if r.status_code == 201}
        assert len(created) == 1
        conflicts = [r.json()["code"] for r in responses if r.status_code == 409]
        assert set(conflicts) <= {"idempotency_request_in_flight"}
        assert await count(app, "members") == 1


class TestMisuse:
    async def test_same_key_with_another_body_is_422(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        await client.post("/v1/members", json={"phone": unique_phone()}, headers=with_key(pos_key, "k2"))
        response = await client.post(
            "/v1/members", json={"phone": unique_phone()}, headers=with_key(pos_key, "k2")
        )
        assert response.status_code == 422
        assert response.json()["code"] == "idempotency_key_reused"
        assert await count(app, "members") == 1

    async def test_request_in_flight_is_409(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        body = {"phone": unique_phone()}
        # Another till's request with this key has been claimed and is still running.
        await claim_elsewhere(app, client, pos_key, "k3", body)
        response = await client.post("/v1/members", json=body, headers=with_key(pos_key, "k3"))
        assert response.status_code == 409
        assert response.json()["code"] == "idempotency_request_in_flight"
        assert await count(app, "members") == 0

    async def test_a_key_left_by_a_process_that_died_is_free_after_the_request_time_limit(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, clock: FrozenClock
    ) -> None:
        body = {"phone": unique_phone()}
        # A request claimed the key, then its process was killed: nothing it did was committed.
        await claim_elsewhere(app, client, pos_key, "k-dead", body)
        limit = timedelta(seconds=app.state.units.settings.request_timeout_seconds)
        assert limit == timedelta(seconds=30)
        clock.advance(limit - timedelta(seconds=1))
        still = await client.post("/v1/members", json=body, headers=with_key(pos_key, "k-dead"))
        assert still.status_code == 409
        clock.advance(timedelta(seconds=1))
        retried = await client.post("/v1/members", json=body, headers=with_key(pos_key, "k-dead"))
        assert retried.status_code == 201, retried.text
        assert await count(app, "members") == 1

    async def test_a_request_that_outlived_its_claim_cannot_record_over_the_retry(
        self, app: FastAPI, clock: FrozenClock
    ) -> None:
        units = app.state.units
        first = await idempotency.claim(units, owner="till", key="k-slow", fingerprint="f")
        assert isinstance(first, idempotency.Claim)
        clock.advance(timedelta(seconds=units.settings.request_timeout_seconds))
        retry = await idempotency.claim(units, owner="till", key="k-slow", fingerprint="f")
        assert isinstance(retry, idempotency.Claim)
        answer = idempotency.StoredResponse(status=201, body="{}", content_type="application/json")
        async with units.begin() as uow:
            with pytest.raises(IdempotencyClaimLost):
                await idempotency.complete(uow, first, answer)
        await idempotency.release(units, first)  # a no-op: the key is the retry's now
        async with units.begin() as uow:
            await idempotency.complete(uow, retry, answer)
        assert await idempotency.claim(units, owner="till", key="k-slow", fingerprint="f") == answer

    @pytest.mark.parametrize("stored", ['{"id": "m-1"}', "sealed:{vault}"])
    async def test_replies_stored_before_they_were_all_encrypted_still_replay(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, stored: str
    ) -> None:
        body = {"phone": unique_phone()}
        await claim_elsewhere(app, client, pos_key, "k-old", body)
        reply = '{"id": "m-1"}'
        stored = stored.replace("{vault}", app.state.units.vault.encrypt(reply))
        async with app.state.units.begin() as uow:
            await uow.session.execute(
                text(
                    "UPDATE idempotency_records SET state = 'completed', response_status = 201, "
                    "response_body = :b, response_content_type = 'application/json' WHERE key = 'k-old'"
                ),
                {"b": stored},
            )
        replayed = await client.post("/v1/members", json=body, headers=with_key(pos_key, "k-old"))
        assert replayed.status_code == 201
        assert replayed.json() == {"id": "m-1"}

    async def test_invalid_input_releases_the_key(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        bad = await client.post("/v1/members", json={"phone": "1"}, headers=with_key(pos_key, "k4"))
        assert bad.status_code == 422
        body = {"phone": unique_phone()}
        # A corrected request may reuse the key only if it is the same body; the bad one was never executed.
        good = await client.post("/v1/members", json={"phone": "1"} | body, headers=with_key(pos_key, "k4"))
        assert good.status_code == 201

    async def test_a_number_with_a_vast_exponent_is_refused_as_input_not_a_500(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        """A number whose exponent has twenty digits or more is JSON, which the input guard passes and the
        strict check refuses; reading it for the key's fingerprint failed (Decimal cannot hold it) and the
        caller was answered 500 for bad input. The key is left free, as for any invalid input."""
        headers = {**with_key(pos_key, "k-vast"), "content-type": "application/json"}
        for number in ("1e99999999999999999999", "-1E+99999999999999999999", "1e-99999999999999999999"):
            content = '{"name": "巨", "birthday": ' + number + "}"
            refused = await client.post("/v1/members", content=content, headers=headers)
            assert (refused.status_code, refused.json()["code"]) == (422, "validation_error"), number
        good = await client.post("/v1/members", json={"name": "巨"}, headers=headers)
        assert good.status_code == 201, good.text

    async def test_a_value_a_rule_refuses_releases_the_key_too(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        member = await enrol(client, pos_key)
        earn = f"/v1/members/{member['id']}/earn"
        body = {"order_ref": "R-77", "amount": cny(10_000)}
        # A purchase in the future is refused by the service's rule, not by the body's schema.
        future = body | {"occurred_at": (START + timedelta(hours=2)).isoformat()}
        refused = await client.post(earn, json=future, headers=with_key(pos_key, "till-3-r-77"))
        assert (refused.status_code, refused.json()["code"]) == (422, "validation_error")
        corrected = await client.post(earn, json=body, headers=with_key(pos_key, "till-3-r-77"))
        assert corrected.status_code == 200, corrected.text
        assert "idempotent-replayed" not in corrected.headers

    async def test_keys_belong_to_one_api_key(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, ecommerce_key: str
    ) -> None:
        body = {"name": "同名"}
        first = await client.post("/v1/members", json=body, headers=with_key(pos_key, "shared"))
        second = await client.post("/v1/members", json=body, headers=with_key(ecommerce_key, "shared"))
        assert first.status_code == second.status_code == 201
        assert first.json()["id"] != second.json()["id"]

    async def test_after_24_hours_the_key_is_new_again(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, clock: FrozenClock
    ) -> None:
        body = {"name": "过期"}
        first = await client.post("/v1/members", json=body, headers=with_key(pos_key, "k5"))
        clock.advance(timedelta(hours=24, seconds=1))
        second = await client.post("/v1/members", json=body, headers=with_key(pos_key, "k5"))
        assert second.status_code == 201
        assert second.json()["id"] != first.json()["id"]
        assert await count(app, "members") == 2

    async def test_oversized_key_is_422(self, client: httpx.AsyncClient, pos_key: str) -> None:
        response = await client.post("/v1/members", json={"name": "x"}, headers=with_key(pos_key, "k" * 256))
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_idempotency_key"

    async def test_two_keys_in_one_request_are_422_and_nothing_is_done(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        """Two Idempotency-Key lines are one list of keys (RFC 9110 lets any proxy join them with a comma),
        not the first of them: a retry that sent them in the other order ran the work again."""
        body = {"name": "两把钥匙"}
        for keys in (["k-a", "k-b"], ["k-b", "k-a"], ["k-a", "k-a"]):
            headers = httpx.Headers([*bearer(pos_key).items(), *(("Idempotency-Key", k) for k in keys)])
            response = await client.post("/v1/members", json=body, headers=headers)
            assert response.status_code == 422, (keys, response.text)
            assert response.json()["code"] == "invalid_idempotency_key"
            assert (
                response.json()["detail"]
                == "The Idempotency-Key header was sent 2 times: send one key, once."
            )
        assert await count(app, "members") == 0

    async def test_purge_removes_expired_records(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, clock: FrozenClock
    ) -> None:
        await client.post("/v1/members", json={"name": "x"}, headers=with_key(pos_key, "k6"))
        clock.advance(timedelta(hours=25))
        assert await idempotency.purge_expired(app.state.units) == 1
        assert await count(app, "idempotency_records") == 0


class TestFingerprintsAreKeyed:
    """Whoever reads the idempotency table (a backup, a DBA) must not be able to confirm a guess at what a
    request held by hashing guesses: an enrolment's phone number is quickly guessed from a plain SHA-256."""

    async def test_a_fresh_claim_stores_no_plain_hash_of_the_request(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        body = {"phone": "13812345678", "name": "李娜"}
        request = client.build_request("POST", "/v1/members", json=body)
        first = await client.post("/v1/members", json=body, headers=with_key(pos_key, "till-1-0001"))
        assert first.status_code == 201, first.text

        [stored] = [r["fingerprint"] for r in await rows(app, "SELECT fingerprint FROM idempotency_records")]
        guesses = {
            idempotency.fingerprint("POST", "/v1/members", request.content),
            hashlib.sha256(request.content).hexdigest(),
            hashlib.sha256(b"POST/v1/members" + request.content).hexdigest(),
        }
        assert stored not in guesses

    async def test_a_retry_still_replays_and_another_body_is_still_refused(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        body = {"phone": unique_phone(), "name": "重试"}
        first = await client.post("/v1/members", json=body, headers=with_key(pos_key, "till-1-0002"))
        again = await client.post("/v1/members", json=body, headers=with_key(pos_key, "till-1-0002"))
        assert (again.status_code, again.headers.get("idempotent-replayed")) == (201, "true"), again.text
        assert again.content == first.content
        other = await client.post(
            "/v1/members", json=body | {"name": "王芳"}, headers=with_key(pos_key, "till-1-0002")
        )
        assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused"), other.text
        assert await count(app, "members") == 1

    async def test_a_record_stored_with_a_plain_hash_before_the_upgrade_still_replays(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        """Records written before every fingerprint was keyed hold the plain SHA-256 and live 24 hours: a
        till's retry that arrives across the upgrade replays rather than enrolling twice or being refused."""
        body = {"phone": unique_phone(), "name": "升级"}
        headers = with_key(pos_key, "till-1-0003")
        first = await client.post("/v1/members", json=body, headers=headers)
        assert first.status_code == 201, first.text
        plain = idempotency.fingerprint("POST", "/v1/members", first.request.content)
        async with app.state.units.begin() as uow:
            await uow.session.execute(
                text("UPDATE idempotency_records SET fingerprint = :plain WHERE key = 'till-1-0003'"),
                {"plain": plain},
            )

        again = await client.post("/v1/members", json=body, headers=headers)

        assert (again.status_code, again.headers.get("idempotent-replayed")) == (201, "true"), again.text
        assert again.content == first.content
        other = await client.post("/v1/members", json=body | {"name": "王芳"}, headers=headers)
        assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused"), other.text
        assert await count(app, "members") == 1


class TestReplayNeedsTheKey:
    async def test_a_forged_secret_gets_401_not_the_stored_response(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        body = {"phone": unique_phone()}
        first = await client.post("/v1/members", json=body, headers=with_key(pos_key, "k-secret"))
        assert first.status_code == 201
        forged = pos_key[: pos_key.rindex("_") + 1] + "y" * 43
        response = await client.post("/v1/members", json=body, headers=with_key(forged, "k-secret"))
        assert response.status_code == 401
        assert first.json()["phone"] not in response.text
