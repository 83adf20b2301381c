"""API keys' limits: expiry, rotation with an overlap, last-used time, allowed client networks; through the
real app and the real `loyalty-api keys` command."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from loyalty_api.app import create_app
from loyalty_api.auth import service as auth_service
from loyalty_api.auth.errors import ApiKeyNotFound, KeyRotatedAlready, PartnerKeyNotAlone
from loyalty_api.auth.principal import Scope
from loyalty_api.auth.repository import ApiKeyRepository
from loyalty_api.clock import FrozenClock, SystemClock, format_instant
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.errors import InvalidField
from loyalty_api.settings import Settings
from tests.apps import client_for
from tests.builders import add_partner, enrol, unique_phone
from tests.conftest import START, bearer
from tests.graphql.helpers import graphql
from tests.inspect_db import count
from tests.test_cli import _clean_env, _cli

HOUR = timedelta(hours=1)
EVENT_TYPES = "/v1/event-types"


async def _key(
    units: UnitsOfWork,
    *scopes: Scope,
    lifetime: timedelta | None = None,
    networks: Sequence[str] | None = None,
    partner_id: uuid.UUID | None = None,
    rate_limit: str | None = None,
) -> str:
    async with units.begin() as uow:
        issued = await auth_service.create_key(
            uow,
            name="till 7",
            scopes=list(scopes or [Scope.admin]),
            partner_id=partner_id,
            rate_limit=rate_limit,
            lifetime=lifetime,
            allowed_networks=networks,
        )
    return issued.token


def _prefix(token: str) -> str:
    return token.split("_")[1]


async def _rotate(
    units: UnitsOfWork, token: str, overlap: timedelta, lifetime: timedelta | None = None
) -> auth_service.Rotation:
    async with units.begin() as uow:
        return await auth_service.rotate_key(uow, prefix=_prefix(token), overlap=overlap, lifetime=lifetime)


async def _summary(units: UnitsOfWork, token: str) -> auth_service.KeySummary:
    async with units.read() as uow:
        [found] = [s for s in await auth_service.list_keys(uow) if s.principal.key_prefix == _prefix(token)]
    return found


async def _status(client: httpx.AsyncClient, token: str, path: str = "/v1/tiers") -> int:
    """The status of a call the key's scopes allow (admin, pos and ecommerce keys read the tier ladder)."""
    return (await client.get(path, headers=bearer(token))).status_code


class TestPartnerKeys:
    async def test_a_partner_key_carries_no_other_scope(self, app: FastAPI, units: UnitsOfWork) -> None:
        partner = await add_partner(app)
        for other in (Scope.pos, Scope.ecommerce, Scope.admin, Scope.billing):
            with pytest.raises(PartnerKeyNotAlone):
                await _key(units, Scope.partner, other, partner_id=partner)
        assert await count(app, "api_keys") == 0
        alone = await _key(units, Scope.partner, partner_id=partner)
        assert (await _summary(units, alone)).principal.scopes == frozenset({Scope.partner})

    async def test_one_made_with_other_scopes_before_the_rule_acts_as_a_partner_key_alone(
        self, app: FastAPI, units: UnitsOfWork, client: httpx.AsyncClient
    ) -> None:
        partner = await add_partner(app)
        token = await _key(units, Scope.partner, partner_id=partner)
        # As `keys create --scope partner --scope pos` stored it before it was refused.
        async with units.database.engine.begin() as connection:
            await connection.execute(text("""UPDATE api_keys SET scopes = '["partner", "pos"]'"""))
        lookup = await client.get(
            "/v1/members/lookup", params={"phone": unique_phone()}, headers=bearer(token)
        )
        assert (lookup.status_code, lookup.json()["code"]) == (403, "scope_not_allowed")
        assert (await client.get(EVENT_TYPES, headers=bearer(token))).status_code == 200
        rotated = await _rotate(units, token, overlap=timedelta(0))
        assert rotated.issued.principal.scopes == frozenset({Scope.partner})
        assert (await client.get(EVENT_TYPES, headers=bearer(rotated.issued.token))).status_code == 200


