"""A programme on an empty database: its settings, the entry tier every member starts on, and the first
operator key (`loyalty-api init`)."""

from __future__ import annotations

from decimal import Decimal

from loyalty_api.auth import service as keys
from loyalty_api.auth.principal import Scope
from loyalty_api.db.uow import UnitOfWork
from loyalty_api.errors import Conflict
from loyalty_api.program.service import ProgramSettings, is_configured, put_program
from loyalty_api.tiers import service as tiers
from loyalty_api.tiers.ladder import Metric, Window


class ProgramAlreadySetUp(Conflict):
    """The database holds a programme already: `loyalty-api init` sets one up only on an empty database.
    Only the `loyalty-api init` command gives this; the HTTP API does not.

    Change the programme with `PUT /v1/program` and the tiers with `/v1/tiers`, using an admin key
    (`loyalty-api keys create --scope admin`).
    """

    code = "program_already_set_up"
    title = "A programme is set up already"


async def set_up(
    uow: UnitOfWork, settings: ProgramSettings, *, entry_tier: str, operator: str
) -> keys.IssuedKey:
    """Put the programme's settings, an entry tier (rank 0, threshold 0) and an admin key; returns the key."""
    if await is_configured(uow) or (await tiers.get_ladder(uow)).tiers:
        raise ProgramAlreadySetUp()
    await put_program(uow, settings)
    await tiers.create_tier(
        uow,
        "member",
        tiers.TierDefinition(
            name=entry_tier,
            rank=0,
            metric=Metric.spend,
            window=Window.calendar_year,
            window_days=None,
            threshold=0,
            points_multiplier=Decimal(1),
            grace_days=0,
            benefit_ids=[],
        ),
    )
    return await keys.create_key(uow, name=operator, scopes=[Scope.admin])
