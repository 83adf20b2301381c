"""The programme's figures: every one must equal what the ledger says, added up by hand here, for random
scenarios of every points operation over days (with expiry), by period, channel and store, as JSON and CSV."""

from __future__ import annotations

import csv
import io
import itertools
import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from loyalty_api.app import create_app
from loyalty_api.auth.principal import Scope
from loyalty_api.clock import FrozenClock
from loyalty_api.points.expiry import expire_points
from loyalty_api.points.models import LedgerEntry
from loyalty_api.settings import Settings
from tests.builders import add_tier, enrol, make_key
from tests.conftest import START, UNLIMITED, bearer, units_of
from tests.http.test_negotiation import REPORT_ACCEPTS, varies_with
from tests.ledger_checks import assert_ledger_invariant
from tests.partners.helpers import iso, ledger, link, register_partner
from tests.points.helpers import cny, earn, next_order, points, set_program

SHANGHAI = ZoneInfo("Asia/Shanghai")
ISSUED, SPENT = ("earn", "exchange_in"), ("redeem", "capture", "reward", "exchange_out")


def figures_of(entries: list[dict[str, Any]]) -> dict[str, int]:
    """The report's figures for these ledger entries, added up here as the report defines them."""
    names = ("issued", "taken_back", "redeemed", "given_back", "expired", "adjusted", "transferred")
    found = dict.fromkeys(names, 0)
    for e in entries:
        if e["type"] in ISSUED:
            found["issued"] += e["amount"]
        elif e["type"] in SPENT:
            found["redeemed"] -= e["amount"]
        elif e["type"] == "refund":
            found["taken_back"] += e["details"]["taken_back"]
            found["given_back"] += e["details"]["given_back"]
        elif e["type"] == "exchange_return":
            found["given_back"] += e["amount"]
        elif e["type"] == "expire":
            found["expired"] -= e["amount"]
        elif e["type"] == "adjust":
            found["adjusted"] += e["amount"]
        elif e["type"] == "transfer_in":
            found["transferred"] += e["amount"]
    found["net"] = sum(e["amount"] for e in entries)
    return found


def figures(row: dict[str, Any]) -> dict[str, int]:
    keys = ("issued", "taken_back", "redeemed", "given_back", "expired", "adjusted", "transferred", "net")
    return {k: int(row[k]) for k in keys}