class TestExpiry:
    async def test_a_key_works_until_its_expiry_then_is_refused_as_a_revoked_one_is(
        self, units: UnitsOfWork, client: httpx.AsyncClient, clock: FrozenClock
    ) -> None:
        token = await _key(units, lifetime=HOUR)
        assert await _status(client, token) == 200
        clock.set(START + HOUR - timedelta(microseconds=1))
        assert await _status(client, token) == 200  # the key is in memory from here on
        clock.set(START + HOUR)
        refused = await client.get("/v1/tiers", headers=bearer(token))
        assert refused.status_code == 401
        assert refused.json()["code"] == "invalid_api_key"
        assert refused.json()["detail"] == f"This API key expired at {format_instant(START + HOUR)}"
        assert (await _summary(units, token)).status == auth_service.KeyStatus.expired

    async def test_every_process_refuses_it_at_its_expiry_though_it_holds_the_key_in_memory(
        self, settings: Settings, units: UnitsOfWork, client: httpx.AsyncClient, clock: FrozenClock
    ) -> None:
        token = await _key(units, lifetime=HOUR)
        other = create_app(settings.model_copy(update={"cache_seconds": 60.0}), clock=clock)
        async with other.router.lifespan_context(other), client_for(other) as other_client:
            assert await _status(client, token) == 200
            assert await _status(other_client, token) == 200
            clock.advance(HOUR)
            assert await _status(other_client, token) == 401
            assert await _status(client, token) == 401

    async def test_a_lifetime_must_be_longer_than_nothing(self, units: UnitsOfWork) -> None:
        with pytest.raises(InvalidField):
            await _key(units, lifetime=timedelta(0))


