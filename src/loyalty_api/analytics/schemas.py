from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import Field

from loyalty_api.http.schemas import MoneyRead, ReadModel, TierRef


class PointsFiguresRead(ReadModel):
    start: datetime = Field(description="The first instant counted.")
    end: datetime = Field(description="The first instant not counted.")
    group: str | None = Field(
        description="The channel or store, in a report grouped by one (null: entries that name none)."
    )
    issued: int = Field(
        description="Points members earned (`earn`), received from partners (`exchange_in`), for referrals "
        "(`referral`), for activities (`activity`) and from campaigns (`campaign`)."
    )
    taken_back: int = Field(description="Earned points that refunds took back.")
    redeemed: int = Field(
        description="Points members spent: redeemed, captured, on rewards, sent to partners."
    )
    given_back: int = Field(description="Spent points that refunds and failed exchanges gave back.")
    expired: int
    adjusted: int = Field(description="Operators' adjustments, signed.")
    transferred: int = Field(
        description="Points members sent to one another (`transfer_out`, `transfer_in`), less those "
        "operators' reversals gave back (`transfer_return`): they change who holds them, not how many "
        "members hold, so they are in none of the other figures, and add nothing to `net`."
    )
    imported: int = Field(
        description="Points members brought from the programme's previous system (`import`, "
        "POST /v1/members/import)."
    )
    net: int = Field(
        description="The change in points members hold: issued − taken_back − redeemed + given_back "
        "− expired + adjusted + imported."
    )


class PointsReportPage(ReadModel):
    items: list[PointsFiguresRead]
    next_cursor: str | None


class TierCountRead(ReadModel):
    tier: TierRef | None = Field(description="null: members on no tier.")
    members: int


class OverviewRead(ReadModel):
    start: datetime
    end: datetime
    points: PointsFiguresRead
    breakage: Decimal | None = Field(
        description="expired ÷ (issued + imported) in the window, to four places (null when nothing was "
        "issued or imported)."
    )
    redemption_rate: Decimal | None = Field(
        description="redeemed ÷ (issued + imported) in the window, to four places (null when nothing was "
        "issued or imported)."
    )
    outstanding_points: int = Field(description="What members held at `end`.")
    liability: MoneyRead = Field(
        description="What the outstanding points were worth at `end`, at the point value in force then."
    )
    members: int = Field(description="Members enrolled before `end` and not closed.")
    new_members: int = Field(
        description="Members enrolled in the window, those closed since included: the window's enrolments, "
        "which a member leaving later does not undo. `members` is those not closed now, so when many who "
        "joined have left, new_members can exceed it."
    )
    members_by_tier: list[TierCountRead] = Field(
        description="Members enrolled before `end` and not closed, by the tier they are on now (tier null: "
        "on no tier, or on one the ladder no longer has)."
    )
    members_by_lifecycle: dict[str, int] = Field(
        description="Members enrolled before `end` and not closed, by the lifecycle stage they are in now "
        "(every stage, zeros too)."
    )
    members_by_segment: dict[str, int] = Field(
        description="Members enrolled before `end` and not closed, by the RFM segment the RFM job last put "
        "them in (every segment, zeros too; members it has not scored are in none)."
    )
    paying_members: int = Field(
        description="Members paying now, as churn counts a member paying at `from` and `to`: a subscription "
        "out of its trial with a period paid, not ended (active, canceled in a paid period, or past due in "
        "grace: a member whose fee is overdue has not left). So paying_members_at_start − churned_members, "
        "less those a trial paid ahead keeps (not churned, not paying yet), plus those who began paying "
        "since, is this figure when `to` is now. Monthly recurring revenue and "
        "the paid-membership report count past-due members apart: they bring in nothing until billing's fee."
    )
    monthly_recurring_revenue: MoneyRead | None
    paying_members_at_start: int = Field(
        description="Members with a paying subscription at `from`: made before it, out of its trial by then, "
        "a fee paid before it, not ended by it (canceled in a paid period, or past due in grace, still "
        "counts; a trial does not, even with its first fee paid ahead). A member in a trial at `from` is "
        "in neither churn figure, so a trial that ends in the window without a fee taken is no churn: it "
        "is a trial not converted, not a paying member lost."
    )
    churned_members: int = Field(
        description="Of the members paying at `from`, those whom no subscription kept at `to`: one paying "
        "then, or one in its trial with its first fee paid before `to` and not named `unused` by a cancel by "
        "then (a resume since does not make it count again), keeps them (a member who canceled and "
        "subscribed again in the window, or moved to another plan, has not churned if the new one keeps "
        "them at `to`). A cancel or a resume after `to` leaves the figure as it was."
    )
    churn: Decimal | None = Field(
        description="churned_members ÷ paying_members_at_start, to four places (null when no one paid at "
        "`from`)."
    )
