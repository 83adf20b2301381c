"""One unit of work per request, committed before the response leaves, with Idempotency-Key handling.

Routes of the /v1 API use `UnitOfWorkRoute` (`QueryRoute` for a POST that only reads). Its handler opens the
unit of work, lets FastAPI resolve the dependencies and run the endpoint, and commits only once the response
is built, so a failed commit turns into an error response instead of a 201 for a lost write. For a POST with
an Idempotency-Key the response is recorded in that same transaction (see loyalty_api.idempotency.service).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from loyalty_api.auth import service as auth_service
from loyalty_api.auth.errors import InvalidApiKey
from loyalty_api.crypto import Vault
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.errors import LoyaltyError
from loyalty_api.http.input_guard import refuse_nul
from loyalty_api.http.problems import add_problems, internal_error, render_domain_error
from loyalty_api.idempotency import service as idempotency
from loyalty_api.idempotency.errors import (
    IdempotencyKeyReused,
    IdempotencyRequestInFlight,
    InvalidIdempotencyKey,
)
from loyalty_api.idempotency.service import Claim, StoredResponse

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# A stored response body that starts with this is encrypted (see SecretIssuingRoute).
SEALED_PREFIX = "sealed:"

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


async def _verified_owner(units: UnitsOfWork, request: Request) -> str:
    """The API key an Idempotency-Key belongs to, verified before anything is claimed or replayed: a stored
    response is only ever given back to the key that caused it."""
    token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not token:
        raise InvalidApiKey("Send the API key as `Authorization: Bearer lk_…`")
    async with units.read() as uow:
        principal = await auth_service.authenticate(uow, token)
    return principal.key_prefix


def _stored(response: Response, *, seal_with: Vault | None = None) -> StoredResponse:
    body = bytes(response.body).decode("utf-8")
    if seal_with is not None:
        body = SEALED_PREFIX + seal_with.encrypt(body)
    return StoredResponse(
        status=response.status_code,
        body=body,
        content_type=response.headers.get("content-type", "application/json"),
    )


def _replay(stored: StoredResponse, vault: Vault) -> Response:
    body = stored.body
    if body.startswith(SEALED_PREFIX):
        body = vault.decrypt(body.removeprefix(SEALED_PREFIX))
    return Response(
        content=body.encode("utf-8"),
        status_code=stored.status,
        media_type=stored.content_type,
        headers={REPLAYED_HEADER: "true"},
    )


def uow_of(request: Request) -> UnitOfWork:
    uow: UnitOfWork = request.state.uow
    return uow


async def get_uow(request: Request) -> UnitOfWork:  # async: FastAPI runs a plain def in a thread
    return uow_of(request)


class UnitOfWorkRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        if self.honours_idempotency():
            self.responses = add_problems(
                self.responses, IdempotencyKeyReused, IdempotencyRequestInFlight, InvalidIdempotencyKey
            )

    def read_only(self) -> bool:
        """Whether the route's unit of work is read-only (rolled back, no writer turn on SQLite)."""
        return (self.methods or set()) <= {"GET", "HEAD"}

    def honours_idempotency(self) -> bool:
        return "POST" in (self.methods or set())

    def seals_stored_response(self) -> bool:
        """Whether the response an Idempotency-Key replays is stored encrypted (it holds a secret)."""
        return False

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        read_only = self.read_only()
        honours_idempotency = self.honours_idempotency()
        seal = self.seals_stored_response()
        has_body = not (self.methods or set()) <= {"GET", "HEAD"}

        async def run(request: Request) -> Response:
            units: UnitsOfWork = request.app.state.units
            refusal = refuse_nul(request, await request.body() if has_body else b"")
            if refusal is not None:
                return refusal
            claimed: Claim | None = None
            key = request.headers.get(IDEMPOTENCY_HEADER) if honours_idempotency else None
            if key is not None:
                try:
                    outcome = await idempotency.claim(
                        units,
                        owner=await _verified_owner(units, request),
                        key=key,
                        fingerprint=idempotency.fingerprint(
                            request.method, request.url.path, await request.body()
                        ),
                    )
                except LoyaltyError as exc:
                    return render_domain_error(exc, request)
                if isinstance(outcome, StoredResponse):
                    return _replay(outcome, units.vault)
                claimed = outcome
            return await _run_in_unit_of_work(
                units, request, handler, read_only=read_only, claimed=claimed, seal=seal
            )

        return run


class QueryRoute(UnitOfWorkRoute):
    """A POST that only reads, such as the checkout quote (its input is too large for a query string).

    Its unit of work is read-only whatever the method: it is rolled back, never commits, and on SQLite does
    not wait for the writer turn. It ignores Idempotency-Key: asking twice is harmless, and recording the
    answer would be a write."""

    def read_only(self) -> bool:
        return True

    def honours_idempotency(self) -> bool:
        return False


class SecretIssuingRoute(UnitOfWorkRoute):
    """A POST whose response holds a secret shown only once (a webhook signing secret). An Idempotency-Key
    replays it like any other, but the stored copy is encrypted with the vault, never kept in clear."""

    def seals_stored_response(self) -> bool:
        return True


async def _run_in_unit_of_work(
    units: UnitsOfWork,
    request: Request,
    handler: Handler,
    *,
    read_only: bool,
    claimed: Claim | None,
    seal: bool = False,
) -> Response:
    uow = await units.start(read_only=read_only)
    request.state.uow = uow
    # What becomes of the Idempotency-Key once this unit of work is closed (it may hold SQLite's only
    # writer turn, which recording the outcome needs).
    settle_claim: Callable[[], Coroutine[Any, Any, None]] | None = None
    try:
        try:
            response = await handler(request)
            if claimed is not None:
                await idempotency.complete(
                    uow, claimed, _stored(response, seal_with=uow.vault if seal else None)
                )
            if read_only:
                await uow.rollback()
            else:
                await uow.commit()
            return response
        # Each branch settles the claim before rolling back: should the rollback fail too (a lost
        # connection), the key is still released below rather than left in flight until its lease ends.
        except LoyaltyError as exc:
            refusal = render_domain_error(exc, request)
            if claimed is not None:
                if exc.status in (401, 403):
                    settle_claim = partial(idempotency.release, units, claimed)
                else:  # the request ran and a business rule refused it: a retry gets the same answer
                    settle_claim = partial(idempotency.complete_alone, units, claimed, _stored(refusal))
            await uow.rollback()
            return refusal
        except (RequestValidationError, StarletteHTTPException):
            if claimed is not None:
                settle_claim = partial(idempotency.release, units, claimed)
            await uow.rollback()
            raise
        except Exception as exc:
            if claimed is not None:
                settle_claim = partial(idempotency.release, units, claimed)
            await uow.rollback()
            return internal_error(request, exc)
    finally:
        try:
            await uow.close()
        finally:
            if settle_claim is not None:
                await settle_claim()
