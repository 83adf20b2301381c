"""/v1/webhook-endpoints, /v1/webhook-deliveries (admin) and /v1/event-types (any key)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from loyalty_api.auth.errors import InvalidApiKey, ScopeNotAllowed
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.errors import InvalidField
from loyalty_api.http.dependencies import EmptyIsLeftOut, Paging, UoW, require
from loyalty_api.http.edge import principal_of
from loyalty_api.http.problems import problem_responses
from loyalty_api.http.transaction import UnitOfWorkRoute
from loyalty_api.partners.errors import PartnerNotActive, PartnerNotFound
from loyalty_api.webhooks import catalogue, endpoints
from loyalty_api.webhooks.errors import (
    DeliveryInFlight,
    EndpointDisabled,
    EventTypeNotTaken,
    TargetNotAllowed,
    TargetUnresolvable,
    WebhookDeliveryNotFound,
    WebhookEndpointNotFound,
)
from loyalty_api.webhooks.schemas import (
    DeliveryStatus,
    EventTypeList,
    EventTypeName,
    EventTypeRead,
    Replay,
    ReplayResult,
    SecretRotation,
    WebhookAttemptRead,
    WebhookDeliveryDetail,
    WebhookDeliveryPage,
    WebhookDeliveryRead,
    WebhookEndpointCreate,
    WebhookEndpointPage,
    WebhookEndpointRead,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
)
from loyalty_api.webhooks.targets import TargetCheck, check_in_advance


class _TargetCheckingRoute(UnitOfWorkRoute):
    """Checks the `url` of a body (an endpoint's) before the unit of work opens: resolving its host may take
    seconds, and on SQLite an open writing unit holds up every other write meanwhile. Only for a caller the
    route lets in: nobody else makes the service look a name up."""

    async def prepare(self, request: Request, body: Any) -> None:
        url = getattr(body, "url", None)
        principal = principal_of(request)
        if isinstance(url, str) and principal is not None and principal.has_any(self.scopes):
            settings = request.app.state.units.settings
            request.state.target = await check_in_advance(
                url, allow_private=settings.webhook_allow_private_targets
            )


async def _target(request: Request) -> TargetCheck | None:  # async: FastAPI runs a plain def in a thread
    target: TargetCheck | None = getattr(request.state, "target", None)
    return target


router = APIRouter(prefix="/v1", tags=["webhooks"], route_class=_TargetCheckingRoute)
Operator = Annotated[Principal, Depends(require(Scope.admin))]
CheckedTarget = Annotated[TargetCheck | None, Depends(_target)]
AnyCaller = Annotated[
    Principal, Depends(require(Scope.admin, Scope.pos, Scope.ecommerce, Scope.partner, Scope.billing))
]
_AUTH = (InvalidApiKey, ScopeNotAllowed)
_TARGET = (TargetNotAllowed, TargetUnresolvable)


@router.post(
    "/webhook-endpoints",
    status_code=201,
    summary="Register a webhook endpoint; its signing secret is in this response only",
    responses=problem_responses(*_AUTH, *_TARGET, InvalidField, PartnerNotFound, PartnerNotActive),
)
async def create_endpoint(
    body: WebhookEndpointCreate, uow: UoW, _: Operator, target: CheckedTarget
) -> WebhookEndpointWithSecret:
    """Register a URL to receive events: every event of `event_types` (all types when empty, new ones too) is
    POSTed to it, signed per Standard Webhooks. The signing `secret` (`whsec_…`) is in this response only:
    store it. With `partner_id` the endpoint is that partner's: it receives only events about the partner
    (`partner.linked`, `partner.unlinked`, `partner.exchange_requested`, `partner.exchange_resolved`,
    `partner.exchange_received`, `partner.perk_granted`, `partner.benefit_used`, and `member.erased` for the
    members linked to it), of its `event_types`: other types listed there never reach it.

    For `admin` keys only; honours `Idempotency-Key`. The URL must be http(s) and resolve to public addresses,
    else 422 `webhook_target_not_allowed` or 422 `webhook_target_unresolvable`. Emits
    `webhook_endpoint.changed`."""
    issued = await endpoints.create_endpoint(
        uow,
        url=body.url,
        description=body.description,
        event_types=body.event_types,
        enabled=body.enabled,
        partner_id=body.partner_id,
        target=target,
    )
    return WebhookEndpointWithSecret.issued(issued)


@router.get(
    "/webhook-endpoints",
    summary="List webhook endpoints, newest first (never their secrets)",
    responses=problem_responses(*_AUTH, InvalidField),
)
async def list_endpoints(uow: UoW, _: Operator, paging: Paging) -> WebhookEndpointPage:
    """The webhook endpoints, newest first, page by page, never with their secrets; `failing_since`,
    `next_probe_at` and `disabled_reason` show those in trouble.

    For `admin` keys only. Reads only."""
    page = await endpoints.list_endpoints(uow, limit=paging.limit, cursor=paging.cursor)
    return WebhookEndpointPage(
        items=[WebhookEndpointRead.of(e) for e in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/webhook-endpoints/{endpoint_id}",
    summary="Read a webhook endpoint (never its secret)",
    responses=problem_responses(*_AUTH, WebhookEndpointNotFound),
)
async def read_endpoint(endpoint_id: uuid.UUID, uow: UoW, _: Operator) -> WebhookEndpointRead:
    """One webhook endpoint, never with its secret.

    For `admin` keys only. Reads only."""
    return WebhookEndpointRead.of(await endpoints.get_endpoint(uow, endpoint_id))


@router.patch(
    "/webhook-endpoints/{endpoint_id}",
    summary="Change a webhook endpoint's URL, description, event types or whether it is enabled",
    responses=problem_responses(*_AUTH, WebhookEndpointNotFound, *_TARGET, InvalidField),
)
async def update_endpoint(
    endpoint_id: uuid.UUID, body: WebhookEndpointUpdate, uow: UoW, _: Operator, target: CheckedTarget
) -> WebhookEndpointRead:
    """Change the fields sent: `url`, `description` (null clears it), `event_types`, `enabled`. `enabled:
    true` re-enables an endpoint disabled for failing (or for answering 410 Gone) and forgets its failures;
    `/replay` sends what it missed. A new `url`, or enabling an endpoint that was off or failing, sends the
    deliveries waiting on their back-off at once. New `event_types` end the pending deliveries of types it
    no longer takes: they are listed as `failed`, their `last_error` saying why.

    For `admin` keys only. PATCH does not take `Idempotency-Key`: a repeat sets the same values. Emits
    `webhook_endpoint.changed`, unless the endpoint has the values sent already (a repeat changes
    nothing)."""
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    return WebhookEndpointRead.of(await endpoints.update_endpoint(uow, endpoint_id, target=target, **changes))


@router.delete(
    "/webhook-endpoints/{endpoint_id}",
    status_code=204,
    summary="Delete a webhook endpoint with its deliveries and their attempts",
    responses=problem_responses(*_AUTH, WebhookEndpointNotFound),
)
async def delete_endpoint(endpoint_id: uuid.UUID, uow: UoW, _: Operator) -> Response:
    """Delete a webhook endpoint with its deliveries and their attempts; nothing more is sent to it. Answers
    204 with no body.

    For `admin` keys only. Emits `webhook_endpoint.changed`."""
    await endpoints.delete_endpoint(uow, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/webhook-endpoints/{endpoint_id}/rotate-secret",
    summary="Give the endpoint a new signing secret (in this response only); the old one signs too "
    "for `overlap_hours`",
    responses=problem_responses(*_AUTH, WebhookEndpointNotFound, InvalidField),
)
async def rotate_secret(
    endpoint_id: uuid.UUID, uow: UoW, _: Operator, body: SecretRotation | None = None
) -> WebhookEndpointWithSecret:
    """Give the endpoint a new signing secret, in this response only. The old one keeps signing beside it (two
    signatures in `webhook-signature`) for `overlap_hours` (default 24; 0 stops it at once), so receivers
    switch without downtime. The body may be left out.

    For `admin` keys only; honours `Idempotency-Key`. Emits `webhook_endpoint.changed`."""
    overlap = (body or SecretRotation()).overlap_hours
    return WebhookEndpointWithSecret.issued(
        await endpoints.rotate_secret(uow, endpoint_id, overlap_hours=overlap)
    )


@router.post(
    "/webhook-endpoints/{endpoint_id}/replay",
    summary="Send the endpoint again every event since a time, of the types it takes",
    responses=problem_responses(*_AUTH, WebhookEndpointNotFound, EndpointDisabled),
)
async def replay(endpoint_id: uuid.UUID, body: Replay, uow: UoW, _: Operator) -> ReplayResult:
    """Send the endpoint again every event since `since` of the types it takes: each gets a delivery due now,
    new or made due again. Answers how many. Events are kept `LOYALTY_EVENT_RETENTION_DAYS` (90): `since`
    may reach back that far less an hour (`validation_error` otherwise). A disabled endpoint is 409
    `webhook_endpoint_disabled`: enable it first.

    For `admin` keys only; honours `Idempotency-Key`."""
    return ReplayResult(deliveries=await endpoints.replay(uow, endpoint_id, since=body.since))


@router.get(
    "/webhook-endpoints/{endpoint_id}/deliveries",
    summary="The endpoint's deliveries, newest first",
    responses=problem_responses(*_AUTH, WebhookEndpointNotFound, InvalidField),
)
async def list_deliveries(
    endpoint_id: uuid.UUID,
    uow: UoW,
    _: Operator,
    paging: Paging,
    status: Annotated[DeliveryStatus | None, Query(), EmptyIsLeftOut] = None,
    event_type: Annotated[EventTypeName | None, Query(), EmptyIsLeftOut] = None,
) -> WebhookDeliveryPage:
    """The endpoint's deliveries, newest first, page by page, optionally of one `status` (`pending`,
    `succeeded`, `failed`) or `event_type` (one of `GET /v1/event-types`, or a type since dropped from it
    that this endpoint has deliveries of; else 422 `validation_error`): the attempts that count towards
    giving up, when the next is due, the last status code and error.

    For `admin` keys only. Reads only."""
    page = await endpoints.list_deliveries(
        uow, endpoint_id, status=status, event_type=event_type, limit=paging.limit, cursor=paging.cursor
    )
    return WebhookDeliveryPage(
        items=[WebhookDeliveryRead.model_validate(d) for d in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/webhook-deliveries/{delivery_id}",
    summary="A delivery with its attempts: when, the receiver's status and response, the error",
    responses=problem_responses(*_AUTH, WebhookDeliveryNotFound),
)
async def read_delivery(delivery_id: uuid.UUID, uow: UoW, _: Operator) -> WebhookDeliveryDetail:
    """A delivery with its latest 100 attempts, oldest first: when, the receiver's status code, the error, how
    long it took and the start of the response body.

    For `admin` keys only. Reads only."""
    found = await endpoints.get_delivery(uow, delivery_id)
    return WebhookDeliveryDetail(
        **WebhookDeliveryRead.model_validate(found.delivery).model_dump(),
        attempt_log=[WebhookAttemptRead.model_validate(a) for a in found.attempts],
    )


@router.post(
    "/webhook-deliveries/{delivery_id}/retry",
    summary="Send a delivery again now (failed, pending or even succeeded)",
    responses=problem_responses(
        *_AUTH, WebhookDeliveryNotFound, DeliveryInFlight, EndpointDisabled, EventTypeNotTaken
    ),
)
async def retry_delivery(delivery_id: uuid.UUID, uow: UoW, _: Operator) -> WebhookDeliveryRead:
    """Send a delivery again now, whatever its status (failed, pending or succeeded). Its `webhook-id` stays
    the same, so receivers dedupe it. No body.

    For `admin` keys only; honours `Idempotency-Key`. One a worker is sending right now is 409
    `webhook_delivery_in_flight`; one whose endpoint is disabled, 409 `webhook_endpoint_disabled` (enable
    the endpoint first); one of an event type its endpoint no longer takes (its `event_types` changed since),
    409 `webhook_event_type_not_taken`, as a replay passes such events over (add the type back first)."""
    return WebhookDeliveryRead.model_validate(await endpoints.retry_delivery(uow, delivery_id))


@router.get(
    "/event-types",
    summary="Every event type webhooks carry, with the JSON schema of its payload",
    responses=problem_responses(*_AUTH, InvalidField),
)
async def list_event_types(_: AnyCaller, paging: Paging) -> EventTypeList:
    """Every event type webhooks carry, by name, page by page: what it means and the JSON Schema of its
    payload (the webhook body's `data`). The same list is in `openapi/event-types.json`.

    For every key: `admin`, `pos`, `ecommerce`, `partner` and `billing`. Reads only."""
    page = catalogue.list_event_types(limit=paging.limit, cursor=paging.cursor)
    return EventTypeList(items=[EventTypeRead.of(t) for t in page.items], next_cursor=page.next_cursor)
