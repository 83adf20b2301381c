"""How every mutation runs: the same scope rule, input model, service and Idempotency-Key rules as its REST
endpoint (see loyalty_api.http.transaction), with refusals answered as `userErrors`.

1. The key must have one of the scopes, or the call is a GraphQL error (as on every field).
2. The input is checked by the REST body's model (subclassed with the path's ids): refusals are
   `validation_error` user errors, and nothing is claimed or written.
3. With an `idempotencyKey`, the key is claimed for the caller's API key: the same key and input within 24
   hours replays the first answer (`replayed: true`), results and refusals alike, without running again;
   the same key with other input is `idempotency_key_reused`.
4. The work runs in one unit of work, and the answer is recorded in that same transaction.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from enum import Enum
from functools import cache, partial
from typing import Any, Generic, TypeVar, get_args

import strawberry
from pydantic import BaseModel, ValidationError
from strawberry.types import Info
from strawberry.types.unset import UNSET

from loyalty_api.audit import service as audit
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.errors import LoyaltyError
from loyalty_api.graphql.context import GraphQLContext
from loyalty_api.graphql.cost import assumed
from loyalty_api.graphql.errors import as_graphql_error, require
from loyalty_api.graphql.user_errors import (
    UserError,
    as_stored,
    from_stored,
    of_error,
    of_validation,
    user_errors_of,
)
from loyalty_api.http import outage
from loyalty_api.http.audit_trail import actor_of
from loyalty_api.http.edge import RequestTimedOut, spare_the_commit
from loyalty_api.http.errors import DatabaseUnavailable
from loyalty_api.http.input_guard import InvalidInput, check_strings
from loyalty_api.http.rate_limits import RateLimiter
from loyalty_api.http.schemas import Spelling
from loyalty_api.idempotency import service as idempotency
from loyalty_api.idempotency.errors import IdempotencyClaimLost
from loyalty_api.idempotency.service import Claim, StoredResponse
from loyalty_api.profiles import service as profiles
from loyalty_api.profiles.schemas import MemberRead

Input = TypeVar("Input", bound=BaseModel)
Reply = TypeVar("Reply", bound=BaseModel)

REPLAYED = "True when this answer is the one recorded for an earlier call with the same `idempotencyKey`."
# What the fingerprint's "method" is for a mutation: a REST call and a mutation never share a fingerprint.
_METHOD = "GRAPHQL"


@strawberry.type
class MutationPayload:
    """What every mutation's payload has besides its result."""

    user_errors: list[UserError] = strawberry.field(directives=[assumed(5)])
    replayed: bool = strawberry.field(description=REPLAYED)


Payload = TypeVar("Payload", bound=MutationPayload)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Outcome(Generic[Reply]):
    result: Reply | None
    user_errors: list[UserError] = field(default_factory=list)
    replayed: bool = False

    def answer(self, payload: type[Payload], **present: Callable[[Reply], Any]) -> Payload:
        """The mutation's payload: each named field `present`s the result (null when refused)."""
        shown = {name: None if self.result is None else show(self.result) for name, show in present.items()}
        return payload(**shown, user_errors=self.user_errors, replayed=self.replayed)


# What a mutation's work runs inside, as its REST route runs the service call (a budget its answer spends).
Around = Callable[[RateLimiter, Principal, Any], AbstractAsyncContextManager[None]]
# What a mutation checks or spends before its unit of work begins, as its REST route prepares (a budget: a
# round trip to the limiter's storage, which on SQLite would hold up every other write); it may refuse.
Before = Callable[[UnitsOfWork, RateLimiter, Principal, Any], Awaitable[None]]

# What a mutation's audit entry is about, when its input does not say it by an id: the collection its REST
# path names and the input field holding the item's key (`("orders", "order_ref")`).
Subject = tuple[str, str]


