"""Deliveries as operators see them: listing, one with its attempts, retry by hand, replay since a time."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.clock import FrozenClock
from loyalty_api.outbox.events import CATALOGUE
from tests.builders import add_tier, enrol
from tests.conftest import START, bearer
from tests.inspect_db import count, events, rows
from tests.webhooks.endpoint_helpers import PUBLIC_URL, add_attempt, create_endpoint, set_delivery

Z = "+00:00"


def uid(value: Any) -> str:
    """An id as the API writes it, from a raw row (SQLite hands UUIDs back as hex)."""
    return str(uuid.UUID(str(value)))


def iso(moment: Any) -> str:
    return str(moment.isoformat().replace(Z, "Z"))


async def replay(client: httpx.AsyncClient, key: str, endpoint_id: str, since: Any = START) -> int:
    response = await client.post(
        f"/v1/webhook-endpoints/{endpoint_id}/replay", json={"since": since.isoformat()}, headers=bearer(key)
    )
    assert response.status_code == 200, response.text
    replayed: int = response.json()["deliveries"]
    return replayed


async def deliveries(
    client: httpx.AsyncClient, key: str, endpoint_id: str, **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/v1/webhook-endpoints/{endpoint_id}/deliveries", params=params, headers=bearer(key)
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def endpoint_with_deliveries(
    client: httpx.AsyncClient, admin_key: str, members: int = 2, **fields: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An endpoint with one delivery per enrolment (made by a replay), newest first."""
    endpoint = await create_endpoint(client, admin_key, **({"event_types": ["member.enrolled"]} | fields))
    for _ in range(members):
        await enrol(client, admin_key)
    assert await replay(client, admin_key, endpoint["id"]) == members
    return endpoint, await deliveries(client, admin_key, endpoint["id"])