class TestRotation:
    async def test_both_keys_work_during_the_overlap_then_only_the_new_one(
        self, app: FastAPI, units: UnitsOfWork, clock: FrozenClock
    ) -> None:
        partner = await add_partner(app)
        old = await _key(
            units, Scope.partner, partner_id=partner, rate_limit="7/second", networks=["10.0.0.0/8"]
        )
        clock.advance(HOUR)
        rotation = await _rotate(units, old, overlap=timedelta(hours=24))
        new = rotation.issued.token
        assert new != old
        assert rotation.old_key_ends_at == START + HOUR + timedelta(hours=24)
        kept = (await _summary(units, old)).principal
        made = (await _summary(units, new)).principal
        same = ("name", "scopes", "partner_id", "rate_limit", "networks")
        assert [getattr(made, field) for field in same] == [getattr(kept, field) for field in same]
        assert made.expires_at is None  # the old key had no lifetime to pass on

        async with client_for(app, "10.1.2.3") as client:
            # A partner key reads the event types, whatever its partner's links.
            assert await _status(client, old, EVENT_TYPES) == await _status(client, new, EVENT_TYPES) == 200
            clock.set(rotation.old_key_ends_at - timedelta(seconds=1))
            assert await _status(client, old, EVENT_TYPES) == 200
            clock.set(rotation.old_key_ends_at)
            assert await _status(client, old, EVENT_TYPES) == 401
            assert await _status(client, new, EVENT_TYPES) == 200
        assert (await _summary(units, old)).status == auth_service.KeyStatus.expired
        assert (await _summary(units, new)).status == auth_service.KeyStatus.active

    async def test_a_request_sent_again_with_the_new_key_replays_and_is_done_once(
        self, client: httpx.AsyncClient, units: UnitsOfWork
    ) -> None:
        """An Idempotency-Key belongs to the key and to the keys that replace it: a till rotated mid-retry
        must not credit the member twice (REST and GraphQL alike)."""
        old = await _key(units, Scope.admin)
        member = (await enrol(client, old))["id"]
        adjust = f"/v1/members/{member}/adjustments"
        body = {"points": 500, "reason": "goodwill"}
        first = await client.post(adjust, json=body, headers={**bearer(old), "Idempotency-Key": "adj-1"})
        assert first.status_code == 201, first.text
        mutation = (
            "mutation($input: AdjustPointsInput!) { loyaltyAdjustPoints(input: $input, idempotencyKey: "
            '"adj-g") { adjustment { entryId balance } userErrors { code } replayed } }'
        )
        given = {"memberId": member, "points": 300, "reason": "goodwill"}
        by_old = (await graphql(client, old, mutation, input=given))["data"]["loyaltyAdjustPoints"]
        assert by_old["userErrors"] == [] and by_old["replayed"] is False

        rotation = await _rotate(units, old, overlap=timedelta(hours=24))
        new = rotation.issued.token
        again = await client.post(adjust, json=body, headers={**bearer(new), "Idempotency-Key": "adj-1"})
        assert (again.status_code, again.json()) == (201, first.json())
        assert again.headers["idempotent-replayed"] == "true"
        by_new = (await graphql(client, new, mutation, input=given))["data"]["loyaltyAdjustPoints"]
        assert by_new == {**by_old, "replayed": True}
        # Rotated once more, the key's line still holds its replies.
        newer = (await _rotate(units, new, overlap=timedelta(0))).issued.token
        third = await client.post(adjust, json=body, headers={**bearer(newer), "Idempotency-Key": "adj-1"})
        assert third.json() == first.json()
        points = await client.get(f"/v1/members/{member}/points", headers=bearer(newer))
        assert points.json()["balance"] == 800

        # A key made apart, with the same name and scopes, is no heir: the same Idempotency-Key is its own.
        stranger = await _key(units, Scope.admin)
        other = await client.post(adjust, json=body, headers={**bearer(stranger), "Idempotency-Key": "adj-1"})
        assert other.status_code == 201 and "idempotent-replayed" not in other.headers
        assert other.json()["entry_id"] != first.json()["entry_id"]

    async def test_an_overlap_of_zero_ends_the_old_key_at_once(
        self, units: UnitsOfWork, client: httpx.AsyncClient
    ) -> None:
        old = await _key(units)
        assert await _status(client, old) == 200  # in this process's memory before the rotation
        rotation = await _rotate(units, old, overlap=timedelta(0))
        assert rotation.old_key_ends_at == START
        assert await _status(client, old) == 401
        assert await _status(client, rotation.issued.token) == 200

    async def test_the_new_key_gets_the_old_ones_lifetime_and_the_overlap_never_outlasts_it(
        self, units: UnitsOfWork, clock: FrozenClock
    ) -> None:
        old = await _key(units, lifetime=timedelta(days=90))
        clock.advance(timedelta(days=89, hours=12))
        rotation = await _rotate(units, old, overlap=timedelta(hours=24))
        assert rotation.old_key_ends_at == START + timedelta(days=90)  # not 36 hours from now
        assert (await _summary(units, old)).principal.expires_at == START + timedelta(days=90)
        assert rotation.issued.principal.expires_at == clock.now() + timedelta(days=90)

        again = await _rotate(units, rotation.issued.token, overlap=HOUR, lifetime=timedelta(days=7))
        assert again.issued.principal.expires_at == clock.now() + timedelta(days=7)

    async def test_rotating_the_same_key_twice_gives_the_lifetime_it_was_made_with(
        self, units: UnitsOfWork, clock: FrozenClock
    ) -> None:
        # The operator lost the first rotation's printed key, revoked it, and rotates the old one again in
        # the overlap.
        forever = await _key(units)
        ninety = await _key(units, lifetime=timedelta(days=90))
        clock.advance(HOUR)
        for old, lifetime in ((forever, None), (ninety, timedelta(days=90))):
            lost = await _rotate(units, old, overlap=timedelta(hours=24))
            with pytest.raises(KeyRotatedAlready):
                await _rotate(units, old, overlap=timedelta(hours=24))
            async with units.begin() as uow:
                await auth_service.revoke_key(uow, prefix=lost.issued.principal.key_prefix)
            second = await _rotate(units, old, overlap=timedelta(hours=24))
            expected = None if lifetime is None else clock.now() + lifetime
            assert second.issued.principal.expires_at == expected  # not the overlap the first one set

    async def test_a_revoked_expired_or_unknown_key_is_not_rotated(
        self, units: UnitsOfWork, clock: FrozenClock
    ) -> None:
        revoked = await _key(units)
        async with units.begin() as uow:
            await auth_service.revoke_key(uow, prefix=_prefix(revoked))
        expired = await _key(units, lifetime=HOUR)
        clock.advance(HOUR)
        for token in (revoked, expired, "lk_000000000000_unknown"):
            with pytest.raises(ApiKeyNotFound):
                await _rotate(units, token, overlap=HOUR)


