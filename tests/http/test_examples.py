"""Every operation in the OpenAPI document says what it is for and shows a request and a reply, and those
examples are ones the service's own models accept: an example that drifts from the models fails here."""

from __future__ import annotations

import functools
import json
import re
import types
from datetime import datetime
from typing import Annotated, Any, Union, get_args, get_origin

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, TypeAdapter

from loyalty_api import crypto
from loyalty_api.app import create_app
from loyalty_api.clock import FrozenClock
from loyalty_api.http.dependencies import require
from loyalty_api.http.problems import all_routes
from loyalty_api.members.member_number import is_valid
from loyalty_api.openapi.examples import JSON, MEMBER, NOW, examples
from loyalty_api.ops.metrics import Metrics
from loyalty_api.outbox.events import CATALOGUE
from loyalty_api.settings import Settings
from tests.builders import add_tier, enrol
from tests.checkout.helpers import add_benefit
from tests.conftest import bearer
from tests.subscriptions.helpers import add_plan, subscribe_paid


@functools.cache
def _app() -> FastAPI:
    return create_app(Settings(encryption_key=crypto.generate_key(), database_url="sqlite+aiosqlite://"))


def _document() -> dict[str, Any]:
    document: dict[str, Any] = _app().openapi()
    return document


def _operations() -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, ops in _document()["paths"].items() for method in ops]


OPERATIONS = _operations()
IDS = [f"{method} {path}" for method, path in OPERATIONS]