async def run_mutation(
    info: Info[GraphQLContext, None],
    *,
    name: str,
    scopes: Sequence[Scope],
    body: Callable[[], dict[str, Any]],
    model: type[Input],
    reply: type[Reply],
    work: Callable[[UnitOfWork, Principal, Input], Awaitable[Reply]],
    idempotency_key: str | None,
    subject: Subject | None = None,
    before: Before | None = None,
    around: Around | None = None,
) -> Outcome[Reply]:
    principal = require(info.context, *scopes)
    # As REST: the time limit counts from before the key is claimed, so the claim's lease (as long) ends no
    # earlier than the work is cut off.
    deadline = asyncio.get_running_loop().time() + info.context.units.settings.request_timeout_seconds
    # Mutations run one after another; a payload read before this one must not answer for what this one
    # changes (`member { pointsAccount }` after a second earn).
    await info.context.snapshot.renew()
    info.context.loaders.clear()
    units = info.context.units
    try:
        given = body()
        check_strings(given, max_depth=units.settings.max_json_depth)
        request = model.model_validate(given)
    except InvalidInput as exc:
        return Outcome(None, of_error(exc))
    except ValidationError as exc:
        return Outcome(None, of_validation(exc))
    claimed: Claim | None = None
    if idempotency_key is not None:
        canonical = json.dumps(
            ids_as_read(given, request), sort_keys=True, separators=(",", ":"), default=str
        ).encode()
        try:
            found = await _in_time(
                units,
                deadline,
                idempotency.claim(
                    units,
                    # The key's line, as REST's (http/transaction.py): a rotated key replays its replies.
                    owner=principal.key_lineage,
                    key=idempotency_key,
                    fingerprint=idempotency.fingerprint(_METHOD, name, canonical),
                    deadline=deadline,
                ),
            )
        except LoyaltyError as exc:
            errors = user_errors_of(exc)
            if errors is None:
                raise as_graphql_error(exc) from exc
            return Outcome(None, _keyed(errors))
        if isinstance(found, StoredResponse):
            return _replayed(found, reply, units.vault.decrypt)
        claimed = found

    if before is not None:
        try:
            await _in_time(units, deadline, before(units, info.context.rate_limiter, principal, request))
        except BaseException as exc:
            if claimed is not None:  # nothing ran: a retry with the key runs it
                await idempotency.release(units, claimed, deadline=deadline)
            if not isinstance(exc, LoyaltyError):
                raise
            errors = user_errors_of(exc)
            if errors is None:
                raise as_graphql_error(exc) from exc
            return Outcome(None, errors)
    try:
        # On SQLite, a wait for the writer's turn and for the database's write lock.
        uow = await _in_time(units, deadline, units.start(deadline=deadline))
    except BaseException as exc:
        if claimed is not None:  # nothing ran: a retry with the key runs it
            await idempotency.release(units, claimed, deadline=deadline)
        if isinstance(exc, RequestTimedOut):
            raise as_graphql_error(exc) from exc
        raise
    settle_claim: Callable[[], Awaitable[None]] | None = None
    limit = asyncio.timeout_at(deadline)
    try:
        try:
            async with limit:  # the work only: a commit under way is never cut off
                before = await _member_before(uow, request) if principal.audited else None
                async with (
                    nullcontext() if around is None else around(info.context.rate_limiter, principal, request)
                ):
                    result = await work(uow, principal, request)
            if principal.audited:
                actor = actor_of(principal, channel="graphql")
                await audit.record(uow, actor, _change(name, request, before, result, subject))
            if claimed is not None:
                await idempotency.complete(uow, claimed, _stored(uow, 200, result, []))
            spare_the_commit(info.context.request)
            await outage.commit(uow)
            return Outcome(result)
        except IdempotencyClaimLost as exc:  # a retry took the key over: its work is the one kept
            await uow.rollback()
            return Outcome(None, _keyed(of_error(exc)))
        except LoyaltyError as exc:
            errors = user_errors_of(exc)
            if claimed is not None:
                # A business rule refused it: a retry gets the same answer. A refusal of the call, invalid
                # input or a race lost for a moment: the key is free for a retry at once.
                settle_claim = (
                    partial(idempotency.release, units, claimed, deadline=deadline)
                    if errors is None or not exc.final
                    else partial(
                        idempotency.complete_alone,
                        units,
                        claimed,
                        _stored(uow, exc.status, None, errors),
                        deadline=deadline,
                    )
                )
            await uow.rollback()
            if errors is None:
                raise as_graphql_error(exc) from exc
            return Outcome(None, errors)
        except BaseException as exc:
            if claimed is not None:
                settle_claim = partial(idempotency.release, units, claimed, deadline=deadline)
            await uow.rollback()
            if isinstance(exc, TimeoutError) and limit.expired():
                timed_out = RequestTimedOut.after(units.settings.request_timeout_seconds)
                raise as_graphql_error(timed_out) from exc
            raise
    finally:
        try:
            await uow.close()  # first: on SQLite it gives back the writer turn that settling needs
        finally:
            if settle_claim is not None and claimed is not None:
                try:
                    await outage.settle(settle_claim, claimed, units.clock)
                except DatabaseUnavailable as exc:
                    raise as_graphql_error(exc) from exc


