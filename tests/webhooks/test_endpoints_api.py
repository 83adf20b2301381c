"""Webhook endpoints over REST: register, read, change, delete, rotate the secret; who may; what is
refused."""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.auth.principal import Scope
from loyalty_api.clock import FrozenClock
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.webhooks.models import WebhookEndpoint
from tests.builders import enrol, make_key
from tests.conftest import START, bearer
from tests.inspect_db import count, events, rows
from tests.webhooks.endpoint_helpers import PUBLIC_URL, add_attempt, create_endpoint, set_endpoint

SECRET_FIELDS = {"secret", "secret_encrypted", "previous_secret", "previous_secret_encrypted"}


async def stored(app: FastAPI, endpoint_id: str) -> dict[str, Any]:
    """The endpoint's row as the ORM reads it (aware datetimes on both databases)."""
    units: UnitsOfWork = app.state.units
    async with units.read() as uow:
        row = await uow.session.get(WebhookEndpoint, uuid.UUID(endpoint_id))
        assert row is not None
        return {column.key: getattr(row, column.key) for column in WebhookEndpoint.__table__.columns}


async def raw(app: FastAPI, endpoint_id: str) -> str:
    """The endpoint's row as the database holds it, as text."""
    found = await rows(app, "SELECT * FROM webhook_endpoints WHERE id = :id", id=uuid.UUID(endpoint_id))
    assert len(found) == 1
    return str(found[0])


