"""An activity over GraphQL is the REST one: the same reward, each ref answered once, the same refusals."""

from __future__ import annotations

import httpx

from tests.activities.helpers import add_activity_rule
from tests.builders import enrol
from tests.graphql.helpers import mutate
from tests.points.helpers import points, set_program

FIELDS = (
    "activity { id type ref pointsEarned breakdown { rule kind points } streak day balance alreadyRecorded }"
)


class TestRecordActivity:
    async def test_rewards_once_per_ref_and_refuses_over_the_cap(
        self, client: httpx.AsyncClient, admin_key: str, pos_key: str
    ) -> None:
        await set_program(client, admin_key)
        await add_activity_rule(client, admin_key, type="share", name="Share", points=5, daily_cap=1)
        member = await enrol(client, pos_key)
        given = {"memberId": member["id"], "type": "share", "ref": "post-1"}
        first = await mutate(client, pos_key, "loyaltyRecordActivity", FIELDS, given)
        assert first["userErrors"] == []
        activity = first["activity"]
        assert (activity["pointsEarned"], activity["streak"], activity["balance"]) == (5, 1, 5)
        assert activity["breakdown"] == [{"rule": "Share", "kind": "activity", "points": 5}]
        assert activity["alreadyRecorded"] is False
        again = await mutate(client, pos_key, "loyaltyRecordActivity", FIELDS, given)
        # The first result again, and said to be that: nothing was earned now (REST answers 200, not 201).
        assert again["activity"] == activity | {"alreadyRecorded": True}
        capped = await mutate(client, pos_key, "loyaltyRecordActivity", FIELDS, {**given, "ref": "post-2"})
        assert capped["activity"] is None
        assert [e["code"] for e in capped["userErrors"]] == ["activity_cap_reached"]
        assert (await points(client, pos_key, member["id"]))["balance"] == 5
