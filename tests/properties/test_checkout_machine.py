"""Random sequences of the till's and the checkout's points operations, for two members, with clock jumps
(the jobs run after some and not after others): after every step what the checkout quote offers is what a
spend then takes.

Beside the ledger invariant, after each step, for each member: the quote's `available` is the `available`
of GET /v1/members/{id}/points (both count holds past their time and lots past their end as a spend finds
them, whether or not the jobs have run), and a hold of the quote's `max_usable` is accepted. The operations
cover what moves points between those reads: earns at a fractional rate rounded half up, redeems with and
without `order_total` (on new orders and on earned ones), holds captured whole or in part (with and without
`order_total`) or released, refunds by amount, by points and in full of any order (so shortfalls arise and
are settled), and adjustments both ways.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from loyalty_api.auth.principal import Scope
from loyalty_api.points.expiry import expire_points
from loyalty_api.points.holds import expire_holds
from tests.builders import make_key, unique_phone
from tests.conftest import UNLIMITED
from tests.ledger_checks import assert_ledger_invariant
from tests.properties.background_app import BackgroundApp

_refs = itertools.count()
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
# A rate, a point value and a share that leave fractions everywhere, and a minimum that refuses small spends.
PROGRAM = {
    "currency": "CNY",
    "timezone": "Asia/Shanghai",
    "earn_rate": "1.7",
    "point_value_minor": "0.7",
    "rounding": "half_up",
    "expiry_months": 2,
    "min_redeem_points": 3,
    "max_redeem_share": "0.6",
}
# A cart large enough that the share never caps the quote: `max_usable` is what the member may spend.
LARGE_CART = {"subtotal": {"amount": 10**9, "currency": "CNY"}}
TOTALS = st.one_of(st.none(), st.integers(1, 100_000))


def cny(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "CNY"}


def machine_for(background: BackgroundApp) -> type[RuleBasedStateMachine]:
    call = background.call
    client = background.client
    key = call(make_key(background.app, Scope.admin, rate_limit=UNLIMITED))
    headers = {"Authorization": f"Bearer {key}"}
    assert call(client.put("/v1/program", json=PROGRAM, headers=headers)).status_code == 200

    def post(path: str, body: dict[str, Any] | None = None) -> Any:
        return call(client.post(path, json=body, headers=headers))

    class CheckoutMachine(RuleBasedStateMachine):
        @initialize()
        def enrol(self) -> None:
            background.clock.set(START)  # replays see the times the first run saw
            self.members: list[str] = [
                post("/v1/members", {"phone": unique_phone()}).json()["id"] for _ in "ab"
            ]
            self.orders: list[tuple[str, str]] = []  # (order_ref, member_id) of orders that took points
            self.holds: list[str] = []

        def summary(self, member_id: str) -> dict[str, Any]:
            response = call(client.get(f"/v1/members/{member_id}/points", headers=headers))
            assert response.status_code == 200, response.text
            result: dict[str, Any] = response.json()
            return result

        @rule(member=st.integers(0, 1), amount=st.integers(1, 80_000))
        def earn(self, member: int, amount: int) -> None:
            ref = f"E{next(_refs)}"
            body = {"order_ref": ref, "amount": cny(amount)}
            response = post(f"/v1/members/{self.members[member]}/earn", body)
            assert response.status_code == 200, response.text
            self.orders.append((ref, self.members[member]))

        @rule(data=st.data(), member=st.integers(0, 1), points=st.integers(1, 800), total=TOTALS)
        def redeem(self, data: st.DataObject, member: int, points: int, total: int | None) -> None:
            member_id = self.members[member]
            earned = [ref for ref, owner in self.orders if owner == member_id and ref.startswith("E")]
            ref = data.draw(st.sampled_from([f"R{next(_refs)}", *earned]))
            body: dict[str, Any] = {"points": points, "order_ref": ref}
            if total is not None:
                body["order_total"] = cny(total)
            response = post(f"/v1/members/{member_id}/redeem", body)
            assert response.status_code in (200, 409, 422), response.text
            if response.status_code == 200:
                self.orders.append((ref, member_id))

        @rule(member=st.integers(0, 1), points=st.integers(1, 600), ttl=st.sampled_from([60, 86_400]))
        def hold(self, member: int, points: int, ttl: int) -> None:
            ref = f"H{next(_refs)}"
            body = {"points": points, "order_ref": ref, "ttl_seconds": ttl}
            response = post(f"/v1/members/{self.members[member]}/holds", body)
            assert response.status_code in (201, 422), response.text
            if response.status_code == 201:
                self.holds.append(response.json()["id"])
                self.orders.append((ref, self.members[member]))

        @precondition(lambda self: bool(self.holds))
        @rule(data=st.data(), how=st.sampled_from(["capture", "part", "release"]), total=TOTALS)
        def end_hold(self, data: st.DataObject, how: str, total: int | None) -> None:
            hold_id = data.draw(st.sampled_from(self.holds))
            body: dict[str, Any] = {}
            if how != "release" and total is not None:
                body["order_total"] = cny(total)
            if how == "part":
                body["points"] = data.draw(st.integers(1, 600))
            action = "release" if how == "release" else "capture"
            response = post(f"/v1/holds/{hold_id}/{action}", body or None)
            assert response.status_code in (200, 409, 422), response.text

        @precondition(lambda self: bool(self.orders))
        @rule(data=st.data(), by=st.sampled_from(["amount", "points", "full"]), size=st.integers(1, 100_000))
        def refund(self, data: st.DataObject, by: str, size: int) -> None:
            ref, _ = data.draw(st.sampled_from(self.orders))
            body: dict[str, Any] = (
                {"full": True}
                if by == "full"
                else {"points": size % 700 + 1}
                if by == "points"
                else {"amount": cny(size)}
            )
            response = post(f"/v1/orders/{ref}/refund", body)
            # 404: a hold's order its release let go; 422: more than is left, or no total to measure against.
            assert response.status_code in (200, 404, 422), response.text
            if response.status_code == 200:
                result = response.json()
                assert min(result["balance"], result["available"]) >= 0, result

        @rule(member=st.integers(0, 1), points=st.integers(-500, 500).filter(bool))
        def adjust(self, member: int, points: int) -> None:
            body = {"points": points, "reason": "property"}
            response = post(f"/v1/members/{self.members[member]}/adjustments", body)
            assert response.status_code in (201, 422), response.text

        @rule(days=st.integers(1, 70), jobs=st.booleans())
        def time_passes(self, days: int, jobs: bool) -> None:
            background.clock.advance(timedelta(days=days))
            if jobs:
                call(expire_holds(background.app.state.units))
                call(expire_points(background.app.state.units))

        @invariant()
        def the_quote_offers_what_a_hold_takes(self) -> None:
            for member_id in getattr(self, "members", []):
                call(assert_ledger_invariant(background.app, member_id))
                summary = self.summary(member_id)
                assert min(summary["balance"], summary["held"], summary["available"]) >= 0, summary
                body = {"member_id": member_id, "cart": LARGE_CART}
                quoted = call(client.post("/v1/checkout/quote", json=body, headers=headers))
                assert quoted.status_code == 200, quoted.text
                offered = quoted.json()["points"]
                assert offered["available"] == summary["available"], (offered, summary)
                if offered["max_usable"]:
                    hold = {
                        "points": offered["max_usable"],
                        "order_ref": f"Q{next(_refs)}",
                        "ttl_seconds": 60,
                    }
                    held = post(f"/v1/members/{member_id}/holds", hold)
                    assert held.status_code == 201, (held.text, offered, summary)
                    # Its release is a step of its own: the points it lets go settle what the member owes.
                    released = post(f"/v1/holds/{held.json()['id']}/release")
                    assert released.status_code == 200, released.text

    return CheckoutMachine


def test_the_quote_offers_what_a_spend_takes_after_any_operations(tmp_path: Path) -> None:
    with BackgroundApp(tmp_path) as background:
        run_state_machine_as_test(
            machine_for(background),
            settings=settings(
                max_examples=20,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
