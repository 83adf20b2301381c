"""Every GraphQL error carries an `extensions.code` a client can act on, and internal errors are masked."""

from __future__ import annotations

import gzip
import logging
import uuid
from typing import Any

import httpx
import pytest
import strawberry
from fastapi import FastAPI
from sqlalchemy import update

from graphql import GraphQLError, GraphQLNonNull
from loyalty_api.auth.principal import Scope
from loyalty_api.db.pagination import encode_cursor, scope_of
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.graphql.errors import (
    ERROR_EXTENSIONS,
    ErrorCodes,
    MaskInternalErrors,
    is_internal,
)
from loyalty_api.graphql.schema import LoyaltySchema, graphql_router
from loyalty_api.members.errors import MemberNotFound
from loyalty_api.points.models import PointsAccount
from loyalty_api.settings import Settings
from tests.apps import serving
from tests.builders import enrol, make_key, unique_phone
from tests.conftest import bearer
from tests.graphql.test_members_graphql import graphql
from tests.points.helpers import set_program
from tests.subscriptions.helpers import add_plan, subscribe

SECRET = "13800138000 is the phone that failed"


def codes(body: dict[str, object]) -> list[object]:
    errors = body.get("errors")
    assert isinstance(errors, list), body
    return [error["extensions"]["code"] for error in errors]


