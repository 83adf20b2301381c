"""Logs carry no secret and no personal data: a day of work through the real app and the real webhook worker,
every record of every logger at DEBUG, searched for each secret and each member's personal data in every
form it may take (as entered, normalized, URL-encoded, JSON-escaped)."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import socket
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.app import create_app
from loyalty_api.auth.principal import Scope
from loyalty_api.clock import FrozenClock
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.ops.logging import JsonFormatter
from loyalty_api.settings import Settings
from loyalty_api.worker.runner import Worker
from loyalty_api.worker.schedule import JOBS
from tests.builders import make_key
from tests.conftest import bearer
from tests.inspect_db import rows
from tests.points.helpers import earn, set_program
from tests.webhooks.endpoint_helpers import add_endpoint
from tests.webhooks.receiver import Receiver, running_receiver

MEMBERS: list[dict[str, Any]] = [
    {
        "phone": "139 1234 5678",
        "email": "Li.Na.Private@Example.CN",
        "name": "李娜",
        "birthday": "1990-07-15",
        "external_ids": {"pos": "C-1"},
    },
    {"phone": "+86 138-0013-8000", "email": "wang.wei.secret@example.com", "name": "Wang Weiqiang"},
    {"phone": "186-2233-4455", "email": "zhao_min@example.org", "name": "赵敏", "birthday": "1979-11-30"},
]
E164 = {
    "139 1234 5678": "+8613912345678",
    "+86 138-0013-8000": "+8613800138000",
    "186-2233-4455": "+8618622334455",
}


def personal_data(member: dict[str, Any]) -> dict[str, str]:
    phone = member["phone"]
    found = {
        "phone as entered": phone,
        "phone in E.164": E164[phone],
        "phone, E.164 digits": E164[phone][1:],
        "phone, national digits": E164[phone][3:],
        "e-mail as entered": member["email"],
        "e-mail lower-cased": member["email"].lower(),
    }
    return found | {field: member[field] for field in ("name", "birthday") if field in member}


def spellings(value: str) -> set[str]:
    """The ways a value can show up in a log line."""
    return {
        value,
        quote(value, safe=""),
        quote_plus(value),
        json.dumps(value)[1:-1],  # \u-escaped
        str(value.encode())[2:-1],  # a bytes repr: \xe6\x9d…
    }


def leaks(records: Iterable[logging.LogRecord], forbidden: dict[str, str]) -> list[str]:
    """Which logger logged which forbidden value, in which spelling."""
    formatter = JsonFormatter()
    found = set()
    for record in records:
        line = formatter.format(record)
        for what, value in forbidden.items():
            found.update(f"{record.name}: {what} as {s!r}" for s in spellings(value) if s in line)
    return sorted(found)


def formatted(records: Iterable[logging.LogRecord]) -> str:
    formatter = JsonFormatter()
    return "\n".join(formatter.format(record) for record in records)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


LOCAL = {"webhook_allow_private_targets": True}  # the receiver runs on 127.0.0.1


@asynccontextmanager
async def local_process(settings: Settings, clock: FrozenClock) -> AsyncIterator[httpx.AsyncClient]:
    """Another process of the service on the same database, set up for local development (webhook targets on
    loopback allowed), for as long as the block runs."""
    local = create_app(settings.model_copy(update=LOCAL), clock=clock)
    async with local.router.lifespan_context(local):
        transport = httpx.ASGITransport(app=local, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://loyalty.test") as http:
            yield http


def local_units(app: FastAPI) -> UnitsOfWork:
    """The app's database, clock and vault, as a worker set up for local development sees them."""
    units: UnitsOfWork = app.state.units
    local = UnitsOfWork(units.database, units.clock, units.vault, units.settings.model_copy(update=LOCAL))
    local.cache = units.cache
    return local


async def run_worker(units: UnitsOfWork, receiver: Receiver, *, until_received: int) -> None:
    """The worker running its webhook job until the receiver has had that many requests."""
    jobs = [job for job in JOBS if job.name == "deliver-webhooks"]
    worker = Worker(units, jobs, tick_seconds=0.02)
    task = asyncio.create_task(worker.run())
    try:
        for _ in range(3000):  # at most a minute, for a loaded machine; a few hundred milliseconds usually
            if len(receiver.received) >= until_received:
                break
            await asyncio.sleep(0.02)
    finally:
        worker.stop()
        await asyncio.wait_for(task, timeout=60)
    assert len(receiver.received) >= until_received


