"""The programme's figures, for operators: JSON, or CSV when `Accept` prefers `text/csv`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from loyalty_api.analytics import service
from loyalty_api.analytics.periods import MAX_PERIODS, Period
from loyalty_api.analytics.repository import GroupBy
from loyalty_api.analytics.schemas import OverviewRead, PointsFiguresRead, PointsReportPage
from loyalty_api.auth.errors import InvalidApiKey, ScopeNotAllowed
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.errors import InvalidField
from loyalty_api.http.dependencies import EmptyIsLeftOut, Paging, UoW, require
from loyalty_api.http.negotiation import ReportAsCsv, csv_response
from loyalty_api.http.problems import problem_responses
from loyalty_api.http.schemas import QueryInstant
from loyalty_api.http.transaction import ReportRoute

router = APIRouter(prefix="/v1/analytics", tags=["analytics"], route_class=ReportRoute)

Operator = Annotated[Principal, Depends(require(Scope.admin))]
From = Annotated[QueryInstant, Query(alias="from", description="The first instant counted.")]
To = Annotated[QueryInstant, Query(description="The first instant not counted.")]
_CSV: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}
_ERRORS = problem_responses(InvalidApiKey, ScopeNotAllowed, InvalidField) | _CSV


@router.get(
    "/points",
    summary="Points issued, redeemed, expired and adjusted",
    response_model=PointsReportPage,
    responses=_ERRORS,
)
async def read_points_report(
    start: From,
    to: To,
    as_csv: ReportAsCsv,
    uow: UoW,
    _: Operator,
    paging: Paging,
    period: Annotated[
        Period | None,
        Query(
            description=f"Cut the window into days, weeks (from Monday) or months, in the programme's time "
            f"zone; at most {MAX_PERIODS} periods. Left out: the window as one."
        ),
        EmptyIsLeftOut,
    ] = None,
    group_by: Annotated[
        GroupBy | None,
        Query(description="Split each period by the channel or the store entries name."),
        EmptyIsLeftOut,
    ] = None,
) -> Response | PointsReportPage:
    """The points figures of [`from`, `to`), per period (and channel or store): each a sum over the ledger.
    `net` is the change in what members hold. Entries other than earns name no channel or store: in a grouped
    report they are the rows whose `group` is null, after a period's other groups, which come in a fixed
    order of their own (not by name). JSON comes a page at a time (`limit`, `cursor`: send the same `from`,
    `to`, `period` and `group_by` for each page, or the cursor is 422); CSV holds every row.

    For `admin` keys only. Reads only."""
    report = await service.points_report(uow, start, to, period=period, group_by=group_by)
    if as_csv:
        return csv_response(service.report_csv(report, grouped_by=group_by))
    page = service.report_page(
        report, start, to, period=period, group_by=group_by, limit=paging.limit, cursor=paging.cursor
    )
    return PointsReportPage(
        items=[PointsFiguresRead.model_validate(f) for f in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/overview", summary="The programme's figures at a glance", response_model=OverviewRead, responses=_ERRORS
)
async def read_analytics_overview(
    start: From, to: To, as_csv: ReportAsCsv, uow: UoW, _: Operator
) -> Response | OverviewRead:
    """For [`from`, `to`): the points figures, breakage (expired ÷ (issued + imported)) and redemption rate
    (redeemed ÷ (issued + imported)); at `to`: the points members hold and what they are worth (the
    programme's liability), members; now: members by tier, paying members and monthly recurring revenue.

    Churn compares two instants: of the members paying at `from` (out of any trial, a fee paid), the share
    whom no subscription keeps at `to`. A subscription paying at `to`, or in its trial with its first fee
    paid before `to`, keeps its member: cancelling and subscribing again within the window is no churn when
    the new subscription keeps them at `to`, and is churn when it does not (a trial nothing was paid for). A
    member in a trial at `from` was not paying then: a trial that ends in the window unconverted is in neither
    figure (a conversion lost, not a paying member). A member past due in grace is paying at either instant,
    as in `paying_members` now: their fee is overdue, but they have not left.

    For `admin` keys only. Reads only."""
    found = await service.overview(uow, start, to)
    if as_csv:
        return csv_response(service.overview_csv(found))
    return OverviewRead.model_validate(found)
