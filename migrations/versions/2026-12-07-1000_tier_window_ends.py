"""members keep the end of the window their tier's review judges, not the date with the grace added: the
grace is added from the ladder wherever that date is wanted, so that a change of a tier's grace writes
nothing to its members (before, every member of the tier was re-dated in the tier PUT's transaction, past the
request's time limit on a large tier)

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-07 10:00:00.000000+00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import loyalty_api.db.types

revision: str = "0038"
down_revision: str | None = "0037"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (the date with the grace, the window's end, whose tier's grace)
_DATES = (
    ("tier_kept_until", "tier_window_end", "tier_id"),
    ("tier_reminded_until", "tier_reminded_window_end", "tier_id"),
    ("tier_earned_until", "tier_earned_window_end", "tier_earned_id"),
)
_OLD_INDEXES = {
    "ix_members__tier_kept_until_id": ["tier_kept_until", "id"],
    "ix_members__tier_id": ["tier_id"],
}
_WALK_INDEX = "ix_members__tier_id_tier_window_end_id"
_OVERRIDES_INDEX = "ix_members__tier_override_until_id"
_OVERRIDDEN = "tier_override_until IS NOT NULL"

# The columns as this revision finds them, untyped: the dates are moved by the database, never read here.
_MEMBERS = sa.table(
    "members",
    *(sa.column(name) for name in ("status", "tier_id", "tier_earned_id", "tier_override_until")),
    *(sa.column(name) for dated, end, _ in _DATES for name in (dated, end)),
)
_TIERS = sa.table("tiers", sa.column("id"), sa.column("grace_days"))


def _days_later(column: sa.ColumnClause[Any], days: int) -> sa.ColumnElement[Any]:
    """The stored instant in `column` moved by whole `days` of 24 hours (the service's timedelta). SQLite
    keeps it as text, `YYYY-MM-DD HH:MM:SS.ffffff`: its date functions keep the seconds only, so the fraction
    is carried over from the text as it was."""
    if op.get_bind().dialect.name == "postgresql":
        # In seconds, which an interval keeps as a length of time: its days would follow the session's zone.
        return column + sa.func.make_interval(0, 0, 0, 0, 0, 0, float(days * 86400))
    moved = sa.func.strftime("%Y-%m-%d %H:%M:%S", column, f"{days:+d} days")
    return moved.op("||")(sa.func.substr(column, 20))


def _convert(*, to_ends: bool) -> None:
    """Each date from the other column: the window's end is the date less the grace of the member's tier (or
    of the tier earned before an override), tier by tier. A member under an override has no window: the
    date they kept the tier until was the override's end, which stays in `tier_override_until`. The tier
    earned before an override may have been deleted since: its grace is unknown and no review reads the date
    (the tier is not found), which is carried over as it was; so is any date of a member without a tier."""
    bind = op.get_bind()
    c = _MEMBERS.c
    tiers = bind.execute(sa.select(_TIERS.c.id, _TIERS.c.grace_days)).all()
    for dated, end, tier_column in _DATES:
        source, target = (c[dated], c[end]) if to_ends else (c[end], c[dated])
        tier: Any = c[tier_column]
        if dated == "tier_reminded_until":
            # Told of their window before an override: that of the tier earned before it, whose grace the
            # date carried (the override's end puts them back on it, told).
            tier = sa.case((c.tier_override_until.is_(None), c.tier_id), else_=c.tier_earned_id)
        # Under an override the date kept until was the override's end, and there is no window.
        held = c.tier_override_until.is_(None) if dated == "tier_kept_until" and to_ends else sa.true()
        for tier_id, grace in tiers:
            bind.execute(
                sa.update(_MEMBERS)
                .where(tier == tier_id, source.is_not(None), held)
                .values({target: _days_later(source, -grace if to_ends else grace)})
            )
        tierless = sa.or_(tier.is_(None), tier.not_in(sa.select(_TIERS.c.id)))
        bind.execute(
            sa.update(_MEMBERS)
            .where(target.is_(None), source.is_not(None), held, tierless)
            .values({target: source})
        )
    if not to_ends:
        # An erased member is never reviewed again: the erasure took their date, not the override's end.
        bind.execute(
            sa.update(_MEMBERS)
            .where(c.tier_override_until.is_not(None), c.status != "erased")
            .values(tier_kept_until=c.tier_override_until)
        )


def upgrade() -> None:
    for _, end, _ in _DATES:
        op.add_column("members", sa.Column(end, loyalty_api.db.types.UTCDateTime(), nullable=True))
    _convert(to_ends=True)
    for name in _OLD_INDEXES:
        op.drop_index(name, "members")
    for dated, _, _ in _DATES:
        op.drop_column("members", dated)
    # The walk's index serves the lookups by tier alone that ix_members__tier_id served. Its column is new
    # here, so it is built here; the overrides' (IF NOT EXISTS) may be built first, CONCURRENTLY, on a large
    # PostgreSQL database (docs/scaling.md).
    op.create_index(_WALK_INDEX, "members", ["tier_id", "tier_window_end", "id"], if_not_exists=True)
    op.create_index(
        _OVERRIDES_INDEX,
        "members",
        ["tier_override_until", "id"],
        postgresql_where=sa.text(_OVERRIDDEN),
        sqlite_where=sa.text(_OVERRIDDEN),
        if_not_exists=True,
    )


def downgrade() -> None:
    for dated, _, _ in _DATES:
        op.add_column("members", sa.Column(dated, loyalty_api.db.types.UTCDateTime(), nullable=True))
    _convert(to_ends=False)
    op.drop_index(_OVERRIDES_INDEX, "members")
    op.drop_index(_WALK_INDEX, "members")
    for _, end, _ in _DATES:
        op.drop_column("members", end)
    for name, columns in _OLD_INDEXES.items():
        op.create_index(name, "members", columns)
