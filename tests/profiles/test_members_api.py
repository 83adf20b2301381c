from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from loyalty_api.members.member_number import is_valid
from tests.builders import add_tier, enrol, full_width, unique_phone
from tests.campaigns.helpers import create_reply
from tests.conftest import bearer
from tests.inspect_db import count, events, table_counts
from tests.points.helpers import set_program

MEMBER_TABLES = ("members", "member_external_ids", "points_accounts", "outbox_events")


class TestEnrol:
    async def test_enrol_returns_the_new_member(self, client: httpx.AsyncClient, pos_key: str) -> None:
        response = await client.post(
            "/v1/members",
            json={
                "phone": "139 1234 5678",
                "email": "Li.Na@Example.CN",
                "name": "李娜",
                "birthday": "1990-05-17",
                "channel": "store",
                "external_ids": {"pos": "C-1001", "webshop": "U-77"},
                "marketing_consent": True,
            },
            headers=bearer(pos_key),
        )
        assert response.status_code == 201, response.text
        member = response.json()
        assert member["phone"] == "+8613912345678"
        assert member["email"] == "li.na@example.cn"
        assert member["name"] == "李娜"
        assert member["birthday"] == "1990-05-17"
        assert member["status"] == "active"
        assert member["points"] == 0
        assert member["external_ids"] == {"pos": "C-1001", "webshop": "U-77"}
        assert is_valid(member["member_number"])
        assert len(member["referral_code"]) == 8

    async def test_enrol_joins_the_entry_tier(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await add_tier(client, admin_key, "silver", rank=1, name="银卡", threshold=100_000)
        await add_tier(client, admin_key, "member", rank=0, name="普通会员")
        member = await enrol(client, pos_key)
        assert member["tier"] == {"code": "member", "name": "普通会员", "rank": 0}

    async def test_enrol_writes_a_member_enrolled_event(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key, channel="online")
        [event] = await events(app, "member.enrolled")
        assert event["payload"]["member_id"] == member["id"]
        assert event["payload"]["member_number"] == member["member_number"]
        assert event["payload"]["channel"] == "online"
        assert member["phone"] not in str(event["payload"])

    async def test_referral_code_links_the_referrer(self, client: httpx.AsyncClient, pos_key: str) -> None:
        referrer = await enrol(client, pos_key)
        referred = await enrol(client, pos_key, referral_code=referrer["referral_code"].lower())
        assert referred["referred_by"] == referrer["id"]

    async def test_unknown_referral_code_is_refused(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        response = await client.post(
            "/v1/members",
            json={"phone": unique_phone(), "referral_code": "NOSUCH99"},
            headers=bearer(pos_key),
        )
        assert response.status_code == 422
        assert response.json()["code"] == "unknown_referral_code"
        assert response.json()["title"] == "No member has this referral code"
        assert await count(app, "members") == 0

    async def test_a_refused_referral_code_does_not_tell_whether_a_phone_is_a_member_s(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        answers = [
            await client.post(
                "/v1/members", json={"phone": phone, "referral_code": "NOSUCH99"}, headers=bearer(pos_key)
            )
            for phone in (unique_phone(), member["phone"])
        ]
        # The same refusal for a stranger's number and a member's: no lookup past the lookup budgets.
        assert [a.json()["code"] for a in answers] == ["unknown_referral_code"] * 2
        assert await count(app, "members") == 1


class TestDuplicates:
    @pytest.mark.parametrize(
        ("first", "second", "field"),
        [
            ({"phone": "13900000001"}, {"phone": "+86 139 0000 0001"}, "phone"),
            ({"email": "wang@example.cn"}, {"email": "WANG@example.CN"}, "email"),
            ({"external_ids": {"pos": "C-9"}}, {"external_ids": {"pos": "C-9"}}, "external id in pos"),
        ],
    )
    async def test_duplicate_identifier_is_409_and_writes_nothing(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        pos_key: str,
        first: dict[str, object],
        second: dict[str, object],
        field: str,
    ) -> None:
        first_body = {"phone": unique_phone(), **first}
        second_body = {"phone": unique_phone(), **second}
        assert (await client.post("/v1/members", json=first_body, headers=bearer(pos_key))).status_code == 201
        before = await table_counts(app, *MEMBER_TABLES)
        response = await client.post("/v1/members", json=second_body, headers=bearer(pos_key))
        assert response.status_code == 409
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "member_exists"
        assert response.json()["field"] == field
        assert await table_counts(app, *MEMBER_TABLES) == before

    async def test_same_external_id_in_another_system_is_fine(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        await enrol(client, pos_key, external_ids={"pos": "C-1"})
        other = await enrol(client, pos_key, external_ids={"webshop": "C-1"})
        assert other["external_ids"] == {"webshop": "C-1"}


class TestBirthdayToday:
    async def test_a_birthday_today_in_the_programmes_zone_is_not_in_the_future(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
    ) -> None:
        await set_program(client, admin_key)  # Asia/Shanghai
        clock.set(datetime(2026, 3, 16, 23, 0, tzinfo=UTC))  # 17 March, 07:00 in Shanghai
        member = await enrol(client, pos_key, birthday="2026-03-17")
        assert member["birthday"] == "2026-03-17"
        tomorrow = await client.post("/v1/members", json={"birthday": "2026-03-18"}, headers=bearer(pos_key))
        assert (tomorrow.status_code, tomorrow.json()["errors"][0]["field"]) == (422, "birthday")


class TestBadInput:
    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"phone": "12345"}, "phone"),
            ({"phone": "+86 139 1234"}, "phone"),
            ({"email": "not-an-email"}, "email"),
            ({"birthday": "2030-01-01"}, "birthday"),
            ({"birthday": "1850-01-01"}, "birthday"),
            ({"birthday": "17/05/1990"}, "birthday"),
            # Digits alone were read as a Unix time: "0" was 1970-01-01, "86400" the day after.
            ({"birthday": "0"}, "birthday"),
            ({"birthday": "86400"}, "birthday"),
            ({"birthday": "1990-W20-4"}, "birthday"),
            ({"name": "x" * 101}, "name"),
            ({"name": 42}, "name"),
            ({"phone": ["13912345678"]}, "phone"),
            ({"marketing_consent": "maybe"}, "marketing_consent"),
            ({"favourite_colour": "red"}, "favourite_colour"),
            ({"external_ids": {"POS SYSTEM!": "1"}}, "external_ids.POS SYSTEM!.[key]"),
            ({"external_ids": {"pos": "x" * 65}}, "external_ids.pos"),
            ({"channel": "x" * 40}, "channel"),
        ],
    )
    async def test_invalid_field_is_422_with_its_path_and_writes_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, body: dict[str, object], field: str
    ) -> None:
        response = await client.post("/v1/members", json=body, headers=bearer(pos_key))
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == "validation_error"
        assert field in [error["field"] for error in problem["errors"]]
        assert await table_counts(app, *MEMBER_TABLES) == dict.fromkeys(MEMBER_TABLES, 0)

    @pytest.mark.parametrize("raw", [b"[]", b'"text"', b"null"])
    async def test_body_that_is_not_an_object_is_422(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, raw: bytes
    ) -> None:
        response = await client.post(
            "/v1/members", content=raw, headers={**bearer(pos_key), "content-type": "application/json"}
        )
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"
        assert all(not e["field"].isdigit() for e in response.json()["errors"])
        assert await count(app, "members") == 0

    @pytest.mark.parametrize(
        "raw",
        [
            b"{",
            b'{"phone": "13912345678",}',
            b"\xff\xfe{}",
            b'{"a": NaN}',
            b'\xef\xbb\xbf{"phone": "13912345678"}',  # a byte order mark
            '{"phone": "13912345678"}'.encode("utf-16"),
        ],
    )
    async def test_body_that_is_not_json_is_400_malformed_json(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, raw: bytes
    ) -> None:
        response = await client.post(
            "/v1/members", content=raw, headers={**bearer(pos_key), "content-type": "application/json"}
        )
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "malformed_json"
        assert await count(app, "members") == 0

    @pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
    async def test_body_that_is_not_sent_as_json_is_415_with_a_hint(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, content_type: str | None
    ) -> None:
        headers = bearer(pos_key) | ({} if content_type is None else {"content-type": content_type})
        response = await client.post("/v1/members", content=b'{"phone": "13912345678"}', headers=headers)
        assert response.status_code == 415
        problem = response.json()
        assert problem["code"] == "unsupported_media_type"
        assert "Content-Type: application/json" in problem["detail"]
        assert await count(app, "members") == 0

    @pytest.mark.parametrize("coding", ["gzip", "GZIP", "br", "deflate", "identity, gzip"])
    async def test_a_body_sent_with_a_content_coding_is_415_saying_to_send_it_without(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, coding: str
    ) -> None:
        """RFC 9110 §15.5.16: a content coding the server does not decode is 415, naming in Accept-Encoding
        what it takes, not a body that does not parse (400 `malformed_json`), which would have the client
        look for a mistake in its JSON."""
        body = gzip.compress(b'{"phone": "13912345678"}')
        headers = {**bearer(pos_key), "content-type": "application/json", "content-encoding": coding}
        response = await client.post("/v1/members", content=body, headers=headers)
        assert response.status_code == 415, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["accept-encoding"] == "identity"
        problem = response.json()
        assert problem["code"] == "unsupported_media_type"
        assert "without a content coding" in problem["detail"], problem
        assert await count(app, "members") == 0

    async def test_a_body_sent_with_the_identity_coding_is_taken(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        headers = {**bearer(pos_key), "content-type": "application/json", "content-encoding": "identity"}
        response = await client.post("/v1/members", content=b'{"phone": "13912345678"}', headers=headers)
        assert response.status_code == 201, response.text
        assert await count(app, "members") == 1

    @pytest.mark.parametrize(
        "body",
        [
            {"phone": "12345", "email": "not-an-email"},
            {"phone": "12345", "email": "not-an-email", "birthday": "2030-01-01"},
            {"email": "not-an-email", "birthday": "1850-01-01"},
        ],
    )
    async def test_every_refused_field_is_named_in_the_one_problem(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, body: dict[str, object]
    ) -> None:
        """A form shows every field's fault at once: a bad e-mail beside a bad phone was named alone, and
        the phone's fault came only once the e-mail was put right."""
        response = await client.post("/v1/members", json=body, headers=bearer(pos_key))
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == "validation_error"
        assert sorted(error["field"] for error in problem["errors"]) == sorted(body)
        assert all(error["message"] for error in problem["errors"])
        assert await table_counts(app, *MEMBER_TABLES) == dict.fromkeys(MEMBER_TABLES, 0)

    async def test_validation_errors_do_not_echo_the_input(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        response = await client.post(
            "/v1/members", json={"email": "secret-person@@example.cn"}, headers=bearer(pos_key)
        )
        assert response.status_code == 422
        assert "secret-person" not in response.text


class TestLookup:
    async def test_lookup_by_each_identifier(self, client: httpx.AsyncClient, pos_key: str) -> None:
        member = await enrol(
            client, pos_key, phone="13812345678", email="zhang.wei@example.cn", external_ids={"pos": "C-42"}
        )
        queries = [
            {"member_number": member["member_number"]},
            {"phone": "138-1234-5678"},
            {"phone": "+8613812345678"},
            {"email": "Zhang.Wei@Example.cn"},
            {"external_system": "pos", "external_id": "C-42"},
        ]
        for query in queries:
            response = await client.get("/v1/members/lookup", params=query, headers=bearer(pos_key))
            assert response.status_code == 200, (query, response.text)
            assert response.json()["id"] == member["id"], query

    async def test_the_other_identifiers_sent_empty_are_left_out(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        # A till's client built from a URL template sends every identifier, the ones it has none of empty:
        # that was 422 lookup_needs_one_identifier, as if several were given.
        member = await enrol(client, pos_key, phone="13812345679", external_ids={"pos": "C-43"})
        empty = dict.fromkeys(
            ("member_number", "phone", "email", "external_system", "external_id", "qr_code"), ""
        )
        for given in (
            {"member_number": member["member_number"]},
            {"phone": "13812345679"},
            {"external_system": "pos", "external_id": "C-43"},
        ):
            response = await client.get("/v1/members/lookup", params=empty | given, headers=bearer(pos_key))
            assert response.status_code == 200, (given, response.text)
            assert response.json()["id"] == member["id"]
        none = await client.get("/v1/members/lookup", params=empty, headers=bearer(pos_key))
        assert none.status_code == 422 and none.json()["code"] == "lookup_needs_one_identifier"

    async def test_an_external_id_is_found_as_enrolment_stored_it(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        """Enrolment trims an external id ("  C-42  " is stored as "C-42"): a till that looks the member up by
        the value it enrolled them with, spaces and all, finds them."""
        member = await enrol(client, pos_key, external_ids={"pos": "  C-42\u3000"})
        assert member["external_ids"] == {"pos": "C-42"}
        for sent in ("  C-42\u3000", "C-42", " C-42"):
            query = {"external_system": "pos", "external_id": sent}
            response = await client.get("/v1/members/lookup", params=query, headers=bearer(pos_key))
            assert (response.status_code, response.json().get("id")) == (200, member["id"]), sent

    async def test_a_card_number_typed_in_full_width_digits_finds_its_member(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        """A Chinese or Japanese input method types full-width digits: the same number, not a mistyped one."""
        member = await enrol(client, pos_key)
        wide = full_width(member["member_number"])
        response = await client.get(
            "/v1/members/lookup", params={"member_number": wide}, headers=bearer(pos_key)
        )
        assert (response.status_code, response.json().get("id")) == (200, member["id"]), response.text

    async def test_mistyped_member_number_is_caught_by_the_check_digit(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        number = member["member_number"]
        typo = number[:-2] + str((int(number[-2]) + 1) % 10) + number[-1]
        response = await client.get(
            "/v1/members/lookup", params={"member_number": typo}, headers=bearer(pos_key)
        )
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_member_number"

    async def test_unknown_member_is_404(self, client: httpx.AsyncClient, pos_key: str) -> None:
        response = await client.get(
            "/v1/members/lookup", params={"phone": "13700000000"}, headers=bearer(pos_key)
        )
        assert response.status_code == 404
        assert response.json()["code"] == "member_not_found"

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ({"phone": "not a phone"}, "phone"),
            ({"email": "zhang.example.cn"}, "email"),
            ({"external_system": "pos", "external_id": "   "}, "external_id"),  # blank: enrolment refuses it
            # Not a system name enrolment takes (it trims ids, not systems): no member can have it.
            ({"external_system": " pos ", "external_id": "C-42"}, "external_system"),
            ({"external_system": "POS", "external_id": "C-42"}, "external_system"),
        ],
    )
    async def test_a_malformed_phone_email_or_external_id_is_refused_not_missed(
        self, client: httpx.AsyncClient, pos_key: str, query: dict[str, str], field: str
    ) -> None:
        response = await client.get("/v1/members/lookup", params=query, headers=bearer(pos_key))
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "validation_error"
        assert [error["field"] for error in response.json()["errors"]] == [field]

    @pytest.mark.parametrize(
        "query",
        [{}, {"phone": "13812345678", "email": "a@b.cn"}, {"external_system": "pos"}, {"external_id": "1"}],
    )
    async def test_lookup_needs_exactly_one_identifier(
        self, client: httpx.AsyncClient, pos_key: str, query: dict[str, str]
    ) -> None:
        response = await client.get("/v1/members/lookup", params=query, headers=bearer(pos_key))
        assert response.status_code == 422
        assert response.json()["code"] == "lookup_needs_one_identifier"

    async def test_read_by_id(self, client: httpx.AsyncClient, ecommerce_key: str) -> None:
        member = await enrol(client, ecommerce_key)
        response = await client.get(f"/v1/members/{member['id']}", headers=bearer(ecommerce_key))
        assert response.status_code == 200
        # the enrolment's answer, and the member's links with partners (none yet): the whole profile
        assert response.json() == member | {"partner_links": []}

    async def test_read_with_a_malformed_id_is_422(self, client: httpx.AsyncClient, pos_key: str) -> None:
        response = await client.get("/v1/members/not-a-uuid", headers=bearer(pos_key))
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "member_id"

    async def test_lookup_is_no_member_id(self, client: httpx.AsyncClient, pos_key: str) -> None:
        response = await client.patch("/v1/members/lookup", json={"name": "王芳"}, headers=bearer(pos_key))
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, HEAD"


class TestUpdate:
    async def test_update_changes_only_the_fields_sent(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key, email="old@example.cn", name="旧名", birthday="1985-01-01")
        response = await client.patch(
            f"/v1/members/{member['id']}",
            json={"email": "New@Example.cn", "name": None, "marketing_consent": True},
            headers=bearer(pos_key),
        )
        assert response.status_code == 200, response.text
        updated = response.json()
        assert updated["email"] == "new@example.cn"
        assert updated["name"] is None
        assert updated["marketing_consent"] is True
        assert updated["birthday"] == "1985-01-01"
        assert updated["phone"] == member["phone"]
        found = await client.get(
            "/v1/members/lookup", params={"email": "new@example.cn"}, headers=bearer(pos_key)
        )
        assert found.json()["id"] == member["id"]
        gone = await client.get(
            "/v1/members/lookup", params={"email": "old@example.cn"}, headers=bearer(pos_key)
        )
        assert gone.status_code == 404
        [event] = await events(app, "member.updated")
        assert sorted(event["payload"]["changed"]) == ["email", "marketing_consent", "name"]

    async def test_external_ids_merge(self, client: httpx.AsyncClient, pos_key: str) -> None:
        member = await enrol(client, pos_key, external_ids={"pos": "C-1", "webshop": "W-1"})
        response = await client.patch(
            f"/v1/members/{member['id']}",
            json={"external_ids": {"webshop": None, "crm": "R-9"}},
            headers=bearer(pos_key),
        )
        assert response.json()["external_ids"] == {"crm": "R-9", "pos": "C-1"}

    async def test_status_change_is_the_operators(
        self, client: httpx.AsyncClient, pos_key: str, admin_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        refused = await client.patch(
            f"/v1/members/{member['id']}", json={"status": "suspended"}, headers=bearer(pos_key)
        )
        assert refused.status_code == 403
        assert refused.json()["code"] == "scope_not_allowed"
        response = await client.patch(
            f"/v1/members/{member['id']}", json={"status": "suspended"}, headers=bearer(admin_key)
        )
        assert response.json()["status"] == "suspended"

    async def test_a_repeated_update_names_no_field_and_emits_nothing_more(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str, admin_key: str, clock: FrozenClock
    ) -> None:
        """A till on a bad network sends its PATCH again (PATCH takes no Idempotency-Key: a repeat sets the
        same values): the repeat changes nothing, so the CRM is not told twice that the member was suspended,
        and a field sent with the value it had is not named as changed."""
        member = await enrol(client, pos_key, email="li@example.cn", external_ids={"pos": "C-1"})
        patch = f"/v1/members/{member['id']}"
        body = {
            "status": "suspended",
            "name": member["name"],
            "email": "LI@example.cn",
            "phone": member["phone"],
            "external_ids": {"pos": "C-1", "webshop": None},
            "marketing_consent": member["marketing_consent"],
        }
        first = await client.patch(patch, json=body, headers=bearer(admin_key))
        assert first.status_code == 200, first.text
        clock.advance(timedelta(seconds=5))
        again = await client.patch(patch, json=body, headers=bearer(admin_key))
        assert again.status_code == 200, again.text
        assert again.json() == first.json()
        [event] = await events(app, "member.updated")
        assert event["payload"]["changed"] == ["status"]

    async def test_phone_taken_by_another_member_is_409(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        first = await enrol(client, pos_key)
        second = await enrol(client, pos_key)
        response = await client.patch(
            f"/v1/members/{second['id']}", json={"phone": first["phone"]}, headers=bearer(pos_key)
        )
        assert response.status_code == 409
        assert response.json()["code"] == "member_exists"
        unchanged = await client.get(f"/v1/members/{second['id']}", headers=bearer(pos_key))
        assert unchanged.json()["phone"] == second["phone"]

    @pytest.mark.parametrize(
        "body",
        [
            {"status": None},
            {"status": "vip"},
            {"marketing_consent": None},
            {"member_number": "1"},
            {"external_ids": None},
        ],
    )
    async def test_invalid_update_is_422_and_changes_nothing(
        self, client: httpx.AsyncClient, pos_key: str, body: dict[str, object]
    ) -> None:
        member = await enrol(client, pos_key)
        response = await client.patch(f"/v1/members/{member['id']}", json=body, headers=bearer(pos_key))
        assert response.status_code == 422
        after = await client.get(f"/v1/members/{member['id']}", headers=bearer(pos_key))
        assert after.json() == member | {"partner_links": []}

    async def test_every_refused_field_of_an_update_is_named_in_the_one_problem(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        taken = await enrol(client, pos_key)
        for body in (
            {"phone": "12345", "email": "not-an-email"},
            {"email": "not-an-email", "birthday": "2030-01-01"},
            # A phone someone has beside a bad e-mail: the e-mail's fault, before whether the phone is taken.
            {"phone": taken["phone"], "email": "not-an-email"},
        ):
            response = await client.patch(f"/v1/members/{member['id']}", json=body, headers=bearer(pos_key))
            assert response.status_code == 422, (body, response.text)
            problem = response.json()
            assert problem["code"] == "validation_error"
            expected = sorted(body) if body.get("phone") != taken["phone"] else ["email"]
            assert sorted(error["field"] for error in problem["errors"]) == expected, body
        after = await client.get(f"/v1/members/{member['id']}", headers=bearer(pos_key))
        assert after.json() == member | {"partner_links": []}

    async def test_update_unknown_member_is_404(self, client: httpx.AsyncClient, pos_key: str) -> None:
        response = await client.patch(
            "/v1/members/01a20000-0000-7000-8000-000000000000", json={"name": "x"}, headers=bearer(pos_key)
        )
        assert response.status_code == 404
        assert response.json()["code"] == "member_not_found"


class TestList:
    async def test_pages_cover_every_member_once(self, client: httpx.AsyncClient, admin_key: str) -> None:
        enrolled = [(await enrol(client, admin_key))["id"] for _ in range(5)]
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            response = await client.get("/v1/members", params=params, headers=bearer(admin_key))
            assert response.status_code == 200
            page = response.json()
            assert len(page["items"]) <= 2
            seen += [m["id"] for m in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == enrolled
        assert pages == 3

    async def test_filter_by_status_and_tier(self, client: httpx.AsyncClient, admin_key: str) -> None:
        active = await enrol(client, admin_key)
        suspended = await enrol(client, admin_key)
        await client.patch(
            f"/v1/members/{suspended['id']}", json={"status": "suspended"}, headers=bearer(admin_key)
        )
        response = await client.get("/v1/members", params={"status": "suspended"}, headers=bearer(admin_key))
        assert [m["id"] for m in response.json()["items"]] == [suspended["id"]]
        response = await client.get("/v1/members", params={"status": "active"}, headers=bearer(admin_key))
        assert [m["id"] for m in response.json()["items"]] == [active["id"]]

    async def test_a_tier_no_tier_has_is_refused_as_a_campaign_refuses_it(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        """`?tier=platinum` on a ladder without platinum (a typo, a tier renamed or not made yet) answered an
        empty page, read as "nobody is on platinum"; a campaign for that audience is refused with 422."""
        await add_tier(client, admin_key, "gold", rank=0)
        await enrol(client, admin_key)
        response = await client.get("/v1/members", params={"tier": "platinum"}, headers=bearer(admin_key))
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "validation_error"
        [error] = response.json()["errors"]
        assert error["field"] == "tier"
        assert "GET /v1/tiers" in error["message"]
        campaign = await create_reply(client, admin_key, audience={"tier": "platinum"})
        assert campaign.status_code == 422, campaign.text

    @pytest.mark.parametrize("spelled", ["GOLD", "Gold", "gold ", " gold"])
    async def test_a_tier_spelled_as_no_tier_code_is_refused_not_an_empty_page(
        self, client: httpx.AsyncClient, admin_key: str, spelled: str
    ) -> None:
        # A tier's code is lower case wherever the service takes one (a tier's path, an override, a
        # campaign): `GOLD` is no tier's code, and an empty page said that no member was on gold.
        await add_tier(client, admin_key, "gold", rank=0)
        member = await enrol(client, admin_key)
        exact = await client.get("/v1/members", params={"tier": "gold"}, headers=bearer(admin_key))
        assert [m["id"] for m in exact.json()["items"]] == [member["id"]]
        response = await client.get("/v1/members", params={"tier": spelled}, headers=bearer(admin_key))
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "validation_error"
        assert [e["field"] for e in response.json()["errors"]] == ["tier"]

    @pytest.mark.parametrize(
        ("params", "field"),
        [({"limit": 201}, "limit"), ({"limit": 0}, "limit"), ({"cursor": "!!"}, "cursor")],
    )
    async def test_bad_paging_is_422(
        self, client: httpx.AsyncClient, admin_key: str, params: dict[str, object], field: str
    ) -> None:
        response = await client.get("/v1/members", params=params, headers=bearer(admin_key))
        assert response.status_code == 422
        assert field in [e["field"] for e in response.json()["errors"]]
