"""A Python client generated from the committed OpenAPI document with openapi-python-client, used as an
integrator would against the served app: set up the programme, enrol, earn and redeem with
Idempotency-Keys."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi import FastAPI

from tests.apps import on_loopback
from tests.test_openapi import COMMITTED

PACKAGE = "loyalty_api_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("generated")
    # The generator runs ruff over what it wrote; ruff is in the same environment as the tests.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(COMMITTED),
            "--meta",
            "none",
            "--output-path",
            str(folder / PACKAGE),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path},
        check=False,
        timeout=120,
    )
    sys.path.insert(0, str(folder))
    try:
        yield run.stdout + run.stderr
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_the_client_generates_without_a_warning(generated: str) -> None:
    assert "Warning" not in generated and "Error" not in generated, generated
    assert "Generating" in generated


async def test_a_till_enrols_earns_and_redeems_through_the_generated_client(
    generated: str, app: FastAPI, admin_key: str, pos_key: str
) -> None:
    models = _module("models")
    put_program = _module("api.programme.put_program")
    enrol_member = _module("api.members.enrol_member")
    earn = _module("api.points.earn")
    redeem = _module("api.points.redeem")
    read_points = _module("api.points.read_points")
    client_module = _module("client")

    async with on_loopback(app) as base_url:
        operator: Any = client_module.AuthenticatedClient(base_url=base_url, token=admin_key)
        till: Any = client_module.AuthenticatedClient(base_url=base_url, token=pos_key)
        programme = models.ProgramWrite(
            currency="CNY",
            timezone="Asia/Shanghai",
            earn_rate="1",
            point_value_minor="1",
            rounding=models.Rounding.DOWN,
            expiry_months=12,
            min_redeem_points=1,
            max_redeem_share="1",
        )
        set_up = await put_program.asyncio_detailed(client=operator, body=programme)
        assert set_up.status_code == 200, set_up.content

        enrolment = models.MemberCreate(phone="13912345678", name="李娜")
        first = await enrol_member.asyncio_detailed(
            client=till, body=enrolment, idempotency_key="till-1-0001"
        )
        again = await enrol_member.asyncio_detailed(
            client=till, body=enrolment, idempotency_key="till-1-0001"
        )
        assert first.status_code == again.status_code == 201, first.content
        member = first.parsed
        assert isinstance(member, models.MemberRead)
        assert again.parsed.id == member.id
        assert again.headers["Idempotent-Replayed"] == "true"

        purchase = models.EarnRequest(
            order_ref="T1-0001", amount=models.MoneyBody(amount=12990, currency="CNY")
        )
        earned = await earn.asyncio(
            client=till, member_id=member.id, body=purchase, idempotency_key="till-1-0002"
        )
        assert isinstance(earned, models.EarnRead), earned
        assert earned.points_earned == 129

        payment = models.RedeemRequest(points=100, order_ref="T1-0002")
        redeemed = await redeem.asyncio(
            client=till, member_id=member.id, body=payment, idempotency_key="till-1-3"
        )
        assert isinstance(redeemed, models.RedeemRead), redeemed
        assert redeemed.balance == 29

        refused = await redeem.asyncio(
            client=till,
            member_id=member.id,
            body=models.RedeemRequest(points=1_000, order_ref="T1-0003"),
            idempotency_key="till-1-0004",
        )
        assert isinstance(refused, models.Problem)
        assert refused.code == "insufficient_points"

        balance = await read_points.asyncio(client=till, member_id=member.id)
        assert isinstance(balance, models.PointsRead)
        assert (balance.balance, balance.available) == (29, 29)
