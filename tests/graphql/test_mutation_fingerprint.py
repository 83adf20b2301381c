"""What a mutation's `idempotencyKey` fingerprints: its input, each UUID written as the model reads it."""

from __future__ import annotations

import json
import uuid

from pydantic import BaseModel

from loyalty_api.graphql.mutation import ids_as_read

MEMBER = "0193a6f1-5c2e-7b41-9d3a-2f6c8e1b4a70"
OTHER = "0193a6f1-5c2e-7b41-9d3a-2f6c8e1b4a71"


class _Line(BaseModel):
    reward_id: uuid.UUID
    note: str


class _Input(BaseModel):
    member_id: uuid.UUID
    to_member_id: uuid.UUID | None = None
    order_ref: str
    lines: list[_Line] = []
    benefit_ids: list[uuid.UUID] = []


def _as_fingerprinted(given: dict[str, object]) -> bytes:
    read = ids_as_read(given, _Input.model_validate(given))
    return json.dumps(read, sort_keys=True, separators=(",", ":")).encode()


class TestIdsAsRead:
    def test_an_input_whose_ids_are_in_the_usual_spelling_is_taken_as_sent(self) -> None:
        """So a key recorded before ids were read so still matches its retry: the same bytes."""
        given: dict[str, object] = {
            "member_id": MEMBER,
            "to_member_id": OTHER,
            "order_ref": "R-1",
            "lines": [{"reward_id": OTHER, "note": "x"}],
            "benefit_ids": [MEMBER],
        }
        assert ids_as_read(given, _Input.model_validate(given)) is given

    def test_every_spelling_of_an_id_is_one_input(self) -> None:
        usual = _as_fingerprinted({"member_id": MEMBER, "order_ref": "R-1"})
        for spelling in (MEMBER.upper(), MEMBER.replace("-", ""), f"{{{MEMBER}}}", f"urn:uuid:{MEMBER}"):
            assert _as_fingerprinted({"member_id": spelling, "order_ref": "R-1"}) == usual, spelling

    def test_ids_inside_lists_and_nested_inputs_are_read_too(self) -> None:
        usual = _as_fingerprinted(
            {
                "member_id": MEMBER,
                "order_ref": "R",
                "lines": [{"reward_id": OTHER, "note": "A"}],
                "benefit_ids": [OTHER],
            }
        )
        spelt = _as_fingerprinted(
            {
                "member_id": MEMBER,
                "order_ref": "R",
                "lines": [{"reward_id": OTHER.upper(), "note": "A"}],
                "benefit_ids": [OTHER.replace("-", "")],
            }
        )
        assert spelt == usual

    def test_a_text_field_that_looks_like_an_id_is_taken_as_sent(self) -> None:
        """An order reference is the till's text, whatever it looks like: two spellings are two orders."""
        lower = _as_fingerprinted({"member_id": MEMBER, "order_ref": OTHER})
        upper = _as_fingerprinted({"member_id": MEMBER, "order_ref": OTHER.upper()})
        assert lower != upper

    def test_another_member_is_another_input(self) -> None:
        assert _as_fingerprinted({"member_id": MEMBER, "order_ref": "R"}) != _as_fingerprinted(
            {"member_id": OTHER.upper(), "order_ref": "R"}
        )
