from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from starlette.types import Message

from loyalty_api.ops.logging import JsonFormatter
from tests.builders import unique_phone
from tests.conftest import bearer
from tests.inspect_db import count


@contextmanager
def commits_fail(app: FastAPI, *, which: set[int]) -> Iterator[None]:
    """The app's commits numbered in `which` (from 1) fail, as they would when the database refuses COMMIT
    (a lost connection, a failed fsync): raised as the unit of work commits, before COMMIT is sent."""
    engine = app.state.units.database.engine.sync_engine
    commits: list[int] = []

    def fail(session: Session) -> None:
        if session.get_bind() is not engine:
            return
        commits.append(1)
        if len(commits) in which:
            raise OperationalError("COMMIT", {}, Exception("commit refused by the test"))

    event.listen(Session, "before_commit", fail)
    try:
        yield
    finally:
        event.remove(Session, "before_commit", fail)


class TestFailedCommit:
    async def test_a_failing_commit_is_an_error_response_not_a_201(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        phone = unique_phone()
        with commits_fail(app, which={1}):
            response = await client.post("/v1/members", json={"phone": phone}, headers=bearer(pos_key))
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "internal_error"
        assert "Traceback" not in response.text
        assert await count(app, "members") == 0
        lookup = await client.get("/v1/members/lookup", params={"phone": phone}, headers=bearer(pos_key))
        assert lookup.status_code == 404

    async def test_with_an_idempotency_key_the_retry_does_the_work(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        body = {"phone": unique_phone()}
        headers = {**bearer(pos_key), "Idempotency-Key": "flaky-network"}
        # The first commit is the key's claim; the second is the request's own work.
        with commits_fail(app, which={2}):
            failed = await client.post("/v1/members", json=body, headers=headers)
        assert failed.status_code == 500
        retried = await client.post("/v1/members", json=body, headers=headers)
        assert retried.status_code == 201
        assert await count(app, "members") == 1


@contextmanager
def error_lines() -> Iterator[list[str]]:
    """The service's error log lines as it writes them (formatted when logged: the request id is the
    request's own only then)."""
    lines: list[str] = []

    class Kept(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Kept(logging.ERROR)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lines
    finally:
        root.removeHandler(handler)


class TestFailureOutsideTheEndpoint:
    async def test_a_failed_idempotency_claim_is_a_500_with_the_request_id_and_the_api_headers(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        headers = {**bearer(pos_key), "Idempotency-Key": "claim-fails", "X-Request-Id": "till-7.req-1"}
        with error_lines() as lines, commits_fail(app, which={1}):  # the key's claim is the first commit
            response = await client.post("/v1/members", json={"phone": unique_phone()}, headers=headers)
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "internal_error"
        assert response.headers["x-request-id"] == "till-7.req-1"
        assert (response.headers["cache-control"], response.headers["x-content-type-options"]) == (
            "no-store",
            "nosniff",
        )
        [line] = [line for line in lines if "unhandled error" in line]
        assert '"request_id": "till-7.req-1"' in line
        assert await count(app, "members") == 0

    async def test_a_caller_gone_mid_upload_is_no_error(self, app: FastAPI, pos_key: str) -> None:
        body = b'{"phone": "' + unique_phone().encode()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/members",
            "raw_path": b"/v1/members",
            "root_path": "",
            "query_string": b"",
            "headers": [
                (b"host", b"test"),
                (b"authorization", f"Bearer {pos_key}".encode()),
                (b"content-type", b"application/json"),
                (b"content-length", b"64"),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("test", 80),
        }
        arriving = [
            {"type": "http.request", "body": body, "more_body": True},
            {"type": "http.disconnect"},
        ]
        sent: list[Message] = []

        async def receive() -> Message:
            return arriving.pop(0) if arriving else {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        with error_lines() as lines:
            await app(scope, receive, send)
        assert sent[0]["type"] == "http.response.start"
        assert sent[0]["status"] == 499
        assert lines == []
        assert await count(app, "members") == 0


class TestProblemJson:
    async def test_unknown_route_is_problem_json(self, client: httpx.AsyncClient, pos_key: str) -> None:
        response = await client.get("/v1/nowhere", headers=bearer(pos_key))
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "route_not_found"

    async def test_unknown_method_is_problem_json(self, client: httpx.AsyncClient, pos_key: str) -> None:
        response = await client.delete("/v1/members/lookup", headers=bearer(pos_key))
        assert response.status_code == 405
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "method_not_allowed"

    async def test_problem_has_the_rfc_9457_members(self, client: httpx.AsyncClient, pos_key: str) -> None:
        response = await client.get(
            "/v1/members/lookup", params={"phone": "13700000000"}, headers=bearer(pos_key)
        )
        problem = response.json()
        assert {"type", "title", "status", "detail", "code", "instance"} <= problem.keys()
        assert problem["status"] == response.status_code == 404
        assert problem["instance"] == "/v1/members/lookup"

    async def test_every_field_error_says_where_the_field_was(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        """README: validation errors list `errors[]` with `field` and `location`, whether the schema refused
        the value or a rule of the service did (a cursor this service did not return, a phone number that is
        none): those had no location."""
        refused = {
            "schema, query": await client.get("/v1/members?limit=0", headers=bearer(admin_key)),
            "rule, query": await client.get("/v1/members?cursor=garbage", headers=bearer(admin_key)),
            "rule, body": await client.post(
                "/v1/members", json={"phone": "12345"}, headers=bearer(admin_key)
            ),
        }
        located = {
            case: [(e["field"], e["location"]) for e in response.json()["errors"]]
            for case, response in refused.items()
        }
        assert located == {
            "schema, query": [("limit", "query")],
            "rule, query": [("cursor", "query")],
            "rule, body": [("phone", "body")],
        }

    async def test_every_response_carries_a_request_id(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"X-Request-ID": "till-7.42"})
        assert response.headers["x-request-id"] == "till-7.42"
        generated = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
        assert generated.headers["x-request-id"] != "bad id with spaces"
        assert len(generated.headers["x-request-id"]) == 32


class TestValidationMessagesNeverEchoInput:
    """README: input values are never echoed back. A distinctive value sent in bad fields (a phone number, as
    a till might send by mistake) appears nowhere in the answer, whichever check refuses it."""

    MARK = "13800138000"

    async def test_a_discriminator_names_the_field_and_the_kinds_not_the_value(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        for path in ("/v1/benefits", "/v1/earning-rules"):
            response = await client.post(
                path, json={"name": "x", "kind": self.MARK, "properties": {}}, headers=bearer(admin_key)
            )
            assert response.status_code == 422, response.text
            assert self.MARK not in response.text, path
            error = response.json()["errors"][0]
            assert (error["field"], error["type"]) == ("kind", "union_tag_invalid"), path
            assert "must be one of" in error["message"], path

    async def test_a_value_cut_short_still_hears_the_values_allowed(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        """A choice's message quotes only the values it takes: kept, though a cut-off value ("lapse") is
        part of one of them, where a value quoted back would be replaced."""
        for sent in ("lapse", "dormant"):
            response = await client.get(f"/v1/members?lifecycle={sent}", headers=bearer(admin_key))
            assert response.status_code == 422, response.text
            error = response.json()["errors"][0]
            assert (error["field"], error["type"]) == ("lifecycle", "enum"), sent
            assert "'new', 'active', 'at_risk', 'lapsed' or 'churned'" in error["message"], sent

    async def test_bad_values_are_never_quoted(self, client: httpx.AsyncClient, admin_key: str) -> None:
        mark = self.MARK
        member = await client.post("/v1/members", json={}, headers=bearer(admin_key))
        member_id = member.json()["id"]
        refusals = [
            # The e-mail checker's own reasons quote the characters they refuse ('_' here).
            client.post("/v1/members", json={"email": f"a@{mark}_x.com"}, headers=bearer(admin_key)),
            client.post("/v1/members", json={"email": f"{mark}<@example.com"}, headers=bearer(admin_key)),
            client.post("/v1/members", json={"email": mark}, headers=bearer(admin_key)),
            client.post("/v1/members", json={"birthday": mark}, headers=bearer(admin_key)),
            client.post("/v1/members", json={"marketing_consent": mark}, headers=bearer(admin_key)),
            client.patch(
                f"/v1/members/{member_id}", json={"email": f"{mark}_@x_y"}, headers=bearer(admin_key)
            ),
            # A path's UUID: the parser names the character it stopped at (`_` here).
            client.get(f"/v1/members/{mark}_", headers=bearer(admin_key)),
            client.get("/v1/members", params={"tier": mark, "limit": mark}, headers=bearer(admin_key)),
            client.post(
                f"/v1/members/{member_id}/earn",
                json={"order_ref": "E1", "amount": {"amount": mark + "x", "currency": mark}},
                headers=bearer(admin_key),
            ),
        ]
        for pending in refusals:
            response = await pending
            assert response.status_code == 422, response.text
            problem = response.json()
            assert problem["code"] == "validation_error"
            # `instance` is the path the caller sent (RFC 9457): everything else says nothing of the input.
            said = json.dumps({k: v for k, v in problem.items() if k != "instance"})
            assert mark not in said, said
            assert "_" not in json.dumps([e["message"] for e in problem["errors"]]), said