class TestReplay:
    async def test_replay_creates_a_pending_delivery_for_each_event_the_endpoint_takes(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, clock: FrozenClock
    ) -> None:
        endpoint = await create_endpoint(client, admin_key, event_types=["member.enrolled"])
        first = await enrol(client, admin_key)
        await add_tier(client, admin_key, "member", rank=0)  # tier_ladder.changed: not taken
        clock.advance(timedelta(hours=1))
        second = await enrol(client, admin_key)
        clock.advance(timedelta(hours=1))

        assert await replay(client, admin_key, endpoint["id"], since=START) == 2
        made = await deliveries(client, admin_key, endpoint["id"])
        enrolled = await events(app, "member.enrolled")
        assert [d["event_id"] for d in made] == [uid(e["id"]) for e in reversed(enrolled)]
        assert {d["event_type"] for d in made} == {"member.enrolled"}
        assert all(d["status"] == "pending" and d["attempts"] == 0 for d in made)
        assert all(d["next_attempt_at"] == iso(START + timedelta(hours=2)) for d in made)
        assert all(d["leased_until"] is None and d["delivered_at"] is None for d in made)
        keys = await rows(app, "SELECT ordering_key FROM webhook_deliveries ORDER BY id")
        assert [k["ordering_key"] for k in keys] == [first["id"], second["id"]]

    async def test_replay_only_takes_events_since_the_time_given(
        self, client: httpx.AsyncClient, admin_key: str, clock: FrozenClock
    ) -> None:
        endpoint = await create_endpoint(client, admin_key)
        await enrol(client, admin_key)
        clock.advance(timedelta(hours=1))
        await enrol(client, admin_key)
        assert await replay(client, admin_key, endpoint["id"], since=START + timedelta(minutes=30)) == 1
        assert await replay(client, admin_key, endpoint["id"], since=START + timedelta(hours=2)) == 0

    async def test_replay_reaches_back_no_further_than_events_are_kept(
        self, client: httpx.AsyncClient, admin_key: str, clock: FrozenClock
    ) -> None:
        endpoint = await create_endpoint(client, admin_key)
        await enrol(client, admin_key)
        clock.advance(timedelta(days=90))  # events are kept 90 days; a replay reaches back an hour less
        assert await replay(client, admin_key, endpoint["id"], since=START + timedelta(hours=1)) == 0
        response = await client.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/replay",
            json={"since": iso(START + timedelta(minutes=59))},
            headers=bearer(admin_key),
        )
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"
        assert "since" in response.text

    async def test_an_endpoint_for_every_type_gets_programme_events_keyed_by_their_aggregate(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        endpoint = await create_endpoint(client, admin_key)
        await add_tier(client, admin_key, "member", rank=0)
        await enrol(client, admin_key)
        ladder = await events(app, "tier_ladder.changed")
        assert ladder
        total = await count(app, "outbox_events")
        assert await replay(client, admin_key, endpoint["id"]) == total
        keyed = await rows(
            app,
            "SELECT ordering_key FROM webhook_deliveries WHERE event_type = 'tier_ladder.changed'",
        )
        assert {k["ordering_key"] for k in keyed} == {
            f"{e['aggregate_type']}:{e['aggregate_id']}" for e in ladder
        }

    async def test_replaying_again_makes_the_same_deliveries_due_without_duplicates(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, clock: FrozenClock
    ) -> None:
        endpoint, made = await endpoint_with_deliveries(client, admin_key)
        await set_delivery(app, made[0]["id"], status="succeeded", delivered_at=START, attempts=1)
        await set_delivery(
            app, made[1]["id"], status="failed", attempts=8, next_attempt_at=START + timedelta(days=9)
        )
        clock.advance(timedelta(hours=3))
        assert await replay(client, admin_key, endpoint["id"]) == 2
        again = await deliveries(client, admin_key, endpoint["id"])
        assert [d["id"] for d in again] == [d["id"] for d in made]
        assert all(d["status"] == "pending" for d in again)
        assert all(d["next_attempt_at"] == iso(START + timedelta(hours=3)) for d in again)
        assert [d["attempts"] for d in again] == [0, 0]  # a fresh run of back-off before giving up
        assert await count(app, "webhook_deliveries") == 2

    async def test_replay_leaves_a_delivery_a_worker_is_sending(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        endpoint, made = await endpoint_with_deliveries(client, admin_key)
        await set_delivery(app, made[0]["id"], leased_until=START + timedelta(seconds=30))
        assert await replay(client, admin_key, endpoint["id"]) == 1
        leased = (
            await client.get(f"/v1/webhook-deliveries/{made[0]['id']}", headers=bearer(admin_key))
        ).json()
        assert leased["leased_until"] == iso(START + timedelta(seconds=30))

    async def test_replay_covers_more_events_than_one_batch(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        endpoint = await create_endpoint(client, admin_key, event_types=["member.enrolled"])
        from loyalty_api.webhooks import endpoints

        for _ in range(endpoints._REPLAY_BATCH + 3):
            await enrol(client, admin_key)
        assert await replay(client, admin_key, endpoint["id"]) == endpoints._REPLAY_BATCH + 3
        assert await count(app, "webhook_deliveries") == endpoints._REPLAY_BATCH + 3

    @pytest.mark.parametrize(
        "body",
        [{}, {"since": "yesterday"}, {"since": "2026-03-16T10:00:00"}, {"since": "9999-01-01T00:00:00Z"}],
    )
    async def test_a_bad_since_is_422(
        self, client: httpx.AsyncClient, admin_key: str, body: dict[str, Any]
    ) -> None:
        endpoint = await create_endpoint(client, admin_key)
        response = await client.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/replay", json=body, headers=bearer(admin_key)
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"


class TestListing:
    async def test_deliveries_are_listed_newest_first_in_pages(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        endpoint, made = await endpoint_with_deliveries(client, admin_key, members=5)
        seen: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            response = await client.get(
                f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", params=params, headers=bearer(admin_key)
            )
            page = response.json()
            assert len(page["items"]) <= 2
            seen += [d["id"] for d in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [d["id"] for d in made]
        assert seen == sorted(seen, key=lambda i: uuid.UUID(i), reverse=True)

    async def test_deliveries_filter_by_status_and_event_type(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        endpoint = await create_endpoint(client, admin_key)
        await add_tier(client, admin_key, "member", rank=0)
        await enrol(client, admin_key)
        await enrol(client, admin_key)
        await replay(client, admin_key, endpoint["id"])
        enrolled = await deliveries(client, admin_key, endpoint["id"], event_type="member.enrolled")
        assert len(enrolled) == 2
        assert {d["event_type"] for d in enrolled} == {"member.enrolled"}
        await set_delivery(app, enrolled[0]["id"], status="failed", last_status_code=503, last_error="down")
        failed = await deliveries(client, admin_key, endpoint["id"], status="failed")
        assert [d["id"] for d in failed] == [enrolled[0]["id"]]
        assert failed[0]["last_status_code"] == 503
        both = await deliveries(
            client, admin_key, endpoint["id"], status="pending", event_type="member.enrolled"
        )
        assert [d["id"] for d in both] == [enrolled[1]["id"]]
        assert await deliveries(client, admin_key, endpoint["id"], event_type="points.earned") == []

    async def test_only_the_endpoints_own_deliveries_are_listed(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        endpoint, _ = await endpoint_with_deliveries(client, admin_key, members=1)
        other = await create_endpoint(client, admin_key, event_types=["points.earned"])
        assert await replay(client, admin_key, other["id"]) == 0
        assert await deliveries(client, admin_key, other["id"]) == []
        assert len(await deliveries(client, admin_key, endpoint["id"])) == 1

    @pytest.mark.parametrize(
        "params",
        [{"status": "lost"}, {"limit": 0}, {"limit": 201}, {"cursor": "%%%"}, {"event_type": "x" * 65}],
    )
    async def test_bad_filters_are_422(
        self, client: httpx.AsyncClient, admin_key: str, params: dict[str, Any]
    ) -> None:
        endpoint = await create_endpoint(client, admin_key)
        response = await client.get(
            f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", params=params, headers=bearer(admin_key)
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"

    async def test_an_unknown_event_type_is_refused_as_it_is_for_an_endpoint(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        endpoint, _ = await endpoint_with_deliveries(client, admin_key, members=1)
        response = await client.get(
            f"/v1/webhook-endpoints/{endpoint['id']}/deliveries",
            params={"event_type": "member.enroled"},
            headers=bearer(admin_key),
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == "validation_error"
        assert problem["errors"][0]["field"] == "event_type"
        assert "GET /v1/event-types" in problem["errors"][0]["message"]

    async def test_a_type_taken_out_of_the_catalogue_still_finds_its_past_deliveries(
        self, client: httpx.AsyncClient, admin_key: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """History outlives the catalogue: the deliveries of a type a release no longer emits are still found
        by it, of any status (none failed: an empty page, not a refusal), while a new endpoint can no longer
        subscribe to it, and an endpoint without such deliveries still refuses the name."""
        endpoint, made = await endpoint_with_deliveries(client, admin_key, members=2)
        monkeypatch.delitem(CATALOGUE, "member.enrolled")  # a release that removed the type
        found = await deliveries(client, admin_key, endpoint["id"], event_type="member.enrolled")
        assert [d["id"] for d in found] == [d["id"] for d in made]
        assert (
            await deliveries(client, admin_key, endpoint["id"], event_type="member.enrolled", status="failed")
            == []
        )
        other = await create_endpoint(client, admin_key, event_types=["points.earned"])
        response = await client.get(
            f"/v1/webhook-endpoints/{other['id']}/deliveries",
            params={"event_type": "member.enrolled"},
            headers=bearer(admin_key),
        )
        assert (response.status_code, response.json()["code"]) == (422, "validation_error"), response.text
        refused = await client.post(
            "/v1/webhook-endpoints",
            json={"url": PUBLIC_URL, "event_types": ["member.enrolled"]},
            headers=bearer(admin_key),
        )
        assert (refused.status_code, refused.json()["code"]) == (422, "validation_error"), refused.text
        assert refused.json()["errors"][0]["field"] == "event_types.0"


class TestReadingOne:
    async def test_a_delivery_shows_its_attempts_oldest_first(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        endpoint, made = await endpoint_with_deliveries(client, admin_key, members=1)
        delivery = made[0]
        await add_attempt(
            app,
            delivery["id"],
            attempted_at=START,
            error="ConnectError: connection refused",
            duration_ms=3,
        )
        await add_attempt(
            app,
            delivery["id"],
            attempted_at=START + timedelta(seconds=5),
            status_code=500,
            response_body="oops",
            duration_ms=41,
        )
        await add_attempt(
            app, delivery["id"], attempted_at=START + timedelta(minutes=5), status_code=204, duration_ms=9
        )
        await set_delivery(
            app,
            delivery["id"],
            status="succeeded",
            attempts=3,
            last_status_code=204,
            last_attempt_at=START + timedelta(minutes=5),
            delivered_at=START + timedelta(minutes=5),
        )
        response = await client.get(f"/v1/webhook-deliveries/{delivery['id']}", headers=bearer(admin_key))
        assert response.status_code == 200, response.text
        found = response.json()
        assert found["id"] == delivery["id"]
        assert found["endpoint_id"] == endpoint["id"]
        assert found["status"] == "succeeded"
        assert found["attempts"] == 3
        assert found["delivered_at"] == iso(START + timedelta(minutes=5))
        assert found["attempt_log"] == [
            {
                "attempted_at": iso(START),
                "status_code": None,
                "error": "ConnectError: connection refused",
                "duration_ms": 3,
                "response_body": None,
            },
            {
                "attempted_at": iso(START + timedelta(seconds=5)),
                "status_code": 500,
                "error": None,
                "duration_ms": 41,
                "response_body": "oops",
            },
            {
                "attempted_at": iso(START + timedelta(minutes=5)),
                "status_code": 204,
                "error": None,
                "duration_ms": 9,
                "response_body": None,
            },
        ]

    async def test_a_delivery_never_tried_has_no_attempts(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        _, made = await endpoint_with_deliveries(client, admin_key, members=1)
        found = (
            await client.get(f"/v1/webhook-deliveries/{made[0]['id']}", headers=bearer(admin_key))
        ).json()
        assert found["attempt_log"] == []
        assert found["status"] == "pending"

    async def test_an_unknown_delivery_is_404(self, client: httpx.AsyncClient, admin_key: str) -> None:
        for method, path in [("GET", ""), ("POST", "/retry")]:
            response = await client.request(
                method, f"/v1/webhook-deliveries/{uuid.uuid4()}{path}", headers=bearer(admin_key)
            )
            assert response.status_code == 404
            assert response.json()["code"] == "webhook_delivery_not_found"


class TestNarrowing:
    async def test_new_event_types_end_the_pending_deliveries_of_types_no_longer_taken(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        endpoint = await create_endpoint(client, admin_key, event_types=["member.enrolled", "points.earned"])
        await enrol(client, admin_key)  # no points earned: only the enrolment waits
        assert await replay(client, admin_key, endpoint["id"]) == 1
        assert len(await deliveries(client, admin_key, endpoint["id"])) == 1
        narrowed = await client.patch(
            f"/v1/webhook-endpoints/{endpoint['id']}",
            json={"event_types": ["points.earned"]},
            headers=bearer(admin_key),
        )
        assert narrowed.status_code == 200, narrowed.text
        [ended] = await deliveries(client, admin_key, endpoint["id"])
        assert (ended["status"], ended["last_error"]) == (
            "failed",
            "the endpoint no longer takes this event type",
        )
        assert ended["attempts"] == 0  # never sent
        assert 'loyalty_webhook_deliveries{status="failed"} 1.0' in (await client.get("/metrics")).text

        widened = await client.patch(
            f"/v1/webhook-endpoints/{endpoint['id']}", json={"event_types": []}, headers=bearer(admin_key)
        )
        assert widened.status_code == 200, widened.text
        assert await replay(client, admin_key, endpoint["id"]) >= 1  # taken again, it can be sent again
        again = {d["id"]: d for d in await deliveries(client, admin_key, endpoint["id"])}
        assert again[ended["id"]]["status"] == "pending"


class TestRetry:
    @pytest.mark.parametrize("status", ["failed", "succeeded", "pending"])
    async def test_a_delivery_not_being_sent_is_made_due_now(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, clock: FrozenClock, status: str
    ) -> None:
        _, made = await endpoint_with_deliveries(client, admin_key, members=1)
        delivery = made[0]
        await set_delivery(
            app,
            delivery["id"],
            status=status,
            attempts=8,
            next_attempt_at=START + timedelta(days=2),
            leased_until=START + timedelta(minutes=1),  # an old lease, run out by the time of the retry
            last_status_code=500,
        )
        clock.advance(timedelta(minutes=10))
        response = await client.post(
            f"/v1/webhook-deliveries/{delivery['id']}/retry", headers=bearer(admin_key)
        )
        assert response.status_code == 200, response.text
        retried = response.json()
        assert retried["status"] == "pending"
        assert retried["next_attempt_at"] == iso(START + timedelta(minutes=10))
        assert retried["leased_until"] is None
        assert retried["attempts"] == 0  # a fresh run of back-off; earlier attempts stay in the log
        assert retried["last_status_code"] == 500
        found = (
            await client.get(f"/v1/webhook-deliveries/{delivery['id']}", headers=bearer(admin_key))
        ).json()
        assert {k: v for k, v in found.items() if k != "attempt_log"} == retried

    async def test_a_delivery_of_a_disabled_endpoint_is_409_and_replay_too(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, clock: FrozenClock
    ) -> None:
        endpoint, made = await endpoint_with_deliveries(client, admin_key, members=1)
        await set_delivery(app, made[0]["id"], status="failed", attempts=8)
        disabled = await client.patch(
            f"/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": False}, headers=bearer(admin_key)
        )
        assert disabled.status_code == 200, disabled.text
        clock.advance(timedelta(minutes=10))
        retry = await client.post(f"/v1/webhook-deliveries/{made[0]['id']}/retry", headers=bearer(admin_key))
        assert retry.status_code == 409
        assert retry.json()["code"] == "webhook_endpoint_disabled"
        again = await client.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/replay",
            json={"since": iso(START)},
            headers=bearer(admin_key),
        )
        assert again.status_code == 409
        assert again.json()["code"] == "webhook_endpoint_disabled"
        found = (
            await client.get(f"/v1/webhook-deliveries/{made[0]['id']}", headers=bearer(admin_key))
        ).json()
        assert (found["status"], found["attempts"]) == ("failed", 8)  # nothing changed

        await client.patch(
            f"/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": True}, headers=bearer(admin_key)
        )
        retry = await client.post(f"/v1/webhook-deliveries/{made[0]['id']}/retry", headers=bearer(admin_key))
        assert (retry.status_code, retry.json()["status"]) == (200, "pending")

    async def test_a_retry_refused_while_the_endpoint_was_disabled_leaves_the_idempotency_key_free(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        """The page says enable it first, then retry: the operator's retry and replay, sent again with the
        same keys once the endpoint is enabled, run rather than replay the old 409 for 24 hours."""
        endpoint, made = await endpoint_with_deliveries(client, admin_key, members=1)
        url = f"/v1/webhook-endpoints/{endpoint['id']}"
        await client.patch(url, json={"enabled": False}, headers=bearer(admin_key))
        retry_key = bearer(admin_key) | {"Idempotency-Key": "retry-while-disabled"}
        replay_key = bearer(admin_key) | {"Idempotency-Key": "replay-while-disabled"}
        since = {"since": iso(START)}
        refused = [
            await client.post(f"/v1/webhook-deliveries/{made[0]['id']}/retry", headers=retry_key),
            await client.post(f"{url}/replay", json=since, headers=replay_key),
        ]
        assert {(r.status_code, r.json()["code"]) for r in refused} == {(409, "webhook_endpoint_disabled")}

        await client.patch(url, json={"enabled": True}, headers=bearer(admin_key))
        retried = await client.post(f"/v1/webhook-deliveries/{made[0]['id']}/retry", headers=retry_key)
        assert (retried.status_code, retried.json()["status"]) == (200, "pending"), retried.text
        replayed = await client.post(f"{url}/replay", json=since, headers=replay_key)
        assert (replayed.status_code, replayed.json()) == (200, {"deliveries": 1}), replayed.text
        assert "idempotent-replayed" not in retried.headers
        assert "idempotent-replayed" not in replayed.headers

    async def test_a_delivery_a_worker_is_sending_is_409(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        _, made = await endpoint_with_deliveries(client, admin_key, members=1)
        await set_delivery(app, made[0]["id"], leased_until=START + timedelta(seconds=30))
        keyed = bearer(admin_key) | {"Idempotency-Key": "retry-in-flight"}
        response = await client.post(f"/v1/webhook-deliveries/{made[0]['id']}/retry", headers=keyed)
        assert response.status_code == 409
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "webhook_delivery_in_flight"
        found = (
            await client.get(f"/v1/webhook-deliveries/{made[0]['id']}", headers=bearer(admin_key))
        ).json()
        assert found["leased_until"] == iso(START + timedelta(seconds=30))
        # "Wait, then retry": the same key, once the attempt is over, runs the retry (no replay of the 409).
        await set_delivery(app, made[0]["id"], leased_until=None)
        again = await client.post(f"/v1/webhook-deliveries/{made[0]['id']}/retry", headers=keyed)
        assert (again.status_code, again.json()["status"]) == (200, "pending"), again.text
        assert "idempotent-replayed" not in again.headers

    @pytest.mark.parametrize("status", ["failed", "succeeded"])
    async def test_a_delivery_of_a_type_the_endpoint_no_longer_takes_is_409_as_replay_skips_it(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str, clock: FrozenClock, status: str
    ) -> None:
        """The operator took the type out of the endpoint's subscription since: a retry by hand must not send
        it anyway, as a replay does not. Once the type is taken again, the same Idempotency-Key runs."""
        endpoint, made = await endpoint_with_deliveries(
            client, admin_key, members=1, event_types=["member.enrolled", "points.earned"]
        )
        await set_delivery(app, made[0]["id"], status=status, attempts=3, last_status_code=500)
        url = f"/v1/webhook-endpoints/{endpoint['id']}"
        narrowed = await client.patch(url, json={"event_types": ["points.earned"]}, headers=bearer(admin_key))
        assert narrowed.status_code == 200, narrowed.text
        clock.advance(timedelta(minutes=10))
        keyed = bearer(admin_key) | {"Idempotency-Key": "retry-of-a-type-dropped"}
        retry = await client.post(f"/v1/webhook-deliveries/{made[0]['id']}/retry", headers=keyed)
        assert retry.status_code == 409, retry.text
        assert retry.headers["content-type"] == "application/problem+json"
        assert retry.json()["code"] == "webhook_event_type_not_taken"
        found = (
            await client.get(f"/v1/webhook-deliveries/{made[0]['id']}", headers=bearer(admin_key))
        ).json()
        assert (found["status"], found["attempts"]) == (status, 3)  # nothing changed
        assert await replay(client, admin_key, endpoint["id"]) == 0  # a replay passes it over likewise

        widened = await client.patch(
            url, json={"event_types": ["member.enrolled"]}, headers=bearer(admin_key)
        )
        assert widened.status_code == 200, widened.text
        again = await client.post(f"/v1/webhook-deliveries/{made[0]['id']}/retry", headers=keyed)
        assert (again.status_code, again.json()["status"]) == (200, "pending"), again.text
        assert "idempotent-replayed" not in again.headers
