"""The GraphQL API: an Apollo Federation 2 subgraph over the same services as REST."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextvars import ContextVar
from functools import partial
from typing import Any, cast

import strawberry
from cross_web import AsyncHTTPRequestAdapter
from cross_web import HTTPException as TransportError
from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.fastapi import GraphQLRouter
from strawberry.federation.schema import FederationAny
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.types import QueryParams
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionContext, ExecutionResult, Info
from strawberry.types.unset import UNSET

from graphql import ASTValidationRule, GraphQLError, NoSchemaIntrospectionCustomRule, OperationDefinitionNode
from loyalty_api.errors import InvalidField
from loyalty_api.graphql.activities import ActivityMutations
from loyalty_api.graphql.checkout import CheckoutQueries
from loyalty_api.graphql.context import GraphQLContext, get_context
from loyalty_api.graphql.cost import QueryCost
from loyalty_api.graphql.coupons import Coupon, CouponMutations
from loyalty_api.graphql.documents import DOCUMENTS_CACHED, ParsedOnce
from loyalty_api.graphql.errors import (
    ERROR_EXTENSIONS,
    UNKNOWN_TYPENAME,
    VALIDATION_FAILED,
    PlainStrings,
    as_graphql_error,
    is_internal,
    log_internal,
    retry_after,
)
from loyalty_api.graphql.fragments import BoundedValidation
from loyalty_api.graphql.member_mutations import MemberMutations
from loyalty_api.graphql.members import Member, MemberQueries
from loyalty_api.graphql.money import SCALARS
from loyalty_api.graphql.numbers import read_number
from loyalty_api.graphql.partners import PartnerMember, PartnerQueries
from loyalty_api.graphql.plans import Plan, PlanQueries
from loyalty_api.graphql.points import PointsQueries
from loyalty_api.graphql.points_mutations import PointsMutations
from loyalty_api.graphql.rewards import RewardMutations, RewardQueries
from loyalty_api.graphql.subscription_mutations import SubscriptionMutations
from loyalty_api.graphql.subscriptions import SubscriptionQueries
from loyalty_api.graphql.tiers import Tier
from loyalty_api.graphql.tokens import count_tokens
from loyalty_api.http.docs import graphiql_page
from loyalty_api.http.edge import GRAPHQL_PATH, principal_of
from loyalty_api.http.errors import MalformedJson, MethodNotAllowed, refuse_unless_plain_json
from loyalty_api.http.input_guard import InvalidInput, field_error, load_json
from loyalty_api.http.rate_limits import RateLimiter
from loyalty_api.settings import Settings


@strawberry.type
class Query(
    MemberQueries,
    CheckoutQueries,
    PointsQueries,
    PlanQueries,
    SubscriptionQueries,
    RewardQueries,
    PartnerQueries,
):
    pass


@strawberry.type
class Mutation(
    PointsMutations,
    MemberMutations,
    SubscriptionMutations,
    RewardMutations,
    CouponMutations,
    ActivityMutations,
):
    pass


class OperationChosen(SchemaExtension):
    """A document of several operations runs the one `operationName` names; without a name it is refused,
    as the GraphQL spec's GetOperation says, where strawberry would run the first. (Not a validation rule:
    validation is cached by document, and this depends on the request too.)"""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        operations = (
            0
            if document is None
            else sum(isinstance(definition, OperationDefinitionNode) for definition in document.definitions)
        )
        named = not isinstance(context.context, GraphQLContext) or context.context.operation_named
        if operations > 1 and not named:
            refusal = GraphQLError(
                "Must provide operationName when the document has several operations",
                extensions={"code": VALIDATION_FAILED},
            )
            context.pre_execution_errors = [*(context.pre_execution_errors or ()), refusal]
        yield


class LoyaltySchema(strawberry.federation.Schema):
    max_entities = 100  # representations one `_entities` call may name (settings.graphql_max_entities)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Errors raised on purpose (not found, no access, bad input, bad query) are answers, not failures.
        # This runs before MaskInternalErrors hides what failed.
        for error in errors:
            if is_internal(error):
                log_internal(error)

    def entities_resolver(
        self, info: Info[GraphQLContext, None], representations: list[FederationAny]
    ) -> list[FederationAny]:
        """Strawberry's resolver, one representation at a time: a bad one is an error at its own index
        (`path` ["_entities", i]) and the others still resolve. Each is given a copy: strawberry takes the
        `__typename` out of what it is given (and puts `info` in), and one representation may stand in
        several places (`[$a, $a]`, or one list given to two aliased `_entities`). The copy leaves out the
        names `resolve_reference` binds itself (`cls`, `info`): strawberry passes every field as an argument,
        and a `cls` beside the method's own was a TypeError, an internal error for input. Fields beyond the
        keys are ignored anyway."""
        # Counted over the request: aliased `_entities` fields share one cap.
        info.context.entities_named += len(representations)
        if info.context.entities_named > self.max_entities:
            raise as_graphql_error(
                InvalidField("representations", f"at most {self.max_entities} in one request")
            )
        entities = self._schema.get_type("_Entity")
        known = {t.name for t in getattr(entities, "types", ())}
        results: list[FederationAny] = []
        for representation in representations:
            refusal = _refusal(representation, known)
            if refusal is None:
                given = cast(dict[str, Any], representation)  # _refusal found it a dict
                copy = {name: value for name, value in given.items() if name not in _BOUND}
                results.extend(super().entities_resolver(info, [cast(FederationAny, copy)]))
            else:
                results.append(cast(FederationAny, refusal))
        return results


# The arguments a `resolve_reference(cls, info, **representation)` binds itself.
_BOUND = frozenset({"cls", "info"})


def _refusal(representation: object, entities: set[str]) -> GraphQLError | None:
    if not isinstance(representation, dict):
        message = "must be an object with `__typename` and the entity's key fields"
        return as_graphql_error(InvalidField("representation", message))
    typename = representation.get("__typename")
    if not isinstance(typename, str) or typename not in entities:
        return GraphQLError(
            f'"{typename}" is not an entity type of this subgraph', extensions={"code": UNKNOWN_TYPENAME}
        )
    return None


class LoyaltyGraphQLRouter(GraphQLRouter[GraphQLContext, None]):
    """Strawberry's router with our edge rules: the body passes the same JSON guard as REST, transport
    errors are problem+json, and error messages never echo long stretches of the document."""

    def __init__(self, settings: Settings) -> None:
        # The limits' rules are made once: the validation cache keys on the rule classes, and strawberry's
        # limiters make new ones each time they are made (each request).
        rules: list[type[ASTValidationRule]] = [
            PlainStrings,
            *QueryDepthLimiter(max_depth=settings.graphql_max_depth).validation_rules,
            *MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases).validation_rules,
        ]
        if not settings.graphql_introspection:
            rules.append(NoSchemaIntrospectionCustomRule)
        extensions: list[Any] = [
            *ERROR_EXTENSIONS,
            partial(MaxTokensLimiter, max_token_count=settings.graphql_max_tokens),
            partial(AddValidationRules, rules),
            partial(QueryCost, max_cost=settings.graphql_max_cost),
            # The documents without string literals, bounded (graphql/documents.py).
            partial(ParsedOnce, maxsize=DOCUMENTS_CACHED),
            partial(BoundedValidation, max_fields=settings.graphql_max_fields, maxsize=DOCUMENTS_CACHED),
            OperationChosen,  # after the validation cache, which sets the document's errors as it finds them
        ]
        schema = LoyaltySchema(
            query=Query,
            mutation=Mutation,
            types=[Member, Tier, Plan, Coupon, PartnerMember],
            # 2.9: @cost and @listSize, which the query cost reads and a router's demand control too.
            federation_version="2.9",
            config=StrawberryConfig(scalar_map=SCALARS),
            extensions=extensions,
        )
        schema.max_entities = settings.graphql_max_entities
        super().__init__(
            schema,
            path=GRAPHQL_PATH,
            context_getter=get_context,
            graphql_ide="graphiql" if settings.graphql_ide else None,
            # No subscriptions: a websocket would be a way to the parser around the edge's key check.
            subscription_protocols=(),
        )
        self.max_json_depth = settings.max_json_depth
        self.max_tokens = settings.graphql_max_tokens

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        # Strawberry's page loads GraphiQL from a CDN; ours is served by the app (a back office may have no
        # internet).
        return graphiql_page(request)

    def decode_json(self, data: str | bytes) -> object:
        screened = _screened_body.get()
        if screened is not None and screened[0] is data:
            return screened[1]  # read, guarded and checked by `_screen` already
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        return _operation(_load_request(raw, self.max_json_depth))

    def parse_query_params(self, params: QueryParams) -> dict[str, Any]:
        # A GET's `variables` and `extensions` are JSON values on their own, read by the same guarded reader
        # as a body but not held to a body's shape: through `decode_json`, `variables=null` (no variables,
        # as GraphQL over HTTP allows) was refused as not being an operation with `query`. Strawberry then
        # refuses a value that is neither an object nor null, naming `variables`, as it does in a body. An
        # empty one is left out, as an empty REST query parameter is.
        found: dict[str, Any] = dict(params)
        for name in ("variables", "extensions"):
            text = found.pop(name, None)
            if not text:
                continue
            try:
                found[name] = _load_request(text.encode("utf-8", "surrogatepass"), self.max_json_depth)
            except MalformedJson as exc:  # its message speaks of a body, which a GET has none of
                message = exc.detail.removeprefix("The body ").rstrip(".")
                raise InvalidInput([field_error(name, "query", message, "json_invalid")]) from None
        return found

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: GraphQLContext,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        # OperationChosen reads it: strawberry's execution context keeps the name it was given private.
        context.operation_named = request_data.operation_name is not None
        try:
            result = await super().execute_single(
                request, request_adapter, sub_response, context, root_value, request_data
            )
        except TransportError as exc:
            if isinstance(exc.__cause__, InvalidOperationTypeError):
                # GraphQL over HTTP: a mutation by GET is 405; strawberry answers a bare 400.
                raise _mutation_by_get() from None
            raise
        # A field refused for a spent budget (or an outage) tells when to retry, as REST's 429 does.
        if (wait := retry_after(result.errors or ())) is not None:
            sub_response.headers["Retry-After"] = str(wait)
        return result

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        if isinstance(request, Request):
            await self._screen(request)
        try:
            return await super().run(request, context, root_value)
        except TransportError as exc:
            # Cut as a GraphQL error's message is: strawberry quotes an unknown `operationName` whole.
            raise HTTPException(exc.status_code, _without_echo(exc.reason)) from None
        finally:
            if isinstance(context, GraphQLContext):
                await context.snapshot.close()

    async def _screen(self, request: Request) -> None:
        """Refuse a document over the token limit before the parser reads it, and price it: a call costs
        one unit of the key's budget (spent at the edge), plus one for every TOKENS_PER_UNIT tokens of its
        document; a document refused for its length costs what one at the limit would."""
        query: object = request.query_params.get("query")
        if request.method == "POST":
            body = await request.body()
            # As on REST: strawberry's own refusal of a body that is not JSON is a bare 400 `bad_request`,
            # which does not tell the client what to send.
            if body:
                refuse_unless_plain_json(request.headers)
            document = _operation(_load_request(body, self.max_json_depth))
            _screened_body.set((body, document))
            query = document.get("query")
        if not isinstance(query, str):
            return  # strawberry answers a missing or mistyped query itself
        tokens = count_tokens(query, self.max_tokens)
        too_many = tokens > self.max_tokens
        principal = principal_of(request)
        if principal is not None and tokens >= TOKENS_PER_UNIT:
            limiter: RateLimiter = request.app.state.rate_limiter
            budget, cost = limiter.budget_of(principal), min(tokens, self.max_tokens) // TOKENS_PER_UNIT
            if too_many:  # refused anyway, and priced as a document at the limit
                await limiter.count(budget, principal.key_lineage, cost=cost)
            else:
                await limiter.spend(budget, principal.key_lineage, cost=cost)
        if too_many:
            message = f"has more than {self.max_tokens} tokens"
            raise InvalidInput([field_error("query", "body", message, "graphql_too_many_tokens")])

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        response = await super().process_result(request, result)
        for error in cast(list[dict[str, Any]], response.get("errors") or []):
            error["message"] = _without_echo(error["message"])
        return response


_NOT_AN_OPERATION = "must be a JSON object with `query` (and optionally `variables`, `operationName`)"
TOKENS_PER_UNIT = 50
# The body `_screen` read and the operation it found there, for `decode_json` in the same request's task.
_screened_body: ContextVar[tuple[bytes, dict[str, Any]] | None] = ContextVar("screened_body", default=None)


def _load_request(body: bytes, max_depth: int) -> object:
    # Numbers as written, so that a whole-number scalar never takes a fraction a float rounded to whole.
    return load_json(body, max_depth=max_depth, controls=False, read_fraction=read_number)


def _operation(document: object) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise InvalidInput([field_error("", "body", _NOT_AN_OPERATION, "graphql_request")])
    return document


# A quoted piece of a message (a backslash escapes a quote in it, as graphql-core and repr() write them): a
# quote opens where no letter or digit comes before it and closes where none comes after it, so an apostrophe
# in a word is no quote. Pieces are taken from the left, so the text between two of them ("'$input' has
# invalid value at .occurredAt: Expected value of type 'DateTime'") is never taken for one, as it was when
# any two quotes could pair: that cut the field's path and the reason out of the message.
_QUOTED = re.compile(r"""(?<!\w)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")(?!\w)""")
_LONGEST_QUOTE = 40
_MAX_MESSAGE = 300


def _cut(quoted: re.Match[str]) -> str:
    piece = quoted[0]
    return piece if len(piece) - 2 <= _LONGEST_QUOTE else f"{piece[0]}…{piece[0]}"


def _without_echo(message: str) -> str:
    """A GraphQL error message with any long quoted piece of the document (a 1 MB name) cut out."""
    message = _QUOTED.sub(_cut, message)
    return message if len(message) <= _MAX_MESSAGE else message[:_MAX_MESSAGE] + "…"


def _mutation_by_get() -> MethodNotAllowed:
    error = MethodNotAllowed("A mutation is sent by POST: GET runs queries only.", allowed_methods=["POST"])
    error.headers = {"Allow": "POST"}
    return error


def graphql_router(settings: Settings) -> LoyaltyGraphQLRouter:
    return LoyaltyGraphQLRouter(settings)
