"""Settlement statements: what moved between the programme and a partner over a period. Each figure must equal
what our ledger says (entries marked with the partner, by type) and what the partner itself was told in its
answers, so both sides' books agree; another partner's moves never appear; the period is [from, to)."""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from loyalty_api.auth.principal import Scope
from loyalty_api.clock import FrozenClock
from tests.builders import enrol, make_key
from tests.conftest import START, UNLIMITED, bearer
from tests.http.test_negotiation import REPORT_ACCEPTS, varies_with
from tests.ledger_checks import assert_ledger_invariant
from tests.partners.helpers import (
    VALIDATION,
    exchange_in,
    exchange_out,
    instant,
    iso,
    ledger,
    link,
    partner_earn,
    partner_refund,
    problem,
    register_partner,
    resolve,
    run_exchange_expiry,
    value_minor,
)
from tests.points.helpers import DEMO_LIKE_PROGRAM, cny, earn, set_program
from tests.properties.background_app import BackgroundApp

# A point is worth 1.5 fen, so a value rounded on the sum differs from a sum of rounded values.
POINT_VALUE = "1.5"
LINES = ("earned", "refunded", "exchanged_out", "returned", "exchanged_in")
EXCHANGE_LINES = ("exchanged_out", "returned", "exchanged_in")
# The ledger entry type behind each line, and the sign that makes its figure positive.
ENTRY_TYPES = {
    "earned": ("earn", 1),
    "refunded": ("refund", -1),
    "exchanged_out": ("exchange_out", -1),
    "returned": ("exchange_return", 1),
    "exchanged_in": ("exchange_in", 1),
}
ALPHA = {
    "earn_rate": "1.5",
    "exchange_out_rate": "2.5",
    "exchange_in_rate": "0.5",
    "exchange_timeout_seconds": 60,
}
BETA = {
    "earn_rate": "0.8",
    "exchange_out_rate": "1",
    "exchange_in_rate": "3",
    "exchange_timeout_seconds": 120,
}


async def statement(
    client: httpx.AsyncClient, key: str, path: str, start: datetime, end: datetime, **headers: str
) -> httpx.Response:
    params = {"from": iso(start), "to": iso(end)}
    return await client.get(path, params=params, headers=bearer(key) | headers)


async def admin_statement(
    client: httpx.AsyncClient, admin_key: str, code: str, start: datetime, end: datetime
) -> dict[str, Any]:
    response = await statement(client, admin_key, f"/v1/partners/{code}/settlements", start, end)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def figures_from_ledger(entries: list[dict[str, Any]], code: str) -> dict[str, Any]:
    """The statement's point figures, computed from ledger entries marked with the partner."""
    mine = [e for e in entries if e["details"].get("partner") == code]
    net = sum(e["amount"] for e in mine)
    # the net's value: of the summed points, rounded toward zero once (a negative net too)
    found: dict[str, Any] = {"net_points": net, "net_value": cny(value_minor(net, POINT_VALUE))}
    for line, (entry_type, sign) in ENTRY_TYPES.items():
        of_type = [e for e in mine if e["type"] == entry_type]
        points = sign * sum(e["amount"] for e in of_type)
        found[line] = {
            "points": points,
            "value": cny(value_minor(points, POINT_VALUE)),
            "entries": len(of_type),
        }
    return found


def point_figures(found: dict[str, Any]) -> dict[str, Any]:
    """A statement without partner points, to compare with `figures_from_ledger`."""
    return {"net_points": found["net_points"], "net_value": found["net_value"]} | {
        line: {k: found[line][k] for k in ("points", "value", "entries")} for line in LINES
    }


def spec_keys(line: dict[str, Any]) -> dict[str, Any]:
    """A line's figures as the spec lists them: earned and refunded have no partner points, and a
    `"partner_points": null` there says the same as leaving it out."""
    return {k: v for k, v in line.items() if not (k == "partner_points" and v is None)}


class TwoPartners:
    def __init__(self, alpha: str, beta: str, member_id: str) -> None:
        self.alpha, self.beta, self.member_id = alpha, beta, member_id


