"""The audit entry of a REST write: who (the key), what (the operation and its subject), and the subject as
its own GET route shows it before the write and as the write answers after it, both read in the write's
transaction.

`before` is read as the write begins, before it takes its locks: a change another caller commits in between
(a till's earn during an adjustment) shows in `after` only. Taking the subject's lock first would change the
order in which writes lock (a transfer locks its two members in id order, whichever the path names) and let
two writes deadlock. A replace (PUT of a reward, benefit, earning rule, plan, tier, partner, the programme),
whose first lock is its subject's, reads it again once it holds that lock (UnitOfWork.subject_locked): of
two replaces at once, the second's `before` is what the first left.

The subject of `PUT /v1/tiers/{code}` is the tier at that path; of an action such as `POST
/v1/subscriptions/{subscription_id}/cancel`, the resource it acts on (`/v1/subscriptions/{subscription_id}`);
of an adjustment, the member's points. A write that creates (`POST /v1/tiers`) has nothing before.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import replace
from functools import cache
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute
from starlette.types import Message

from loyalty_api.audit import service as audit
from loyalty_api.auth.principal import Principal
from loyalty_api.errors import LoyaltyError
from loyalty_api.http.problems import all_routes
from loyalty_api.http.schemas import SHOWN_ONCE
from loyalty_api.http.spellings import spellings_in_path
from loyalty_api.ops.logging import request_id_var

# Writes whose subject is shown by another GET route than their path's: an adjustment, a transfer or an
# activity changes the member's points, an override their tier; a partner's unlinking ends its view of the
# member.
_SUBJECT_OF = {
    "/v1/members/{member_id}/adjustments": "/v1/members/{member_id}/points",
    "/v1/members/{member_id}/transfers": "/v1/members/{member_id}/points",
    "/v1/members/{member_id}/activities": "/v1/members/{member_id}/points",
    "/v1/members/{member_id}/tier/override": "/v1/members/{member_id}/tier",
    "/v1/partner/links/{ref}": "/v1/partner/members/{ref}",
}


def subject_path(route: APIRoute) -> str | None:
    """The path of the GET route that shows the write's subject (it may not exist), or None for a create."""
    path = route.path_format
    if path in _SUBJECT_OF:
        return _SUBJECT_OF[path]
    if "POST" not in (route.methods or set()):
        return path
    parent, _, last = path.rpartition("/")
    if last.startswith("{") or not parent.endswith("}"):
        return None  # a POST to a collection creates
    return parent


def reader_of(route: APIRoute, routes: Sequence[BaseRoute]) -> APIRoute | None:
    wanted = subject_path(route)
    for candidate in all_routes(routes):
        if candidate.path_format == wanted and "GET" in (candidate.methods or set()):
            return candidate
    return None


async def read_subject(reader: APIRoute, request: Request) -> Any:
    """What the subject's GET route answers now, in this request's unit of work (None when it answers
    anything but 200, such as a 403 for a key that may write but not read it)."""
    params = {name: value for name, value in request.path_params.items() if name in reader.param_convertors}
    scope = {
        **request.scope,
        "method": "GET",
        "path": reader.path_format.format(**params),
        "query_string": b"",
        "path_params": params,
    }

    async def no_body() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    handler = reader.plain_handler  # type: ignore[attr-defined]
    try:
        response: Response = await handler(Request(scope, no_body))
    except (LoyaltyError, RequestValidationError, StarletteHTTPException):
        return None
    return _json(response) if response.status_code == 200 else None


# Path parameters that may be personal data: a partner's customer ref (a partner may use a phone number).
# The entry names the member by their id instead, and keeps the path's template there.
_PERSONAL_PARAMS = frozenset({"ref"})
# Writes whose path names a credential, and its parameter: a partner perk's code, which whoever holds it
# redeems (codes from a partner's pool are kept encrypted). The entry keeps the path's template, no subject
# id, and the answer without the code; the partner's key, the plan, period and status still say what it was.
_CREDENTIALS = {"/v1/partner/perks/{code}/redeem": "code"}


# Writes that make many members at once, and the field of their reply that lists them: each member gets an
# entry of their own (the write's, naming them, its `after` their line of the reply), so that the changes
# about a member (GET /v1/audit-log?member_id=) include the write that made them.
_MEMBERS_MADE = {"/v1/members/import": "members"}


