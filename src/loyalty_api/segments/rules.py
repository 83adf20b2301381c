"""Named segments from recency (R) and frequency (F) scores, first rule that holds:

| segment | rule |
| --- | --- |
| champions | R ≥ 4 and F ≥ 4 |
| loyal | F ≥ 4 |
| potential | R ≥ 4 |
| at_risk | R ≤ 2 and F ≥ 3 |
| hibernating | R ≤ 2 |
| needs_attention | the rest (R = 3, F ≤ 3) |
| lost | no purchase in the window (every score 0) |

Scores are quintiles among the members who bought in the window: the fifth who bought most recently get
R = 5, the fifth who bought most often F = 5, the fifth who spent most M = 5. A member ranked k of n scores
⌈5k ÷ n⌉, so with fewer than five buyers the top one still scores 5. Members with the same figure share the
middle of the places they hold (k is the mean of the first and the last), so they score alike, and neither a
crowd of one-time buyers scores high nor the many who bought most often low.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, case

from loyalty_api.members.models import Segment


def segment_of(recency: int, frequency: int) -> Segment:
    if recency == 0:
        return Segment.lost
    if recency >= 4 and frequency >= 4:
        return Segment.champions
    if frequency >= 4:
        return Segment.loyal
    if recency >= 4:
        return Segment.potential
    if recency <= 2 and frequency >= 3:
        return Segment.at_risk
    if recency <= 2:
        return Segment.hibernating
    return Segment.needs_attention


def segment_sql(recency: ColumnElement[Any], frequency: ColumnElement[Any]) -> ColumnElement[str]:
    """`segment_of` as a SQL expression, for the job's set-based statement."""
    return case(
        (and_(recency >= 4, frequency >= 4), Segment.champions.value),
        (frequency >= 4, Segment.loyal.value),
        (recency >= 4, Segment.potential.value),
        (and_(recency <= 2, frequency >= 3), Segment.at_risk.value),
        (recency <= 2, Segment.hibernating.value),
        else_=Segment.needs_attention.value,
    )
