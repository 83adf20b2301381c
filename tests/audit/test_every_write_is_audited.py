"""Every REST write a back-office, billing or partner key can make leaves exactly one audit entry.

The routes under test are read from the app (`operations(app)`), not listed here: a write route added
tomorrow fails the coverage check until the scenario below calls it. The client records every write it
sends, helpers' included, and resolves each to its route with the app's own routes, so the scenario cannot
leave a call out of the check by forgetting to note it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Match

from loyalty_api.auth import service as auth_service
from loyalty_api.auth.principal import AUDITED, Principal, Scope
from loyalty_api.http.transaction import QueryRoute
from loyalty_api.openapi.authorization import Operation, operations
from loyalty_api.partners import service as partners
from tests.builders import add_tier, enrol
from tests.checkout.helpers import add_benefit, cart, item, quote
from tests.conftest import START, UNLIMITED, bearer, units_of
from tests.coupons.helpers import use
from tests.partners.helpers import exchange_in, exchange_out, link, partner_earn, partner_refund, resolve
from tests.points.helpers import cny, earn, set_program
from tests.rewards.helpers import add_reward, redeem, reward_body
from tests.subscriptions.helpers import add_plan, next_payment_ref, pay, pay_reply, replace_plan, subscribe
from tests.webhooks.endpoint_helpers import create_endpoint

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _writes(app: FastAPI) -> list[tuple[Operation, APIRoute]]:
    return [
        (op, op.route) for op in operations(app) if op.method in WRITES and isinstance(op.route, APIRoute)
    ]


def audited_writes(app: FastAPI) -> dict[str, str]:
    """The operations the audit log must record: the action (route name) of each, by label
    (`PUT /v1/tiers/{code}`)."""
    return {
        op.label: route.name
        for op, route in _writes(app)
        if op.scopes & AUDITED and not isinstance(route, QueryRoute)
    }


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    route: str  # the template the app routed the request to; "?" followed by the path if none or several
    key: Principal | None
    response: httpx.Response

    @property
    def label(self) -> str:
        return f"{self.method} {self.route}"

    @property
    def request_id(self) -> str:
        return self.response.headers["X-Request-Id"]

    @property
    def succeeded(self) -> bool:
        return 200 <= self.response.status_code < 300

    @property
    def audited_key(self) -> bool:
        return self.key is not None and self.key.audited


@dataclass
class Recorder:
    """An httpx response hook: every write the client sends, with the route that took it and the key."""

    app: FastAPI
    keys: dict[str, Principal] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.writes = _writes(self.app)
        self.queries = {op.label for op, route in self.writes if isinstance(route, QueryRoute)}

    async def __call__(self, response: httpx.Response) -> None:
        request = response.request
        if request.method not in WRITES:
            return
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.calls.append(
            Call(
                request.method, self._route(request.method, request.url.path), self.keys.get(token), response
            )
        )

    def _route(self, method: str, path: str) -> str:
        scope = {"type": "http", "method": method, "path": path}
        found = [
            op.path
            for op, route in self.writes
            if op.method == method and route.matches(scope)[0] is Match.FULL
        ]
        return found[0] if len(found) == 1 else f"?{path}"

    def audited(self) -> list[Call]:
        return [c for c in self.calls if c.succeeded and c.audited_key and c.label not in self.queries]

    def not_audited(self) -> list[Call]:
        audited = {id(c) for c in self.audited()}
        return [c for c in self.calls if id(c) not in audited]


@dataclass
class Keys:
    admin: str
    billing: str
    pos: str
    partner: str = ""  # made once the scenario has registered its partner (a route under test)


async def _issue(
    app: FastAPI, recorder: Recorder, *scopes: Scope, partner_id: uuid.UUID | None = None
) -> str:
    """A key made through the auth service, so the test knows the id and prefix the audit log should name."""
    async with units_of(app).begin() as uow:
        if partner_id is None:
            issued = await auth_service.create_key(
                uow, name=f"{scopes[0]} key", scopes=list(scopes), rate_limit=UNLIMITED
            )
        else:
            issued = await partners.create_partner_key(
                uow, partner_id, name="partner key", rate_limit=UNLIMITED
            )
    recorder.keys[issued.token] = issued.principal
    return issued.token


def ok(response: httpx.Response) -> dict[str, Any]:
    assert 200 <= response.status_code < 300, f"{response.request.method} {response.url}: {response.text}"
    answered: dict[str, Any] = response.json() if response.content else {}
    return answered


@dataclass
class World:
    """What later steps of the scenario act on."""

    lounge: str = ""
    spare_benefit: str = ""
    rule: str = ""
    reward: str = ""
    endpoint: str = ""
    member: str = ""


_CAFE_TERMS = {"earn_rate": "1.5", "exchange_out_rate": "0.1", "exchange_in_rate": "1"}
_GOLD = {
    "name": "Gold",
    "rank": 1,
    "metric": "spend",
    "window": "calendar_year",
    "threshold": 10_000_000,  # out of the scenario's reach: only an override puts the member there
    "points_multiplier": "1",
    "grace_days": 0,
    "benefit_ids": [],
}


async def _catalogue(app: FastAPI, client: httpx.AsyncClient, keys: Keys, recorder: Recorder) -> World:
    admin = keys.admin
    world = World()
    await set_program(client, admin, transfers_enabled=True)
    world.lounge = await add_benefit(client, admin, "Reading room", "priority_service", description="quiet")
    world.spare_benefit = await add_benefit(client, admin, "Spring sale", "percent_discount", percent="5")
    ok(
        await client.put(
            f"/v1/benefits/{world.spare_benefit}",
            json={"name": "Spring sale", "kind": "percent_discount", "properties": {"percent": "10"}},
            headers=bearer(admin),
        )
    )
    rule = {"name": "周三会员日", "kind": "member_day", "properties": {"weekday": 3, "multiplier": "2"}}
    world.rule = ok(await client.post("/v1/earning-rules", json=rule, headers=bearer(admin)))["id"]
    rule["properties"] = {"weekday": 3, "multiplier": "3"}
    ok(await client.put(f"/v1/earning-rules/{world.rule}", json=rule, headers=bearer(admin)))
    check_in = {"type": "check_in", "name": "Check-in", "points": 5, "daily_cap": 1}
    activity_rule = ok(await client.post("/v1/activity-rules", json=check_in, headers=bearer(admin)))["id"]
    ok(await client.patch(f"/v1/activity-rules/{activity_rule}", json={"points": 10}, headers=bearer(admin)))
    campaign = {"name": "Welcome", "action": {"type": "grant_points", "points": 10, "reason": "welcome"}}
    made_campaign = ok(await client.post("/v1/campaigns", json=campaign, headers=bearer(admin)))
    ok(await client.post(f"/v1/campaigns/{made_campaign['id']}/cancel", headers=bearer(admin)))

    await add_tier(client, admin, "basic", rank=0)
    await add_tier(client, admin, "gold", rank=1, threshold=5_000_000)
    ok(await client.put("/v1/tiers/gold", json=_GOLD, headers=bearer(admin)))

    cafe = {"code": "cafe", "name": "Cafe", "benefit_ids": [world.lounge], **_CAFE_TERMS}
    made = ok(await client.post("/v1/partners", json=cafe, headers=bearer(admin)))
    replacement = {k: v for k, v in cafe.items() if k != "code"} | {"name": "Café", "status": "active"}
    ok(await client.put("/v1/partners/cafe", json=replacement, headers=bearer(admin)))
    keys.partner = await _issue(app, recorder, Scope.partner, partner_id=uuid.UUID(made["id"]))

    perks = [
        {"partner": "cafe", "name": "A free coffee"},
        {"partner": "cafe", "name": "A cake", "source": "pool", "perk": "cake"},
    ]
    await add_plan(client, admin, "plus", price=1_500, unit="month", family="plus", partner_perks=perks)
    await add_plan(client, admin, "premium", price=3_000, unit="month", family="plus")
    await add_plan(client, admin, "seasonal", price=500, unit="month")
    await replace_plan(client, admin, "seasonal", name="Seasonal pass")

    world.reward = (await add_reward(client, admin))["id"]
    replaced = reward_body(name="100 积分兑 10 元券 (spring)")
    ok(await client.put(f"/v1/rewards/{world.reward}", json=replaced, headers=bearer(admin)))

    world.endpoint = (await create_endpoint(client, admin))["id"]
    path = f"/v1/webhook-endpoints/{world.endpoint}"
    ok(await client.patch(path, json={"description": "the data warehouse"}, headers=bearer(admin)))
    ok(await client.post(f"{path}/rotate-secret", json={}, headers=bearer(admin)))
    return world


async def _points(client: httpx.AsyncClient, keys: Keys, world: World) -> None:
    admin = keys.admin
    world.member = (await enrol(client, admin))["id"]
    member = f"/v1/members/{world.member}"
    ok(await client.patch(member, json={"marketing_consent": True}, headers=bearer(admin)))
    await earn(client, admin, world.member, 150_000, order_ref="SH-1")
    await earn(client, admin, world.member, 20_000, order_ref="SH-2")
    ok(
        await client.post(
            f"{member}/redeem", json={"points": 300, "order_ref": "SH-3"}, headers=bearer(admin)
        )
    )
    captured = ok(
        await client.post(
            f"{member}/holds", json={"points": 200, "order_ref": "WEB-1"}, headers=bearer(admin)
        )
    )
    released = ok(
        await client.post(
            f"{member}/holds", json={"points": 100, "order_ref": "WEB-2"}, headers=bearer(admin)
        )
    )
    capture = {"order_total": cny(10_000)}
    ok(await client.post(f"/v1/holds/{captured['id']}/capture", json=capture, headers=bearer(admin)))
    ok(await client.post(f"/v1/holds/{released['id']}/release", headers=bearer(admin)))
    ok(await client.post("/v1/orders/SH-2/refund", json={"amount": cny(5_000)}, headers=bearer(admin)))
    adjustment = {"points": 50, "reason": "Goodwill"}
    ok(await client.post(f"{member}/adjustments", json=adjustment, headers=bearer(admin)))
    imported = {"members": [{"name": "从旧系统来", "points": [{"points": 30}]}]}
    friend = ok(await client.post("/v1/members/import", json=imported, headers=bearer(admin)))["members"][0][
        "id"
    ]
    transfer = {"to_member_id": friend, "points": 20}
    sent = ok(await client.post(f"{member}/transfers", json=transfer, headers=bearer(admin)))
    reversal = {"reason": "sent to the wrong member"}
    ok(
        await client.post(
            f"{member}/transfers/{sent['transfer_id']}/reversal", json=reversal, headers=bearer(admin)
        )
    )
    activity = {"type": "check_in", "ref": "2026-03-16"}
    ok(await client.post(f"{member}/activities", json=activity, headers=bearer(admin)))

    coupon = ok(await redeem(client, admin, world.member, world.reward))["coupon"]
    ok(await use(client, admin, coupon["code"], order_ref="SH-4", member_id=world.member))

    override = {"tier": "gold", "until": "2026-04-15T00:00:00Z", "reason": "a complaint made good"}
    ok(await client.put(f"{member}/tier/override", json=override, headers=bearer(admin)))
    ok(await client.delete(f"{member}/tier/override", headers=bearer(admin)))


async def _subscription(client: httpx.AsyncClient, keys: Keys, world: World) -> None:
    admin = keys.admin
    # The cafe uploads codes for its pooled perk first.
    codes = {"perk": "cake", "codes": ["CAKE-1", "CAKE-2"]}
    ok(await client.post("/v1/partner/perk-codes", json=codes, headers=bearer(keys.partner)))
    subscription = await subscribe(
        client, admin, world.member, "plus", trial=False, payment_ref=next_payment_ref()
    )
    # The paid period gave the member the cafe's perks; the cafe redeems the one we issued.
    perks = await client.get(f"/v1/members/{world.member}/partner-perks", headers=bearer(admin))
    [perk] = [p for p in ok(perks)["items"] if p["source"] == "ours"]
    ok(await client.post(f"/v1/partner/perks/{perk['code']}/redeem", headers=bearer(keys.partner)))

    path = f"/v1/subscriptions/{subscription['id']}"
    upgrade = {"plan": "premium", "payment_ref": next_payment_ref()}
    upgraded = ok(await client.post(f"{path}/change-plan", json=upgrade, headers=bearer(admin)))
    await pay(client, keys.billing, subscription["id"], period=upgraded["period"] + 1, amount=3_000)
    ok(await client.post(f"{path}/cancel", json={"at_period_end": True}, headers=bearer(admin)))
    ok(await client.post(f"{path}/resume", headers=bearer(admin)))


async def _partner(client: httpx.AsyncClient, keys: Keys, world: World) -> None:
    admin, cafe = keys.admin, keys.partner
    await link(client, admin, cafe, world.member, "cafe", "CAFE-7", "basic", "points")
    ok(await partner_earn(client, cafe, "CAFE-7", "C-ORDER-1", 2_000))
    ok(await partner_refund(client, cafe, "CAFE-7", "C-ORDER-1", full=True))
    use_of = {"benefit_id": world.lounge, "use_ref": "USE-1"}
    ok(await client.post("/v1/partner/members/CAFE-7/benefit-uses", json=use_of, headers=bearer(cafe)))
    ok(await exchange_in(client, cafe, "CAFE-7", "TX-1", 100))
    confirmed = ok(await exchange_out(client, admin, world.member, "cafe", 100))
    failed = ok(await exchange_out(client, admin, world.member, "cafe", 50))
    ok(await resolve(client, cafe, confirmed["id"], "confirm"))
    ok(await resolve(client, cafe, failed["id"], "fail"))
    ok(await client.delete("/v1/partner/links/CAFE-7", headers=bearer(cafe)))

    # Another member links, unlinks at our desk, then asks to be forgotten.
    leaver = (await enrol(client, admin))["id"]
    await link(client, admin, cafe, leaver, "cafe", "CAFE-8")
    ok(await client.delete(f"/v1/members/{leaver}/partner-links/cafe", headers=bearer(admin)))
    ok(await client.post(f"/v1/members/{leaver}/erase", headers=bearer(admin)))


async def _webhooks(client: httpx.AsyncClient, keys: Keys, world: World) -> None:
    path = f"/v1/webhook-endpoints/{world.endpoint}"
    replay = {"since": START.isoformat()}
    assert ok(await client.post(f"{path}/replay", json=replay, headers=bearer(keys.admin)))["deliveries"] > 0
    deliveries = ok(await client.get(f"{path}/deliveries", headers=bearer(keys.admin)))["items"]
    retry = f"/v1/webhook-deliveries/{deliveries[0]['id']}/retry"
    ok(await client.post(retry, headers=bearer(keys.admin)))


async def _api_keys(client: httpx.AsyncClient, keys: Keys) -> None:
    made = ok(
        await client.post(
            "/v1/api-keys", json={"name": "Till 9", "scopes": ["pos"]}, headers=bearer(keys.admin)
        )
    )
    path = f"/v1/api-keys/{made['key']['prefix']}"
    rotated = ok(await client.post(f"{path}/rotate", json={"overlap_minutes": 0}, headers=bearer(keys.admin)))
    revoked = await client.delete(f"/v1/api-keys/{rotated['key']['prefix']}", headers=bearer(keys.admin))
    assert revoked.status_code == 204, revoked.text


async def _not_audited(client: httpx.AsyncClient, keys: Keys, world: World) -> None:
    """Writes the audit log leaves out: a till's (its earn is in the ledger with its key), a refused one, and
    a POST that only reads."""
    customer = await enrol(client, keys.pos)
    await earn(client, keys.pos, customer["id"], 8_800)
    again = await client.post("/v1/tiers", json={"code": "gold", **_GOLD}, headers=bearer(keys.admin))
    assert again.status_code == 409, again.text
    not_billing = await client.post(
        f"/v1/members/{world.member}/adjustments",
        json={"points": 1, "reason": "not billing's to give"},
        headers=bearer(keys.billing),
    )
    assert not_billing.status_code == 403, not_billing.text
    unknown = await pay_reply(client, keys.billing, str(uuid.uuid4()), period=2, amount=1_500)
    assert unknown.status_code == 404, unknown.text
    await quote(client, keys.admin, world.member, cart(item("SKU-1", 4_000)))


async def _teardown(client: httpx.AsyncClient, keys: Keys, world: World) -> None:
    """What the scenario made only to remove, removed once nothing depends on it."""
    for path in (
        f"/v1/earning-rules/{world.rule}",
        f"/v1/benefits/{world.spare_benefit}",
        "/v1/plans/seasonal",
        "/v1/tiers/gold",
        f"/v1/webhook-endpoints/{world.endpoint}",
    ):
        ok(await client.delete(path, headers=bearer(keys.admin)))


async def _audit_log(client: httpx.AsyncClient, admin: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 200}
    while True:
        page = ok(await client.get("/v1/audit-events", params=params, headers=bearer(admin)))
        entries.extend(page["items"])
        if page["next_cursor"] is None:
            return entries
        params["cursor"] = page["next_cursor"]


def _logged_path(call: Call) -> str:
    """The path as the audit log keeps it: a partner's customer ref may be personal data, kept as `{ref}`, and
    a perk's code is a credential, kept as `{code}`."""
    path = call.response.request.url.path
    unkept = "{code}" if call.route == "/v1/partner/perks/{code}/redeem" else "{ref}"
    if unkept not in call.route:
        return path
    at = call.route.split("/").index(unkept)
    return "/".join(unkept if i == at else part for i, part in enumerate(path.split("/")))