def changes_of(
    route: APIRoute, request: Request, response: Response, before: Any, *, concerned: uuid.UUID | None = None
) -> list[audit.Change]:
    """The audit entries of a write: one, or one per member for a write that makes many (`_MEMBERS_MADE`).
    `concerned`: the member the write said it was about (UnitOfWork.member_concerned), if any."""
    change = change_of(route, request, response, before, concerned=concerned)
    field = _MEMBERS_MADE.get(route.path_format)
    made = change.after.get(field) if field is not None and isinstance(change.after, dict) else None
    if not isinstance(made, list):
        return [change]
    changes = []
    for line in made:
        member_id = _uuid(line.get("id")) if isinstance(line, dict) else None
        if member_id is not None:
            changes.append(
                replace(
                    change, subject_type="members", subject_id=str(member_id), member_id=member_id, after=line
                )
            )
    return changes


def change_of(
    route: APIRoute, request: Request, response: Response, before: Any, *, concerned: uuid.UUID | None = None
) -> audit.Change:
    after = _json(response)
    credentials = {_CREDENTIALS[route.path_format]} if route.path_format in _CREDENTIALS else set()
    if isinstance(after, dict):
        unkept = secret_fields(route.response_model) | credentials
        after = {name: value for name, value in after.items() if name not in unkept}
    subject_type, subject_id = _subject(route, request, after)
    # The member it was about: named by the path, or by what the write showed (a hold's, a refund's), or by
    # the write itself when it shows no member id (a partner's perk redeem).
    member_id = (
        _uuid(request.path_params.get("member_id"))
        or _member_named(after)
        or _member_named(before)
        or concerned
    )
    if member_id is None and subject_type == "members" and route.path_format == "/v1/members":
        member_id = _uuid(subject_id)  # an enrolment
    path = request.url.path
    unnamed = _PERSONAL_PARAMS.intersection(request.path_params) | credentials
    if unnamed:
        # A customer ref stood for the member, whose id names the subject instead; a credential (a perk's
        # code) stood for no member, so the subject stays unnamed.
        subject_id = None if member_id is None or credentials else str(member_id)
        path = route.path_format.format_map(
            {name: f"{{{name}}}" if name in unnamed else value for name, value in request.path_params.items()}
        )
    return audit.Change(
        action=route.name,
        subject_type=subject_type,
        subject_id=subject_id,
        member_id=member_id,
        method=request.method,
        path=path,
        status=response.status_code,
        before=before,
        after=after,
    )


@cache
def secret_fields(model: Any) -> frozenset[str]:
    """The fields of the answer marked `SHOWN_ONCE` in its schema (a link code): shown once, kept nowhere."""
    fields = getattr(model, "model_fields", {})
    return frozenset(
        name
        for name, field in fields.items()
        if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get(SHOWN_ONCE)
    )


def actor_of(principal: Principal, *, channel: str = "rest") -> audit.Actor:
    """The key making the change, in this request (`channel`: `rest` or `graphql`)."""
    return audit.Actor(
        channel=channel,
        key_id=principal.key_id,
        key_prefix=principal.key_prefix,
        name=principal.name,
        request_id=request_id_var.get(),
    )


def _subject(route: APIRoute, request: Request, after: Any) -> tuple[str, str | None]:
    """The resource named by the path's first parameter (`tiers`, `gold`), or for a path without one, its last
    segment and the created resource's code or id."""
    segments = route.path_format.strip("/").split("/")[1:]  # without the version
    for index, segment in enumerate(segments):
        if segment.startswith("{"):
            kind = segments[index - 1] if index else segment
            name = segment.strip("{}")
            sent = str(request.path_params[name])
            # As the route reads it: a member's id sent in upper case is filed under the member's id, where
            # `?subject_id=` finds it.
            spelt = spellings_in_path(route).get(name)
            return kind, (spelt(sent) if spelt is not None else None) or sent
    created = after if isinstance(after, dict) else {}
    # A new API key is shown under `key`, beside its token, and named by its prefix.
    key = created.get("key")
    shown: dict[str, Any] = key if isinstance(key, dict) else created
    identity = shown.get("code", shown.get("id", shown.get("prefix")))
    return segments[-1], None if identity is None else str(identity)


def _member_named(representation: Any) -> uuid.UUID | None:
    return _uuid(representation.get("member_id")) if isinstance(representation, dict) else None


def _json(response: Response) -> Any:
    if not response.body or "json" not in (response.media_type or response.headers.get("content-type", "")):
        return None
    return json.loads(bytes(response.body))


def _uuid(value: Any) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
