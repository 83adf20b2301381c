"""A member's links with partners in GraphQL, as `GET /v1/members/{member_id}` shows them: for our own keys,
without the partner's customer reference."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import strawberry
from strawberry.types import Info

from loyalty_api.graphql.context import GraphQLContext
from loyalty_api.graphql.cost import assumed
from loyalty_api.graphql.errors import require
from loyalty_api.graphql.scopes import READERS
from loyalty_api.partners.service import LinkView


@strawberry.type(description="A partner the member is linked to, and what they let it see.")
class MemberPartnerLink:
    partner: str = strawberry.field(description="The partner's code.")
    partner_name: str
    grants: list[str] = strawberry.field(
        description="`basic` (tier, paid plans), and `points` if the member allowed it.",
        directives=[assumed(2)],
    )
    linked_at: datetime.datetime

    @classmethod
    def of(cls, link: LinkView) -> MemberPartnerLink:
        return cls(
            partner=link.partner, partner_name=link.partner_name, grants=link.grants, linked_at=link.linked_at
        )


async def _partner_links(root: Any, info: Info[GraphQLContext, None]) -> list[MemberPartnerLink]:
    require(info.context, *READERS)
    found = await info.context.loaders.partner_links.load(uuid.UUID(str(root.id)))
    return [MemberPartnerLink.of(link) for link in found]


@strawberry.type
class MemberPartnerLinkFields:
    """Member's partner links (Member inherits them)."""

    partner_links: list[MemberPartnerLink] = strawberry.field(
        resolver=_partner_links,
        description="The partners the member is linked to, oldest link first.",
        directives=[assumed(5)],
    )
