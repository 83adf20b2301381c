"""Random sequences of every points operation with clock jumps; after every step the books must balance.

Each step goes through the real app (REST over ASGI) on the configured database. Besides the invariant
(balance == sum of ledger amounts == sum of live lot remainders, held ≤ balance, nothing negative) the
machine checks each answer against the balance it saw before: a spend succeeds exactly when enough points
were available, and a refusal changes nothing.
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


def machine_for(background: BackgroundApp) -> type[RuleBasedStateMachine]:
    call = background.call
    client = background.client
    # A rate of its own: the machine fires requests faster than an admin key's default budget allows.
    key = call(make_key(background.app, Scope.admin, rate_limit=UNLIMITED))
    headers = {"Authorization": f"Bearer {key}"}
    program = {
        "currency": "CNY",
        "timezone": "Asia/Shanghai",
        "earn_rate": "1",
        "point_value_minor": "1",
        "rounding": "down",
        "expiry_months": 3,
        "min_redeem_points": 1,
        "max_redeem_share": "1",
    }
    assert call(client.put("/v1/program", json=program, headers=headers)).status_code == 200

    def post(path: str, body: dict[str, Any] | None = None) -> Any:
        return call(client.post(path, json=body, headers=headers))

    class LedgerMachine(RuleBasedStateMachine):
        @initialize()
        def enrol(self) -> None:
            # Every example starts at the same moment: time_passes moves the shared clock, and an example
            # replayed (to confirm or shrink a failure) must see the same times as when it first ran.
            background.clock.set(START)
            response = post("/v1/members", {"phone": unique_phone()})
            assert response.status_code == 201
            self.member_id: str = response.json()["id"]
            self.orders: dict[str, int] = {}  # earned order -> amount not yet refunded
            self.order_books: dict[str, dict[str, int]] = {}  # what each order earned and had refunded
            self.holds: list[str] = []

        def summary(self) -> dict[str, Any]:
            response = call(client.get(f"/v1/members/{self.member_id}/points", headers=headers))
            assert response.status_code == 200
            result: dict[str, Any] = response.json()
            return result

        @rule(amount=st.integers(1, 80_000))
        def earn(self, amount: int) -> None:
            ref = f"E{next(_refs)}"
            before = self.summary()
            response = post(
                f"/v1/members/{self.member_id}/earn",
                {"order_ref": ref, "amount": {"amount": amount, "currency": "CNY"}},
            )
            assert response.status_code == 200, response.text
            assert response.json()["points_earned"] == amount // 100
            assert response.json()["balance"] == before["balance"] + amount // 100
            self.orders[ref] = amount
            self.order_books[ref] = {"amount": amount, "earned": amount // 100, "refunded": 0, "accounted": 0}

        @rule(points=st.integers(1, 1_500))
        def redeem(self, points: int) -> None:
            before = self.summary()
            response = post(
                f"/v1/members/{self.member_id}/redeem", {"points": points, "order_ref": f"R{next(_refs)}"}
            )
            if points <= before["available"]:
                assert response.status_code == 200, response.text
                assert self.summary()["available"] == before["available"] - points
            else:
                assert response.json()["code"] == "insufficient_points"
                assert self.summary() == before

        @rule(points=st.integers(1, 1_000), ttl=st.sampled_from([60, 86_400]))
        def hold(self, points: int, ttl: int) -> None:
            before = self.summary()
            response = post(
                f"/v1/members/{self.member_id}/holds",
                {"points": points, "order_ref": f"H{next(_refs)}", "ttl_seconds": ttl},
            )
            if points <= before["available"]:
                assert response.status_code == 201, response.text
                self.holds.append(response.json()["id"])
                assert self.summary()["available"] == before["available"] - points
            else:
                assert response.json()["code"] == "insufficient_points"

        @precondition(lambda self: bool(self.holds))
        @rule(data=st.data(), capture=st.booleans())
        def resolve_hold(self, data: st.DataObject, capture: bool) -> None:
            hold_id = data.draw(st.sampled_from(self.holds))
            response = post(f"/v1/holds/{hold_id}/{'capture' if capture else 'release'}")
            assert response.status_code in (200, 409), response.text
            if response.status_code == 409:
                # Only a hold whose time ran out (and that a job then freed) may refuse.
                assert response.json()["code"] == "hold_not_active"
                read = call(client.get(f"/v1/holds/{hold_id}", headers=headers))
                assert read.json()["status"] == "expired", read.text
            self.holds.remove(hold_id)

        @precondition(lambda self: any(self.orders.values()))
        @rule(data=st.data())
        def refund(self, data: st.DataObject) -> None:
            ref = data.draw(st.sampled_from([r for r, left in self.orders.items() if left]))
            amount = data.draw(st.integers(1, self.orders[ref]))
            before = self.summary()
            response = post(f"/v1/orders/{ref}/refund", {"amount": {"amount": amount, "currency": "CNY"}})
            assert response.status_code == 200, response.text
            self.orders[ref] -= amount
            book = self.order_books[ref]
            book["refunded"] += amount
            # In proportion, on the running total, rounded down: what is not taken back is a shortfall, or had
            # expired already.
            due = book["earned"] * book["refunded"] // book["amount"] - book["accounted"]
            result = response.json()
            moved = result["points_taken_back"] + result["shortfall"] + result["already_expired"]
            assert moved == due, (result, book)
            assert result["points_given_back"] == 0
            assert result["points_taken_back"] <= before["available"]
            assert result["balance"] == before["balance"] - result["points_taken_back"]
            book["accounted"] += due

        @rule(points=st.integers(-1_000, 1_000).filter(bool))
        def adjust(self, points: int) -> None:
            before = self.summary()
            response = post(
                f"/v1/members/{self.member_id}/adjustments", {"points": points, "reason": "property"}
            )
            if points > 0 or -points <= before["available"]:
                assert response.status_code == 201, response.text
                assert response.json()["balance"] == before["balance"] + points
            else:
                assert response.json()["code"] == "insufficient_points"

        @rule(days=st.integers(1, 120))
        def time_passes(self, days: int) -> None:
            background.clock.advance(timedelta(days=days))
            call(expire_holds(background.app.state.units))
            call(expire_points(background.app.state.units))

        @invariant()
        def books_balance(self) -> None:
            if hasattr(self, "member_id"):
                call(assert_ledger_invariant(background.app, self.member_id))
                summary = self.summary()
                assert min(summary["balance"], summary["held"], summary["available"]) >= 0

    return LedgerMachine


def test_random_operations_keep_the_books_balanced(tmp_path: Path) -> None:
    with BackgroundApp(tmp_path) as background:
        machine = machine_for(background)
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=25,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
