"""Seed the demo programme through the services, once: running it again adds nothing."""

from __future__ import annotations

from loyalty_api.auth import service as auth_service
from loyalty_api.auth.principal import Scope
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.demo.data import TIERS, demo_members
from loyalty_api.members import service as members
from loyalty_api.members.errors import MemberExists
from loyalty_api.tiers import service as tiers

DEMO_KEY_SCOPES = [Scope.admin, Scope.pos, Scope.ecommerce, Scope.billing]


async def seed_programme(units: UnitsOfWork) -> None:
    async with units.begin() as uow:
        for rank, code, name in TIERS:
            await tiers.ensure_tier(uow, rank=rank, code=code, name=name)
    for person in demo_members():
        try:
            async with units.begin() as uow:
                await members.enrol(
                    uow,
                    phone=person.phone,
                    email=person.email,
                    name=person.name,
                    birthday=person.birthday,
                    channel=person.channel,
                    external_ids=person.external_ids,
                    marketing_consent=person.marketing_consent,
                    referral_code=None,
                )
        except MemberExists:
            continue  # seeded before


async def create_demo_keys(units: UnitsOfWork) -> dict[str, str]:
    issued: dict[str, str] = {}
    async with units.begin() as uow:
        for scope in DEMO_KEY_SCOPES:
            key = await auth_service.create_key(uow, name=f"demo {scope}", scopes=[scope])
            issued[str(scope)] = key.token
    return issued