class TestLogHygiene:
    async def test_a_day_of_work_logs_no_secret_and_no_personal_data(
        self,
        app: FastAPI,
        settings: Settings,
        client: httpx.AsyncClient,
        receiver: Receiver,
        clock: FrozenClock,
        admin_key: str,
        pos_key: str,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)  # the root logger: every logger that does not set its own level
        ecommerce_key = await make_key(app, Scope.ecommerce)
        hook_token = "tok_" + secrets.token_urlsafe(16)
        hook_user, hook_password = "hookuser", "pw_" + secrets.token_urlsafe(8)
        target = f"{receiver.url}?token={hook_token}&shop=7"
        forbidden: dict[str, str] = {"webhook URL token": hook_token, "webhook URL password": hook_password}
        for name, key in (("admin", admin_key), ("pos", pos_key), ("ecommerce", ecommerce_key)):
            forbidden[f"{name} key"] = key
            forbidden[f"{name} key secret"] = key.split("_", 2)[2]

        # An operator registers (on a process set up for local development) a webhook endpoint whose URL
        # carries a token, and tries one with credentials.
        async with local_process(settings, clock) as local_client:
            created = await local_client.post(
                "/v1/webhook-endpoints", json={"url": target, "description": "CRM"}, headers=bearer(admin_key)
            )
            assert created.status_code == 201, created.text
            forbidden["webhook signing secret"] = created.json()["secret"]
            forbidden["webhook signing secret key"] = created.json()["secret"].removeprefix("whsec_")
            with_credentials = target.replace("http://", f"http://{hook_user}:{hook_password}@")
            refused = await local_client.post(
                "/v1/webhook-endpoints", json={"url": with_credentials}, headers=bearer(admin_key)
            )
            assert refused.status_code == 422, refused.text
            # A target that does not answer: its deliveries fail and are retried.
            down_token = "down_" + secrets.token_urlsafe(12)
            forbidden["unreachable webhook URL token"] = down_token
            down = await local_client.post(
                "/v1/webhook-endpoints",
                json={"url": f"http://127.0.0.1:{_closed_port()}/down?token={down_token}"},
                headers=bearer(admin_key),
            )
            assert down.status_code == 201, down.text
        # One with credentials in its URL, saved before the API refused such URLs (the sender refuses it too).
        await add_endpoint(app.state.units, with_credentials, event_types=["points.redeemed"])

        # The till enrols members (one with an Idempotency-Key, as the README's first call does) and looks
        # them up.
        await set_program(client, admin_key)
        members = []
        for index, fields in enumerate(MEMBERS):
            for what, value in personal_data(fields).items():
                forbidden[f"member {index}'s {what}"] = value
            headers = (
                bearer(pos_key, idempotency_key=f"till-1-{index:04d}") if index == 0 else bearer(pos_key)
            )
            response = await client.post("/v1/members", json=fields, headers=headers)
            assert response.status_code == 201, response.text
            members.append(response.json())
        replayed = await client.post(
            "/v1/members", json=MEMBERS[0], headers=bearer(pos_key, idempotency_key="till-1-0000")
        )
        assert replayed.status_code == 201 and replayed.headers.get("idempotent-replayed") == "true"
        first, second, third = members
        for params in (
            {"phone": "13912345678"},
            {"phone": "+86 138 0013 8000"},
            {"email": MEMBERS[2]["email"]},
            {"member_number": first["member_number"]},
            {"external_system": "pos", "external_id": "C-1"},
        ):
            found = await client.get("/v1/members/lookup", params=params, headers=bearer(pos_key))
            assert found.status_code == 200, found.text
        assert (await client.get(f"/v1/members/{second['id']}", headers=bearer(pos_key))).status_code == 200
        graphql = await client.post(
            "/graphql",
            json={
                "query": "query($n: String!) "
                "{ loyaltyMemberByNumber(memberNumber: $n) { id phone email name } }",
                "variables": {"n": third["member_number"]},
            },
            headers=bearer(ecommerce_key),
        )
        assert graphql.status_code == 200
        assert graphql.json()["data"]["loyaltyMemberByNumber"]["id"] == third["id"]
        changed = await client.patch(
            f"/v1/members/{third['id']}",
            json={"name": "赵敏", "email": MEMBERS[2]["email"]},
            headers=bearer(pos_key),
        )
        assert changed.status_code == 200, changed.text

        # Earn and redeem.
        for member in members:
            await earn(client, pos_key, member["id"], 12_990)
        redeemed = await client.post(
            f"/v1/members/{first['id']}/redeem",
            json={"points": 100, "order_ref": "T1-0002"},
            headers=bearer(pos_key, idempotency_key="till-1-0002"),
        )
        assert redeemed.status_code == 200, redeemed.text

        # Mistakes: bad input carrying personal data, a duplicate, unknown people, wrong and broken keys.
        wrong_secret = "lk_" + pos_key.split("_")[1] + "_" + secrets.token_urlsafe(32)
        forbidden["wrong key"] = wrong_secret
        mistakes = [
            await client.post("/v1/members", json={"phone": "139 1234 5678"}, headers=bearer(pos_key)),
            await client.post(
                "/v1/members",
                json={"phone": "12", "email": "not-an-email@", "name": "李娜"},
                headers=bearer(pos_key),
            ),
            await client.post(
                "/v1/members",
                json={"phone": "+86 138-0013-8000", "birthday": "1979-11-31", "nickname": "Wang Weiqiang"},
                headers=bearer(pos_key),
            ),
            await client.post(
                "/v1/members",
                content=b'{"phone": "139 1234 5678", "email": "Li.Na.Private@Example.CN",',
                headers={**bearer(pos_key), "content-type": "application/json"},
            ),
            await client.get("/v1/members/lookup", params={"phone": "186 2233 445"}, headers=bearer(pos_key)),
            await client.get(
                "/v1/members/lookup",
                params={"email": "wang.wei.secret@example.com.cn"},
                headers=bearer(pos_key),
            ),
            await client.get(
                "/v1/members/lookup", params={"phone": "13912345678"}, headers=bearer(wrong_secret)
            ),
            await client.get(
                "/v1/members/lookup", params={"phone": "13912345678"}, headers=bearer(pos_key[:-3])
            ),
            await client.get(f"/v1/members/{first['id']}", headers={"Authorization": pos_key}),
            await client.post(
                f"/v1/members/{first['id']}/redeem",
                json={"points": 10**9, "order_ref": "T1-0003"},
                headers=bearer(pos_key),
            ),
            await client.post("/v1/members/C-1/earn", json={"order_ref": "x"}, headers=bearer(pos_key)),
            await client.post(
                "/v1/webhook-endpoints", json={"url": with_credentials}, headers=bearer(pos_key)
            ),
        ]
        assert all(400 <= response.status_code < 500 for response in mistakes), [r.text for r in mistakes]
        denied = await client.post(
            "/graphql",
            json={
                "query": "query($n: String!) { loyaltyMemberByNumber(memberNumber: $n) { phone } }",
                "variables": {"n": first["member_number"]},
            },
            headers=bearer(wrong_secret),
        )
        assert denied.status_code == 401, denied.text

        # The worker delivers every event to the receiver; the first attempt gets a 500 and is retried.
        receiver.fail_next(500)
        [outbox] = await rows(app, "SELECT COUNT(*) AS n FROM outbox_events")
        assert outbox["n"] >= 6
        await run_worker(local_units(app), receiver, until_received=1)
        # Past the first back-off: the failed one goes again, then the events that waited behind it.
        clock.advance(timedelta(minutes=1))
        await run_worker(local_units(app), receiver, until_received=outbox["n"] + 1)
        attempts = await rows(app, "SELECT error FROM webhook_attempts")
        assert any(a["error"] for a in attempts)  # the 500, the unreachable target and the refused one

        leaked = leaks(caplog.records, forbidden)
        assert not leaked, "\n".join(leaked)
        logged = formatted(caplog.records)
        # The capture works: the access log, the worker and the HTTP client's request lines are all there.
        assert '"route": "/v1/members/lookup"' in logged
        assert '"job": "deliver-webhooks"' in logged