def _operation(method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = _document()["paths"][path][method.lower()]
    return found


def _with(keep: Any) -> tuple[list[tuple[str, str]], list[str]]:
    """The operations (and their test ids) for which `keep(operation)` holds."""
    chosen = [(m, p) for m, p in OPERATIONS if keep(_operation(m, p))]
    return chosen, [f"{m} {p}" for m, p in chosen]


def _success_status(operation: dict[str, Any]) -> str:
    return next(s for s in operation["responses"] if s.startswith("2"))


WITH_BODY, WITH_BODY_IDS = _with(lambda operation: "requestBody" in operation)
# A 204 has no body to show
REPLYING, REPLYING_IDS = _with(lambda operation: _success_status(operation) != "204")
REPLYING_JSON, REPLYING_JSON_IDS = _with(
    lambda operation: JSON in operation["responses"][_success_status(operation)].get("content", {})
)


def _route(method: str, path: str) -> APIRoute:
    """The route behind an operation; its path may carry a convertor (`{member_id:member_id}`)."""
    [route] = [r for r in all_routes(_app().routes) if r.path_format == path and method in (r.methods or ())]
    return route


def _success(operation: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    [status, *_] = [s for s in operation["responses"] if s.startswith("2")]
    response: dict[str, Any] = operation["responses"][status]
    return status, response


def _scopes(route: APIRoute) -> set[str]:
    """The scopes the route's `require(...)` allows (none: a route without an API key)."""
    found: set[str] = set()
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        if isinstance(dependency.call, require):
            found |= {str(scope) for scope in dependency.call.allowed}
        pending.extend(dependency.dependencies)
    return found


def _named(examples_map: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(name, example["value"]) for name, example in examples_map.items()]


def _field_names(annotation: Any, value: Any) -> Any:
    """A reply as validation reads it: keys a model writes under a serialization alias (`schema` for
    `schema_`) put back under the field's name."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _field_names(get_args(annotation)[0], value)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(value, dict):
        fields = {
            (info.serialization_alias or name): (name, info.annotation)
            for name, info in annotation.model_fields.items()
        }
        renamed: dict[str, Any] = {}
        for key, item in value.items():
            name, inner = fields.get(key, (key, Any))
            renamed[name] = _field_names(inner, item)
        return renamed
    arguments = [a for a in get_args(annotation) if a is not type(None)]
    if origin in (list, tuple) and isinstance(value, list) and arguments:
        return [_field_names(arguments[0], item) for item in value]
    if origin in (Union, types.UnionType) and len(arguments) == 1:
        return _field_names(arguments[0], value)
    return value


class TestEveryOperationIsDocumented:
    @pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=IDS)
    def test_it_has_a_summary_and_a_description(self, method: str, path: str) -> None:
        operation = _operation(method, path)
        assert operation.get("summary", "").strip()
        assert operation.get("description", "").strip()

    @pytest.mark.parametrize(("method", "path"), WITH_BODY, ids=WITH_BODY_IDS)
    def test_a_body_comes_with_a_request_example(self, method: str, path: str) -> None:
        body = _operation(method, path)["requestBody"]
        assert body["content"][JSON].get("examples")

    @pytest.mark.parametrize(("method", "path"), REPLYING, ids=REPLYING_IDS)
    def test_its_success_reply_has_an_example(self, method: str, path: str) -> None:
        status, response = _success(_operation(method, path))
        assert any(media.get("examples") for media in response.get("content", {}).values()), status

    def test_every_example_is_of_an_operation_in_the_document(self) -> None:
        assert set(examples()) <= set(OPERATIONS), set(examples()) - set(OPERATIONS)

    def test_there_are_many(self) -> None:
        assert len(OPERATIONS) >= 70


class TestDescriptionsTellTheTruth:
    @pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=IDS)
    def test_they_name_the_scopes_that_may_call(self, method: str, path: str) -> None:
        scopes = _scopes(_route(method, path))
        description = _operation(method, path)["description"]
        if not scopes:
            assert "no API key" in description
        for scope in scopes:
            assert f"`{scope}`" in description, scope

    @pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=IDS)
    def test_a_state_changing_post_says_it_honours_idempotency_key(self, method: str, path: str) -> None:
        route = _route(method, path)
        honours = getattr(route, "honours_idempotency", lambda: False)()
        parameters = [p["name"] for p in _operation(method, path).get("parameters", [])]
        assert honours == ("Idempotency-Key" in parameters)
        if honours:
            assert "honours `Idempotency-Key`" in _operation(method, path)["description"]

    @pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=IDS)
    def test_each_status_and_code_it_names_is_a_documented_response(self, method: str, path: str) -> None:
        operation = _operation(method, path)
        for status, code in re.findall(r"\b([1-5]\d\d) `([a-z_]+)`", operation["description"]):
            assert f"`{code}`" in operation["responses"].get(status, {}).get("description", ""), (
                status,
                code,
            )

    @pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=IDS)
    def test_each_event_it_names_exists(self, method: str, path: str) -> None:
        named = re.findall(r"`([a-z_]+\.[a-z_]+)`", _operation(method, path)["description"])
        assert set(named) <= set(CATALOGUE), set(named) - set(CATALOGUE)


class TestExamplesMatchTheModels:
    @pytest.mark.parametrize(("method", "path"), WITH_BODY, ids=WITH_BODY_IDS)
    def test_request_examples_pass_the_body_model_strictly(self, method: str, path: str) -> None:
        body = _operation(method, path)["requestBody"]
        [parameter] = _route(method, path).dependant.body_params
        adapter: TypeAdapter[Any] = TypeAdapter(parameter.field_info.annotation)  # as the service reads it
        for name, value in _named(body["content"][JSON]["examples"]):
            try:
                adapter.validate_json(json.dumps(value), strict=True)
            except ValueError as exc:
                pytest.fail(f"request example {name!r}: {exc}")

    @pytest.mark.parametrize(("method", "path"), REPLYING_JSON, ids=REPLYING_JSON_IDS)
    def test_reply_examples_are_what_the_response_model_writes(self, method: str, path: str) -> None:
        """Validated strictly, then written back as the service writes a reply: an example with a field the
        model lacks, or without one it has, or with a value it would write otherwise, fails."""
        route = _route(method, path)
        status, response = _success(_operation(method, path))
        content = response["content"]
        assert route.response_model is not None, status
        adapter: TypeAdapter[Any] = TypeAdapter(route.response_model)
        for name, value in _named(content[JSON].get("examples", {})):
            try:
                read = adapter.validate_json(
                    json.dumps(_field_names(route.response_model, value)), strict=True, by_name=True
                )
            except ValueError as exc:
                pytest.fail(f"reply example {name!r}: {exc}")
            assert adapter.dump_python(read, mode="json", by_alias=True) == value, name

    def test_the_metrics_example_is_prometheus_text_of_metrics_the_service_has(self) -> None:
        [media] = _success(_operation("GET", "/metrics"))[1]["content"].values()
        known = {metric.name for metric in Metrics().registry.collect()}
        for _, text in _named(media["examples"]):
            shown = {family.name for family in text_string_to_metric_families(text)}
            assert shown and shown <= known, shown - known

    def test_card_numbers_carry_their_check_digit(self) -> None:
        text = json.dumps(_document())
        numbers = re.findall(r'"member_number": "([^"]*)"', text)
        numbers += re.findall(r"member_number=(\d+)", text)
        assert numbers
        assert all(is_valid(number) for number in numbers), numbers


def _request_example(method: str, path: str) -> Any:
    first = next(iter(examples()[(method, path)].requests.values()))
    return first.value


def _reply_example(method: str, path: str) -> Any:
    first = next(iter(examples()[(method, path)].responses.values()))
    return first.value


class TestExamplesWorkAgainstTheService:
    async def test_set_up_enrol_earn_and_redeem_as_the_examples_show(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        program = await client.put(
            "/v1/program", json=_request_example("PUT", "/v1/program"), headers=bearer(admin_key)
        )
        assert program.status_code == 200, program.text
        assert program.json() == _reply_example("PUT", "/v1/program")

        enrolled = await client.post(
            "/v1/members", json=_request_example("POST", "/v1/members"), headers=bearer(pos_key)
        )
        assert enrolled.status_code == 201, enrolled.text
        member = enrolled.json()
        shown = _reply_example("POST", "/v1/members")
        assert member.keys() == shown.keys()
        assert {k: member[k] for k in ("phone", "email", "name", "points")} == {
            k: shown[k] for k in ("phone", "email", "name", "points")
        }

        earn = await client.post(
            f"/v1/members/{member['id']}/earn",
            json=_request_example("POST", "/v1/members/{member_id}/earn"),
            headers=bearer(pos_key),
        )
        assert earn.status_code == 200, earn.text
        assert earn.json().keys() == _reply_example("POST", "/v1/members/{member_id}/earn").keys()

        redeem = await client.post(
            f"/v1/members/{member['id']}/redeem",
            json=_request_example("POST", "/v1/members/{member_id}/redeem"),
            headers=bearer(pos_key),
        )
        assert redeem.status_code == 200, redeem.text
        shown = _reply_example("POST", "/v1/members/{member_id}/redeem")
        assert redeem.json().keys() == shown.keys()
        assert redeem.json()["value"] == shown["value"]


class TestHerReceiptEarnsAsShown:
    async def test_the_earn_and_the_refund_are_what_the_service_gives_her(
        self,
        client: httpx.AsyncClient,
        clock: FrozenClock,
        admin_key: str,
        pos_key: str,
        ecommerce_key: str,
    ) -> None:
        """李娜 as the examples describe her (the programme, its earning rules, her tier and her benefits), on
        the receipt's day: the earn answers the example's breakdown, and the return its points taken back."""
        clock.set(datetime.fromisoformat(NOW))
        admin = bearer(admin_key)
        program = await client.put("/v1/program", json=_request_example("PUT", "/v1/program"), headers=admin)
        assert program.status_code == 200, program.text
        for rule in _reply_example("GET", "/v1/earning-rules")["items"]:
            fields = ("name", "kind", "properties", "priority", "stackable")
            made = await client.post("/v1/earning-rules", json={k: rule[k] for k in fields}, headers=admin)
            assert made.status_code == 201, made.text
        held = _reply_example("GET", "/v1/members/{member_id}/benefits")
        [tier] = [t for t in _reply_example("GET", "/v1/tiers")["items"] if t["code"] == held["tier"]["code"]]
        await add_tier(
            client,
            admin_key,
            tier["code"],
            rank=0,
            name=tier["name"],
            points_multiplier=tier["points_multiplier"],
        )
        # Her benefits that change what she earns (the discounts do not), from her plan.
        multipliers = [b for b in held["benefits"] if b["kind"] == "points_multiplier"]
        assert [source["type"] for b in multipliers for source in b["sources"]] == ["plan"] * len(multipliers)
        benefit_ids = [
            await add_benefit(client, admin_key, b["name"], b["kind"], **b["properties"]) for b in multipliers
        ]
        [plan] = held["plans"]
        await add_plan(client, admin_key, plan, benefit_ids=benefit_ids)
        she = await enrol(client, pos_key, birthday=MEMBER["birthday"])
        assert she["tier"]["code"] == held["tier"]["code"]
        await subscribe_paid(client, ecommerce_key, she["id"], plan)

        receipt = _request_example("POST", "/v1/members/{member_id}/earn")
        earned = await client.post(f"/v1/members/{she['id']}/earn", json=receipt, headers=bearer(pos_key))
        assert earned.status_code == 200, earned.text
        shown = _reply_example("POST", "/v1/members/{member_id}/earn")
        assert (earned.json()["breakdown"], earned.json()["points_earned"]) == (
            shown["breakdown"],
            shown["points_earned"],
        )

        returned = await client.post(
            f"/v1/orders/{receipt['order_ref']}/refund",
            json=_request_example("POST", "/v1/orders/{order_ref}/refund"),
            headers=bearer(pos_key),
        )
        assert returned.status_code == 200, returned.text
        shown = _reply_example("POST", "/v1/orders/{order_ref}/refund")
        assert returned.json()["points_taken_back"] == shown["points_taken_back"]


class TestTheStoryAddsUp:
    """The examples follow 李娜 through 18 March 2026: a reader takes each balance shown to follow from the
    one before, moved by what the operation says it did."""

    @staticmethod
    def _day() -> dict[str, Any]:
        member = "/v1/members/{member_id}"
        return {
            "earn": _reply_example("POST", f"{member}/earn"),
            "redeem": _reply_example("POST", f"{member}/redeem"),
            "hold": _reply_example("POST", f"{member}/holds"),
            "release": _reply_example("POST", "/v1/holds/{hold_id}/release"),
            "capture": _reply_example("POST", "/v1/holds/{hold_id}/capture"),
            "refund": _reply_example("POST", "/v1/orders/{order_ref}/refund"),
            "points": _reply_example("GET", f"{member}/points"),
            "reward": _reply_example("POST", f"{member}/rewards/{{reward_id}}/redeem"),
            "quote": _reply_example("POST", "/v1/checkout/quote"),
            "export": _reply_example("GET", f"{member}/export"),
            "adjustment": _reply_example("POST", f"{member}/adjustments"),
            "transfer": _reply_example("POST", f"{member}/transfers"),
            "reversal": _reply_example("POST", f"{member}/transfers/{{transfer_id}}/reversal"),
            "ledger": _reply_example("GET", f"{member}/ledger")["items"],
        }

    def test_each_balance_follows_from_the_one_before(self) -> None:
        day = self._day()
        earn, redeem, hold, release, capture = (
            day[k] for k in ("earn", "redeem", "hold", "release", "capture")
        )
        refund, points, reward, export = day["refund"], day["points"], day["reward"], day["export"]["points"]
        adjustment, transfer, reversal = day["adjustment"], day["transfer"], day["reversal"]
        assert redeem["balance"] == earn["balance"] - redeem["points_redeemed"]
        assert hold["balance"] == redeem["balance"]
        assert hold["available"] == hold["balance"] - hold["points"]
        # The 300-point hold is released while the 1,000-point one still holds its points.
        assert (release["balance"], release["available"]) == (hold["balance"], hold["available"])
        assert capture["balance"] == hold["balance"] - capture["captured_points"]
        assert (
            refund["balance"]
            == capture["balance"] - refund["points_taken_back"] + refund["points_given_back"]
        )
        assert (points["balance"], points["available"]) == (refund["balance"], refund["available"])
        assert sum(month["points"] for month in points["expiring"]) == points["balance"]
        assert reward["balance"] == points["balance"] - reward["points_spent"]
        assert day["quote"]["points"]["available"] == reward["available"]
        assert (export["balance"], export["lifetime_earned"]) == (
            reward["balance"],
            points["lifetime_earned"],
        )
        assert adjustment["balance"] == export["balance"] + adjustment["points"]
        assert transfer["balance"] == adjustment["balance"] - transfer["points"]
        assert reversal["balance"] == transfer["balance"] + reversal["points"]

    def test_its_instants_come_in_that_order(self) -> None:
        day = self._day()
        [redeemed, earned] = day["ledger"]
        [order] = day["export"]["orders"]
        instants = [
            earned["created_at"],
            redeemed["created_at"],
            day["hold"]["created_at"],
            day["release"]["resolved_at"],
            day["capture"]["resolved_at"],
            order["updated_at"],  # refunded
            day["reward"]["created_at"],
            day["export"]["exported_at"],
            day["transfer"]["created_at"],
            day["reversal"]["reversed_at"],
        ]
        assert instants == sorted(instants)

    def test_the_export_shows_what_the_day_did(self) -> None:
        day = self._day()
        refund, export = day["refund"], day["export"]["points"]
        [lot] = export["lots"]  # the earn's, the list cut to one
        [hold] = export["holds"]
        [order] = day["export"]["orders"]
        assert lot["points"] == day["earn"]["points_earned"]
        assert (
            lot["remaining"] == lot["points"] - refund["points_taken_back"]
        )  # the capture spent older points
        assert (hold["status"], hold["captured_points"]) == ("captured", day["capture"]["captured_points"])
        assert hold["resolved_at"] == day["capture"]["resolved_at"]
        assert order["order_ref"] == refund["order_ref"]
        assert (order["refunded"], order["points_taken_back"]) == (
            refund["refunded_total"],
            refund["points_taken_back"],
        )
        # The earn's lot ends in the month the points view shows last, with points earned earlier that month.
        last = day["points"]["expiring"][-1]
        assert last["month"] == lot["expires_at"][:7]
        assert last["points"] > lot["remaining"] and last["expires_at"] < lot["expires_at"]

    def test_redeemed_points_come_from_the_lot_that_ends_first(self) -> None:
        day = self._day()
        [redeemed, _] = day["ledger"]
        [earn_lot] = day["export"]["points"]["lots"]
        # She has points ending in June: the redeem spends them, not the lot the earn had just made.
        assert day["points"]["expiring"][0]["expires_at"] < earn_lot["expires_at"]
        assert [lot["lot_id"] for lot in redeemed["details"]["lots"]] != [earn_lot["id"]]
