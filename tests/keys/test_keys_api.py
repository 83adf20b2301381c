"""API keys managed over the API (/v1/api-keys, admin): what `loyalty-api keys` does on the host, for a back
office without a shell on it. Every key made here works at once, and every key revoked here stops at once."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from loyalty_api.app import openapi_document
from loyalty_api.auth.principal import Scope
from loyalty_api.clock import FrozenClock
from tests.builders import add_partner, enrol, make_key
from tests.conftest import bearer, units_of

KEYS = "/v1/api-keys"


@pytest.fixture(scope="module")
def rate_schema() -> dict[str, Any]:
    """The schema of a rate in the body that makes a key, as the OpenAPI document has it."""
    described = json.loads(openapi_document())["components"]["schemas"]["ApiKeyCreate"]
    [string] = [s for s in described["properties"]["rate_limit"]["anyOf"] if s.get("type") == "string"]
    assert isinstance(string, dict)
    return string


async def create(client: httpx.AsyncClient, admin_key: str, **body: Any) -> dict[str, Any]:
    response = await client.post(
        KEYS, json={"name": "Store 7 till", "scopes": ["pos"], **body}, headers=bearer(admin_key)
    )
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


async def rotate(client: httpx.AsyncClient, key: str, prefix: str, **body: Any) -> httpx.Response:
    """The key `prefix` rotated with `key`: its old one ends at once unless `overlap_minutes` says."""
    return await client.post(
        f"{KEYS}/{prefix}/rotate", json={"overlap_minutes": 0, **body}, headers=bearer(key)
    )


async def prefixes(client: httpx.AsyncClient, admin_key: str) -> list[str]:
    listed = await client.get(KEYS, headers=bearer(admin_key))
    return [key["prefix"] for key in listed.json()["items"]]


async def works_at_the_till(client: httpx.AsyncClient, token: str) -> int:
    """The status of an enrolment sent with the key: 201 when the key works."""
    response = await client.post("/v1/members", json={"phone": None}, headers=bearer(token))
    return response.status_code


class TestCreate:
    async def test_a_key_made_here_works_at_once_and_is_listed_without_its_secret(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        made = await create(client, admin_key, rate_limit="600/minute", expires_in_days=90)
        token, key = made["token"], made["key"]
        assert token.startswith(f"lk_{key['prefix']}_")
        assert (key["name"], key["scopes"], key["rate_limit"], key["status"]) == (
            "Store 7 till",
            ["pos"],
            "600/minute",
            "active",
        )
        assert key["expires_at"] is not None and key["last_used_at"] is None
        assert (await enrol(client, token))["status"] == "active"

        listed = await client.get(KEYS, headers=bearer(admin_key))
        assert listed.status_code == 200, listed.text
        shown = [item for item in listed.json()["items"] if item["prefix"] == key["prefix"]]
        # Used once for the enrolment: its last use is shown, to the minute.
        assert shown == [key | {"last_used_at": "2026-03-16T10:00:00Z"}]
        assert token not in listed.text
        read = await client.get(f"{KEYS}/{key['prefix']}", headers=bearer(admin_key))
        assert read.json() == shown[0]

    async def test_the_list_comes_page_by_page_oldest_first_each_key_once(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        made = [(await create(client, admin_key, name=f"Till {n}"))["key"]["prefix"] for n in range(5)]
        everyone = await client.get(KEYS, headers=bearer(admin_key))
        pages, cursor = [], None
        while True:
            params = {"limit": 2} | ({} if cursor is None else {"cursor": cursor})
            page = await client.get(KEYS, params=params, headers=bearer(admin_key))
            assert page.status_code == 200, page.text
            pages.append([item["prefix"] for item in page.json()["items"]])
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        listed = [prefix for items in pages for prefix in items]
        assert listed == [item["prefix"] for item in everyone.json()["items"]]
        assert listed[-5:] == made  # the admin's own key and the fixture's come first
        assert all(len(items) == 2 for items in pages[:-1]) and 1 <= len(pages[-1]) <= 2
        refused = await client.get(KEYS, params={"cursor": "not-a-cursor"}, headers=bearer(admin_key))
        assert refused.status_code == 422 and refused.json()["code"] == "validation_error"

    async def test_a_partner_key_is_bound_to_the_partner_named(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        partner_id = await add_partner(app, code="bookshop")
        made = await create(client, admin_key, scopes=["partner"], partner="bookshop", name="Bookshop POS")
        assert made["key"]["partner_id"] == str(partner_id)
        period = {"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}
        own = await client.get("/v1/partner/settlements", params=period, headers=bearer(made["token"]))
        assert own.status_code == 200, own.text
        assert own.json()["partner"] == "bookshop"

        for body, code in (
            ({"scopes": ["partner"]}, "partner_required"),
            ({"scopes": ["pos"], "partner": "bookshop"}, "partner_required"),
            ({"scopes": ["partner", "pos"], "partner": "bookshop"}, "partner_key_not_alone"),
            ({"scopes": ["partner"], "partner": "no-such-brand"}, "partner_not_found"),
        ):
            refused = await client.post(KEYS, json={"name": "x", **body}, headers=bearer(admin_key))
            assert refused.json()["code"] == code, (body, refused.text)

    async def test_a_key_limited_to_networks_is_refused_elsewhere(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        # httpx's ASGI transport calls from 127.0.0.1.
        elsewhere = await create(client, admin_key, allowed_networks=["10.0.0.0/8"])
        assert elsewhere["key"]["allowed_networks"] == ["10.0.0.0/8"]
        refused = await client.post("/v1/members", json={}, headers=bearer(elsewhere["token"]))
        assert (refused.status_code, refused.json()["code"]) == (403, "address_not_allowed")
        here = await create(client, admin_key, allowed_networks=["127.0.0.0/8"])
        assert (await enrol(client, here["token"]))["status"] == "active"

    async def test_a_network_refused_is_named_by_its_place_not_quoted(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        """README: input values are never echoed back. The refusal of a network that does not parse quoted
        it, twice (and the reason the address library gave, which quotes it again)."""
        mark = "13800138000"
        for sent in (f"10.0.0.0/8{mark}", f"{mark}/8", f"10.{mark}"):
            refused = await client.post(
                KEYS,
                json={"name": "x", "scopes": ["pos"], "allowed_networks": ["10.0.0.0/8", sent]},
                headers=bearer(admin_key),
            )
            assert (refused.status_code, refused.json()["code"]) == (422, "validation_error"), sent
            assert mark not in refused.text, refused.text
            [error] = refused.json()["errors"]
            assert error["field"] == "allowed_networks.1", error

    async def test_a_network_written_as_ipv4_mapped_ipv6_is_its_ipv4_network(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        """A dual-stack listener shows an IPv4 client as ::ffff:a.b.c.d, and the service takes that client
        for its IPv4 address; a network copied in that form (::ffff:127.0.0.0/104) matched no client at all,
        so the key was refused everywhere. It is kept as the IPv4 network it names."""
        mapped = await create(client, admin_key, allowed_networks=["::ffff:127.0.0.0/104"])
        assert mapped["key"]["allowed_networks"] == ["127.0.0.0/8"]
        assert (await enrol(client, mapped["token"]))["status"] == "active"
        elsewhere = await create(client, admin_key, allowed_networks=["::ffff:10.0.0.0/104", "::1/128"])
        assert elsewhere["key"]["allowed_networks"] == ["10.0.0.0/8", "::1/128"]
        refused = await client.post("/v1/members", json={}, headers=bearer(elsewhere["token"]))
        assert (refused.status_code, refused.json()["code"]) == (403, "address_not_allowed")

    @pytest.mark.parametrize(
        "body",
        [
            {"name": "x", "scopes": []},
            {"name": "x", "scopes": ["root"]},
            {"name": "", "scopes": ["pos"]},
            {"name": "x", "scopes": ["pos"], "rate_limit": "fast"},
            {"name": "x", "scopes": ["pos"], "rate_limit": "1/0 second"},
            {"name": "x", "scopes": ["pos"], "rate_limit": "1/2 years"},
            {"name": "x", "scopes": ["pos"], "rate_limit": "1/367 days"},
            {"name": "x", "scopes": ["pos"], "rate_limit": "1/99999999999999999999 seconds"},
            {"name": "x", "scopes": ["pos"], "expires_in_days": 0},
            {"name": "x", "scopes": ["pos"], "allowed_networks": ["banana"]},
            {"name": "x", "scopes": ["pos"], "allowed_networks": []},
            {"name": "x", "scopes": ["pos"], "secret": "mine"},
            # past 2^53 - 1, which Redis' counting (Lua's doubles) reads as another number
            {"name": "x", "scopes": ["pos"], "rate_limit": "99999999999999999999/second"},
            {"name": "x", "scopes": ["pos"], "rate_limit": "9007199254740992/second"},
        ],
    )
    async def test_bad_input_is_refused_and_makes_no_key(
        self, client: httpx.AsyncClient, admin_key: str, body: dict[str, Any]
    ) -> None:
        before = await prefixes(client, admin_key)
        refused = await client.post(KEYS, json=body, headers=bearer(admin_key))
        assert (refused.status_code, refused.json()["code"]) == (422, "validation_error"), refused.text
        assert await prefixes(client, admin_key) == before

    @pytest.mark.parametrize(
        "rate",
        ["1/366 days", "1 PER 12 Months", " 06/0527040minutes ", "1/367 days", "1/13 months", "0/second"],
    )
    async def test_a_rate_is_taken_exactly_when_the_documents_pattern_admits_it(
        self, client: httpx.AsyncClient, admin_key: str, rate_schema: dict[str, Any], rate: str
    ) -> None:
        admitted = (
            len(rate) <= rate_schema["maxLength"] and re.search(rate_schema["pattern"], rate) is not None
        )
        response = await client.post(
            KEYS, json={"name": "x", "scopes": ["pos"], "rate_limit": rate}, headers=bearer(admin_key)
        )
        assert response.status_code == (201 if admitted else 422), response.text

    @pytest.mark.parametrize("rate", ["1000/365 days", "1/year", "500/second", "9007199254740991/second"])
    async def test_a_rate_over_a_year_at_most_is_taken(
        self, app: FastAPI, client: httpx.AsyncClient, rate: str
    ) -> None:
        # Made with an admin key on its scope's default rate: one with a rate of its own makes no faster key.
        office = await make_key(app, Scope.admin)
        assert (await create(client, office, rate_limit=rate))["key"]["rate_limit"] == rate

    async def test_a_key_whose_stored_rate_is_now_refused_still_rotates_with_it(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        """Rates are checked as they are given: a key made before a rate's check tightened keeps it, and
        its rotation (which gives none) carries it on rather than failing on it."""
        made = await create(client, admin_key, rate_limit="100/second")
        prefix = made["key"]["prefix"]
        async with units_of(app).database.engine.begin() as connection:  # as an older release stored it
            await connection.execute(
                text("UPDATE api_keys SET rate_limit = '1/2 years' WHERE prefix = :p"), {"p": prefix}
            )
        rotated = await rotate(client, admin_key, prefix)
        assert rotated.status_code == 201, rotated.text
        assert rotated.json()["key"]["rate_limit"] == "1/2 years"

    async def test_only_admin_keys_manage_keys(self, client: httpx.AsyncClient, pos_key: str) -> None:
        for response in (
            await client.get(KEYS, headers=bearer(pos_key)),
            await client.post(KEYS, json={"name": "x", "scopes": ["admin"]}, headers=bearer(pos_key)),
        ):
            assert (response.status_code, response.json()["code"]) == (403, "scope_not_allowed")


class TestAKeyReachesNoFurtherThanItsMaker:
    """An admin key given for a week, for one office or a small budget makes and rotates keys that end by its
    end, work only where it does and send no faster: it cannot leave behind a key that outlasts, outreaches
    or outruns it."""

    async def limited_admin(self, client: httpx.AsyncClient, admin_key: str) -> dict[str, Any]:
        # httpx's ASGI transport calls from 127.0.0.1, inside both networks.
        return await create(
            client,
            admin_key,
            name="Contractor",
            scopes=["admin"],
            expires_in_days=7,
            allowed_networks=["127.0.0.0/8", "192.168.0.0/16"],
        )

    async def test_a_key_it_makes_ends_by_its_end_and_works_only_within_its_networks(
        self, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str
    ) -> None:
        maker = await self.limited_admin(client, admin_key)
        ends = maker["key"]["expires_at"]
        unasked = await create(client, maker["token"], scopes=["admin"])
        assert unasked["key"]["expires_at"] == ends
        assert unasked["key"]["allowed_networks"] == ["127.0.0.0/8", "192.168.0.0/16"]
        longer = await create(client, maker["token"], expires_in_days=3650, allowed_networks=["0.0.0.0/0"])
        assert longer["key"]["expires_at"] == ends
        assert longer["key"]["allowed_networks"] == ["127.0.0.0/8", "192.168.0.0/16"]
        # What it asks for within the maker's reach, it gets: a shorter life, the networks both share.
        within = await create(
            client, maker["token"], expires_in_days=1, allowed_networks=["127.0.0.1", "10.0.0.0/8"]
        )
        assert within["key"]["expires_at"] == "2026-03-17T10:00:00Z"
        assert within["key"]["allowed_networks"] == ["127.0.0.1/32"]
        assert await works_at_the_till(client, within["token"]) == 201
        read = await client.get(f"{KEYS}/{unasked['key']['prefix']}", headers=bearer(admin_key))
        assert read.json() == unasked["key"] | {"last_used_at": None}

        assert await works_at_the_till(client, unasked["token"]) == 201
        clock.advance(timedelta(days=7))
        assert await works_at_the_till(client, unasked["token"]) == 401
        assert await works_at_the_till(client, longer["token"]) == 401

    async def test_networks_outside_its_own_are_refused_and_make_no_key(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        maker = await self.limited_admin(client, admin_key)
        before = await prefixes(client, admin_key)
        for networks in (["10.0.0.0/8"], ["::/0"]):
            refused = await client.post(
                KEYS,
                json={"name": "Office", "scopes": ["admin"], "allowed_networks": networks},
                headers=bearer(maker["token"]),
            )
            assert (refused.status_code, refused.json()["code"]) == (403, "key_beyond_caller"), refused.text
            assert "127.0.0.0/8, 192.168.0.0/16" in refused.json()["detail"]
        assert await prefixes(client, admin_key) == before

    async def test_a_partner_key_it_makes_is_bound_the_same_way(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        await add_partner(app, code="bookshop")
        maker = await self.limited_admin(client, admin_key)
        made = await create(client, maker["token"], scopes=["partner"], partner="bookshop")
        assert made["key"]["expires_at"] == maker["key"]["expires_at"]
        assert made["key"]["allowed_networks"] == ["127.0.0.0/8", "192.168.0.0/16"]

    async def test_it_rotates_keys_within_its_reach_and_not_others(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        maker = await self.limited_admin(client, admin_key)
        here = ["127.0.0.0/8"]
        # The head office's key: its replacement would carry on its line, and replay the keys it made.
        lasting = await create(client, admin_key, name="Head office", scopes=["admin"], allowed_networks=here)
        longer = await create(client, admin_key, expires_in_days=30, allowed_networks=here)
        everywhere = await create(client, admin_key, expires_in_days=5)
        elsewhere = await create(client, admin_key, expires_in_days=5, allowed_networks=[*here, "10.0.0.0/8"])
        before = await prefixes(client, admin_key)
        for old, beyond in (
            (lasting, "never expires, past your key's expiry (2026-03-23T10:00:00Z)"),
            (longer, "works until 2026-04-15T10:00:00Z, past your key's expiry"),
            (everywhere, "may be used from any address, beyond your key's networks"),
            (elsewhere, "may be used from 127.0.0.0/8, 10.0.0.0/8, beyond"),
        ):
            refused = await rotate(client, maker["token"], old["key"]["prefix"])
            assert (refused.status_code, refused.json()["code"]) == (403, "key_beyond_caller"), refused.text
            assert f"Key {old['key']['prefix']} {beyond}" in refused.json()["detail"]
            assert await works_at_the_till(client, old["token"]) == 201
        assert await prefixes(client, admin_key) == before

        # A till key of the office's own network, within its week: asked to last, its replacement ends by the
        # maker's end.
        till = await create(client, admin_key, expires_in_days=5, allowed_networks=here)
        rotated = await rotate(client, maker["token"], till["key"]["prefix"], expires_in_days=30)
        assert rotated.status_code == 201, rotated.text
        assert rotated.json()["key"]["expires_at"] == maker["key"]["expires_at"]
        assert rotated.json()["key"]["allowed_networks"] == ["127.0.0.0/8"]
        # It cannot outlive itself by rotating itself either.
        itself = await rotate(client, maker["token"], maker["key"]["prefix"], expires_in_days=3650)
        assert itself.status_code == 201, itself.text
        assert itself.json()["key"]["expires_at"] == maker["key"]["expires_at"]

    async def test_a_key_it_makes_or_rotates_sends_no_faster_than_it(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        # The scopes' defaults are 100/second (50 for partners, 20 for billing).
        # An hour's budget, which this test does not spend.
        maker = await create(client, admin_key, name="Contractor", scopes=["admin"], rate_limit="1000/hour")
        # Unasked, a key gets the maker's rate where its scopes' default is more; asked, what it asks for
        # within the maker's: no more calls in its window than the maker's in its own, and no more on average.
        unasked = await create(client, maker["token"], scopes=["admin"])
        assert unasked["key"]["rate_limit"] == "1000/hour"
        for rate in ("1000/hour", "500/hour", "1000 per 2 hours", "10/minute"):
            made = await create(client, maker["token"], rate_limit=rate)
            assert made["key"]["rate_limit"] == rate
        before = await prefixes(client, admin_key)
        # More an hour; the same average but 2,000 at once; less on average but 10,000 at once; 1,200 an hour.
        for rate in ("1001/hour", "2000 per 2 hours", "10000/day", "20/minute"):
            refused = await client.post(
                KEYS,
                json={"name": "Office", "scopes": ["pos"], "rate_limit": rate},
                headers=bearer(maker["token"]),
            )
            assert (refused.status_code, refused.json()["code"]) == (403, "key_beyond_caller"), refused.text
            assert "than your key's rate (1000/hour)" in refused.json()["detail"]
            assert rate not in refused.json()["detail"]
        assert await prefixes(client, admin_key) == before

        # Rotating: a key it could not make is refused (its replacement would keep its rate), one it could
        # make is rotated with its rate.
        unlimited = await create(client, admin_key)
        faster = await create(client, admin_key, rate_limit="500/second")
        for old, beyond in (
            (unlimited, "sends at its scopes' default rate, 100/second"),
            (faster, "may send 500/second"),
        ):
            refused = await rotate(client, maker["token"], old["key"]["prefix"])
            assert (refused.status_code, refused.json()["code"]) == (403, "key_beyond_caller"), refused.text
            detail = refused.json()["detail"]
            assert f"Key {old['key']['prefix']} {beyond}, beyond your key's rate (1000/hour)" in detail
            assert await works_at_the_till(client, old["token"]) == 201
        slower = await create(client, admin_key, rate_limit="5/minute")
        rotated = await rotate(client, maker["token"], slower["key"]["prefix"])
        assert rotated.status_code == 201, rotated.text
        assert rotated.json()["key"]["rate_limit"] == "5/minute"

    async def test_one_with_a_rate_above_its_scopes_defaults_leaves_them_to_the_keys_it_makes(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        generous = await create(client, admin_key, scopes=["admin"], rate_limit="500/second")
        made = await create(client, generous["token"])
        assert made["key"]["rate_limit"] is None
        rotated = await rotate(client, generous["token"], made["key"]["prefix"])
        assert rotated.status_code == 201, rotated.text
        assert rotated.json()["key"]["rate_limit"] is None


class TestRotateAndRevoke:
    async def test_a_rotated_key_works_for_the_overlap_and_its_replacement_at_once(
        self, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str
    ) -> None:
        old = await create(client, admin_key, rate_limit="600/minute")
        prefix = old["key"]["prefix"]
        rotated = await rotate(client, admin_key, prefix, overlap_minutes=60)
        assert rotated.status_code == 201, rotated.text
        new = rotated.json()
        assert (new["key"]["name"], new["key"]["scopes"], new["key"]["rate_limit"]) == (
            "Store 7 till",
            ["pos"],
            "600/minute",
        )
        assert new["key"]["prefix"] != prefix
        assert await works_at_the_till(client, old["token"]) == 201
        assert await works_at_the_till(client, new["token"]) == 201
        clock.advance(timedelta(minutes=61))
        assert await works_at_the_till(client, old["token"]) == 401
        assert await works_at_the_till(client, new["token"]) == 201
        read = await client.get(f"{KEYS}/{prefix}", headers=bearer(admin_key))
        assert read.json()["status"] == "expired"
        again = await rotate(client, admin_key, prefix)
        assert (again.status_code, again.json()["code"]) == (404, "api_key_not_found")

    async def test_a_key_in_its_overlap_is_not_rotated_again_while_its_replacement_is_in_force(
        self, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str
    ) -> None:
        # The operator lost the printed replacement and rotates the old key again: a second replacement
        # would leave the first one working for ever, its secret wherever it was printed.
        old = await create(client, admin_key)
        prefix = old["key"]["prefix"]
        first = await rotate(client, admin_key, prefix, overlap_minutes=60)
        assert first.status_code == 201, first.text
        replacement = first.json()["key"]["prefix"]
        clock.advance(timedelta(minutes=5))
        again = await rotate(client, admin_key, prefix, overlap_minutes=60)
        assert again.status_code == 409, again.text
        problem = again.json()
        assert (problem["code"], problem["replaced_by"]) == ("key_rotated_already", replacement)
        assert replacement in problem["detail"]
        assert (await prefixes(client, admin_key))[-2:] == [prefix, replacement]  # no third key made
        assert await works_at_the_till(client, old["token"]) == 201  # its overlap is as the rotation set it
        # With the lost replacement revoked, the old key is rotated again; so is a replacement itself.
        revoked = await client.delete(f"{KEYS}/{replacement}", headers=bearer(admin_key))
        assert revoked.status_code == 204, revoked.text
        second = await rotate(client, admin_key, prefix, overlap_minutes=60)
        assert second.status_code == 201, second.text
        third = await rotate(client, admin_key, second.json()["key"]["prefix"], overlap_minutes=60)
        assert third.status_code == 201, third.text
        assert await works_at_the_till(client, third.json()["token"]) == 201

    async def test_a_revoked_key_stops_at_once(self, client: httpx.AsyncClient, admin_key: str) -> None:
        made = await create(client, admin_key)
        path = f"{KEYS}/{made['key']['prefix']}"
        assert await works_at_the_till(client, made["token"]) == 201
        revoked = await client.delete(path, headers=bearer(admin_key))
        assert revoked.status_code == 204, revoked.text
        assert await works_at_the_till(client, made["token"]) == 401
        assert (await client.get(path, headers=bearer(admin_key))).json()["status"] == "revoked"
        twice = await client.delete(path, headers=bearer(admin_key))
        assert (twice.status_code, twice.json()["code"]) == (404, "api_key_not_found")
        unknown = await client.delete(f"{KEYS}/0123456789ab", headers=bearer(admin_key))
        assert (unknown.status_code, unknown.json()["code"]) == (404, "api_key_not_found")

    @pytest.mark.parametrize("prefix", ["nosuchkey", "%00", "ABCDEF012345", "0" * 400])
    async def test_a_path_that_is_no_prefix_is_refused_before_any_query(
        self, client: httpx.AsyncClient, admin_key: str, prefix: str
    ) -> None:
        for response in (
            await client.get(f"{KEYS}/{prefix}", headers=bearer(admin_key)),
            await client.delete(f"{KEYS}/{prefix}", headers=bearer(admin_key)),
            await client.post(
                f"{KEYS}/{prefix}/rotate", json={"overlap_minutes": 0}, headers=bearer(admin_key)
            ),
        ):
            assert (response.status_code, response.json()["code"]) == (422, "validation_error"), response.text


async def test_the_audit_log_has_each_change_and_never_a_token(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    made = await create(client, admin_key)
    prefix = made["key"]["prefix"]
    rotated = await rotate(client, admin_key, prefix)
    await client.delete(f"{KEYS}/{rotated.json()['key']['prefix']}", headers=bearer(admin_key))
    log = await client.get("/v1/audit-events", params={"subject_type": "api-keys"}, headers=bearer(admin_key))
    assert log.status_code == 200, log.text
    entries = {entry["action"]: entry for entry in log.json()["items"]}
    assert sorted(entries) == ["create_api_key", "revoke_api_key", "rotate_api_key"]
    # Each names the key it changed: the one made, the one rotated, the one revoked.
    assert [
        entries[action]["subject_id"] for action in ("create_api_key", "rotate_api_key", "revoke_api_key")
    ] == [
        prefix,
        prefix,
        rotated.json()["key"]["prefix"],
    ]
    assert made["token"] not in log.text and rotated.json()["token"] not in log.text
    assert "lk_" not in log.text


async def test_a_create_sent_again_with_its_idempotency_key_makes_no_second_key(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    body = {"name": "Store 9 till", "scopes": ["pos"]}
    headers = bearer(admin_key, idempotency_key="make-store-9-till")
    first = await client.post(KEYS, json=body, headers=headers)
    again = await client.post(KEYS, json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()  # the same key, its token answered again to the same caller
    listed = (await client.get(KEYS, headers=bearer(admin_key))).json()["items"]
    assert [key["name"] for key in listed].count("Store 9 till") == 1