def ids_as_read(given: Any, read: Any) -> Any:
    """The input as an `idempotencyKey`'s fingerprint takes it: each UUID in it (`memberId`, `toMemberId`,
    an id in a list) written as the input model reads it, and each field marked with a `Spelling` (a
    coupon's `code`) as the mark writes it, as REST writes the ids of its path. A UUID is one value however
    it is spelt (upper case, without dashes, in braces, as a URN), and so is a coupon's code (any case, with
    or without its hyphens), so a retry that spells the member or the coupon otherwise is the same call, to
    be replayed, not another one refused as `idempotency_key_reused`. An id in its usual spelling (a UUID in
    lower case with dashes, a code as issued) is left as sent, and an input with nothing to rewrite is
    answered as it is (the same object): the fingerprint is then the one recorded before this read ids so,
    and the till's call pays a look at its id fields only. `read` is the validated model."""
    if isinstance(read, uuid.UUID):
        spelt = str(read)
        return spelt if isinstance(given, str) and spelt != given else given
    if isinstance(read, list | tuple) and isinstance(given, list) and len(read) == len(given):
        items = [ids_as_read(item, as_read) for item, as_read in zip(given, read, strict=True)]
        return items if any(a is not b for a, b in zip(items, given, strict=True)) else given
    if not (isinstance(read, BaseModel) and isinstance(given, dict)):
        return given
    rewritten: dict[str, Any] | None = None
    for name in _fields_holding_ids(type(read)):
        if name in given and (value := ids_as_read(given[name], getattr(read, name))) is not given[name]:
            rewritten = dict(given) if rewritten is None else rewritten
            rewritten[name] = value
    for name, canonical in _spelt_fields(type(read)):
        sent = given.get(name)
        if isinstance(sent, str) and (written := canonical(sent)) is not None and written != sent:
            rewritten = dict(given) if rewritten is None else rewritten
            rewritten[name] = written
    return given if rewritten is None else rewritten


@cache
def _spelt_fields(model: type[BaseModel]) -> tuple[tuple[str, Callable[[str], str | None]], ...]:
    """The fields of an input model marked with a `Spelling`, with how the fingerprint writes each."""
    return tuple(
        (name, mark.canonical)
        for name, field in model.model_fields.items()
        for mark in field.metadata
        if isinstance(mark, Spelling)
    )


