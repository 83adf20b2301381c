from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from loyalty_api.auth import service as auth_service
from loyalty_api.auth.principal import Scope
from tests.builders import make_key, make_partner_key, unique_phone
from tests.conftest import bearer
from tests.inspect_db import count


class TestAuthentication:
    @pytest.mark.parametrize(
        "header",
        [None, "Bearer", "Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer lk_000000000000_wrongsecret"],
    )
    async def test_missing_or_invalid_key_is_401(
        self, app: FastAPI, client: httpx.AsyncClient, header: str | None
    ) -> None:
        headers = {} if header is None else {"Authorization": header}
        response = await client.post("/v1/members", json={"phone": unique_phone()}, headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["code"] in {"invalid_api_key", "unauthenticated"}
        assert await count(app, "members") == 0

    async def test_wrong_secret_for_a_real_prefix_is_401(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        forged = pos_key[: pos_key.rindex("_") + 1] + "x" * 43
        response = await client.get(
            "/v1/members/lookup", params={"phone": "13800000000"}, headers=bearer(forged)
        )
        assert response.status_code == 401

    async def test_revoked_key_is_401(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        key = await make_key(app, Scope.pos)
        async with app.state.units.begin() as uow:
            await auth_service.revoke_key(uow, prefix=key.split("_")[1])
        response = await client.post("/v1/members", json={"phone": unique_phone()}, headers=bearer(key))
        assert response.status_code == 401

    async def test_only_the_hash_of_the_secret_is_stored(self, app: FastAPI, pos_key: str) -> None:
        from tests.inspect_db import rows

        [stored] = await rows(app, "SELECT prefix, secret_hash FROM api_keys")
        secret = pos_key.split("_", 2)[2]
        assert stored["prefix"] == pos_key.split("_")[1]
        assert secret not in stored["secret_hash"]


class TestScopes:
    async def test_billing_key_may_not_enrol(
        self, app: FastAPI, client: httpx.AsyncClient, billing_key: str
    ) -> None:
        response = await client.post(
            "/v1/members", json={"phone": unique_phone()}, headers=bearer(billing_key)
        )
        assert response.status_code == 403
        assert response.json()["code"] == "scope_not_allowed"
        assert await count(app, "members") == 0

    async def test_only_admin_lists_members(
        self, client: httpx.AsyncClient, pos_key: str, admin_key: str
    ) -> None:
        assert (await client.get("/v1/members", headers=bearer(pos_key))).status_code == 403
        assert (await client.get("/v1/members", headers=bearer(admin_key))).status_code == 200

    async def test_partner_key_cannot_read_members_directly(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:

        partner_key = await make_partner_key(app)
        response = await client.get(
            "/v1/members/lookup", params={"phone": "13800000000"}, headers=bearer(partner_key)
        )
        assert response.status_code == 403

    @pytest.mark.parametrize("scope", [Scope.admin, Scope.pos, Scope.ecommerce])
    async def test_member_desk_scopes_may_enrol(
        self, app: FastAPI, client: httpx.AsyncClient, scope: Scope
    ) -> None:
        key = await make_key(app, scope)
        response = await client.post("/v1/members", json={"phone": unique_phone()}, headers=bearer(key))
        assert response.status_code == 201

    @pytest.mark.parametrize(
        ("content", "headers"),
        [
            pytest.param(b"{", {"Content-Type": "application/json"}, id="malformed JSON"),
            pytest.param(b"{}", {"Content-Type": "text/plain"}, id="not JSON"),
            pytest.param(b"{}", {"Content-Type": "application/json", "Content-Encoding": "br"}, id="encoded"),
            pytest.param(b"[" * 40 + b"]" * 40, {"Content-Type": "application/json"}, id="too deep"),
            pytest.param(b"{}", {"Content-Type": "application/json", "Idempotency-Key": "a b"}, id="bad key"),
        ],
    )
    async def test_a_key_without_the_scope_is_403_whatever_its_body_or_idempotency_key(
        self, client: httpx.AsyncClient, pos_key: str, content: bytes, headers: dict[str, str]
    ) -> None:
        # README: a key with none of a route's scopes gets 403 scope_not_allowed, whatever it sent.
        response = await client.post("/v1/api-keys", content=content, headers={**bearer(pos_key), **headers})
        assert (response.status_code, response.json()["code"]) == (403, "scope_not_allowed")

    async def test_a_partner_key_must_name_its_partner(self, app: FastAPI) -> None:
        from loyalty_api.auth.errors import PartnerRequired

        with pytest.raises(PartnerRequired):
            await make_key(app, Scope.partner)
