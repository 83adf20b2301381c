"""The pieces of ops/logging that keep libraries' log lines clean."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.members.models import Member
from loyalty_api.ops.logging import JsonFormatter, RedactUrls, redact_url
from loyalty_api.settings import Settings
from loyalty_api.worker.runner import Worker
from loyalty_api.worker.schedule import Job
from tests.apps import serving
from tests.conftest import units_of
from tests.databases import is_postgres


class TestRedactUrl:
    @pytest.mark.parametrize(
        ("url", "redacted"),
        [
            ("https://hooks.example.com/in?token=abc", "https://hooks.example.com/in"),
            ("http://u:p@127.0.0.1:8080/a/b?x=1#f", "http://127.0.0.1:8080/a/b"),
            ("https://[2001:db8::1]:8443/hook?sig=1", "https://[2001:db8::1]:8443/hook"),
            ("https://user@example.com", "https://example.com"),
            ("http://example.com:99999/x?t=1", "http://…"),
        ],
    )
    def test_keeps_scheme_host_port_and_path(self, url: str, redacted: str) -> None:
        assert redact_url(url) == redacted


class TestRedactUrls:
    def test_rewrites_every_url_of_a_message_and_keeps_the_rest(self) -> None:
        record = logging.LogRecord(
            "httpx",
            logging.INFO,
            __file__,
            1,
            'HTTP Request: %s %s "%s"',
            ("POST", "https://u:p@h.example/in?t=1", "HTTP/1.1 200 OK"),
            None,
        )
        assert RedactUrls().filter(record)
        assert record.getMessage() == 'HTTP Request: POST https://h.example/in "HTTP/1.1 200 OK"'

    def test_a_message_that_cannot_be_formatted_loses_its_arguments(self) -> None:
        record = logging.LogRecord("httpx", logging.INFO, __file__, 1, "%s %s", ("http://h/?t=1",), None)
        assert RedactUrls().filter(record)
        assert "t=1" not in record.getMessage()


class TestADatabaseErrorLogged:
    @pytest.mark.parametrize(
        ("table", "broken"),
        [
            ("ref TEXT UNIQUE", "SQLSTATE 23505, table refs, constraint refs_ref_key"),
            ("ref TEXT CHECK (length(ref) < 5)", "SQLSTATE 23514, table refs, constraint refs_ref_check"),
        ],
    )
    async def test_carries_no_value_the_database_names_in_its_detail(
        self, app: FastAPI, table: str, broken: str
    ) -> None:
        """PostgreSQL's DETAIL names the values of the row that broke a constraint (`Key (ref)=(…) already
        exists`, `Failing row contains (…)`), which asyncpg puts in the error's text: an unexpected one,
        logged as a 500 or a failed job, must not carry a partner's customer ref or a card number."""
        if not is_postgres():
            pytest.skip("SQLite's errors name the constraint's columns, never values")
        ref = "CAFE-13812345678"
        async with units_of(app).database.engine.connect() as connection:
            await connection.execute(text(f"CREATE TEMP TABLE refs ({table})"))
            if "23505" in broken:
                await connection.execute(text("INSERT INTO refs VALUES (:ref)"), {"ref": ref})
            with pytest.raises(DBAPIError) as raised:
                await connection.execute(text("INSERT INTO refs VALUES (:ref)"), {"ref": ref})
        record = logging.LogRecord(
            "loyalty_api.http", logging.ERROR, __file__, 1, "unhandled error", (), _exc_info(raised.value)
        )
        line = JsonFormatter().format(record)
        assert ref not in line
        assert broken in line  # what went wrong is still said

    async def test_a_value_the_server_could_not_read_is_not_in_the_line(self, app: FastAPI) -> None:
        """A value of the wrong kind for its column: PostgreSQL's message itself quotes it (`value
        "+8613912345678" is out of range for type integer`), not only a DETAIL."""
        if not is_postgres():
            pytest.skip("SQLite reads any value as any type")
        phone = "+8613912345678"
        async with units_of(app).database.engine.connect() as connection:
            with pytest.raises(DBAPIError) as raised:
                await connection.execute(text("SELECT CAST(CAST(:v AS text) AS integer)"), {"v": phone})
        record = logging.LogRecord(
            "loyalty_api.http", logging.ERROR, __file__, 1, "unhandled error", (), _exc_info(raised.value)
        )
        line = JsonFormatter().format(record)
        assert phone not in line and phone[1:] not in line
        assert "SQLSTATE 22003" in line and "NumericValueOutOfRangeError" in line  # what went wrong
        assert "SELECT CAST(CAST($1 AS text) AS integer)" in line  # and where


class TestAFailedJobLogged:
    async def test_a_members_phone_passed_where_an_id_belongs_is_not_in_the_line(
        self, app: FastAPI, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A bug that hands a repository a member's phone where the member's id belongs: the driver refuses
        the value and quotes it in its message (asyncpg's `invalid input for query argument $1:
        '+8613912345678' (invalid UUID …)`, and the codec's error beneath it). The job fails, logged with
        what failed and where, but not the phone."""
        phone = "+8613912345678"

        async def looks_the_member_up_by_the_wrong_key(units: UnitsOfWork) -> int:
            async with units.read() as uow:
                await uow.session.get(Member, phone)
            return 0

        caplog.set_level(logging.ERROR, logger="loyalty_api.worker")
        job = Job("buggy", timedelta(hours=1), looks_the_member_up_by_the_wrong_key)
        worker = Worker(units_of(app), [job], tick_seconds=0.01, webhooks=False)
        task = asyncio.create_task(worker.run())
        try:
            for _ in range(1000):
                if any(r.getMessage() == "job failed" for r in caplog.records):
                    break
                await asyncio.sleep(0.01)
        finally:
            worker.stop()
            await asyncio.wait_for(task, timeout=10)
        [failed] = [r for r in caplog.records if r.getMessage() == "job failed"]
        line = JsonFormatter().format(failed)
        assert phone not in line and phone[1:] not in line and phone[3:] not in line
        assert "looks_the_member_up_by_the_wrong_key" in line  # the traceback's frames are there
        assert "[SQL: SELECT members." in line  # and the statement, without its values


class TestAValidationErrorLogged:
    """pydantic's errors quote every value they refuse (`input_value='li.na@example.com'`), and FastAPI's
    around them too: one a bug raises is logged with where and what failed, not the values."""

    async def test_a_reply_a_bug_built_wrong_is_a_500_logged_without_its_values(
        self, settings: Settings, caplog: pytest.LogCaptureFixture
    ) -> None:
        email = "li.na@example.com"

        class Count(BaseModel):
            count: int

        async def counts_the_wrong_field() -> dict[str, str]:
            return {"count": email}

        caplog.set_level(logging.ERROR, logger="loyalty_api")
        async with serving(settings) as (app, client):
            app.add_api_route("/buggy", counts_the_wrong_field, response_model=Count)
            answer = await client.get("/buggy")
        assert answer.status_code == 500
        [failed] = [r for r in caplog.records if r.getMessage() == "unhandled error"]
        line = JsonFormatter().format(failed)
        assert email not in line and "li.na" not in line
        assert "ResponseValidationError: response.count (int_parsing)" in line  # what went wrong, and where
        assert "Traceback (most recent call last)" in line and "serialize_response" in line  # the frames

    def test_a_model_a_job_builds_from_a_row(self) -> None:
        phone = "+8613912345678"

        class Reminder(BaseModel):
            member_id: UUID

        try:
            Reminder.model_validate({"member_id": phone})
        except ValidationError as refused:
            record = logging.LogRecord(
                "loyalty_api.worker", logging.ERROR, __file__, 1, "job failed", (), _exc_info(refused)
            )
        line = JsonFormatter().format(record)
        assert phone not in line and phone[1:] not in line
        assert "ValidationError: member_id (uuid_parsing)" in line


def _exc_info(exc: BaseException) -> tuple[type[BaseException], BaseException, Any]:
    return type(exc), exc, exc.__traceback__


def test_a_uvicorn_line_keeps_no_terminal_colours() -> None:
    """uvicorn gives its records the message again with colour codes, `color_message`: not for a JSON line."""
    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1, "Started server process [%d]", (7,), None
    )
    record.color_message = "Started server process [\x1b[36m%d\x1b[0m]"
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["message"] == "Started server process [7]"
    assert "color_message" not in entry
    assert "\\u001b" not in line  # json writes the escape byte so