@cache
def _fields_holding_ids(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of an input model that can hold a UUID, at any depth: those `ids_as_read` looks at."""
    return tuple(name for name, field in model.model_fields.items() if _holds_ids(field.annotation, {model}))


def _holds_ids(annotation: Any, seen: set[type]) -> bool:
    if annotation is uuid.UUID:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:  # a model that holds itself: its fields are being looked at already
            return False
        inner = seen | {annotation}
        return any(_holds_ids(field.annotation, inner) for field in annotation.model_fields.values())
    return any(_holds_ids(argument, seen) for argument in get_args(annotation))


async def _in_time(units: UnitsOfWork, deadline: float, step: Awaitable[T]) -> T:
    """A step before the work, under the mutation's own time limit (ending at `deadline`): once a mutation of
    the document has committed, the edge's backstop stands down for the rest of it. On SQLite the step ends
    its waits at the limit itself (UnitsOfWork.time_limit)."""
    limit = units.time_limit(deadline)
    try:
        async with limit:
            return await step
    except TimeoutError:
        if asyncio.get_running_loop().time() < deadline:
            raise
        raise RequestTimedOut.after(units.settings.request_timeout_seconds) from None


async def _member_before(uow: UnitOfWork, request: BaseModel) -> Any:
    """The member a mutation names, as `GET /v1/members/{id}` shows them (status, tier, points), read in its
    unit of work before it runs: the audit entry's `before`."""
    member_id = getattr(request, "member_id", None)
    if not isinstance(member_id, uuid.UUID):
        return None
    try:
        profile = await profiles.get_member(uow, member_id)
    except LoyaltyError:
        return None
    return MemberRead.model_validate(profile).model_dump(mode="json")


def _change(
    name: str, request: BaseModel, before: Any, result: BaseModel, subject: Subject | None
) -> audit.Change:
    """A mutation's audit entry, with the subject the REST path names: `subject` (the collection and the input
    field that names it) when the mutation gives one, else the member its input names, else the first other
    id it names (`hold_id` → `holds`), else the member it made (an enrolment), else the mutation itself; the
    result is the `after`. The member it was about is the one the input names, or else the one the result
    shows (a hold's, a subscription's, a new member), as a REST write's entry has it."""
    member_id = getattr(request, "member_id", None)
    if subject is None:
        named = [
            f for f in type(request).model_fields if f.endswith("_id") and getattr(request, f) is not None
        ]
        named.sort(key=lambda field: field != "member_id")  # a member's id first, as REST's paths put it
        subject = (f"{named[0].removesuffix('_id')}s", named[0]) if named else None
    subject_type, subject_id = (
        (name, None) if subject is None else (subject[0], str(getattr(request, subject[1])))
    )
    if not isinstance(member_id, uuid.UUID):
        member_id = _member_shown(result)
    if not isinstance(member_id, uuid.UUID) and isinstance(result, MemberRead):
        # An enrolment names no member in its input: the member it made is its subject, as REST files
        # POST /v1/members, so that the changes about a member (`?member_id=`) include how they joined.
        member_id = result.id
        subject_type, subject_id = "members", str(result.id)
    return audit.Change(
        action=name,
        subject_type=subject_type,
        subject_id=subject_id,
        member_id=member_id if isinstance(member_id, uuid.UUID) else None,
        before=before,
        after=result.model_dump(mode="json"),
    )


def _member_shown(result: BaseModel) -> Any:
    """The member a result shows: its own `member_id`, or that of the item it holds (a payment's
    subscription), as REST reads it from the subject's GET route."""
    member_id = getattr(result, "member_id", None)
    if member_id is not None:
        return member_id
    held = (getattr(getattr(result, name), "member_id", None) for name in type(result).model_fields)
    return next((shown for shown in held if isinstance(shown, uuid.UUID)), None)


def body_of(value: Any) -> Any:
    """A strawberry input as the REST body it stands for: snake_case keys as REST names them, fields left
    out (UNSET) left out, enums as their values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
        return {name: body_of(given) for name, given in fields if given is not UNSET}
    if isinstance(value, list):
        return [body_of(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    return value


def _keyed(errors: list[UserError]) -> list[UserError]:
    """Idempotency refusals are about the `idempotencyKey` argument."""
    for error in errors:
        error.field = error.field or "idempotencyKey"
    return errors


def _stored(
    uow: UnitOfWork, status: int, result: BaseModel | None, errors: list[UserError]
) -> StoredResponse:
    # Encrypted like REST's: a reply may hold personal data (an enrolment's phone and e-mail).
    answer = {
        "result": None if result is None else result.model_dump(mode="json"),
        "userErrors": as_stored(errors),
    }
    return StoredResponse(
        status=status, body=uow.vault.encrypt(json.dumps(answer)), content_type="application/json"
    )


def _replayed(stored: StoredResponse, reply: type[Reply], decrypt: Callable[[str], str]) -> Outcome[Reply]:
    answer = json.loads(decrypt(stored.body))
    result = answer["result"]
    return Outcome(
        None if result is None else reply.model_validate(result),
        from_stored(answer["userErrors"]),
        replayed=True,
    )


def mutation(
    *,
    input: type,
    payload: type[MutationPayload],
    scopes: Sequence[Scope],
    model: type[BaseModel],
    reply: type[BaseModel],
    work: Callable[[UnitOfWork, Principal, Any], Awaitable[Any]],
    answer: Mapping[str, Callable[[Any], Any]],
    description: str,
    body: Callable[[Any], dict[str, Any]] = body_of,
    subject: Subject | None = None,
    before: Before | None = None,
    around: Around | None = None,
) -> Any:
    """A mutation field `(input, idempotencyKey)` that runs `work` through `run_mutation` and answers
    `payload`, each field of `answer` presenting the result. Its idempotency fingerprint is named by the
    field's GraphQL name.

    Declare the field as `XPayload | None`, as GraphQL's mutations are by convention: a call refused part way
    through a document (a spent budget, a scope the key lacks) then nulls that mutation alone, where a
    non-null one would null `data` and hide what the mutations before it committed."""

    async def resolve(
        info: Info[GraphQLContext, None], input: Any, idempotency_key: str | None = None
    ) -> MutationPayload:
        outcome = await run_mutation(
            info,
            name=info.field_name,
            scopes=scopes,
            body=partial(body, input),
            model=model,
            reply=reply,
            work=work,
            idempotency_key=idempotency_key,
            subject=subject,
            before=before,
            around=around,
        )
        return outcome.answer(payload, **answer)

    # Strawberry reads the argument and return types from the annotations: this field's own.
    resolve.__annotations__ = {
        "info": Info[GraphQLContext, None],
        "input": input,
        "idempotency_key": str | None,
        "return": payload | None,
    }
    return strawberry.mutation(resolver=resolve, description=description)