class TestHttpClientLines:
    """Every HTTP client line in the process (aiohttp's, the webhook sender's client; httpx's, which logs one
    at INFO for each request) names URLs without user info, query or fragment: where receivers and partners
    put their tokens."""

    def test_urls_in_client_lines_name_scheme_host_port_and_path_only(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        url = "http://hookuser:hunter2pass@127.0.0.1:8443/hooks/a%20b?token=sekret-42&x=1#frag-9"
        logging.getLogger("aiohttp.client").warning("Unclosed connection to %s", url)
        logged = formatted(caplog.records)
        assert "Unclosed connection to http://127.0.0.1:8443/hooks/a%20b" in logged
        for secret in ("hookuser", "hunter2pass", "sekret-42", "x=1", "frag-9"):
            assert secret not in logged

    async def test_request_lines_name_scheme_host_port_and_path_only(
        self, receiver: Receiver, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        port = urlsplit(receiver.url).port
        url = f"http://hookuser:hunter2pass@127.0.0.1:{port}/hooks/a%20b?token=sekret-42&x=1#frag-9"
        async with httpx.AsyncClient(trust_env=False) as http:
            assert (await http.post(url, content=b"{}")).status_code == 204
        logged = formatted(caplog.records)
        assert f"POST http://127.0.0.1:{port}/hooks/a%20b " in logged
        for secret in ("hookuser", "hunter2pass", "sekret-42", "x=1", "frag-9"):
            assert secret not in logged