def local_days(start: datetime, end: datetime) -> list[datetime]:
    """[start, each local midnight in Shanghai after it, end]."""
    cuts = [start]
    day = start.astimezone(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    while day < end:
        cuts.append(day.astimezone(start.tzinfo))
        day += timedelta(days=1)
    return [*cuts, end]


class Scenario:
    """Random earns (at stores and online), redeems, holds captured or released, refunds, adjustments,
    transfers between the members over nine days, then expiry four months on. Every entry the members'
    ledgers hold is read back."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, key: str) -> None:
        self.app, self.client, self.clock, self.key = app, client, clock, key
        self.members: list[str] = []
        self.earned: list[str] = []
        self.redeemed: list[str] = []

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(path, json=body, headers=bearer(self.key))

    async def step(self, rng: random.Random) -> None:
        member = rng.choice(self.members)
        available = (await points(self.client, self.key, member))["available"]
        op = rng.choice(["earn", "earn", "earn", "redeem", "hold", "refund", "adjust", "transfer"])
        if op == "earn":
            ref = next_order()
            where = rng.choice(
                [{"channel": "store", "store_id": rng.choice(["SH-01", "BJ-02"])}, {"channel": "online"}, {}]
            )
            await earn(self.client, self.key, member, rng.randrange(100, 50_000), order_ref=ref, **where)
            self.earned.append(ref)
        elif op == "redeem" and available >= 10:
            ref = next_order()
            body = {"points": rng.randrange(1, available // 2 + 1), "order_ref": ref}
            assert (await self.post(f"/v1/members/{member}/redeem", body)).status_code == 200
            self.redeemed.append(ref)
        elif op == "hold" and available >= 10:
            body = {"points": available // 3, "order_ref": next_order(), "ttl_seconds": 600}
            hold = await self.post(f"/v1/members/{member}/holds", body)
            assert hold.status_code == 201, hold.text
            action = rng.choice(["capture", "release"])
            extra = {"points": hold.json()["points"] // 2} if action == "capture" else {}
            answer = await self.post(f"/v1/holds/{hold.json()['id']}/{action}", extra)
            assert answer.status_code == 200, answer.text
        elif op == "refund" and (self.earned or self.redeemed):
            ref = rng.choice(self.earned + self.redeemed)
            answer = await self.post(f"/v1/orders/{ref}/refund", {"full": True})
            assert answer.status_code in (200, 409, 422), answer.text
        elif op == "adjust":
            change = rng.choice([1, -1]) * rng.randrange(1, 500)
            if change < 0 and -change > available:
                change = -change
            body = {"points": change, "reason": "goodwill"}
            assert (await self.post(f"/v1/members/{member}/adjustments", body)).status_code == 201
        elif op == "transfer" and available >= 2:
            to = rng.choice([m for m in self.members if m != member])
            body = {"to_member_id": to, "points": rng.randrange(1, available // 2 + 1)}
            sent = await self.post(f"/v1/members/{member}/transfers", body)
            assert sent.status_code == 201, sent.text
        self.clock.set(self.clock.now() + timedelta(minutes=rng.randrange(30, 600)))

    async def run(self, seed: int) -> list[dict[str, Any]]:
        rng = random.Random(seed)
        self.members = [(await enrol(self.client, self.key))["id"] for _ in range(4)]
        for _ in range(40):
            await self.step(rng)
        self.clock.set(self.clock.now() + timedelta(days=130))
        assert (await expire_points(units_of(self.app))).points > 0
        for member in self.members:
            await assert_ledger_invariant(self.app, member)
        return [
            e | {"at": datetime.fromisoformat(e["created_at"])}
            for member in self.members
            for e in await ledger(self.client, self.key, member)
        ]


@pytest.fixture
async def key(app: FastAPI, client: httpx.AsyncClient, admin_key: str, clock: FrozenClock) -> str:
    # A point is worth 1.5 fen: the liability is rounded once, on the whole.
    await set_program(client, admin_key, point_value_minor="1.5", expiry_months=3, transfers_enabled=True)
    return await make_key(app, Scope.admin, rate_limit=UNLIMITED)


async def report(client: httpx.AsyncClient, key: str, path: str, **params: Any) -> httpx.Response:
    return await client.get(f"/v1/analytics/{path}", params=params, headers=bearer(key))


class TestPointsFigures:
    @pytest.mark.parametrize("seed", [1, 2, 3])
    async def test_each_period_and_group_adds_up_the_ledger(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, key: str, seed: int
    ) -> None:
        scenario = Scenario(app, client, clock, key)
        entries = await scenario.run(seed)
        start, end = START - timedelta(hours=3), clock.now() + timedelta(hours=1)
        # By day: every day of the window is a row, whether or not anything happened.
        answer = await report(
            client, key, "points", **{"from": iso(start), "to": iso(end), "period": "day"}, limit=200
        )
        assert answer.status_code == 200, answer.text
        rows = answer.json()["items"]
        cuts = local_days(start, end)
        assert [(r["start"], r["end"]) for r in rows] == [
            (iso(a), iso(b)) for a, b in itertools.pairwise(cuts)
        ]
        for row, (a, b) in zip(rows, itertools.pairwise(cuts), strict=True):
            assert figures(row) == figures_of([e for e in entries if a <= e["at"] < b]), row
        # The whole window, by channel and by store: each group's own entries; entries naming none, null.
        for group_by, detail in (("channel", "channel"), ("store", "store_id")):
            answer = await report(
                client, key, "points", **{"from": iso(start), "to": iso(end), "group_by": group_by}
            )
            grouped = {r["group"]: figures(r) for r in answer.json()["items"]}
            names = {e["details"].get(detail) for e in entries}
            assert grouped == {
                name: figures_of([e for e in entries if e["details"].get(detail) == name]) for name in names
            }
        # The totals move what members hold, and no more.
        total = figures_of(entries)
        assert total["net"] == sum(
            [(await points(client, key, member))["balance"] for member in scenario.members]
        )
        assert total["expired"] > 0 and total["issued"] > 0

    async def test_json_comes_a_page_at_a_time_and_the_pages_hold_every_row(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, key: str
    ) -> None:
        await Scenario(app, client, clock, key).run(5)
        window = {"from": iso(START - timedelta(days=1)), "to": iso(clock.now() + timedelta(days=1))}
        params = window | {"period": "day", "group_by": "channel"}
        whole = await client.get(
            "/v1/analytics/points", params=params, headers=bearer(key, Accept="text/csv")
        )
        expected = [(r["start"], r["channel"] or None) for r in csv.DictReader(io.StringIO(whole.text))]
        walked: list[tuple[str, str | None]] = []
        cursor: str | None = None
        while True:
            page = await report(
                client, key, "points", **params, limit=3, **({"cursor": cursor} if cursor else {})
            )
            assert page.status_code == 200, page.text
            assert len(page.json()["items"]) <= 3
            walked += [(r["start"], r["group"]) for r in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert walked == expected and len(walked) > 3

    async def test_a_window_counts_from_its_first_instant_to_before_its_last(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, key: str
    ) -> None:
        member = (await enrol(client, key))["id"]
        at = clock.now()
        await earn(client, key, member, 10_000)
        for start, end, issued in (
            (at, at + timedelta(seconds=1), 100),
            (at + timedelta(microseconds=1), at + timedelta(days=1), 0),
            (at - timedelta(days=1), at, 0),
        ):
            answer = await report(client, key, "points", **{"from": iso(start), "to": iso(end)})
            assert [r["issued"] for r in answer.json()["items"]] == [issued]

    async def test_csv_holds_the_same_rows(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, key: str
    ) -> None:
        entries = await Scenario(app, client, clock, key).run(7)
        params = {
            "from": iso(START - timedelta(days=1)),
            "to": iso(clock.now() + timedelta(days=1)),
            "period": "week",
            "group_by": "store",
        }
        as_json = (await report(client, key, "points", **params)).json()["items"]
        answer = await client.get(
            "/v1/analytics/points", params=params, headers=bearer(key, Accept="text/csv")
        )
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        as_csv = list(csv.DictReader(io.StringIO(answer.text)))
        assert [figures(r) | {"store": r["store"] or None} for r in as_csv] == [
            figures(r) | {"store": r["group"]} for r in as_json
        ]
        assert sum(int(r["net"]) for r in as_csv) == figures_of(entries)["net"]


class TestNegotiation:
    @pytest.mark.parametrize(
        ("accept", "media_type"),
        REPORT_ACCEPTS,
    )
    async def test_csv_only_when_accept_prefers_it_to_json(
        self, client: httpx.AsyncClient, key: str, accept: str | None, media_type: str
    ) -> None:
        window = {"from": iso(START), "to": iso(START + timedelta(days=1))}
        headers = bearer(key) | ({} if accept is None else {"Accept": accept})
        for path in ("/v1/analytics/points", "/v1/analytics/overview"):
            answer = await client.get(path, params=window, headers=headers)
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-type"].partition(";")[0] == media_type, (path, accept)
            # A cache between the caller and us must not hand this answer to a caller that asked otherwise.
            assert "accept" in varies_with(answer), (path, accept)


class TestOverview:
    async def test_a_past_windows_liability_is_at_the_point_value_of_its_end(
        self, client: httpx.AsyncClient, clock: FrozenClock, admin_key: str, key: str
    ) -> None:
        member = (await enrol(client, key))["id"]
        await earn(client, key, member, 100_001)  # 1,000 points, worth 1,500 fen at 1.5 fen a point
        window = {"from": iso(START), "to": iso(START + timedelta(days=1))}
        before = (await report(client, key, "overview", **window)).json()
        assert (before["outstanding_points"], before["liability"]) == (1_000, cny(1_500))

        clock.set(START + timedelta(days=2))
        await set_program(client, admin_key, point_value_minor="3", expiry_months=3)
        after = (await report(client, key, "overview", **window)).json()
        assert (after["outstanding_points"], after["liability"]) == (1_000, cny(1_500))
        now = {"from": iso(START), "to": iso(clock.now() + timedelta(seconds=1))}
        current = (await report(client, key, "overview", **now)).json()
        assert (current["outstanding_points"], current["liability"]) == (1_000, cny(3_000))

    async def test_liability_breakage_and_members_follow_the_ledger(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, key: str
    ) -> None:
        scenario = Scenario(app, client, clock, key)
        entries = await scenario.run(11)
        start, end = START - timedelta(hours=1), clock.now() + timedelta(seconds=1)
        answer = await report(client, key, "overview", **{"from": iso(start), "to": iso(end)})
        assert answer.status_code == 200, answer.text
        found = answer.json()
        total = figures_of(entries)
        assert figures(found["points"]) == total
        held = sum([(await points(client, key, member))["balance"] for member in scenario.members])
        assert found["outstanding_points"] == held == total["net"]
        # 1.5 fen a point, rounded down once on the whole
        assert found["liability"] == cny(int(Decimal(held) * Decimal("1.5")))
        assert Decimal(found["breakage"]) == (Decimal(total["expired"]) / total["issued"]).quantize(
            Decimal("0.0001")
        )
        assert Decimal(found["redemption_rate"]) == (Decimal(total["redeemed"]) / total["issued"]).quantize(
            Decimal("0.0001")
        )
        assert (found["members"], found["new_members"]) == (4, 4)
        assert sum(t["members"] for t in found["members_by_tier"]) == 4
        # Before anything happened: nothing issued, no rate, nothing owed.
        early = await report(
            client, key, "overview", **{"from": iso(start - timedelta(days=2)), "to": iso(start)}
        )
        assert early.json()["breakage"] is None and early.json()["outstanding_points"] == 0
        # As CSV: one row per figure, the same figures.
        answer = await client.get(
            "/v1/analytics/overview",
            params={"from": iso(start), "to": iso(end)},
            headers=bearer(key, Accept="text/csv"),
        )
        rows = dict(csv.reader(io.StringIO(answer.text)))
        assert (rows["issued"], rows["outstanding_points"], rows["breakage"]) == (
            str(total["issued"]),
            str(held),
            found["breakage"],
        )


class TestRefusals:
    @pytest.mark.parametrize("scope", [Scope.pos, Scope.ecommerce, Scope.billing])
    async def test_only_operators_read_the_figures(
        self, app: FastAPI, client: httpx.AsyncClient, scope: Scope
    ) -> None:
        other = await make_key(app, scope)
        params = {"from": iso(START), "to": iso(START + timedelta(days=1))}
        for path in ("points", "overview"):
            assert (await report(client, other, path, **params)).status_code == 403

    @pytest.mark.parametrize(
        "params",
        [
            {"from": iso(START), "to": iso(START)},
            {"from": iso(START), "to": iso(START - timedelta(days=1))},
            {"from": iso(START), "to": iso(START + timedelta(days=500)), "period": "day"},
            {"from": iso(START), "to": iso(START + timedelta(days=1)), "period": "year"},
            {"from": iso(START), "to": iso(START + timedelta(days=1)), "group_by": "colour"},
            {"from": "yesterday", "to": iso(START)},
        ],
    )
    async def test_a_bad_window_is_a_422_problem(
        self, client: httpx.AsyncClient, key: str, params: dict[str, str]
    ) -> None:
        answer = await report(client, key, "points", **params)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["code"] == "validation_error"


class TestACursorPagesOnlyItsOwnReport:
    """A report's cursor is the start of the last row shown: given with another window (or another cut), it
    was read as a place in that report, whose page then started there, the rows before it left out without a
    word. It is refused, as another list's cursor is."""

    MARCH: ClassVar[dict[str, str]] = {
        "from": "2026-03-01T00:00:00+08:00",
        "to": "2026-03-11T00:00:00+08:00",
        "period": "day",
    }

    async def test_another_windows_cursor_is_a_422(self, client: httpx.AsyncClient, key: str) -> None:
        first = await report(client, key, "points", **self.MARCH, limit=3)
        cursor = first.json()["next_cursor"]
        own = await report(client, key, "points", **self.MARCH, limit=3, cursor=cursor)
        assert own.status_code == 200, own.text
        assert own.json()["items"][0]["start"] == "2026-03-03T16:00:00Z"
        # The same window written in another zone is the same report.
        same = {**self.MARCH, "from": "2026-02-28T16:00:00Z", "to": "2026-03-10T16:00:00Z"}
        assert (await report(client, key, "points", **same, limit=3, cursor=cursor)).json() == own.json()
        for other in (
            {**self.MARCH, "from": "2026-02-20T00:00:00+08:00"},  # its page started on 4 March
            {**self.MARCH, "to": "2026-03-21T00:00:00+08:00"},
            {**self.MARCH, "period": "week"},
            {**self.MARCH, "group_by": "channel"},
        ):
            answer = await report(client, key, "points", **other, limit=3, cursor=cursor)
            assert answer.status_code == 422, (other, answer.text)
            assert answer.json()["code"] == "validation_error"
            assert [e["field"] for e in answer.json()["errors"]] == ["cursor"]


class TestEdges:
    async def test_negative_figures_stay_numbers_in_csv(
        self, client: httpx.AsyncClient, clock: FrozenClock, key: str
    ) -> None:
        member = (await enrol(client, key))["id"]
        await earn(client, key, member, 10_000)
        start = clock.now()
        clock.set(start + timedelta(minutes=1))
        body = {"points": -40, "reason": "correction"}
        assert (
            await client.post(f"/v1/members/{member}/adjustments", json=body, headers=bearer(key))
        ).status_code == 201
        window = {"from": iso(start + timedelta(seconds=1)), "to": iso(clock.now() + timedelta(seconds=1))}
        answer = await client.get(
            "/v1/analytics/overview", params=window, headers=bearer(key, Accept="text/csv")
        )
        figures = dict(csv.reader(io.StringIO(answer.text)))
        assert (figures["adjusted"], figures["net"]) == ("-40", "-40")

    async def test_members_without_a_tier_have_a_row_no_tier_code_can_name(
        self, client: httpx.AsyncClient, clock: FrozenClock, key: str
    ) -> None:
        # Enrolled before the ladder had a tier (the worker has not placed them), beside a tier coded none.
        await enrol(client, key)
        await add_tier(client, key, "none", rank=0)
        await enrol(client, key)
        window = {"from": iso(START), "to": iso(clock.now() + timedelta(seconds=1))}
        answer = await client.get(
            "/v1/analytics/overview", params=window, headers=bearer(key, Accept="text/csv")
        )
        rows = list(csv.reader(io.StringIO(answer.text)))
        names = [name for name, _ in rows]
        assert len(names) == len(set(names)), names
        figures = dict(rows)
        assert (figures["members_tier_none"], figures["members_without_tier"]) == ("1", "1")

    async def test_a_long_store_name_pages_like_any_other(
        self, client: httpx.AsyncClient, clock: FrozenClock, key: str
    ) -> None:
        member = (await enrol(client, key))["id"]
        start = clock.now()
        stores = ["𝄞" * 64, "A" * 64, "店"]  # 256, 64 and 3 bytes of UTF-8
        for store in stores:
            await earn(client, key, member, 1_000, channel="store", store_id=store)
        window = {"from": iso(start), "to": iso(clock.now() + timedelta(seconds=1)), "group_by": "store"}
        walked: list[str | None] = []
        cursor: str | None = None
        while True:
            page = await report(
                client, key, "points", **window, limit=1, **({"cursor": cursor} if cursor else {})
            )
            assert page.status_code == 200, page.text
            walked += [row["group"] for row in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert sorted(walked) == sorted(stores) and len(walked) == len(stores)


class ReadingClock(FrozenClock):
    """A clock that moves a millisecond at every reading, as a real one moves between the statements of one
    transaction."""

    def now(self) -> datetime:
        at = super().now()
        self.advance(timedelta(milliseconds=1))
        return at


class TestATransferMovesNothingAtAnyInstant:
    """A transfer and its reversal move points between members: no window, wherever it ends, sees the points
    leave one member without reaching the other (`net` and the liability moved, and no figure saying why)."""

    async def test_no_window_ends_between_the_two_sides_of_a_transfer_or_its_reversal(
        self, settings: Settings, client: httpx.AsyncClient, clock: FrozenClock, key: str
    ) -> None:
        sender, recipient = (await enrol(client, key))["id"], (await enrol(client, key))["id"]
        await earn(client, key, sender, 100_000)  # 1,000 points
        # A process whose clock runs while it works: the till's transfer, then the operator's reversal.
        running = create_app(settings, clock=ReadingClock(clock.now() + timedelta(minutes=1)))
        transport = httpx.ASGITransport(app=running, raise_app_exceptions=False)
        async with (
            running.router.lifespan_context(running),
            httpx.AsyncClient(transport=transport, base_url="http://loyalty.test") as other,
        ):
            body = {"to_member_id": recipient, "points": 300}
            sent = await other.post(f"/v1/members/{sender}/transfers", json=body, headers=bearer(key))
            assert sent.status_code == 201, sent.text
            path = f"/v1/members/{sender}/transfers/{sent.json()['transfer_id']}/reversal"
            undone = await other.post(path, json={"reason": "the wrong member"}, headers=bearer(key))
            assert undone.status_code == 201, undone.text
        entries = await ledger(client, key, sender) + await ledger(client, key, recipient)
        moves = {"transfer_out", "transfer_in", "transfer_return"}
        instants = {datetime.fromisoformat(e["created_at"]) for e in entries if e["type"] in moves}
        for at in sorted(instants | {i + timedelta(microseconds=1) for i in instants}):
            window = {"from": iso(START), "to": iso(at)}
            found = (await report(client, key, "overview", **window)).json()
            # Only the earn: whatever of the transfer the window holds moves nothing members hold.
            assert (found["points"]["net"], found["outstanding_points"]) == (1_000, 1_000), (at, found)
            assert found["liability"] == cny(1_500)
            [row] = (await report(client, key, "points", **window)).json()["items"]
            assert row["net"] == row["issued"] == 1_000


class TestOutstandingAtAnyInstant:
    """What members hold at a window's end is every entry made before it: whatever the entries were (imports,
    holds, transfers, exchanges, refunds, expiry) and whoever's they are (a closed or an erased member)."""

    async def test_the_outstanding_points_are_the_entries_before_every_end(
        self, app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, key: str
    ) -> None:
        async def write(path: str, body: dict[str, Any], by: str = key) -> dict[str, Any]:
            answer = await client.post(path, json=body, headers=bearer(by))
            assert answer.status_code in (200, 201), answer.text
            clock.advance(timedelta(minutes=30))
            found: dict[str, Any] = answer.json()
            return found

        air = await register_partner(
            app,
            client,
            key,
            "air",
            exchange_out_rate="2",
            exchange_in_rate="0.5",
            exchange_timeout_seconds=86_400,
        )
        soon = iso(clock.now() + timedelta(days=10))
        batch = {"members": [{"points": [{"points": 500, "expires_at": soon}, {"points": 700}]}]}
        await write("/v1/members/import", batch)
        a, b, c = [(await enrol(client, key))["id"] for _ in range(3)]
        await earn(client, key, a, 100_000, order_ref="OUT-1", channel="store", store_id="SH-01")
        late = iso(clock.now() - timedelta(days=20))  # a receipt synced late: its entry is made now
        await earn(client, key, a, 50_000, order_ref="OUT-2", occurred_at=late)
        await write(f"/v1/members/{b}/adjustments", {"points": 800, "reason": "goodwill"})
        await write(f"/v1/members/{c}/adjustments", {"points": 400, "reason": "goodwill"})
        await write(f"/v1/members/{a}/holds", {"points": 300, "order_ref": "OUT-3", "ttl_seconds": 86_400})
        captured = await write(
            f"/v1/members/{a}/holds", {"points": 200, "order_ref": "OUT-4", "ttl_seconds": 86_400}
        )
        await write(f"/v1/holds/{captured['id']}/capture", {"points": 100})
        await write(f"/v1/members/{a}/redeem", {"points": 100, "order_ref": "OUT-5"})
        await write("/v1/orders/OUT-1/refund", {"amount": cny(40_000)})
        await write(f"/v1/members/{a}/transfers", {"to_member_id": b, "points": 200})
        await link(client, key, air, b, "air", "AIR-1")
        await write(f"/v1/members/{b}/exchanges", {"partner": "air", "points": 100})
        failed = await write(f"/v1/members/{b}/exchanges", {"partner": "air", "points": 50})
        await write(f"/v1/partner/exchanges/{failed['id']}/fail", {}, by=air)
        await write(
            "/v1/partner/members/AIR-1/exchanges-in", {"partner_ref": "AIR-T1", "partner_points": 1_000}, air
        )
        closed = await client.patch(f"/v1/members/{b}", json={"status": "closed"}, headers=bearer(key))
        assert closed.status_code == 200, closed.text
        await write(f"/v1/members/{c}/erase", {})
        clock.advance(timedelta(days=130))
        assert (await expire_points(units_of(app))).points > 0
        await earn(client, key, a, 10_000, order_ref="OUT-6")
        await assert_ledger_invariant(app)

        async with units_of(app).read() as uow:
            entries = (await uow.session.execute(select(LedgerEntry.created_at, LedgerEntry.amount))).all()
        instants = {at for at, _ in entries}
        ends = {START - timedelta(days=1), clock.now() + timedelta(days=1)}
        ends |= instants | {at + timedelta(microseconds=1) for at in instants}
        for end in sorted(ends):
            window = {"from": iso(START - timedelta(days=30)), "to": iso(end)}
            found = (await report(client, key, "overview", **window)).json()
            before = sum(amount for at, amount in entries if at < end)
            assert found["outstanding_points"] == before, (end, found["outstanding_points"], before)


class TestNewMembers:
    async def test_counts_every_enrolment_in_the_window_those_closed_since_too(
        self, client: httpx.AsyncClient, clock: FrozenClock, key: str
    ) -> None:
        """`new_members` is the window's enrolments, a flow that a member leaving later does not undo;
        `members` is those enrolled before `to` who are not closed now. So it may exceed `members`."""
        await enrol(client, key)  # before the window, still a member
        clock.advance(timedelta(days=1))
        start = clock.now()
        joined = [(await enrol(client, key))["id"] for _ in range(2)]
        clock.advance(timedelta(days=1))
        for member in joined:
            body = {"status": "closed"}
            closed = await client.patch(f"/v1/members/{member}", json=body, headers=bearer(key))
            assert closed.status_code == 200, closed.text
        window = {"from": iso(start), "to": iso(clock.now())}
        found = (await report(client, key, "overview", **window)).json()
        assert (found["members"], found["new_members"]) == (1, 2)