class TestEveryAuditedWrite:
    async def test_leaves_one_entry_naming_its_route_and_key(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        recorder = Recorder(app)
        client.event_hooks = {"request": [], "response": [recorder]}
        keys = Keys(
            admin=await _issue(app, recorder, Scope.admin),
            billing=await _issue(app, recorder, Scope.billing),
            pos=await _issue(app, recorder, Scope.pos),
        )
        world = await _catalogue(app, client, keys, recorder)
        await _points(client, keys, world)
        await _subscription(client, keys, world)
        await _partner(client, keys, world)
        await _webhooks(client, keys, world)
        await _api_keys(client, keys)
        await _not_audited(client, keys, world)
        await _teardown(client, keys, world)

        # Generated from the app's routes: a new write route fails here until the scenario calls it.
        expected = audited_writes(app)
        audited = recorder.audited()
        called = {call.label for call in audited}
        uncovered = sorted(set(expected) - called)
        assert not uncovered, f"the scenario does not call these audited write routes: {uncovered}"
        assert called == set(expected), (
            f"calls no audited write route matches: {sorted(called - set(expected))}"
        )

        # By request id: what an operator holding a response (or a log line) looks an entry up by.
        entries = [e for e in await _audit_log(client, keys.admin) if e["channel"] == "rest"]
        by_request: dict[str, list[dict[str, Any]]] = {}
        for entry in entries:
            by_request.setdefault(entry["request_id"], []).append(entry)
        for call in audited:
            assert call.key is not None
            found = by_request.get(call.request_id, [])
            assert len(found) == 1, f"{call.label} ({call.request_id}): {len(found)} audit entries"
            [entry] = found
            assert (
                entry["action"],
                entry["method"],
                entry["path"],
                entry["status"],
                entry["key_id"],
                entry["key_prefix"],
            ) == (
                expected[call.label],
                call.method,
                _logged_path(call),
                call.response.status_code,
                str(call.key.key_id),
                call.key.key_prefix,
            ), call.label

        # A secret shown once (the link code a member gives the partner) is not kept, nor a perk's code.
        for call in audited:
            if call.label in (
                "POST /v1/members/{member_id}/partner-link-codes",
                "POST /v1/partner/perks/{code}/redeem",
            ):
                [entry] = by_request[call.request_id]
                assert call.response.json()["code"] not in str(entry)
                assert entry["after"]["partner"] == "cafe"

        # A till's writes are in the ledger with their key already, a refused one changed nothing, and a
        # read-only POST is no change: none has an entry, so every entry is one of the calls above.
        not_audited = recorder.not_audited()
        assert {(c.key.scopes if c.key else None, c.label) for c in not_audited if c.succeeded} >= {
            (frozenset({Scope.pos}), "POST /v1/members"),
            (frozenset({Scope.pos}), "POST /v1/members/{member_id}/earn"),
            (frozenset({Scope.admin}), "POST /v1/checkout/quote"),
        }
        assert {c.response.status_code for c in not_audited if c.audited_key} >= {403, 404, 409}
        leaked = [c.label for c in not_audited if c.request_id in by_request]
        assert leaked == [], f"writes that should have left no audit entry: {leaked}"
        assert len(entries) == len(audited), "audit entries that no call of the scenario accounts for"
