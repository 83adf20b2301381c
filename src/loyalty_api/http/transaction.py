"""One unit of work per request, committed before the response leaves, with Idempotency-Key handling.

Routes of the /v1 API use `UnitOfWorkRoute` (`QueryRoute` for a POST that only reads). Its handler opens the
unit of work, lets FastAPI resolve the dependencies and run the endpoint, and commits only once the response
is built, so a failed commit turns into an error response instead of a 201 for a lost write. For a POST with
an Idempotency-Key the response is recorded in that same transaction (see loyalty_api.idempotency.service).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Coroutine, Mapping
from decimal import Decimal, InvalidOperation
from functools import cached_property, partial
from typing import Annotated, Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from loyalty_api.audit import service as audit
from loyalty_api.auth.errors import AddressNotAllowed, InvalidApiKey, ScopeNotAllowed
from loyalty_api.auth.principal import Scope
from loyalty_api.cache import TtlCache
from loyalty_api.crypto import Vault
from loyalty_api.db.uow import UnitOfWork, UnitsOfWork
from loyalty_api.errors import LoyaltyError
from loyalty_api.http import audit_trail, outage
from loyalty_api.http.edge import (
    HeadersTooLarge,
    PayloadTooLarge,
    RequestTimedOut,
    UriTooLong,
    principal_of,
    spare_the_commit,
)
from loyalty_api.http.errors import (
    DatabaseUnavailable,
    MalformedJson,
    UnsupportedMediaType,
    refuse_unless_plain_json,
)
from loyalty_api.http.input_guard import InvalidInput, screen
from loyalty_api.http.problems import add_problems, render_domain_error, unexpected_error
from loyalty_api.http.rate_limits import RateLimited
from loyalty_api.http.spellings import spellings_in_path
from loyalty_api.idempotency import service as idempotency
from loyalty_api.idempotency.errors import (
    IdempotencyClaimLost,
    IdempotencyKeyReused,
    IdempotencyRequestInFlight,
    InvalidIdempotencyKey,
)
from loyalty_api.idempotency.service import Claim, StoredResponse

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _idempotency_key(request: Request) -> str | None:
    """The header's value. Several lines of it are one comma-separated list (RFC 9110 §5.3: a proxy may join
    them, and a key holds no space), so they are refused; the first alone would let a retry that sends them
    in another order run the work again."""
    lines = request.headers.getlist(IDEMPOTENCY_HEADER)
    if len(lines) > 1:
        raise InvalidIdempotencyKey(
            f"The Idempotency-Key header was sent {len(lines)} times: send one key, once."
        )
    return lines[0] if lines else None


def _owner(request: Request) -> str:
    """The API key an Idempotency-Key belongs to, verified by the edge before anything is claimed or
    replayed: a stored response is only ever given back to the key that caused it, or to a key that replaced
    it by rotation (its line), so a retry sent with the replacement does not do the work a second time."""
    principal = principal_of(request)
    if principal is None:
        raise InvalidApiKey.missing()
    return principal.key_lineage


def _stored(response: Response, vault: Vault) -> StoredResponse:
    """The response as an Idempotency-Key keeps it: encrypted, since replies hold personal data (an
    enrolment's phone and e-mail) and secrets shown once (a webhook's signing secret)."""
    return StoredResponse(
        status=response.status_code,
        body=vault.encrypt(bytes(response.body).decode("utf-8")),
        content_type=response.headers.get("content-type", "application/json"),
    )


def _replay(stored: StoredResponse, vault: Vault) -> Response:
    return Response(
        content=idempotency.opened(stored.body, vault).encode("utf-8"),
        status_code=stored.status,
        media_type=stored.content_type,
        headers={REPLAYED_HEADER: "true"},
    )


class _ScreenedRequest(Request):
    """The request FastAPI's handler is given, made by the route before anything reads the request: a
    request object keeps the body it read, so the one that reads it must be the one the handler gets. Its
    JSON is what the route screened: the model the strict check gave, which FastAPI's own validation takes
    as it is, or the screened document when the check refused it. FastAPI neither parses nor validates the
    body again."""

    screened: Any = None

    async def json(self) -> Any:
        return self.screened


def uow_of(request: Request) -> UnitOfWork:
    uow: UnitOfWork = request.state.uow
    return uow


async def get_uow(request: Request) -> UnitOfWork:  # async: FastAPI runs a plain def in a thread
    return uow_of(request)


IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "description": "Any unique string (a UUID, or till and receipt number): 1–255 visible ASCII characters. "
    "The same key and body within 24 hours replays the first answer, marked `Idempotent-Replayed: true`, "
    "without doing the work again.",
    # No example: tools that fill a form from examples would send the same key with every call.
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": idempotency.KEY_PATTERN},
}


class UnitOfWorkRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        # FastAPI reads the body as the route screened it (`_ScreenedRequest`): one it never screens is none.
        assert self.body_field is None or self.takes_body(), f"{path}: a body only with POST, PUT or PATCH"
        # What the edge can answer on any route, before or around the endpoint (EdgeMiddleware measures the
        # query string and the headers before anything else, so every route can answer 414 and 431).
        edge: list[type[LoyaltyError]] = [
            InvalidApiKey,
            AddressNotAllowed,
            RateLimited,
            RequestTimedOut,
            UriTooLong,
            HeadersTooLarge,
            DatabaseUnavailable,
        ]
        if self.takes_body():
            edge += [PayloadTooLarge, InvalidInput, MalformedJson, UnsupportedMediaType]
        self.responses = add_problems(self.responses, *edge)
        if self.honours_idempotency():
            self.responses = add_problems(
                self.responses, IdempotencyKeyReused, IdempotencyRequestInFlight, InvalidIdempotencyKey
            )
            extra = dict(self.openapi_extra or {})
            extra["parameters"] = [*extra.get("parameters", []), IDEMPOTENCY_PARAMETER]
            self.openapi_extra = extra

    def read_only(self) -> bool:
        """Whether the route's unit of work is read-only (no transaction on PostgreSQL, no writer turn on
        SQLite, no write)."""
        return (self.methods or set()) <= {"GET", "HEAD"}

    def for_reports(self) -> bool:
        """Whether the route reads the reports' database (a replica) instead of the primary."""
        return False

    def honours_idempotency(self) -> bool:
        return "POST" in (self.methods or set())

    def takes_body(self) -> bool:
        return bool((self.methods or set()) & {"POST", "PUT", "PATCH"})

    async def prepare(self, request: Request, body: Any) -> None:
        """Work the endpoint needs done before its unit of work opens (a slow lookup that must not hold the
        transaction, or SQLite's writer turn), given the body the strict check passed (None when there is
        none or it failed): the outcome goes in `request.state`, never raised (the key is claimed by now,
        and only the unit of work settles it). Nothing by default."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        # FastAPI's own handler, without a unit of work: the audit trail runs a GET route's in a write's.
        self.plain_handler = handler
        read_only = self.read_only()
        for_reports = self.for_reports()
        honours_idempotency = self.honours_idempotency()
        has_body = self.takes_body()
        body_adapter = _strict_body_adapter(self) if has_body else None
        canonical_path = partial(_canonical_path, self.path_format, spellings_in_path(self))

        async def run(received: Request) -> Response:
            request = _ScreenedRequest(received.scope, received.receive)
            units: UnitsOfWork = request.app.state.units
            # The time limit counts from here, before the key is claimed: the claim's lease (the same
            # length) therefore ends no earlier than the endpoint is cut off.
            deadline = asyncio.get_running_loop().time() + units.settings.request_timeout_seconds
            claimed: Claim | None = None
            try:
                # A key the route does not take is refused before anything it sent is looked at: 403 (as
                # `require` answers it), not its body's faults nor its Idempotency-Key's, and nothing claimed.
                caller = principal_of(request)
                if caller is not None and self.scopes and not caller.has_any(self.scopes):
                    raise ScopeNotAllowed.needing(self.scopes)
                body = await request.body() if has_body else b""
                if body:
                    refuse_unless_plain_json(request.headers)
                document = screen(request.query_params, body, max_depth=units.settings.max_json_depth)
                if body:
                    # Refused only once the caller is known to be allowed the call (see check_body).
                    request.screened, request.state.body_errors = _strict_body(body_adapter, body, document)
                key = _idempotency_key(request) if honours_idempotency else None
                if key is not None:
                    outcome = await idempotency.claim(
                        units,
                        owner=_owner(request),
                        key=key,
                        fingerprint=idempotency.fingerprint(request.method, canonical_path(request), body),
                        deadline=deadline,
                    )
                    if isinstance(outcome, StoredResponse):
                        return _replay(outcome, units.vault)
                    claimed = outcome
            except LoyaltyError as exc:
                return render_domain_error(exc, request)
            except TimeoutError:  # the claim's wait for this process's writer turn, on SQLite
                if asyncio.get_running_loop().time() < deadline:
                    raise
                timed_out = RequestTimedOut.after(units.settings.request_timeout_seconds)
                return render_domain_error(timed_out, request)
            await self.prepare(request, request.screened if body and not request.state.body_errors else None)
            return await _run_in_unit_of_work(
                units,
                request,
                handler,
                read_only=read_only,
                for_reports=for_reports,
                claimed=claimed,
                deadline=deadline,
                audited=None if read_only else self,
            )

        return run

    def subject_reader(self, request: Request) -> APIRoute | None:
        """The GET route that shows what this write changes (found once: the app's routes are all there by
        the first request)."""
        if not hasattr(self, "_subject_reader"):
            self._subject_reader = audit_trail.reader_of(self, request.app.router.routes)
        return self._subject_reader

    @cached_property
    def scopes(self) -> frozenset[Scope]:
        return required_scopes(self)


def required_scopes(route: APIRoute) -> frozenset[Scope]:
    """The scopes a route lets in: those of its bearer scheme, `require(...)`, wherever it sits among the
    route's dependencies (http/dependencies.py imports this module: the scheme is known here by the
    `allowed` it carries)."""
    found: set[Scope] = set()
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        allowed = getattr(dependency.call, "allowed", None)
        if isinstance(allowed, frozenset):
            found |= allowed
        pending.extend(dependency.dependencies)
    return frozenset(found)


def _canonical_path(
    path_format: str, spellings: Mapping[str, Callable[[str], str | None]], request: Request
) -> str:
    """The request's path as an Idempotency-Key's fingerprint takes it: with each id in it written as the
    route reads it. A UUID is one value however it is spelt (upper case, without dashes, in braces, as a
    URN), and so is a coupon's code (any case, with or without its hyphens): the path takes all of them, so a
    retry that spells the member or the coupon otherwise is the same request, to be replayed, not another one
    refused as `idempotency_key_reused`. An id in its usual spelling (a UUID in lower case with dashes, a code
    as it is issued) leaves the path as sent, so keys recorded before this read it so still match; a path
    without an id is taken as it is, at no cost."""
    path = request.url.path
    if not spellings:
        return path
    sent: dict[str, str] = request.path_params
    read = dict(sent)
    for name, canonical in spellings.items():
        if name in sent and (written := canonical(sent[name])) is not None:
            read[name] = written
    if read == sent:
        return path
    # The route's own part of the path, as sent: what comes before it (a mount's root path) stays as it is.
    as_sent = path_format.format(**sent)
    if not path.endswith(as_sent):
        return path
    return path[: len(path) - len(as_sent)] + path_format.format(**read)


def _strict_body_adapter(route: APIRoute) -> TypeAdapter[Any] | None:
    """The route's body model, to be validated against the JSON text in strict mode, as its JSON Schema
    reads: FastAPI validates the parsed body in Python's lax mode, which takes `true` for 1, `0` for a date
    and `"12"` for 12. When the check passes, its model is the body FastAPI's handler is handed
    (`_ScreenedRequest`)."""
    params = route.dependant.body_params
    if len(params) != 1 or params[0].field_info.annotation is None:
        return None
    field = params[0].field_info  # with what the annotation does not carry, such as a union's discriminator
    annotated: Any = Annotated[field.annotation, field]
    return TypeAdapter(annotated)


def _strict_body(
    adapter: TypeAdapter[Any] | None, body: bytes, document: Any
) -> tuple[Any, list[dict[str, Any]]]:
    """What FastAPI's handler takes as the body, and the strict check's errors: the model and none when the
    check passes, the screened document and the errors when it does not, the document and none for a
    route without a body model to check (`_strict_body_adapter`)."""
    if adapter is None:
        return document, []
    try:
        return adapter.validate_json(body, strict=True), []
    except ValidationError as exc:
        refused = exc
    whole = _whole_numbers_as_integers(body) if _took_a_number_for_an_integer(refused) else None
    if whole is not None:
        try:
            return adapter.validate_json(whole, strict=True), []
        except ValidationError as exc:
            refused = exc
    errors = refused.errors(include_url=False, include_input=False)
    return document, [{**e, "loc": ("body", *e["loc"])} for e in errors]


# A JSON number is the same number however it is written: JSON Schema's `integer` admits 1.0 and 1e3, and a
# client may well send them (JavaScript has one type of number). The strict check takes only `1` for an int;
# when it refused a number written otherwise there, the body is checked once more with every number that is
# whole written as an integer. Whole is judged from the number's own digits, never through a float, so that
# 1e12 is 10^12 exactly and 1.0000000000000001 stays refused; bounds then apply to that exact integer. The
# first check costs a body of plain integers (a till's) nothing more.
_LONGEST_WHOLE = 30  # digits: past every bound of an integer field (10^12 at most), so left refused


class _TooLong(Exception):
    pass


def _took_a_number_for_an_integer(refused: ValidationError) -> bool:
    return any(e["type"] == "int_type" and isinstance(e.get("input"), float) for e in refused.errors())


def _whole_numbers_as_integers(body: bytes) -> bytes | None:
    """The body with each number that is whole but written with a fraction or an exponent (`1.0`, `2.50e2`)
    written as an integer, the others as the strict check read them; None when there is none, or a number
    too long to write out. The body has passed the input guard: it is JSON, each key once, no NaN."""

    def exactly(text: str) -> int | float:
        try:
            number = Decimal(text)
        except InvalidOperation:  # an exponent of twenty digits or more: past any integer field's bound
            raise _TooLong from None
        if number == number.to_integral_value():
            if number.adjusted() >= _LONGEST_WHOLE:
                raise _TooLong
            whole.append(text)
            return int(number)
        read = float(text)
        if not math.isfinite(read):
            raise _TooLong
        return read

    whole: list[str] = []
    try:
        document = json.loads(body, parse_float=exactly)
    except _TooLong:
        return None
    return json.dumps(document).encode("utf-8") if whole else None


def check_body(request: Request) -> None:
    """Refuse the body if the strict check found it invalid. The caller's dependency (`require`) calls this
    once the key is known to be allowed the call: a key without the scope gets 403, not the body's errors."""
    errors: list[dict[str, Any]] = getattr(request.state, "body_errors", [])
    if errors:
        raise RequestValidationError(errors)