class TestLastUsed:
    async def test_written_after_a_request_then_at_most_once_a_minute(
        self, units: UnitsOfWork, client: httpx.AsyncClient, clock: FrozenClock
    ) -> None:
        token = await _key(units)
        assert (await _summary(units, token)).last_used_at is None
        assert await _status(client, token) == 200
        assert (await _summary(units, token)).last_used_at == START

        clock.advance(timedelta(seconds=59))
        assert await _status(client, token) == 200
        assert (await _summary(units, token)).last_used_at == START

        clock.advance(timedelta(seconds=1))
        assert await _status(client, token) == 200
        assert (await _summary(units, token)).last_used_at == START + timedelta(minutes=1)

    async def test_a_key_another_process_wrote_lately_is_not_written_again(
        self, settings: Settings, units: UnitsOfWork, client: httpx.AsyncClient, clock: FrozenClock
    ) -> None:
        token = await _key(units)
        assert await _status(client, token) == 200
        clock.advance(timedelta(seconds=30))
        other = create_app(settings, clock=clock)
        async with other.router.lifespan_context(other), client_for(other) as other_client:
            assert await _status(other_client, token) == 200
        assert (await _summary(units, token)).last_used_at == START

    async def test_a_refused_call_is_no_use(
        self, app: FastAPI, units: UnitsOfWork, clock: FrozenClock
    ) -> None:
        token = await _key(units, networks=["10.0.0.0/8"])
        async with client_for(app, "192.0.2.1") as outsider:
            assert await _status(outsider, token) == 403
        clock.advance(HOUR)
        async with client_for(app, "192.0.2.1") as outsider:
            assert await _status(outsider, token) == 403
        assert (await _summary(units, token)).last_used_at is None

    async def test_a_failed_write_fails_no_request(
        self,
        units: UnitsOfWork,
        client: httpx.AsyncClient,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        async def broken(*_: object) -> None:
            raise ConnectionError("the database went away")

        monkeypatch.setattr(ApiKeyRepository, "record_use", broken)
        token = await _key(units)
        with caplog.at_level(logging.WARNING, logger="loyalty_api.auth"):
            assert await _status(client, token) == 200
        assert "API key last-used time not written" in caplog.text
        assert (await _summary(units, token)).last_used_at is None


class TestNetworks:
    @pytest.mark.parametrize(
        ("address", "allowed"),
        [
            ("10.1.2.3", True),
            ("192.168.7.20", True),
            ("2001:db8::42", True),
            ("::ffff:10.1.2.3", True),  # an IPv4 caller as a dual-stack listener sees it
            ("192.168.8.1", False),
            ("11.0.0.1", False),
            ("2001:db9::1", False),
        ],
    )
    async def test_only_calls_from_the_keys_networks_are_let_in(
        self, app: FastAPI, units: UnitsOfWork, address: str, allowed: bool
    ) -> None:
        token = await _key(units, networks=["10.0.0.0/8", "192.168.7.0/24", "2001:db8::/32"])
        async with client_for(app, address) as client:
            response = await client.post("/v1/members", json={"phone": unique_phone()}, headers=bearer(token))
        if allowed:
            assert response.status_code == 201, response.text
        else:
            assert response.status_code == 403
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "address_not_allowed"
            assert address not in response.text

    async def test_a_key_without_networks_is_let_in_from_anywhere(
        self, app: FastAPI, units: UnitsOfWork
    ) -> None:
        token = await _key(units)
        for address in ("10.1.2.3", "203.0.113.9", "2001:db8::1"):
            async with client_for(app, address) as client:
                assert await _status(client, token) == 200

    async def test_refusals_spend_the_addresses_budget_and_not_the_keys(
        self, settings: Settings, units: UnitsOfWork, clock: FrozenClock
    ) -> None:
        token = await _key(units, networks=["10.0.0.0/8"], rate_limit="3/minute")
        limited = settings.model_copy(update={"rate_limit_unauthenticated_per_address": "2/minute"})
        app = create_app(limited, clock=clock)
        async with (
            app.router.lifespan_context(app),
            client_for(app, "192.0.2.1") as outsider,
            client_for(app, "10.0.0.5") as till,
        ):
            assert [await _status(outsider, token) for _ in range(3)] == [403, 403, 429]
            assert [await _status(till, token) for _ in range(3)] == [200, 200, 200]

    async def test_networks_are_checked_and_kept_in_their_normal_form(self, units: UnitsOfWork) -> None:
        for wrong, field in (
            (["10.1.2.3/8"], "allowed_networks.0"),
            (["10.0.0.0/8", "10.0.0.0/33"], "allowed_networks.1"),
            (["example.com"], "allowed_networks.0"),
            ([], "allowed_networks"),
        ):
            with pytest.raises(InvalidField) as refused:
                await _key(units, networks=wrong)
            assert refused.value.extra["errors"][0]["field"] == field
        token = await _key(units, networks=["2001:DB8:0::/32", "10.0.0.7", "2001:db8::/32"])
        networks = (await _summary(units, token)).principal.networks
        assert [str(n) for n in networks or ()] == ["2001:db8::/32", "10.0.0.7/32"]


@pytest.fixture
def cli_env(settings: Settings, clock: FrozenClock) -> dict[str, str]:
    """The CLI pointed at the test database; the app's clock at the real time, which the CLI's clock reads."""
    assert settings.encryption_key is not None
    clock.set(SystemClock().now())
    return _clean_env(
        LOYALTY_DATABASE_URL=settings.database_url,
        LOYALTY_DATABASE_POOLER=settings.database_pooler,
        LOYALTY_LISTEN_DATABASE_URL=settings.listen_url,
        LOYALTY_ENCRYPTION_KEY=settings.encryption_key.get_secret_value(),
    )


def _table(listed: str) -> dict[str, dict[str, str]]:
    """`keys list` by prefix: each key's columns by the header's names."""
    header, *lines = listed.strip().splitlines()
    names = header.split("\t")
    return {row[0]: dict(zip(names, row, strict=True)) for row in (line.split("\t") for line in lines)}


def _created(result: subprocess.CompletedProcess[str]) -> str:
    """The key a `keys create` or `keys rotate` printed."""
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("lk_")
    return token


class TestKeysCommand:
    async def test_create_with_limits_use_rotate_and_list(
        self, app: FastAPI, cli_env: dict[str, str], clock: FrozenClock
    ) -> None:
        created = _cli(
            cli_env,
            *("keys", "create", "--name", "till 7", "--scope", "pos", "--rate", "50/second"),
            *("--expires-in", "90d", "--allow-network", "10.0.0.0/8", "--allow-network", "2001:db8::/32"),
        )
        old = _created(created)
        before = clock.now()
        assert (
            "expiring at" in created.stdout and "usable from 10.0.0.0/8, 2001:db8::/32 only" in created.stdout
        )
        async with client_for(app, "10.9.9.9") as inside, client_for(app, "192.0.2.1") as outside:
            assert await _status(inside, old) == 200
            assert await _status(outside, old) == 403

            rotated = _cli(cli_env, "keys", "rotate", _prefix(old), "--overlap", "24h")
            new = _created(rotated)
            after = SystemClock().now()
            assert f"{_prefix(old)} expires at" in rotated.stdout
            again = _cli(cli_env, "keys", "rotate", _prefix(old), "--overlap", "24h")
            assert again.returncode == 2 and "Traceback" not in again.stderr
            assert f"its replacement {_prefix(new)} is in force" in again.stderr
            assert await _status(inside, new) == 200
            assert await _status(outside, new) == 403
            assert await _status(inside, old) == 200

        listed = _cli(cli_env, "keys", "list")
        assert listed.returncode == 0, listed.stderr
        table = _table(listed.stdout)
        first, second = table[_prefix(old)], table[_prefix(new)]
        assert first["name"] == second["name"] == "till 7"
        assert first["scopes"] == second["scopes"] == "pos"
        assert first["partner"] == second["partner"] == "-"
        assert first["rate"] == second["rate"] == "50/second"
        assert first["networks"] == second["networks"] == "10.0.0.0/8,2001:db8::/32"
        assert first["status"] == second["status"] == "active"
        assert first["last_used"] != "never" and second["last_used"] != "never"
        assert (
            before + timedelta(hours=24)
            <= datetime.fromisoformat(first["expires"])
            <= after + timedelta(hours=24)
        )
        lifetime = datetime.fromisoformat(second["expires"]) - datetime.fromisoformat(second["created"])
        assert lifetime == timedelta(days=90)
        assert old.split("_", 2)[2] not in listed.stdout and new.split("_", 2)[2] not in listed.stdout

    async def test_a_rotation_without_overlap_ends_the_old_key_in_every_process(
        self, app: FastAPI, client: httpx.AsyncClient, cli_env: dict[str, str], clock: FrozenClock
    ) -> None:
        old = _created(_cli(cli_env, "keys", "create", "--name", "web", "--scope", "ecommerce"))
        assert await _status(client, old) == 200
        rotated = _cli(cli_env, "keys", "rotate", _prefix(old), "--overlap", "0")
        new = _created(rotated)
        clock.set(SystemClock().now())
        # Another process remembers a key for settings.cache_seconds; then it reads the new expiry.
        deadline = time.monotonic() + app.state.units.settings.cache_seconds + 1
        while True:
            status = await _status(client, old)
            if status != 200 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert status == 401
        assert await _status(client, new) == 200

        listed = _table(_cli(cli_env, "keys", "list").stdout)
        assert listed[_prefix(old)]["status"] == "expired"
        assert (listed[_prefix(new)]["expires"], listed[_prefix(new)]["networks"]) == ("never", "any")
        assert listed[_prefix(new)]["last_used"] != "never"
        assert listed[_prefix(old)]["rate"] == "default"

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (("create", "--name", "x", "--scope", "pos", "--expires-in", "0"), "longer than 0"),
            (("create", "--name", "x", "--scope", "pos", "--expires-in", "3 months"), "such as 90d"),
            (("create", "--name", "x", "--scope", "pos", "--expires-in", "3651d"), "at most 3650d"),
            (("create", "--name", "x", "--scope", "pos", "--allow-network", "10.1.2.3/8"), "10.0.0.0/8"),
            (("rotate", "000000000000"), "--overlap"),
            (("rotate", "000000000000", "--overlap", "24h"), "no active API key"),
        ],
    )
    def test_wrong_input_is_refused_with_a_reason(
        self, cli_env: dict[str, str], args: tuple[str, ...], message: str
    ) -> None:
        result = _cli(cli_env, "keys", *args)
        assert result.returncode == 2
        assert message in result.stderr and "Traceback" not in result.stderr

    def test_the_help_documents_the_flags(self, cli_env: dict[str, str]) -> None:
        create = _cli(cli_env, "keys", "create", "--help").stdout
        assert "--expires-in DURATION" in create and "--allow-network CIDR" in create
        rotate = _cli(cli_env, "keys", "rotate", "--help").stdout
        assert "--overlap DURATION" in rotate and "--expires-in DURATION" in rotate

    async def test_key_changes_are_in_the_audit_log_without_their_secrets(
        self, client: httpx.AsyncClient, admin_key: str, cli_env: dict[str, str]
    ) -> None:
        old = _created(_cli(cli_env, "keys", "create", "--name", "till 9", "--scope", "pos"))
        new = _created(_cli(cli_env, "keys", "rotate", _prefix(old), "--overlap", "1h"))
        assert _cli(cli_env, "keys", "revoke", _prefix(new)).returncode == 0

        response = await client.get(
            "/v1/audit-events", params={"subject_type": "api_keys"}, headers=bearer(admin_key)
        )
        entries = response.json()["items"]
        assert [(e["action"], e["subject_id"]) for e in reversed(entries)] == [
            ("keys_create", _prefix(old)),
            ("keys_rotate", _prefix(old)),
            ("keys_create", _prefix(new)),
            ("keys_revoke", _prefix(new)),
        ]
        assert {(e["channel"], e["actor"], e["key_id"]) for e in entries} == {("cli", "cli", None)}
        assert entries[-1]["after"]["scopes"] == ["pos"] and entries[-1]["after"]["name"] == "till 9"
        assert entries[-2]["after"]["replaced_by"] == _prefix(new)
        for token in (old, new):
            assert token.split("_", 2)[2] not in str(entries)