class TestRegistering:
    async def test_an_endpoint_is_created_with_its_secret_shown_once(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        response = await client.post(
            "/v1/webhook-endpoints",
            json={
                "url": PUBLIC_URL,
                "description": "门店收银",
                "event_types": ["points.earned", "member.enrolled"],
            },
            headers=bearer(admin_key),
        )
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["secret"].startswith("whsec_")
        assert created["url"] == PUBLIC_URL
        assert created["description"] == "门店收银"
        assert created["event_types"] == ["points.earned", "member.enrolled"]
        assert created["enabled"] is True
        assert created["failing_since"] is None
        assert created["previous_secret_until"] is None
        assert created["created_at"] == created["updated_at"] == START.isoformat().replace("+00:00", "Z")

        read = await client.get(f"/v1/webhook-endpoints/{created['id']}", headers=bearer(admin_key))
        assert read.status_code == 200
        assert not SECRET_FIELDS & set(read.json())
        assert created["secret"] not in read.text
        assert read.json() == {k: v for k, v in created.items() if k != "secret"}
        listed = await client.get("/v1/webhook-endpoints", headers=bearer(admin_key))
        assert listed.status_code == 200
        assert [e["id"] for e in listed.json()["items"]] == [created["id"]]
        assert created["secret"] not in listed.text
        assert not SECRET_FIELDS & set(listed.json()["items"][0])

    async def test_the_secret_is_stored_encrypted(
        self, app: FastAPI, units: UnitsOfWork, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        created = await create_endpoint(client, admin_key)
        row = await raw(app, created["id"])
        secret = created["secret"]
        assert secret.removeprefix("whsec_") not in row
        assert units.vault.decrypt((await stored(app, created["id"]))["secret_encrypted"]) == secret

    async def test_defaults_every_event_type_and_enabled(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        created = await create_endpoint(client, admin_key)
        assert created["event_types"] == []
        assert created["enabled"] is True
        assert created["description"] is None

    async def test_event_types_are_kept_once_each(self, client: httpx.AsyncClient, admin_key: str) -> None:
        created = await create_endpoint(
            client, admin_key, event_types=["points.earned", "points.earned", "tier.upgraded"]
        )
        assert created["event_types"] == ["points.earned", "tier.upgraded"]

    async def test_an_unknown_event_type_is_refused(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        response = await client.post(
            "/v1/webhook-endpoints",
            json={"url": PUBLIC_URL, "event_types": ["points.earned", "points.stolen"]},
            headers=bearer(admin_key),
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == "validation_error"
        assert problem["errors"][0]["field"] == "event_types.1"
        assert await count(app, "webhook_endpoints") == 0

    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"url": None},
            {"url": ""},
            {"url": PUBLIC_URL, "event_types": "points.earned"},
            {"url": PUBLIC_URL, "event_types": [1]},
            {"url": PUBLIC_URL, "enabled": "maybe"},
            {"url": PUBLIC_URL, "description": "x" * 201},
            {"url": PUBLIC_URL, "secret": "whsec_mine"},
            {"url": "https://93.184.216.34/" + "a" * 2000},
            {"url": PUBLIC_URL, "event_types": [f"t{i}" for i in range(101)]},
        ],
    )
    async def test_bad_bodies_are_422_problems(
        self, client: httpx.AsyncClient, admin_key: str, body: dict[str, Any]
    ) -> None:
        response = await client.post("/v1/webhook-endpoints", json=body, headers=bearer(admin_key))
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"

    async def test_a_replayed_create_gives_the_same_secret_without_storing_it_in_clear(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        headers = bearer(admin_key, Idempotency_Key="create-hook-1")
        first = await client.post("/v1/webhook-endpoints", json={"url": PUBLIC_URL}, headers=headers)
        assert first.status_code == 201, first.text
        again = await client.post("/v1/webhook-endpoints", json={"url": PUBLIC_URL}, headers=headers)
        assert again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
        assert await count(app, "webhook_endpoints") == 1
        records = await rows(app, "SELECT response_body FROM idempotency_records")
        secret = first.json()["secret"]
        assert records and all(secret.removeprefix("whsec_") not in str(r["response_body"]) for r in records)


class TestTargets:
    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "http://10.0.0.8/hook",
            "http://192.168.0.10/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/hook",
            "http://[fe80::1]/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "http://0.0.0.0/hook",
        ],
    )
    async def test_internal_targets_are_refused(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, url: str
    ) -> None:
        response = await client.post("/v1/webhook-endpoints", json={"url": url}, headers=bearer(admin_key))
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == "webhook_target_not_allowed"
        assert problem["errors"][0]["field"] == "url"
        assert await count(app, "webhook_endpoints") == 0

    @pytest.mark.parametrize(
        "url",
        [
            "ftp://93.184.216.34/",
            "https://admin:pw@93.184.216.34/",
            "not a url",
            "//93.184.216.34/x",
            "https://93.184.216.34:0/",  # no receiver listens on port 0
            "http://hooks.example:0/x",
        ],
    )
    async def test_other_than_plain_http_urls_are_refused(
        self, client: httpx.AsyncClient, admin_key: str, url: str
    ) -> None:
        response = await client.post("/v1/webhook-endpoints", json={"url": url}, headers=bearer(admin_key))
        assert response.status_code == 422
        assert response.json()["code"] == "webhook_target_not_allowed"
        assert "pw" not in response.text

    async def test_a_name_server_failing_for_a_moment_leaves_the_idempotency_key_free(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The back office saves an endpoint with an Idempotency-Key while the name server is failing: the
        URL is refused as unresolvable. Sent again with the same key once the name server answers, it is
        saved, as a refused input leaves the key free, rather than answered the old refusal for 24 hours."""
        failing = True

        def name_server(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
            if failing:
                raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

        monkeypatch.setattr(socket, "getaddrinfo", name_server)
        body = {"url": "https://hooks.example.com/loyalty"}
        headers = bearer(admin_key) | {"Idempotency-Key": "backoffice-webhook-1"}
        refused = await client.post("/v1/webhook-endpoints", json=body, headers=headers)
        assert (refused.status_code, refused.json()["code"]) == (422, "webhook_target_unresolvable")
        failing = False
        saved = await client.post("/v1/webhook-endpoints", json=body, headers=headers)
        assert saved.status_code == 201, saved.text
        assert "idempotent-replayed" not in saved.headers
        assert await count(app, "webhook_endpoints") == 1

    async def test_moving_an_endpoint_to_an_internal_target_is_refused(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        created = await create_endpoint(client, admin_key)
        response = await client.patch(
            f"/v1/webhook-endpoints/{created['id']}",
            json={"url": "http://169.254.169.254/"},
            headers=bearer(admin_key),
        )
        assert response.status_code == 422
        assert response.json()["code"] == "webhook_target_not_allowed"
        read = await client.get(f"/v1/webhook-endpoints/{created['id']}", headers=bearer(admin_key))
        assert read.json()["url"] == PUBLIC_URL


class TestSlowNames:
    @pytest.mark.parametrize("method", ["POST", "PATCH"])
    async def test_a_slow_lookup_holds_up_no_other_write(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        monkeypatch: pytest.MonkeyPatch,
        method: str,
    ) -> None:
        """The host of a new URL is resolved before the request's unit of work opens: on SQLite that unit
        holds the only writer turn, and every till's write waited for the name server."""
        created = await create_endpoint(client, admin_key) if method == "PATCH" else None
        answer, asked = threading.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()

        def slow_name_server(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
            loop.call_soon_threadsafe(asked.set)
            answer.wait(timeout=30)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

        monkeypatch.setattr(socket, "getaddrinfo", slow_name_server)
        body = {"url": "https://hooks.example.com/loyalty"}
        if created is None:
            saving = client.post("/v1/webhook-endpoints", json=body, headers=bearer(admin_key))
        else:
            saving = client.patch(
                f"/v1/webhook-endpoints/{created['id']}", json=body, headers=bearer(admin_key)
            )
        saved = asyncio.create_task(saving)
        try:
            await asyncio.wait_for(asked.wait(), timeout=10)
            enrolled = await asyncio.wait_for(enrol(client, pos_key), timeout=10)  # a till's write meanwhile
            assert enrolled["id"] and not saved.done()
        finally:
            answer.set()
        response = await saved
        assert response.status_code in (200, 201), response.text
        assert response.json()["url"] == body["url"]

    async def test_a_caller_the_route_refuses_makes_no_lookup(
        self, client: httpx.AsyncClient, pos_key: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        asked: list[str] = []

        def name_server(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
            asked.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

        monkeypatch.setattr(socket, "getaddrinfo", name_server)
        body = {"url": "https://hooks.example.com/loyalty"}
        response = await client.post("/v1/webhook-endpoints", json=body, headers=bearer(pos_key))
        assert response.status_code == 403
        assert asked == []


class TestChanging:
    async def test_fields_sent_change_and_others_stay(
        self, client: httpx.AsyncClient, admin_key: str, clock: FrozenClock
    ) -> None:
        created = await create_endpoint(client, admin_key, description="crm", event_types=["points.earned"])
        clock.advance(timedelta(minutes=5))
        response = await client.patch(
            f"/v1/webhook-endpoints/{created['id']}",
            json={"url": "https://93.184.216.35/v2", "event_types": []},
            headers=bearer(admin_key),
        )
        assert response.status_code == 200, response.text
        changed = response.json()
        assert changed["url"] == "https://93.184.216.35/v2"
        assert changed["event_types"] == []
        assert changed["description"] == "crm"
        assert changed["updated_at"] != created["updated_at"]
        assert "secret" not in changed

        cleared = await client.patch(
            f"/v1/webhook-endpoints/{created['id']}", json={"description": None}, headers=bearer(admin_key)
        )
        assert cleared.json()["description"] is None

    async def test_the_same_patch_again_changes_nothing(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, clock: FrozenClock
    ) -> None:
        """PATCH takes no Idempotency-Key (a repeat sets the same values): the change sent again keeps the
        endpoint's `updated_at`, and receivers hear of one change."""
        created = await create_endpoint(client, admin_key, description="crm")
        path = f"/v1/webhook-endpoints/{created['id']}"
        body = {
            "url": "https://93.184.216.35/v2",
            "description": "crm v2",
            "event_types": ["points.earned", "member.updated"],
            "enabled": True,
        }
        clock.advance(timedelta(minutes=1))
        first = await client.patch(path, json=body, headers=bearer(admin_key))
        assert first.status_code == 200, first.text
        clock.advance(timedelta(minutes=5))
        again = await client.patch(path, json=body, headers=bearer(admin_key))
        assert again.status_code == 200, again.text
        assert again.json() == first.json()
        changes = [e["payload"]["change"] for e in await events(app, "webhook_endpoint.changed")]
        assert changes == ["created", "updated"]

    @pytest.mark.parametrize(
        "body",
        [
            {"url": None},
            {"event_types": None},
            {"enabled": None},
            {"event_types": ["nope"]},
            {"secret": "x"},
            {"url": "http://10.1.1.1/"},
        ],
    )
    async def test_bad_changes_are_refused_and_change_nothing(
        self, client: httpx.AsyncClient, admin_key: str, body: dict[str, Any]
    ) -> None:
        created = await create_endpoint(client, admin_key, event_types=["points.earned"])
        response = await client.patch(
            f"/v1/webhook-endpoints/{created['id']}", json=body, headers=bearer(admin_key)
        )
        assert response.status_code == 422, response.text
        read = await client.get(f"/v1/webhook-endpoints/{created['id']}", headers=bearer(admin_key))
        assert read.json() == {k: v for k, v in created.items() if k != "secret"}

    async def test_enabling_a_disabled_endpoint_forgets_its_failures(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        created = await create_endpoint(client, admin_key)
        await set_endpoint(
            app,
            created["id"],
            enabled=False,
            failing_since=START - timedelta(days=5),
            disabled_reason="failed every attempt for 120 hours",
        )
        disabled = (
            await client.get(f"/v1/webhook-endpoints/{created['id']}", headers=bearer(admin_key))
        ).json()
        assert disabled["enabled"] is False
        assert disabled["disabled_reason"] == "failed every attempt for 120 hours"
        response = await client.patch(
            f"/v1/webhook-endpoints/{created['id']}", json={"enabled": True}, headers=bearer(admin_key)
        )
        assert response.status_code == 200
        enabled = response.json()
        assert enabled["enabled"] is True
        assert enabled["failing_since"] is None
        assert enabled["disabled_reason"] is None

    async def test_disabling_keeps_the_failure_record(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        created = await create_endpoint(client, admin_key)
        await set_endpoint(app, created["id"], failing_since=START - timedelta(hours=1))
        response = await client.patch(
            f"/v1/webhook-endpoints/{created['id']}", json={"enabled": False}, headers=bearer(admin_key)
        )
        assert response.json()["enabled"] is False
        assert response.json()["failing_since"] is not None

    async def test_an_unknown_endpoint_is_404(self, client: httpx.AsyncClient, admin_key: str) -> None:
        missing = uuid.uuid4()
        for method, path, body in [
            ("GET", f"/v1/webhook-endpoints/{missing}", None),
            ("PATCH", f"/v1/webhook-endpoints/{missing}", {"enabled": True}),
            ("DELETE", f"/v1/webhook-endpoints/{missing}", None),
            ("POST", f"/v1/webhook-endpoints/{missing}/rotate-secret", {}),
            ("POST", f"/v1/webhook-endpoints/{missing}/replay", {"since": START.isoformat()}),
            ("GET", f"/v1/webhook-endpoints/{missing}/deliveries", None),
        ]:
            response = await client.request(method, path, json=body, headers=bearer(admin_key))
            assert response.status_code == 404, (method, path)
            assert response.json()["code"] == "webhook_endpoint_not_found"

    async def test_a_malformed_id_is_422(self, client: httpx.AsyncClient, admin_key: str) -> None:
        response = await client.get("/v1/webhook-endpoints/not-a-uuid", headers=bearer(admin_key))
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"


class TestDeleting:
    async def test_deleting_takes_its_deliveries_and_attempts_along(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        endpoint = await create_endpoint(client, admin_key)
        kept = await create_endpoint(client, admin_key)
        await enrol(client, admin_key)
        for e in (endpoint, kept):
            replayed = await client.post(
                f"/v1/webhook-endpoints/{e['id']}/replay",
                json={"since": START.isoformat()},
                headers=bearer(admin_key),
            )
            assert replayed.json()["deliveries"] >= 1
        ours = await rows(
            app, "SELECT id FROM webhook_deliveries WHERE endpoint_id = :e", e=uuid.UUID(endpoint["id"])
        )
        theirs = await rows(
            app, "SELECT id FROM webhook_deliveries WHERE endpoint_id = :e", e=uuid.UUID(kept["id"])
        )
        assert ours and theirs
        await add_attempt(app, str(uuid.UUID(str(ours[0]["id"]))), status_code=500, attempted_at=START)
        await add_attempt(app, str(uuid.UUID(str(theirs[0]["id"]))), status_code=500, attempted_at=START)

        response = await client.delete(f"/v1/webhook-endpoints/{endpoint['id']}", headers=bearer(admin_key))
        assert response.status_code == 204
        read = await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=bearer(admin_key))
        assert read.status_code == 404
        assert await count(app, "webhook_deliveries") == len(theirs)
        assert await count(app, "webhook_attempts") == 1
        again = await client.delete(f"/v1/webhook-endpoints/{endpoint['id']}", headers=bearer(admin_key))
        assert again.status_code == 404


class TestRotatingTheSecret:
    async def test_the_new_secret_is_shown_once_and_the_old_one_signs_for_the_overlap(
        self, app: FastAPI, units: UnitsOfWork, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        created = await create_endpoint(client, admin_key)
        response = await client.post(
            f"/v1/webhook-endpoints/{created['id']}/rotate-secret",
            json={"overlap_hours": 48},
            headers=bearer(admin_key),
        )
        assert response.status_code == 200, response.text
        rotated = response.json()
        assert rotated["secret"].startswith("whsec_")
        assert rotated["secret"] != created["secret"]
        assert rotated["previous_secret_until"] == (START + timedelta(hours=48)).isoformat().replace(
            "+00:00", "Z"
        )
        row = await stored(app, created["id"])
        assert units.vault.decrypt(row["secret_encrypted"]) == rotated["secret"]
        assert units.vault.decrypt(row["previous_secret_encrypted"]) == created["secret"]
        assert row["previous_secret_until"] == START + timedelta(hours=48)
        assert rotated["secret"].removeprefix("whsec_") not in await raw(app, created["id"])
        assert created["secret"].removeprefix("whsec_") not in await raw(app, created["id"])
        read = await client.get(f"/v1/webhook-endpoints/{created['id']}", headers=bearer(admin_key))
        assert rotated["secret"] not in read.text and created["secret"] not in read.text
        assert read.json()["previous_secret_until"] == rotated["previous_secret_until"]

    async def test_the_overlap_is_a_day_by_default(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        created = await create_endpoint(client, admin_key)
        for body in ({}, None):
            response = await client.post(
                f"/v1/webhook-endpoints/{created['id']}/rotate-secret", json=body, headers=bearer(admin_key)
            )
            assert response.status_code == 200, response.text
            assert (await stored(app, created["id"]))["previous_secret_until"] == START + timedelta(hours=24)

    async def test_a_second_rotation_drops_the_oldest_secret(
        self, app: FastAPI, units: UnitsOfWork, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        created = await create_endpoint(client, admin_key)
        path = f"/v1/webhook-endpoints/{created['id']}/rotate-secret"
        second = (await client.post(path, json={}, headers=bearer(admin_key))).json()
        third = (await client.post(path, json={}, headers=bearer(admin_key))).json()
        row = await stored(app, created["id"])
        assert units.vault.decrypt(row["secret_encrypted"]) == third["secret"]
        assert units.vault.decrypt(row["previous_secret_encrypted"]) == second["secret"]

    async def test_no_overlap_ends_the_old_secret_at_once(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        created = await create_endpoint(client, admin_key)
        response = await client.post(
            f"/v1/webhook-endpoints/{created['id']}/rotate-secret",
            json={"overlap_hours": 0},
            headers=bearer(admin_key),
        )
        assert response.status_code == 200
        assert response.json()["previous_secret_until"] is None
        row = await stored(app, created["id"])
        assert row["previous_secret_encrypted"] is None

    @pytest.mark.parametrize("overlap", [-1, 169, 1.5, "24", None])
    async def test_an_overlap_out_of_range_is_refused(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, overlap: Any
    ) -> None:
        created = await create_endpoint(client, admin_key)
        response = await client.post(
            f"/v1/webhook-endpoints/{created['id']}/rotate-secret",
            json={"overlap_hours": overlap},
            headers=bearer(admin_key),
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert (await stored(app, created["id"]))["previous_secret_encrypted"] is None


class TestWhoMay:
    @pytest.mark.parametrize("scope", [Scope.pos, Scope.ecommerce, Scope.billing])
    async def test_only_admin_keys_manage_endpoints(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, scope: Scope
    ) -> None:
        key = await make_key(app, scope)
        created = await create_endpoint(client, admin_key)
        some = uuid.uuid4()
        for method, path, body in [
            ("POST", "/v1/webhook-endpoints", {"url": PUBLIC_URL}),
            ("GET", "/v1/webhook-endpoints", None),
            ("GET", f"/v1/webhook-endpoints/{created['id']}", None),
            ("PATCH", f"/v1/webhook-endpoints/{created['id']}", {"enabled": False}),
            ("DELETE", f"/v1/webhook-endpoints/{created['id']}", None),
            ("POST", f"/v1/webhook-endpoints/{created['id']}/rotate-secret", {}),
            ("POST", f"/v1/webhook-endpoints/{created['id']}/replay", {"since": START.isoformat()}),
            ("GET", f"/v1/webhook-endpoints/{created['id']}/deliveries", None),
            ("GET", f"/v1/webhook-deliveries/{some}", None),
            ("POST", f"/v1/webhook-deliveries/{some}/retry", None),
        ]:
            response = await client.request(method, path, json=body, headers=bearer(key))
            assert response.status_code == 403, (method, path, response.text)
            assert response.json()["code"] == "scope_not_allowed"
        assert await count(app, "webhook_endpoints") == 1

    async def test_no_key_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/v1/webhook-endpoints")
        assert response.status_code == 401


class TestListing:
    async def test_endpoints_are_listed_newest_first_in_pages(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        made = [await create_endpoint(client, admin_key, description=f"e{i}") for i in range(5)]
        seen: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = (
                await client.get("/v1/webhook-endpoints", params=params, headers=bearer(admin_key))
            ).json()
            seen += [e["description"] for e in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [e["description"] for e in reversed(made)]

    async def test_a_bad_cursor_is_422(self, client: httpx.AsyncClient, admin_key: str) -> None:
        response = await client.get("/v1/webhook-endpoints?cursor=!!", headers=bearer(admin_key))
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "cursor"


class TestAudit:
    async def test_every_change_to_an_endpoint_is_an_event_without_its_url_or_secret(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        endpoint = await create_endpoint(client, admin_key, url="https://93.184.216.34/hooks?token=s3cr3t")
        path = f"/v1/webhook-endpoints/{endpoint['id']}"
        assert (
            await client.patch(path, json={"enabled": False}, headers=bearer(admin_key))
        ).status_code == 200
        rotated = await client.post(f"{path}/rotate-secret", json={}, headers=bearer(admin_key))
        assert rotated.status_code == 200
        assert (await client.delete(path, headers=bearer(admin_key))).status_code == 204

        changes = await events(app, "webhook_endpoint.changed")
        assert [(e["payload"]["change"], e["payload"]["enabled"]) for e in changes] == [
            ("created", True),
            ("updated", False),
            ("secret_rotated", False),
            ("deleted", False),
        ]
        assert {e["payload"]["endpoint_id"] for e in changes} == {endpoint["id"]}
        written = str([e["payload"] for e in changes])
        for secret in (endpoint["secret"], rotated.json()["secret"], "s3cr3t"):
            assert secret not in written