class QueryRoute(UnitOfWorkRoute):
    """A POST that only reads, such as the checkout quote (its input is too large for a query string).

    Its unit of work is read-only whatever the method: it writes nothing (db/engine.py refuses a write), on
    PostgreSQL begins no transaction, and on SQLite does not wait for the writer turn. It ignores
    Idempotency-Key: asking twice is harmless, and recording the answer would be a write."""

    def read_only(self) -> bool:
        return True

    def honours_idempotency(self) -> bool:
        return False


class ReportRoute(UnitOfWorkRoute):
    """A report's GET: it reads the reports' database (LOYALTY_REPORTS_DATABASE_URL, a streaming replica)
    when there is one, so that reading many rows takes nothing from the tills' primary."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        assert self.read_only(), f"{path}: a report only reads"

    def for_reports(self) -> bool:
        return True


async def _run_in_unit_of_work(
    units: UnitsOfWork,
    request: Request,
    handler: Handler,
    *,
    read_only: bool,
    for_reports: bool,
    claimed: Claim | None,
    deadline: float,
    audited: UnitOfWorkRoute | None,
) -> Response:
    # A writer on SQLite waits for its turn, then takes the database's write lock: within the time limit, as
    # a statement's wait for a connection is, and before the endpoint's own limit starts (see
    # UnitsOfWork.start: SQLite's wait for another process's lock ends at the limit, answered 503).
    try:
        uow = await units.start(read_only=read_only, for_reports=for_reports, deadline=deadline)
    except BaseException as exc:
        if claimed is not None:  # nothing ran: a retry with the key runs it, not a 409 until the lease ends
            await idempotency.release(units, claimed, deadline=deadline)
        if isinstance(exc, TimeoutError) and asyncio.get_running_loop().time() >= deadline:
            return render_domain_error(RequestTimedOut.after(units.settings.request_timeout_seconds), request)
        raise
    request.state.uow = uow
    # A write by a back-office, billing or partner key goes in the audit log, in this transaction. (A key
    # the route will refuse reads nothing before it is refused.)
    principal = principal_of(request) if audited is not None else None
    if audited is None or principal is None or not principal.audited or not principal.has_any(audited.scopes):
        principal = None
    # What becomes of the Idempotency-Key once this unit of work is closed (it may hold SQLite's only
    # writer turn, which recording the outcome needs).
    settle_claim: Callable[[], Coroutine[Any, Any, None]] | None = None
    limit = asyncio.timeout_at(deadline)
    try:
        try:
            async with limit:  # the endpoint only: a commit under way is never cut off
                reader = None if principal is None or audited is None else audited.subject_reader(request)
                before = None if reader is None else await audit_trail.read_subject(reader, request)
                if reader is not None:

                    async def read_behind_the_lock(reader: APIRoute = reader) -> None:
                        nonlocal before
                        # Past this process's cache (the programme, the ladder): a change another process
                        # committed while this write waited for the lock is forgotten here only once its
                        # notification comes.
                        cache, uow.cache = uow.cache, TtlCache(0)
                        try:
                            before = await audit_trail.read_subject(reader, request)
                        finally:
                            uow.cache = cache

                    uow.on_subject_locked = read_behind_the_lock
                response = await handler(request)
            if principal is not None and audited is not None and 200 <= response.status_code < 300:
                changes = audit_trail.changes_of(
                    audited, request, response, before, concerned=uow.member_concerned
                )
                await audit.record(uow, audit_trail.actor_of(principal), *changes)
            if claimed is not None:
                await idempotency.complete(uow, claimed, _stored(response, uow.vault))
            if read_only:
                await uow.rollback()
            else:
                spare_the_commit(request)
                await outage.commit(uow)
            return response
        # Each branch settles the claim before rolling back: should the rollback fail too (a lost
        # connection), the key is still released below rather than left in flight until its lease ends.
        except IdempotencyClaimLost as exc:  # a retry took the key over: its work is the one kept
            await uow.rollback()
            return render_domain_error(exc, request)
        except LoyaltyError as exc:
            refusal = render_domain_error(exc, request)
            if claimed is not None:
                if exc.status in (401, 403) or not exc.final:
                    settle_claim = partial(idempotency.release, units, claimed, deadline=deadline)
                else:  # the request ran and a business rule refused it: a retry gets the same answer
                    settle_claim = partial(
                        idempotency.complete_alone,
                        units,
                        claimed,
                        _stored(refusal, uow.vault),
                        deadline=deadline,
                    )
            await uow.rollback()
            return refusal
        except (RequestValidationError, StarletteHTTPException):
            if claimed is not None:
                settle_claim = partial(idempotency.release, units, claimed, deadline=deadline)
            await uow.rollback()
            raise
        except Exception as exc:
            if claimed is not None:
                settle_claim = partial(idempotency.release, units, claimed, deadline=deadline)
            await uow.rollback()
            if isinstance(exc, TimeoutError) and limit.expired():
                return render_domain_error(
                    RequestTimedOut.after(units.settings.request_timeout_seconds), request
                )
            return unexpected_error(request, exc)
    finally:
        try:
            await uow.close()
        finally:
            if settle_claim is not None and claimed is not None:
                await outage.settle(settle_claim, claimed, units.clock)
