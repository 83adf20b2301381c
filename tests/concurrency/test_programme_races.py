"""Operators configuring the programme at once: the settings and the earning rules. Each request gets a clear
answer (never a 500), and each change is written, announced and audited once."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal

import httpx
from fastapi import FastAPI

from tests.conftest import bearer
from tests.inspect_db import events, rows
from tests.points.helpers import DEMO_LIKE_PROGRAM, add_rule

ROUNDS = 5


class TestEarningRulesAtOnce:
    async def test_replaces_and_deletes_of_one_rule_at_once_answer_200_204_or_404(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        body = {"name": "Monday x2", "kind": "member_day", "properties": {"weekday": 1, "multiplier": "2"}}
        for _ in range(ROUNDS):
            rule = await add_rule(client, admin_key, **body)
            path = f"/v1/earning-rules/{rule['id']}"
            replaced = body | {"name": "Monday x3", "properties": {"weekday": 1, "multiplier": "3"}}
            replies = await asyncio.gather(
                *(client.put(path, json=replaced, headers=bearer(admin_key)) for _ in range(6)),
                *(client.delete(path, headers=bearer(admin_key)) for _ in range(6)),
            )
            puts, deletes = replies[:6], replies[6:]
            assert {r.status_code for r in puts} <= {200, 404}, [r.text for r in puts]
            assert all(r.json()["code"] == "earning_rule_not_found" for r in puts if r.status_code == 404)
            assert Counter(r.status_code for r in deletes) == {204: 1, 404: 5}, [r.text for r in deletes]
            assert (await client.get(path, headers=bearer(admin_key))).status_code == 404
            changes = Counter(
                e["payload"]["change"]
                for e in await events(app, "earning_rule.changed")
                if e["payload"]["rule_id"] == rule["id"]
            )
            applied = sum(r.status_code == 200 for r in puts)
            assert changes == Counter(created=1, replaced=applied, deleted=1)
            audited = await rows(
                app,
                "SELECT method, status FROM audit_events WHERE subject_id = :id AND method = 'DELETE'",
                id=rule["id"],
            )
            assert audited == [{"method": "DELETE", "status": 204}]


class TestProgrammeAtOnce:
    async def test_first_settings_sent_at_once_all_answer_200_and_make_one_programme(
        self, app: FastAPI, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        replies = await asyncio.gather(
            *(
                client.put(
                    "/v1/program",
                    json=DEMO_LIKE_PROGRAM | {"earn_rate": str(n + 1)},
                    headers=bearer(admin_key),
                )
                for n in range(10)
            )
        )
        assert [r.status_code for r in replies] == [200] * 10, [r.text for r in replies if r.is_error]
        [programme] = await rows(app, "SELECT earn_rate FROM programs")
        # The last one applied wins, and every one applied was announced.
        assert len(await events(app, "program.updated")) == 10
        assert Decimal(str(programme["earn_rate"])) in {Decimal(n + 1) for n in range(10)}
        shown = await client.get("/v1/program", headers=bearer(admin_key))
        assert Decimal(shown.json()["earn_rate"]) == Decimal(str(programme["earn_rate"]))