@pytest.fixture
async def partners(app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str) -> TwoPartners:
    """`alpha` and `beta`, one member linked to both (A-1, B-1) with 1,000 points of their own."""
    await set_program(client, admin_key, point_value_minor=POINT_VALUE)
    alpha = await register_partner(app, client, admin_key, "alpha", **ALPHA)
    beta = await register_partner(app, client, admin_key, "beta", **BETA)
    member_id: str = (await enrol(client, pos_key))["id"]
    await earn(client, pos_key, member_id, 100_000)  # our own till: 1,000 points, no partner's
    await link(client, pos_key, alpha, member_id, "alpha", "A-1", "basic", "points")
    await link(client, pos_key, beta, member_id, "beta", "B-1")
    return TwoPartners(alpha, beta, member_id)


async def ok(response: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


class TestPointValueChanges:
    async def test_a_change_of_the_point_value_leaves_past_statements_as_they_were(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        partners: TwoPartners,
        clock: FrozenClock,
    ) -> None:
        day_one = (START, START + timedelta(days=1))
        # 100 yuan at alpha earns 150 points (225 fen at 1.5 fen a point); 7 sent to alpha are 10.5 fen.
        await ok(await partner_earn(client, partners.alpha, "A-1", "E1", 10_000))
        await ok(await exchange_out(client, pos_key, partners.member_id, "alpha", 7))
        before = await admin_statement(client, admin_key, "alpha", *day_one)
        assert (before["earned"]["value"], before["exchanged_out"]["value"]) == (cny(225), cny(10))
        assert (before["net_points"], before["net_value"]) == (143, cny(214))  # 214.5, rounded down once

        clock.set(START + timedelta(days=2))
        await set_program(client, admin_key, point_value_minor="3")
        after = await admin_statement(client, admin_key, "alpha", *day_one)
        assert {k: after[k] for k in (*LINES, "net_points", "net_value")} == {
            k: before[k] for k in (*LINES, "net_points", "net_value")
        }

        # Points moved since are worth the new value; a period across the change values each entry at the
        # value of its moment, and rounds each figure once: 150 × 1.5 + 1 × 3 = 228 fen earned, and a net
        # of 225 − 10.5 + 3 = 217.5 fen.
        await ok(await partner_earn(client, partners.alpha, "A-1", "E2", 67))  # 0.67 yuan: 1 point
        both = await admin_statement(client, admin_key, "alpha", START, START + timedelta(days=3))
        assert spec_keys(both["earned"]) == {"points": 151, "value": cny(228), "entries": 2}
        assert both["exchanged_out"]["value"] == cny(10)
        assert (both["net_points"], both["net_value"]) == (144, cny(217))
        # Another change with the same value records nothing new, and changes no figure.
        clock.advance(timedelta(days=1))
        await set_program(client, admin_key, point_value_minor="3", earn_rate="2")
        again = await admin_statement(client, admin_key, "alpha", START, START + timedelta(days=3))
        assert {k: again[k] for k in (*LINES, "net_value")} == {k: both[k] for k in (*LINES, "net_value")}

    async def test_points_that_come_back_after_a_change_are_worth_what_they_were_when_they_left(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        partners: TwoPartners,
        clock: FrozenClock,
    ) -> None:
        # At 1.5 fen a point: 150 points earned at alpha (225 fen), 7 sent to alpha (10.5 fen).
        await ok(await partner_earn(client, partners.alpha, "A-1", "E1", 10_000))
        sent = await ok(await exchange_out(client, pos_key, partners.member_id, "alpha", 7))
        clock.advance(timedelta(seconds=20))
        await set_program(client, admin_key, point_value_minor="3")
        # After the change, alpha fails the exchange (within its minute) and refunds the whole purchase: the
        # same points come back, worth what they were worth when they left, so both sides net to nothing.
        clock.advance(timedelta(seconds=20))
        await ok(await resolve(client, partners.alpha, sent["id"], "fail"), 200)
        await ok(await partner_refund(client, partners.alpha, "A-1", "E1", full=True), 200)
        found = await admin_statement(client, admin_key, "alpha", START, START + timedelta(days=1))
        assert {line: found[line]["value"] for line in LINES} == {
            "earned": cny(225),
            "refunded": cny(225),
            "exchanged_out": cny(10),
            "returned": cny(10),
            "exchanged_in": cny(0),
        }
        assert (found["net_points"], found["net_value"]) == (0, cny(0))


async def test_a_purchase_refunded_in_parts_across_a_change_is_worth_what_it_earned(
    client: httpx.AsyncClient, admin_key: str, partners: TwoPartners, clock: FrozenClock
) -> None:
    await ok(await partner_earn(client, partners.alpha, "A-1", "E1", 10_000))  # 150 points, 225 fen
    await ok(await partner_refund(client, partners.alpha, "A-1", "E1", amount=cny(5_000)), 200)  # 75 back
    clock.advance(timedelta(days=1))
    await set_program(client, admin_key, point_value_minor="3")
    clock.advance(timedelta(days=1))
    await ok(await partner_refund(client, partners.alpha, "A-1", "E1", full=True), 200)  # the other 75
    found = await admin_statement(client, admin_key, "alpha", START, clock.now() + timedelta(seconds=1))
    assert (found["earned"]["value"], found["refunded"]["value"]) == (cny(225), cny(225))
    assert (found["refunded"]["points"], found["net_points"], found["net_value"]) == (150, 0, cny(0))


async def test_points_moved_before_the_first_settings_keep_the_defaults_value(
    app: FastAPI, client: httpx.AsyncClient, admin_key: str, pos_key: str, clock: FrozenClock
) -> None:
    # No programme set yet: a point is worth the defaults' 1 fen. 100 yuan at alpha earns 150 points.
    alpha = await register_partner(app, client, admin_key, "alpha", **ALPHA)
    member_id: str = (await enrol(client, pos_key))["id"]
    await link(client, pos_key, alpha, member_id, "alpha", "A-1")
    await ok(await partner_earn(client, alpha, "A-1", "E1", 10_000))
    clock.advance(timedelta(days=1))
    await set_program(client, admin_key, point_value_minor=POINT_VALUE)
    await ok(await partner_earn(client, alpha, "A-1", "E2", 10_000))
    before = await admin_statement(client, admin_key, "alpha", START, START + timedelta(hours=1))
    assert before["earned"]["value"] == cny(150)
    since = await admin_statement(client, admin_key, "alpha", clock.now(), clock.now() + timedelta(hours=1))
    assert since["earned"]["value"] == cny(225)


class TestPeriod:
    async def test_entries_before_from_or_at_and_after_to_are_left_out(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        partners: TwoPartners,
        clock: FrozenClock,
    ) -> None:
        alpha, ref = partners.alpha, "A-1"
        t0, t1, t2 = START, START + timedelta(hours=1), START + timedelta(hours=2)
        await ok(await partner_earn(client, alpha, ref, "E0", 10_000))  # before `from`
        clock.set(t1)  # exactly at `from`: counted
        e1 = await ok(await partner_earn(client, alpha, ref, "E1", 20_000))
        clock.advance(timedelta(minutes=10))
        failed = await ok(await exchange_out(client, pos_key, partners.member_id, "alpha", 100))
        clock.advance(timedelta(seconds=30))  # within alpha's minute to answer
        await ok(await resolve(client, alpha, failed["id"], "fail"), 200)
        confirmed = await ok(await exchange_out(client, pos_key, partners.member_id, "alpha", 40))
        await ok(await resolve(client, alpha, confirmed["id"], "confirm"), 200)
        clock.advance(timedelta(minutes=10))
        came_in = await ok(await exchange_in(client, alpha, ref, "TX-1", 301))
        clock.advance(timedelta(minutes=10))
        refund = await ok(await partner_refund(client, alpha, ref, "E1", amount=cny(5_000)), 200)
        await ok(await partner_earn(client, partners.beta, "B-1", "E1", 10_000))  # the other brand's
        clock.set(t2)  # exactly at `to`: not counted
        await ok(await partner_earn(client, alpha, ref, "E2", 10_000))

        found = await admin_statement(client, admin_key, "alpha", t1, t2)
        assert (found["partner"], found["currency"]) == ("alpha", "CNY")
        earned, taken = e1["points_earned"], refund["points_taken_back"]
        out_points = failed["points"] + confirmed["points"]
        assert (earned, taken, out_points, came_in["points"]) == (300, 75, 140, 150)

        def line(points: int, entries: int, partner_points: int | None = None) -> dict[str, Any]:
            figures = {"points": points, "value": cny(value_minor(points, POINT_VALUE)), "entries": entries}
            return figures if partner_points is None else figures | {"partner_points": partner_points}

        assert {k: spec_keys(found[k]) for k in LINES} | {"net_points": found["net_points"]} == {
            "earned": line(earned, 1),
            "refunded": line(taken, 1),
            "exchanged_out": line(out_points, 2, failed["partner_points"] + confirmed["partner_points"]),
            "returned": line(failed["points"], 1, failed["partner_points"]),
            "exchanged_in": line(came_in["points"], 1, came_in["partner_points"]),
            "net_points": earned - taken - out_points + failed["points"] + came_in["points"],
        }

        # The same instants written in Shanghai time name the same period.
        in_shanghai = {"from": "2026-03-16T19:00:00+08:00", "to": "2026-03-16T20:00:00+08:00"}
        same = await client.get(
            "/v1/partners/alpha/settlements", params=in_shanghai, headers=bearer(admin_key)
        )
        assert same.status_code == 200, same.text
        assert {k: same.json()[k] for k in (*LINES, "net_points")} == {
            k: found[k] for k in (*LINES, "net_points")
        }
        assert (instant(same.json()["from"]), instant(same.json()["to"])) == (t1, t2)

        everything = await admin_statement(client, admin_key, "alpha", t0, t2 + timedelta(seconds=1))
        assert (everything["earned"]["entries"], everything["earned"]["points"]) == (3, 150 + 300 + 150)
        only_the_last = await admin_statement(client, admin_key, "alpha", t2, t2 + timedelta(seconds=1))
        assert (only_the_last["earned"]["entries"], only_the_last["net_points"]) == (1, 150)
        only_the_first = await admin_statement(client, admin_key, "alpha", t0, t1)
        assert (only_the_first["earned"]["entries"], only_the_first["net_points"]) == (1, 150)
        assert only_the_first["exchanged_out"]["entries"] == 0
        before_anything = await admin_statement(client, admin_key, "alpha", t0 - timedelta(days=1), t0)
        assert before_anything["net_points"] == 0
        assert all(before_anything[k]["entries"] == before_anything[k]["points"] == 0 for k in LINES)
        await assert_ledger_invariant(app, partners.member_id)

    async def test_value_is_that_of_the_summed_points_rounded_down_once(
        self, client: httpx.AsyncClient, admin_key: str, partners: TwoPartners
    ) -> None:
        # 0.67 yuan at 1.5 a yuan earns 1 point, worth 1.5 fen: twice is 2 points worth 3 fen (not 1 + 1).
        for order in ("S-1", "S-2"):
            assert (await ok(await partner_earn(client, partners.alpha, "A-1", order, 67)))[
                "points_earned"
            ] == 1
        found = await admin_statement(client, admin_key, "alpha", START, START + timedelta(seconds=1))
        assert spec_keys(found["earned"]) == {"points": 2, "value": cny(3), "entries": 2}
        assert (found["net_points"], found["net_value"]) == (2, cny(3))

    async def test_a_negative_net_is_worth_its_points_rounded_toward_zero(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, partners: TwoPartners
    ) -> None:
        # 2 points earned at beta (3 fen), 7 of the member's own sent to beta (10.5 fen): net -5, -7.5 fen
        await ok(await partner_earn(client, partners.beta, "B-1", "S-1", 250))
        await ok(await exchange_out(client, pos_key, partners.member_id, "beta", 7))
        found = await admin_statement(client, admin_key, "beta", START, START + timedelta(seconds=1))
        assert (found["earned"]["value"], found["exchanged_out"]["value"]) == (cny(3), cny(10))
        assert (found["net_points"], found["net_value"]) == (-5, cny(-7))
        as_csv = await statement(
            client,
            admin_key,
            "/v1/partners/beta/settlements",
            START,
            START + timedelta(seconds=1),
            Accept="text/csv",
        )
        [net] = [row for row in csv.reader(io.StringIO(as_csv.text)) if row[0] == "net"]
        assert net == ["net", "-5", "", "-7", "CNY", ""]

    @pytest.mark.parametrize(
        "params",
        [
            {"from": "2026-03-16T10:00:00Z", "to": "2026-03-16T10:00:00Z"},  # empty
            {"from": "2026-03-17T10:00:00Z", "to": "2026-03-16T10:00:00Z"},  # backwards
            {"from": "2026-03-16T10:00:00", "to": "2026-03-17T10:00:00Z"},  # naive
            {"from": "2026-03-16T10:00:00Z", "to": "2026-03-17T10:00:00"},
            {"to": "2026-03-17T10:00:00Z"},
            {"from": "2026-03-16T10:00:00Z"},
            {},
            {"from": "last monday", "to": "2026-03-17T10:00:00Z"},
            {"from": "0001-01-01T00:00:00+14:00", "to": "2026-03-17T10:00:00Z"},  # no UTC equivalent
            {"from": "2025-03-16T10:00:00Z", "to": "2026-03-18T10:00:00Z"},  # 367 days
            # Past 366 days by less than a day: as long as the 367 days above, less a microsecond.
            {"from": "2025-03-16T10:00:00Z", "to": "2026-03-18T09:59:59.999999Z"},
            {"from": "2025-03-16T10:00:00Z", "to": "2026-03-17T10:00:00.000001Z"},
        ],
    )
    @pytest.mark.parametrize("route", ["admin", "partner"])
    async def test_a_period_without_two_zoned_instants_in_order_is_refused(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        partners: TwoPartners,
        params: dict[str, str],
        route: str,
    ) -> None:
        key, path = (
            (admin_key, "/v1/partners/alpha/settlements")
            if route == "admin"
            else (partners.alpha, "/v1/partner/settlements")
        )
        refused = await client.get(path, params=params, headers=bearer(key))
        assert problem(refused) == (422, VALIDATION), refused.text

    @pytest.mark.parametrize("route", ["admin", "partner"])
    async def test_a_period_of_366_days_is_read(
        self, client: httpx.AsyncClient, admin_key: str, partners: TwoPartners, route: str
    ) -> None:
        # A leap year in the programme's time zone: the longest period a statement covers.
        key, path = (
            (admin_key, "/v1/partners/alpha/settlements")
            if route == "admin"
            else (partners.alpha, "/v1/partner/settlements")
        )
        params = {"from": "2028-01-01T00:00:00+08:00", "to": "2029-01-01T00:00:00+08:00"}
        read = await client.get(path, params=params, headers=bearer(key))
        assert read.status_code == 200, read.text


class TestRoutes:
    async def test_the_partners_own_statement_is_the_operators_in_json_and_in_csv(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        partners: TwoPartners,
        clock: FrozenClock,
    ) -> None:
        await ok(await partner_earn(client, partners.alpha, "A-1", "O-1", 30_000))
        await ok(await partner_refund(client, partners.alpha, "A-1", "O-1", amount=cny(10_000)), 200)
        out = await ok(await exchange_out(client, pos_key, partners.member_id, "alpha", 333))
        forgotten = await ok(await exchange_out(client, pos_key, partners.member_id, "alpha", 77))
        await ok(await resolve(client, partners.alpha, out["id"], "confirm"), 200)
        await ok(await exchange_in(client, partners.alpha, "A-1", "TX-9", 999))
        await ok(await partner_earn(client, partners.beta, "B-1", "O-1", 12_345))
        await ok(await exchange_in(client, partners.beta, "B-1", "TX-9", 10))
        clock.advance(timedelta(seconds=61))
        assert await run_exchange_expiry(app) == 1
        assert forgotten["points"] == 77
        start, end = START, clock.now() + timedelta(seconds=1)

        for code, key in (("alpha", partners.alpha), ("beta", partners.beta)):
            operators = await admin_statement(client, admin_key, code, start, end)
            own = await statement(client, key, "/v1/partner/settlements", start, end)
            assert own.status_code == 200, own.text
            assert own.json() == operators
            assert operators["partner"] == code

            as_csv = await statement(client, key, "/v1/partner/settlements", start, end, Accept="text/csv")
            assert as_csv.status_code == 200, as_csv.text
            assert as_csv.headers["content-type"].startswith("text/csv")
            header, *rows = list(csv.reader(io.StringIO(as_csv.text)))
            assert header == ["line", "points", "partner_points", "value_minor", "currency", "entries"]
            counts = ["perks_granted", "perks_redeemed", "benefit_uses"]
            assert [row[0] for row in rows] == [*LINES, "net", *counts]
            *lines, net = rows[: -len(counts)]
            # the counts stand as their entries
            assert [int(row[5]) for row in rows[-len(counts) :]] == [operators[name] for name in counts]
            for name, points, partner_points, value, currency, entries in lines:
                figures = operators[name]
                assert (int(points), int(value), currency, int(entries)) == (
                    figures["points"],
                    figures["value"]["amount"],
                    figures["value"]["currency"],
                    figures["entries"],
                ), name
                assert partner_points == (str(figures["partner_points"]) if name in EXCHANGE_LINES else "")
            assert (int(net[1]), net[2], int(net[3]), net[4]) == (
                operators["net_points"],
                "",
                operators["net_value"]["amount"],
                operators["net_value"]["currency"],
            )
            operators_csv = await statement(
                client, admin_key, f"/v1/partners/{code}/settlements", start, end, Accept="text/csv"
            )
            assert operators_csv.text == as_csv.text

        # Beta's statement holds beta's one earn and one transfer in, nothing of alpha's.
        beta = await admin_statement(client, admin_key, "beta", start, end)
        assert [beta[k]["entries"] for k in LINES] == [1, 0, 0, 0, 1]

    @pytest.mark.parametrize(
        ("accept", "media_type"),
        REPORT_ACCEPTS,
    )
    async def test_csv_only_when_accept_prefers_it_to_json(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        partners: TwoPartners,
        accept: str | None,
        media_type: str,
    ) -> None:
        end = START + timedelta(days=1)
        headers = {} if accept is None else {"Accept": accept}
        for key, path in (
            (admin_key, "/v1/partners/alpha/settlements"),
            (partners.alpha, "/v1/partner/settlements"),
        ):
            answer = await statement(client, key, path, START, end, **headers)
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-type"].partition(";")[0] == media_type, (path, accept)
            # A cache between the caller and us must not hand this answer to a caller that asked otherwise.
            assert "accept" in varies_with(answer), (path, accept)

    async def test_a_suspended_partner_still_reads_its_statement_to_settle_up(
        self, client: httpx.AsyncClient, admin_key: str, partners: TwoPartners, clock: FrozenClock
    ) -> None:
        await ok(await partner_earn(client, partners.alpha, "A-1", "O-1", 30_000))
        suspended = await client.put(
            "/v1/partners/alpha",
            json={"name": "Alpha", "status": "suspended", **ALPHA},
            headers=bearer(admin_key),
        )
        assert suspended.status_code == 200, suspended.text
        end = clock.now() + timedelta(seconds=1)

        own = await statement(client, partners.alpha, "/v1/partner/settlements", START, end)

        assert own.status_code == 200, own.text
        assert own.json() == await admin_statement(client, admin_key, "alpha", START, end)
        assert own.json()["earned"]["points"] == 450
        refused = await partner_earn(client, partners.alpha, "A-1", "O-2", 30_000)  # it still reaches no one
        assert problem(refused) == (409, "partner_not_active"), refused.text

    async def test_each_route_answers_its_own_callers_only(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str, partners: TwoPartners
    ) -> None:
        end = START + timedelta(days=1)
        unknown = await statement(client, admin_key, "/v1/partners/nobody/settlements", START, end)
        assert problem(unknown) == (404, "partner_not_found"), unknown.text
        for key, path in (
            (partners.alpha, "/v1/partners/alpha/settlements"),
            (pos_key, "/v1/partners/alpha/settlements"),
            (admin_key, "/v1/partner/settlements"),
        ):
            refused = await statement(client, key, path, START, end)
            assert problem(refused) == (403, "scope_not_allowed"), (path, refused.text)


# --- The property: random partner activity, then every statement agrees with the ledger and the partner ---


@dataclass(frozen=True)
class Step:
    kind: str  # earn | refund | out | in | wait
    partner: int = 0
    member: int = 0
    number: int = 0  # yuan fen, share of the rest in percent, points, partner points or seconds
    choice: str = ""  # out: confirm | fail | leave (to expire); refund: part | full


MEMBERS = 3
_partner = st.integers(0, 1)
_member = st.integers(0, MEMBERS - 1)
STEPS = st.one_of(
    st.builds(Step, st.just("earn"), _partner, _member, st.integers(1, 60_000)),
    st.builds(
        Step, st.just("refund"), _partner, _member, st.integers(1, 100), st.sampled_from(["part", "full"])
    ),
    st.builds(
        Step,
        st.just("out"),
        _partner,
        _member,
        st.integers(1, 600),
        st.sampled_from(["confirm", "fail", "leave"]),
    ),
    st.builds(Step, st.just("in"), _partner, _member, st.integers(2, 3_000)),
    st.builds(Step, st.just("wait"), number=st.integers(1, 150)),
)


@dataclass
class Order:
    partner: int
    member: int
    ref: str
    amount: int
    points: int
    refunded: int = 0
    accounted: int = 0  # points taken back or reported short so far


@dataclass
class Told:
    """What one partner's own answers told it."""

    earned: int = 0
    earns: int = 0
    taken_back: int = 0
    shortfall: int = 0  # what refunds could not take back: settled later as points come back, untold
    exchanged_in: int = 0
    partner_points_in: int = 0
    exchanges_in: int = 0
    out_ids: list[str] = field(default_factory=list)


_examples = itertools.count()


def test_statements_agree_with_the_ledger_and_with_what_each_partner_was_told(tmp_path: Path) -> None:
    with BackgroundApp(tmp_path) as background:
        client, clock = background.client, background.clock
        admin_key = background.call(make_key(background.app, Scope.admin, rate_limit=UNLIMITED))
        program = DEMO_LIKE_PROGRAM | {"point_value_minor": POINT_VALUE}
        response = background.call(client.put("/v1/program", json=program, headers=bearer(admin_key)))
        assert response.status_code == 200, response.text

        async def play(steps: list[Step]) -> None:
            # Every example starts at the same moment, so a replayed one sees the same times; its partners and
            # members are its own, so earlier examples' entries (at those times) are another partner's.
            clock.set(START)
            n = next(_examples)
            codes = [f"alpha-{n}", f"beta-{n}"]
            keys = [
                await register_partner(background.app, client, admin_key, codes[0], **ALPHA),
                await register_partner(background.app, client, admin_key, codes[1], **BETA),
            ]
            members: list[str] = []
            for i in range(MEMBERS):
                member_id: str = (await enrol(client, admin_key))["id"]
                await earn(client, admin_key, member_id, 20_000)  # 200 points of our own, no partner's
                for p in (0, 1):
                    # With `points`: a refund tells the partner how its points fell (taken back, spent
                    # already) only if the member lets it see their points, and the books compared here are
                    # those answers.
                    customer = f"{codes[p]}-m{i}"
                    await link(client, admin_key, keys[p], member_id, codes[p], customer, "basic", "points")
                members.append(member_id)
            orders: list[Order] = []
            told = [Told(), Told()]
            refs = itertools.count()

            for step in steps:
                clock.advance(timedelta(seconds=1))
                p, ref = step.partner, f"{codes[step.partner]}-m{step.member}"
                if step.kind == "earn":
                    order = f"O-{next(refs)}"
                    body = await ok(await partner_earn(client, keys[p], ref, order, step.number))
                    orders.append(Order(p, step.member, order, step.number, body["points_earned"]))
                    told[p].earned += body["points_earned"]
                    told[p].earns += 1
                elif step.kind == "refund":
                    open_orders = [o for o in orders if o.partner == p and o.refunded < o.amount]
                    if not open_orders:
                        continue
                    o = open_orders[step.member % len(open_orders)]
                    rest = o.amount - o.refunded
                    by = (
                        {"full": True}
                        if step.choice == "full"
                        else {"amount": cny(max(1, rest * step.number // 100))}
                    )
                    customer = f"{codes[o.partner]}-m{o.member}"
                    body = await ok(await partner_refund(client, keys[p], customer, o.ref, **by), 200)
                    o.refunded += body["refunded"]["amount"]
                    assert o.refunded <= o.amount and (step.choice != "full" or o.refunded == o.amount)
                    # In proportion to the refunded share of the order, on the running total, rounded down.
                    due = o.points * o.refunded // o.amount - o.accounted
                    assert body["points_taken_back"] + body["shortfall"] == body["points_reversed"] == due, (
                        body,
                        o,
                    )
                    o.accounted += due
                    told[p].taken_back += body["points_taken_back"]
                    told[p].shortfall += body["shortfall"]
                elif step.kind == "out":
                    summary = await client.get(
                        f"/v1/members/{members[step.member]}/points", headers=bearer(admin_key)
                    )
                    points = min(step.number, summary.json()["available"])
                    if points == 0:
                        continue
                    made = await ok(
                        await exchange_out(client, admin_key, members[step.member], codes[p], points)
                    )
                    told[p].out_ids.append(made["id"])
                    if step.choice != "leave":
                        await ok(await resolve(client, keys[p], made["id"], step.choice), 200)
                elif step.kind == "in":
                    body = await ok(await exchange_in(client, keys[p], ref, f"T-{next(refs)}", step.number))
                    told[p].exchanged_in += body["points"]
                    told[p].partner_points_in += body["partner_points"]
                    told[p].exchanges_in += 1
                else:
                    clock.advance(timedelta(seconds=step.number))
                    await run_exchange_expiry(background.app)

            clock.advance(timedelta(seconds=121))  # past both partners' timeouts: nothing is left pending
            await run_exchange_expiry(background.app)
            end = clock.now() + timedelta(seconds=1)
            entries = [e for m in members for e in await ledger(client, admin_key, m)]
            for m in members:
                await assert_ledger_invariant(background.app, m)

            for p, code in enumerate(codes):
                found = await admin_statement(client, admin_key, code, START, end)
                # Our books: the statement is the ledger's entries marked with this partner, by type.
                assert point_figures(found) == figures_from_ledger(entries, code), (found, steps)
                # The partner's books: every figure is the sum of what its own answers said.
                seen = [
                    await ok(await client.get(f"/v1/partner/exchanges/{i}", headers=bearer(keys[p])), 200)
                    for i in told[p].out_ids
                ]
                assert {e["status"] for e in seen} <= {"confirmed", "failed", "expired"}
                back = [e for e in seen if e["status"] != "confirmed"]
                assert (found["earned"]["points"], found["earned"]["entries"]) == (
                    told[p].earned,
                    told[p].earns,
                )
                # A refund's shortfall is settled when points come back to the member (a failed exchange with
                # the other partner, a refund of what they paid): the settlement is on the statement, as the
                # ledger says (above), and no answer to this partner told of it.
                assert (
                    told[p].taken_back
                    <= found["refunded"]["points"]
                    <= told[p].taken_back + told[p].shortfall
                )
                assert (found["exchanged_out"]["points"], found["exchanged_out"]["partner_points"]) == (
                    sum(e["points"] for e in seen),
                    sum(e["partner_points"] for e in seen),
                )
                assert found["exchanged_out"]["entries"] == len(seen)
                assert (found["returned"]["points"], found["returned"]["partner_points"]) == (
                    sum(e["points"] for e in back),
                    sum(e["partner_points"] for e in back),
                )
                assert found["returned"]["entries"] == len(back)
                assert (
                    found["exchanged_in"]["points"],
                    found["exchanged_in"]["partner_points"],
                    found["exchanged_in"]["entries"],
                ) == (told[p].exchanged_in, told[p].partner_points_in, told[p].exchanges_in)

        # Each example registers partners and members of its own and makes some fifty requests: fifteen
        # examples keep the test to seconds, like the ledger machine.
        @settings(
            max_examples=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(steps=st.lists(STEPS, min_size=1, max_size=14))
        # Found by Hypothesis in CI: a member sends all their points to one partner, the other refunds a
        # purchase they earned there (a shortfall), the first lets the exchange time out: the points that
        # come back settle the shortfall, an entry on the refunding partner's statement.
        @example(
            steps=[
                Step("earn", partner=1, member=2, number=216),
                Step("out", partner=0, member=2, number=236, choice="leave"),
                Step("refund", partner=1, member=0, number=49, choice="full"),
            ]
        )
        def scenario(steps: list[Step]) -> None:
            background.call(play(steps))

        scenario()


class TestSettledShortfalls:
    async def test_a_partner_orders_shortfall_settled_by_our_refund_is_on_its_statement(
        self,
        client: httpx.AsyncClient,
        admin_key: str,
        pos_key: str,
        partners: TwoPartners,
        clock: FrozenClock,
    ) -> None:
        """Points earned at alpha are spent at our till; alpha's refund cannot take them back (a shortfall),
        then our till's refund gives them back: they settle alpha's shortfall, and alpha's statement shows
        them taken back, marked with alpha as its own refund's entry is."""
        alpha, member_id = partners.alpha, partners.member_id
        start = clock.now()
        earned = (await ok(await partner_earn(client, alpha, "A-1", "E1", 20_000)))["points_earned"]
        balance = (
            await ok(await client.get(f"/v1/members/{member_id}/points", headers=bearer(pos_key)), 200)
        )["balance"]
        spent = await client.post(
            f"/v1/members/{member_id}/redeem",
            json={"points": balance, "order_ref": "SPENT"},
            headers=bearer(pos_key),
        )
        assert spent.status_code == 200, spent.text
        refund = await ok(await partner_refund(client, alpha, "A-1", "E1", full=True), 200)
        assert (refund["points_taken_back"], refund["shortfall"]) == (0, earned)
        ours = await client.post("/v1/orders/SPENT/refund", json={"full": True}, headers=bearer(pos_key))
        assert ours.status_code == 200, ours.text
        assert ours.json()["shortfall_settled"] == earned
        assert ours.json()["balance"] == balance - earned

        end = clock.now() + timedelta(seconds=1)
        found = await admin_statement(client, admin_key, "alpha", start, end)
        assert found["refunded"]["points"] == earned
        assert found["net_points"] == 0
        entries = await ledger(client, admin_key, member_id)
        assert point_figures(found) == figures_from_ledger(entries, "alpha")
