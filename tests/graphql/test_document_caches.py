"""The parser and validation caches keep the documents a client sends over and over, and never a value
written into a document: a phone in a lookup's text stays in no cache once it is answered (nor after its
member is erased)."""

from __future__ import annotations

import gc

import httpx

from graphql import DocumentNode, StringValueNode
from tests.builders import enrol
from tests.graphql.test_errors import codes
from tests.graphql.test_members_graphql import graphql


def documents_held(text: str) -> list[DocumentNode]:
    """The parsed documents of `text` still in this process's memory (the app runs in it)."""
    gc.collect()
    return [
        o
        for o in gc.get_objects()
        if isinstance(o, DocumentNode) and o.loc is not None and o.loc.source.body == text
    ]


def literals_held(value: str) -> list[StringValueNode]:
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, StringValueNode) and o.value == value]


class TestDocumentCaches:
    async def test_a_phone_written_into_a_document_is_not_held_once_answered(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        text = f'{{ loyaltyMemberLookup(phone: "{member["phone"]}") {{ id }} }}'
        for _ in range(2):
            body = await graphql(client, pos_key, text)
            assert body["data"] == {"loyaltyMemberLookup": {"id": member["id"]}}

        assert documents_held(text) == []
        assert literals_held(member["phone"]) == []

    async def test_a_document_with_its_values_as_variables_is_parsed_once_and_kept(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        member = await enrol(client, pos_key)
        other = await enrol(client, pos_key)
        text = "query($phone: String) { loyaltyMemberLookup(phone: $phone) { id } }"
        for someone in (member, other):
            body = await graphql(client, pos_key, text, phone=someone["phone"])
            assert body["data"] == {"loyaltyMemberLookup": {"id": someone["id"]}}

        assert len(documents_held(text)) == 1
        assert literals_held(member["phone"]) == []

    async def test_a_document_with_a_literal_is_still_validated(
        self, client: httpx.AsyncClient, pos_key: str
    ) -> None:
        body = await graphql(client, pos_key, '{ loyaltyMemberLookup(phone: "13800138000") { idz } }')
        assert body["data"] is None
        assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
        assert "idz" in body["errors"][0]["message"]
