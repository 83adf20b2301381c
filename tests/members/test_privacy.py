from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI

from tests.builders import enrol
from tests.conftest import bearer
from tests.inspect_db import rows


class TestPersonalDataAtRest:
    async def test_raw_tables_hold_no_plaintext_personal_data(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        await enrol(
            client,
            pos_key,
            phone="13812348888",
            email="private.person@example.cn",
            name="隐私",
            birthday="1991-02-03",
        )
        dumped = str(await rows(app, "SELECT * FROM members")) + str(
            await rows(app, "SELECT * FROM outbox_events")
        )
        for secret in ("13812348888", "8613812348888", "private.person", "隐私", "1991-02-03"):
            assert secret not in dumped

    async def test_equal_values_encrypt_differently(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        await enrol(client, pos_key, name="同名")
        await enrol(client, pos_key, name="同名")
        names = [r["name_encrypted"] for r in await rows(app, "SELECT name_encrypted FROM members")]
        assert len(set(names)) == 2


class TestLogs:
    async def test_logs_hold_no_personal_data(
        self, client: httpx.AsyncClient, pos_key: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        from loyalty_api.ops.logging import JsonFormatter

        caplog.set_level(logging.INFO)
        member = await enrol(client, pos_key, phone="13866667777", email="log.check@example.cn", name="日志")
        await client.get("/v1/members/lookup", params={"phone": "13866667777"}, headers=bearer(pos_key))
        await client.get(
            "/v1/members/lookup", params={"email": "log.check@example.cn"}, headers=bearer(pos_key)
        )
        await client.post("/v1/members", json={"phone": "13866667777"}, headers=bearer(pos_key))
        formatter = JsonFormatter()
        # httpx is the test's own client here, logging the URLs it calls; everything else is the service.
        service_records = [r for r in caplog.records if not r.name.startswith("httpx")]
        logged = "\n".join(formatter.format(record) for record in service_records)
        assert '"route": "/v1/members/lookup"' in logged
        for secret in ("13866667777", "log.check", "日志", member["phone"]):
            assert secret not in logged
