"""Per-request DataLoaders: every member a query names, and every relation of theirs it asks for, is read in
one statement per kind for the whole request (`_entities` with 50 members and their benefits is a handful of
statements, not hundreds), through the request's read snapshot."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from strawberry.dataloader import DataLoader

from loyalty_api.auth.principal import Principal
from loyalty_api.benefits.service import MemberBenefits, members_benefits
from loyalty_api.graphql.snapshot import Snapshot
from loyalty_api.http.rate_limits import RateLimited, RateLimiter
from loyalty_api.partners.service import LinkView, members_links
from loyalty_api.points.service import PointsSummary, summaries
from loyalty_api.profiles.service import MemberProfile, get_members, get_members_by_number
from loyalty_api.subscriptions.service import SubscriptionView, members_subscriptions

# (member id, how many of their newest subscriptions)
SubscriptionsKey = tuple[uuid.UUID, int]


@dataclass(frozen=True, slots=True)
class Loaders:
    members: DataLoader[uuid.UUID, MemberProfile | None]
    members_by_number: DataLoader[str, MemberProfile | None]  # RateLimited raised by `load`
    benefits: DataLoader[uuid.UUID, MemberBenefits | None]
    subscriptions: DataLoader[SubscriptionsKey, list[SubscriptionView]]
    points_accounts: DataLoader[uuid.UUID, PointsSummary | None]
    partner_links: DataLoader[uuid.UUID, list[LinkView]]

    def clear(self) -> None:
        """Forget what was loaded: a mutation has changed it."""
        for loader in (self.members, self.members_by_number, self.benefits, self.subscriptions):
            loader.clear_all()
        self.points_accounts.clear_all()
        self.partner_links.clear_all()

    @classmethod
    def over(cls, snapshot: Snapshot, limiter: RateLimiter, principal: Principal | None) -> Loaders:
        async def members(ids: Sequence[uuid.UUID]) -> list[MemberProfile | None]:
            async with snapshot.read() as uow:
                found = await get_members(uow, ids)
            return [found.get(i) for i in ids]

        async def members_by_number(numbers: Sequence[str]) -> list[MemberProfile | RateLimited | None]:
            # As that many REST look-ups one after another: a number that finds no one spends the key's
            # misses budget (a walk through card numbers is all misses), one that finds a member costs
            # nothing, and once the budget is spent every number after is refused, found or not.
            async with snapshot.read() as uow:
                found = await get_members_by_number(uow, numbers)
            if principal is None or not limiter.enabled:
                return [found.get(n) for n in numbers]
            budget, who = limiter.lookup_misses, principal.key_lineage
            left = await limiter.remaining(budget, who)
            answers: list[MemberProfile | RateLimited | None] = []
            for number in numbers:
                if left <= 0:
                    answers.append(await limiter.refusal(budget, who))
                    continue
                member = found.get(number)
                if member is None:
                    left -= 1
                    await limiter.count(budget, who)
                answers.append(member)
            return answers

        async def benefits(ids: Sequence[uuid.UUID]) -> list[MemberBenefits | None]:
            async with snapshot.read() as uow:
                found = await members_benefits(uow, ids)
            return [found.get(i) for i in ids]

        async def subscriptions(keys: Sequence[SubscriptionsKey]) -> list[list[SubscriptionView]]:
            largest = max(limit for _, limit in keys)
            async with snapshot.read() as uow:
                found = await members_subscriptions(uow, list({m for m, _ in keys}), limit=largest)
            return [found.get(member_id, [])[:limit] for member_id, limit in keys]

        async def points_accounts(ids: Sequence[uuid.UUID]) -> list[PointsSummary | None]:
            async with snapshot.read() as uow:
                found = await summaries(uow, ids)
            return [found.get(i) for i in ids]

        async def partner_links(ids: Sequence[uuid.UUID]) -> list[list[LinkView]]:
            async with snapshot.read() as uow:
                found = await members_links(uow, ids)
            return [found.get(i, []) for i in ids]

        return cls(
            members=DataLoader(load_fn=members),
            members_by_number=DataLoader(load_fn=members_by_number),
            benefits=DataLoader(load_fn=benefits),
            subscriptions=DataLoader(load_fn=subscriptions),
            points_accounts=DataLoader(load_fn=points_accounts),
            partner_links=DataLoader(load_fn=partner_links),
        )