class TestRequestErrors:
    async def test_a_document_that_does_not_parse(self, client: httpx.AsyncClient, pos_key: str) -> None:
        body = await graphql(client, pos_key, "{ loyaltyMember(id: ")
        assert body["data"] is None
        assert codes(body) == ["GRAPHQL_PARSE_FAILED"]
        assert body["errors"][0]["message"].startswith("Syntax Error")

    async def test_a_document_that_does_not_validate(self, client: httpx.AsyncClient, pos_key: str) -> None:
        body = await graphql(client, pos_key, "{ memberz { id } }")
        assert body["data"] is None
        assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
        assert "memberz" in body["errors"][0]["message"]

    async def test_every_validation_error_gets_the_code(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        body = await graphql(
            client,
            pos_key,
            '{ loyaltyMember(id: 1.5) { nope } memberByNumber { id } x: loyaltyMember(id: "a") }',
        )
        assert len(body["errors"]) > 1
        assert set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}

    async def test_a_variable_a_scalar_refuses_is_not_masked(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        # graphql-core keeps Long's ValueError as the original error: still the caller's mistake, not ours.
        query = (
            'query($p: Long) { loyaltyCheckoutQuote(input: {memberId: "x", cart: {subtotal: {amount: 1, '
            'currency: "CNY"}}, pointsToUse: $p}) { __typename } }'
        )
        body = await graphql(client, pos_key, query, p=2**60)
        assert body["data"] is None
        assert codes(body) == ["BAD_USER_INPUT"]
        # Why, as well as what: the reason outlasts the cut of long quoted pieces in the message.
        message = body["errors"][0]["message"]
        assert "'Long'" in message and "must be within ±(2^53 - 1)" in message, message
        fraction = await graphql(client, pos_key, query, p=1.5)
        assert "must be a whole number, not float" in fraction["errors"][0]["message"]

    async def test_an_explicit_null_for_an_argument_that_takes_none_is_bad_user_input(
        self, client: httpx.AsyncClient, admin_key: str
    ) -> None:
        """A nullable variable may stand where an argument with a default is: a null sent for it fails as
        the field runs, graphql-core's own error, which had no code."""
        query = "query($x: Int) { loyaltyMembers(first: $x) { edges { node { id } } } }"
        body = await graphql(client, admin_key, query, x=None)
        assert body["data"] is None
        assert "first" in body["errors"][0]["message"]
        assert codes(body) == ["BAD_USER_INPUT"]

    async def test_several_operations_need_the_one_to_run_named(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        """As the spec's GetOperation says: without `operationName` none is guessed, by POST or GET."""
        document = "query First { __typename } query Second { second: __typename }"
        unnamed = [
            await client.post("/graphql", json={"query": document}, headers=bearer(pos_key)),
            await client.get("/graphql", params={"query": document}, headers=bearer(pos_key)),
        ]
        for response in unnamed:
            assert response.json()["data"] is None, response.text
            assert codes(response.json()) == ["GRAPHQL_VALIDATION_FAILED"]
            assert "operationName" in response.json()["errors"][0]["message"]
        named = await client.post(
            "/graphql", json={"query": document, "operationName": "Second"}, headers=bearer(pos_key)
        )
        assert named.json() == {"data": {"second": "Query"}}
        invalid = {"query": "query First { nope } query Second { __typename }"}
        refused = (await client.post("/graphql", json=invalid, headers=bearer(pos_key))).json()
        messages = [error["message"] for error in refused["errors"]]  # the document's own errors kept
        assert any("nope" in m for m in messages) and any("operationName" in m for m in messages), messages
        alone = await client.post(
            "/graphql", json={"query": "query Only { __typename }"}, headers=bearer(pos_key)
        )
        assert alone.json() == {"data": {"__typename": "Query"}}

    async def test_an_operation_name_the_document_lacks_is_not_echoed_at_length(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        """An `operationName` no operation of the document has is refused (400 `bad_request`) naming it when
        it is short; a long one is not sent back whole, by POST or GET (it was, all 5,000 characters)."""
        document = "query First { __typename }"
        for name, shown in (("Third", True), ("x" * 5000, False)):
            answers = [
                await client.post(
                    "/graphql", json={"query": document, "operationName": name}, headers=bearer(pos_key)
                ),
                await client.get(
                    "/graphql", params={"query": document, "operationName": name}, headers=bearer(pos_key)
                ),
            ]
            for response in answers:
                assert (response.status_code, response.json()["code"]) == (400, "bad_request"), response.text
                assert (name in response.json()["detail"]) is shown
                assert len(response.text) < 500

    @pytest.mark.parametrize(
        "content_type", [None, "text/plain", "application/graphql", "application/x-www-form-urlencoded"]
    )
    async def test_a_body_not_sent_as_json_is_415_as_on_rest(
        self, client: httpx.AsyncClient, pos_key: str, content_type: str | None
    ) -> None:
        """The exchange's rule holds at /graphql too: a client that forgot its Content-Type (or sent the
        document as `application/graphql`, which this server does not take) is told what to send, whether
        or not the body happens to parse as JSON."""
        headers = bearer(pos_key)
        if content_type is not None:
            headers["Content-Type"] = content_type
        for body in (b'{"query": "{ __typename }"}', b"{ __typename }"):
            response = await client.post("/graphql", content=body, headers=headers)
            assert response.status_code == 415, (content_type, body, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "unsupported_media_type"
        sent_as_json = await client.post(
            "/graphql",
            content=b'{"query": "{ __typename }"}',
            headers={**bearer(pos_key), "Content-Type": "application/json; charset=utf-8"},
        )
        assert sent_as_json.json() == {"data": {"__typename": "Query"}}

    async def test_a_body_sent_with_a_content_coding_is_415_as_on_rest(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        """A gzipped document is not malformed JSON: the server takes no content coding, and says so."""
        query = b'{"query": "{ __typename }"}'
        headers = {**bearer(pos_key), "Content-Type": "application/json"}
        for coding in ("gzip", "br", "identity, gzip"):
            response = await client.post(
                "/graphql", content=gzip.compress(query), headers={**headers, "Content-Encoding": coding}
            )
            assert response.status_code == 415, (coding, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["accept-encoding"] == "identity"
            assert response.json()["code"] == "unsupported_media_type"
            assert "without a content coding" in response.json()["detail"]
        identity = {**headers, "Content-Encoding": "identity"}
        plain = await client.post("/graphql", content=query, headers=identity)
        assert plain.json() == {"data": {"__typename": "Query"}}

    async def test_a_get_with_variables_null_runs_as_without_variables(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        """GraphQL over HTTP reads `variables=null` in a query string as no variables, as `"variables": null`
        in a POST body is; a client that always sends the parameter got a 400 saying it was not valid JSON."""
        document = "query($first: Int = 2) { loyaltyRewards(first: $first) { edges { cursor } } }"
        for params in ({"variables": "null"}, {"variables": ""}, {}):
            response = await client.get(
                "/graphql", params={"query": document, **params}, headers=bearer(pos_key)
            )
            assert response.status_code == 200, (params, response.text)
            assert response.json() == {"data": {"loyaltyRewards": {"edges": []}}}, params
        posted = await client.post(
            "/graphql", json={"query": document, "variables": None}, headers=bearer(pos_key)
        )
        assert posted.json() == {"data": {"loyaltyRewards": {"edges": []}}}

    async def test_a_get_with_variables_that_are_not_an_object_says_so(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        for variables in ("[1]", "3", '"x"'):  # JSON, but no object: refused as in a POST body
            response = await client.get(
                "/graphql",
                params={"query": "{ __typename }", "variables": variables},
                headers=bearer(pos_key),
            )
            assert response.status_code == 400, (variables, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert "`variables` must be an object or null" in response.json()["detail"], variables
        response = await client.get(
            "/graphql", params={"query": "{ __typename }", "variables": "{not json"}, headers=bearer(pos_key)
        )
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["code"] == "validation_error"
        assert [(e["field"], e["location"]) for e in problem["errors"]] == [("variables", "query")]
        assert "body" not in problem["errors"][0]["message"]

    async def test_a_mutation_sent_by_get_is_405_and_not_run(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        """GraphQL over HTTP: a mutation by GET is 405 with `Allow: POST`, the method that runs it (a bare
        400 `bad_request` read as a mistake in the document)."""
        member = await enrol(client, pos_key)
        document = (
            'mutation($id: ID!) { loyaltyUpdateMember(input: {memberId: $id, name: "G"}) { replayed } }'
        )
        for method in ("GET", "HEAD"):
            response = await client.request(
                method,
                "/graphql",
                params={"query": document, "variables": f'{{"id": "{member["id"]}"}}'},
                headers=bearer(pos_key),
            )
            assert response.status_code == 405, (method, response.text)
            assert response.headers["allow"] == "POST"
            if method == "GET":
                assert response.headers["content-type"] == "application/problem+json"
                assert response.json()["code"] == "method_not_allowed"
        after = await client.get(f"/v1/members/{member['id']}", headers=bearer(pos_key))
        assert after.json()["name"] == member["name"]


class TestDomainErrors:
    async def test_a_malformed_member_id_is_a_validation_error(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        body = await graphql(client, pos_key, '{ loyaltyMember(id: "not-a-uuid") { id } }')
        assert body["data"] == {"loyaltyMember": None}
        assert codes(body) == ["validation_error"]
        assert body["errors"][0]["path"] == ["loyaltyMember"]
        assert body["errors"][0]["message"] == "id: must be a UUID"

    async def test_domain_errors_keep_their_rest_codes(
        self, client: httpx.AsyncClient, pos_key: str, billing_key: str
    ) -> None:
        bad_number = await graphql(
            client, pos_key, '{ loyaltyMemberByNumber(memberNumber: "1234567890") { id } }'
        )
        assert codes(bad_number) == ["invalid_member_number"]
        refused = await graphql(
            client, billing_key, '{ loyaltyMember(id: "01a20000-0000-7000-8000-000000000000") { id } }'
        )
        assert codes(refused) == ["scope_not_allowed"]


ENTITIES = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Member { id memberNumber } } }"


class TestACursorIsTheAfterArgument:
    """A cursor a connection refuses (not one the service returned, or another list's) is named as the
    argument the client sent it in, `after`: the error named REST's `cursor`, which no GraphQL field has."""

    MEMBER = (
        "query($id: ID!, $after: String) "
        "{ loyaltyMember(id: $id) { %s(after: $after) { edges { cursor } } } }"
    )
    ROOT = "query($after: String) { %s(after: $after) { edges { cursor } } }"
    PAYMENTS = (
        "query($sid: ID!, $after: String) "
        "{ loyaltySubscription(id: $sid) { payments(after: $after) { edges { cursor } } } }"
    )

    async def test_every_connection_names_after(self, client: httpx.AsyncClient, admin_key: str) -> None:
        await set_program(client, admin_key)
        await add_plan(client, admin_key, "plus", trial_days=7)
        member_id = (await enrol(client, admin_key))["id"]
        other_id = (await enrol(client, admin_key))["id"]
        subscription = await subscribe(client, admin_key, member_id, "plus")
        for name in ("ledger", "coupons", "tierHistory"):
            # None this service made, or another member's ledger cursor: both are `after`'s fault.
            for after in ("!!", encode_cursor(uuid.uuid4(), scope_of("ledger", uuid.UUID(other_id)))):
                body = await graphql(client, admin_key, self.MEMBER % name, id=member_id, after=after)
                self._names_after(body, name)
        for name in ("loyaltyMembers", "loyaltyPlans", "loyaltyRewards"):
            self._names_after(await graphql(client, admin_key, self.ROOT % name, after="!!"), name)
        body = await graphql(client, admin_key, self.PAYMENTS, sid=subscription["id"], after="!!")
        self._names_after(body, "payments")

    @staticmethod
    def _names_after(body: dict[str, Any], name: str) -> None:
        assert codes(body) == ["validation_error"], (name, body)
        error = body["errors"][0]
        assert [e["field"] for e in error["extensions"]["errors"]] == ["after"], (name, error)
        assert error["message"].startswith("after: "), (name, error)


class TestEntities:
    async def test_each_representation_answers_on_its_own(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        first = await enrol(client, pos_key)
        second = await enrol(client, pos_key)
        body = await graphql(
            client,
            pos_key,
            ENTITIES,
            r=[
                {"__typename": "Member", "id": first["id"]},
                {"__typename": "Customer", "id": first["id"]},
                {"__typename": "Member", "phone": first["phone"]},
                {"__typename": "Member", "memberNumber": second["member_number"]},
            ],
        )
        assert body["data"]["_entities"] == [
            {"id": first["id"], "memberNumber": first["member_number"]},
            None,
            None,
            {"id": second["id"], "memberNumber": second["member_number"]},
        ]
        errors = sorted(body["errors"], key=lambda error: error["path"])
        assert [(e["path"], e["extensions"]["code"]) for e in errors] == [
            (["_entities", 1], "UNKNOWN_TYPENAME"),
            (["_entities", 2], "validation_error"),
        ]
        assert "Customer" in errors[0]["message"]
        assert "`id` or `memberNumber`" in errors[1]["message"]
        assert first["phone"] not in str(body)

    async def test_other_bad_representations(self, client: httpx.AsyncClient, pos_key: str) -> None:
        body = await graphql(
            client,
            pos_key,
            ENTITIES,
            r=[
                {"id": "01a20000-0000-7000-8000-000000000000"},  # no __typename
                {"__typename": "ExternalId", "system": "pos"},  # a type, but not an entity
                "Member",
                {"__typename": "Member", "id": "not-a-uuid"},
                {"__typename": "Member", "id": "01a20000-0000-7000-8000-000000000000"},  # nobody
                {"__typename": "Tier"},  # an entity without its key field
            ],
        )
        assert body["data"]["_entities"] == [None] * 6
        assert sorted((e["path"][1], e["extensions"]["code"]) for e in body["errors"]) == [
            (0, "UNKNOWN_TYPENAME"),
            (1, "UNKNOWN_TYPENAME"),
            (2, "validation_error"),
            (3, "validation_error"),
            (5, "validation_error"),
        ]


async def _broken() -> int:
    raise KeyError(SECRET)


async def _refused() -> int:
    raise MemberNotFound()  # a domain error a resolver let through without domain_errors()


@strawberry.type
class BrokenQuery:
    broken: int | None = strawberry.field(resolver=_broken)
    refused: int | None = strawberry.field(resolver=_refused)

    @strawberry.field
    def fine(self) -> int:
        return 1


class TestInternalErrors:
    """No field of the real schema fails on purpose, so a schema with the app's error extensions and one
    broken field shows the masking; the app's own schema is checked to carry the same extensions."""

    @pytest.fixture
    def schema(self) -> LoyaltySchema:
        return LoyaltySchema(query=BrokenQuery, federation_version="2.5", extensions=[*ERROR_EXTENSIONS])

    async def test_an_internal_error_is_masked_and_logged_without_its_message(
        self, schema: LoyaltySchema, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.ERROR, logger="loyalty_api.graphql"):
            result = await schema.execute("{ broken fine }")
        assert result.data == {"broken": None, "fine": 1}
        assert result.errors is not None
        [error] = [e.formatted for e in result.errors]
        assert error["message"] == "Internal server error"
        assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
        assert error["path"] == ["broken"]
        [record] = [r for r in caplog.records if r.name == "loyalty_api.graphql"]
        assert record.getMessage() == "graphql resolver failed"
        assert record.__dict__["graphql_path"] == "broken"
        assert record.__dict__["error_type"] == "builtins.KeyError"
        assert "_broken" in record.__dict__["stack"]
        assert record.exc_info is None
        assert SECRET not in caplog.text
        assert all(SECRET not in str(value) for value in record.__dict__.values())

    async def test_a_domain_error_is_not_masked_and_gets_its_code(
        self, schema: LoyaltySchema, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.ERROR, logger="loyalty_api.graphql"):
            result = await schema.execute("{ refused }")
        assert result.errors is not None
        [error] = [e.formatted for e in result.errors]
        assert error["extensions"]["code"] == "member_not_found"
        assert error["message"] == MemberNotFound().detail
        assert not [r for r in caplog.records if r.name == "loyalty_api.graphql"]

    def test_the_app_schema_carries_the_error_extensions(self, settings: Settings) -> None:
        extensions = graphql_router(settings).schema.extensions
        assert MaskInternalErrors in extensions
        assert ErrorCodes in extensions

    def test_what_is_masked(self) -> None:
        def located(original: Exception | None, path: list[str | int] | None = None) -> GraphQLError:
            return GraphQLError("x", path=path, original_error=original)

        assert is_internal(located(KeyError("k"), ["member"]))
        assert is_internal(located(TypeError("Cannot return null for non-nullable field"), ["_entities", 0]))
        assert not is_internal(located(GraphQLError("on purpose"), ["member"]))
        assert not is_internal(located(MemberNotFound(), ["member"]))
        assert not is_internal(located(None, ["member"]))
        assert not is_internal(located(None))  # parse and validation errors
        assert not is_internal(located(ValueError("Long must be …")))  # a variable a scalar refused


class TestLimits:
    """Deep, aliased or oversized documents are refused at validation, before any resolver runs."""

    async def test_a_document_nested_deeper_than_the_limit(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        limit = Settings.model_fields["graphql_max_depth"].default
        # The depth is counted on the document, before the fields are looked up in the schema; a root field
        # is at depth 0, so limit + 2 fields nest one level too deep.
        fields = [f"f{level}" for level in range(limit + 2)]
        too_deep = "{ " + " { ".join(fields) + " }" * len(fields)
        body = await graphql(client, pos_key, too_deep)
        assert body["data"] is None
        assert set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}
        assert any("exceeds maximum operation depth" in e["message"] for e in body["errors"]), body
        within = "{ " + " { ".join(fields[: limit + 1]) + " }" * (limit + 1)
        shallower = await graphql(client, pos_key, within)
        assert not any("depth" in e["message"] for e in shallower["errors"])

    async def test_more_aliases_than_the_limit(self, client: httpx.AsyncClient, pos_key: str) -> None:
        member = await enrol(client, pos_key)
        limit = Settings.model_fields["graphql_max_aliases"].default
        aliased = " ".join(f'm{i}: loyaltyMember(id: "{member["id"]}") {{ id }}' for i in range(limit + 1))
        body = await graphql(client, pos_key, f"{{ {aliased} }}")
        assert body["data"] is None
        assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
        within = " ".join(f'm{i}: loyaltyMember(id: "{member["id"]}") {{ id }}' for i in range(limit))
        assert (await graphql(client, pos_key, f"{{ {within} }}")).get("errors") is None

    async def test_aliased_entities_share_one_limit(self, client: httpx.AsyncClient, pos_key: str) -> None:
        member = await enrol(client, pos_key)
        limit = Settings.model_fields["graphql_max_entities"].default
        half = [{"__typename": "Member", "id": member["id"]}] * (limit // 2 + 1)
        query = """query($r: [_Any!]!) {
          a: _entities(representations: $r) { ... on Member { id } }
          b: _entities(representations: $r) { ... on Member { id } }
        }"""
        body = await graphql(client, pos_key, query, r=half)
        assert codes(body) == ["validation_error"]  # the second to resolve, which nulls the answer
        assert body["data"] is None
        alone = await graphql(client, pos_key, ENTITIES, r=half)
        assert [e["id"] for e in alone["data"]["_entities"]] == [member["id"]] * len(half)

    async def test_more_representations_than_the_limit(self, client: httpx.AsyncClient, pos_key: str) -> None:
        member = await enrol(client, pos_key)
        limit = Settings.model_fields["graphql_max_entities"].default
        many = [{"__typename": "Member", "id": member["id"]}] * (limit + 1)
        body = await graphql(client, pos_key, ENTITIES, r=many)
        assert body["data"] is None
        assert codes(body) == ["validation_error"]
        assert str(limit) in body["errors"][0]["message"]

    async def test_fragments_spread_past_the_field_limit_are_refused_before_validation(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        # Each fragment spreads the next twice: 22 levels in under a kilobyte select 2^21 fields. Walked
        # spread by spread, as the depth and alias limits and the cost do, that held the server for minutes.
        levels = 22
        chain = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels - 1))
        bomb = f"query {{ ...F0 }} {chain} fragment F{levels - 1} on Query {{ __typename }}"
        body = await graphql(client, pos_key, bomb)
        assert body["data"] is None
        assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
        [error] = body["errors"]
        assert error["extensions"]["fields"] == 2 ** (levels - 1)
        assert error["extensions"]["maxFields"] == Settings.model_fields["graphql_max_fields"].default

    @pytest.mark.parametrize(
        ("document", "message"),
        [
            # A cycle (G spreads F0 back) under a doubling chain: counted as far as the cycle, it looked small
            # while the limiters walked 40 fields 2^16 times.
            (
                "query { ...F0 ...H16 } fragment F0 on Query { a: __typename ...G } "
                "fragment G on Query { ...F0 } fragment H0 on Query { ...G } "
                + " ".join(f"fragment H{i} on Query {{ ...H{i - 1} ...H{i - 1} }}" for i in range(1, 17)),
                'Cannot spread fragment "F0" within itself.',
            ),
            ("{ ...Nope }", 'Unknown fragment "Nope".'),  # the depth limiter failed on it without a code
            (
                "{ ...F0 } "
                + " ".join(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(60))
                + " fragment F60 on Query { __typename }",
                "Fragment spreads nest more than 50 deep.",
            ),
        ],
    )
    async def test_fragments_that_cannot_be_spread_are_refused_before_validation(
        self, client: httpx.AsyncClient, pos_key: str, document: str, message: str
    ) -> None:
        body = await graphql(client, pos_key, document)
        assert body["data"] is None
        assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
        assert body["errors"][0]["message"] == message

    async def test_a_fragment_spread_a_few_times_is_counted_each_time_and_runs(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        card = "fragment Card on Member { id memberNumber status }"
        spreads = " ".join(f'm{i}: loyaltyMember(id: "{member["id"]}") {{ ...Card }}' for i in range(5))
        body = await graphql(client, pos_key, f"{{ {spreads} }} {card}")
        assert body.get("errors") is None, body
        assert [body["data"][f"m{i}"]["memberNumber"] for i in range(5)] == [member["member_number"]] * 5


class TestLargeFigures:
    async def test_a_figure_past_long_is_its_own_error_not_an_internal_one(
        self, app: FastAPI, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        # No purchase earns more than 10^12 points, so it takes some 9,000 of the largest to pass 2^53: the
        # test puts the stored balance there itself.
        units: UnitsOfWork = app.state.units
        async with units.begin() as uow:
            await uow.session.execute(
                update(PointsAccount)
                .where(PointsAccount.member_id == uuid.UUID(member["id"]))
                .values(balance=2**53, lifetime_earned=2**53)
            )
        query = "query($id: ID!) { loyaltyMember(id: $id) { id pointsAccount { balance held } } }"
        body = await graphql(client, pos_key, query, id=member["id"])
        [error] = body["errors"]
        assert error["extensions"]["code"] == "long_out_of_range"
        assert error["path"] == ["loyaltyMember", "pointsAccount", "balance"]
        assert body["data"] == {
            "loyaltyMember": None
        }  # a non-null field nulls its parents up to a nullable one
        rest = await client.get(f"/v1/members/{member['id']}/points", headers=bearer(pos_key))
        assert rest.json()["balance"] == 2**53  # REST sends it whole


def _update(alias: str, member_id: str, phone: str) -> str:
    return (
        f'{alias}: loyaltyUpdateMember(input: {{memberId: "{member_id}", phone: "{phone}"}}) '
        "{ member { phone } userErrors { code } }"
    )


def _earn(alias: str, member_id: str, order_ref: str) -> str:
    return (
        f'{alias}: loyaltyEarnPoints(input: {{memberId: "{member_id}", orderRef: "{order_ref}", '
        'amount: {amount: 1000, currency: "CNY"}}) { earned { balance } userErrors { code } }'
    )


class TestRefusedMidDocument:
    """Mutations run one after another, each committing its own work: a call refused part way through a
    document (its budget spent, a scope the key lacks) nulls that mutation alone, and the client still reads
    what the ones before it did."""

    def test_every_mutation_may_be_null(self, settings: Settings) -> None:
        """What keeps the earlier answers: a non-null mutation refused would null `data` whole."""
        mutations = graphql_router(settings).schema._schema.mutation_type
        assert mutations is not None
        non_null = [name for name, f in mutations.fields.items() if isinstance(f.type, GraphQLNonNull)]
        assert non_null == []

    async def test_a_budget_spent_by_the_second_mutation_keeps_the_first_ones_answer(
        self, app: FastAPI, settings: Settings
    ) -> None:
        async with serving(settings, rate_limit_contact_lookup="1/minute") as (served, client):
            key = await make_key(served, Scope.pos)
            member = (await enrol(client, key))["id"]
            first, second = unique_phone(), unique_phone()
            document = (
                f"mutation {{ {_update('a', member, first)} {_update('b', member, second)} "
                f"{_earn('c', member, 'MID-1')} }}"
            )
            response = await client.post("/graphql", json={"query": document}, headers=bearer(key))
            assert response.status_code == 200, response.text
            body = response.json()
            # The first update committed: its answer is there, as the member now is.
            assert body["data"]["a"] == {"member": {"phone": first}, "userErrors": []}
            shown = await client.get(f"/v1/members/{member}", headers=bearer(key))
            assert shown.json()["phone"] == first
            # The second was refused for the contact-lookup budget, with REST's code and the wait.
            assert body["data"]["b"] is None
            [refused] = body["errors"]
            assert refused["path"] == ["b"]
            assert refused["extensions"]["code"] == "rate_limited"
            wait = refused["extensions"]["retryAfter"]
            assert isinstance(wait, int) and 1 <= wait <= 60
            assert response.headers["retry-after"] == str(wait)
            # A mutation after it that spends no contact budget still runs, as it would on its own.
            assert body["data"]["c"] == {"earned": {"balance": 10}, "userErrors": []}

    async def test_a_budget_spent_by_the_only_mutation_nulls_that_mutation(
        self, app: FastAPI, settings: Settings
    ) -> None:
        async with serving(settings, rate_limit_contact_lookup="1/minute") as (served, client):
            key = await make_key(served, Scope.pos)
            member = (await enrol(client, key))["id"]
            await graphql(client, key, f"mutation {{ {_update('a', member, unique_phone())} }}")
            response = await client.post(
                "/graphql",
                json={"query": f"mutation {{ {_update('a', member, unique_phone())} }}"},
                headers=bearer(key),
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["data"] == {"a": None}
            assert codes(body) == ["rate_limited"]
            assert response.headers["retry-after"] == str(body["errors"][0]["extensions"]["retryAfter"])

    async def test_a_scope_the_key_lacks_in_the_second_mutation_keeps_the_first_ones_answer(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = (await enrol(client, pos_key))["id"]
        adjust = (
            f'b: loyaltyAdjustPoints(input: {{memberId: "{member}", points: 5, reason: "gift"}}) '
            "{ adjustment { balance } }"
        )
        response = await client.post(
            "/graphql",
            json={"query": f"mutation {{ {_earn('a', member, 'MID-2')} {adjust} }}"},
            headers=bearer(pos_key),
        )
        body = response.json()
        assert body["data"] == {"a": {"earned": {"balance": 10}, "userErrors": []}, "b": None}
        assert codes(body) == ["scope_not_allowed"]
        assert "retry-after" not in response.headers  # waiting would not help
