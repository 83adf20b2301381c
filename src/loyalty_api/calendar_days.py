"""Days and months as the programme's calendar has them. Pure: no I/O, no clock (times come in).

A grace or a trial of N days ends at the same time on the programme's clock N days on, as periods and points
end the same time of day some months on (add_months): counted as N times 24 hours, a New York
grace across a change of daylight saving time ended at 01:00 there (or 23:00 the day before), an hour off.
Local times are resolved as the month arithmetic resolves them: a time the clocks skip is read with the offset
before the change (02:30 on the morning clocks go on from 02:00 to 03:00 is 03:30), a time they repeat is its
first pass.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from dateutil.relativedelta import relativedelta


def add_months(moment: datetime, months: int, zone: tzinfo) -> datetime:
    """`moment` plus `months` calendar months as the programme's calendar has them (`zone`): the same local
    time on the same day of the month, or the month's last day when it is shorter; in UTC. Counted in UTC, a
    subscription taken early on the 1st in Shanghai (still the last day of the month before in UTC) ended
    days short, on the 29th. No months is `moment` itself: relativedelta's arithmetic drops the pass (`fold`)
    of a time in the hour a clock change repeats, and made the second 01:30 the first, an hour before it."""
    if months == 0:
        return moment.astimezone(UTC)
    return (moment.astimezone(zone) + relativedelta(months=months)).astimezone(UTC)


def add_days(moment: datetime, days: int, zone: tzinfo) -> datetime:
    """`moment` plus `days` calendar days (back, when negative) of the programme's calendar (`zone`): the same
    local time that many days on, in UTC. No days is `moment` itself: the local time's arithmetic drops its
    pass (`fold`), and would make the second 01:30 of an hour the clocks repeat the first."""
    if days == 0:
        return moment.astimezone(UTC)
    return (moment.astimezone(zone) + timedelta(days=days)).astimezone(UTC)


def latest_before(moment: datetime, days: int, zone: tzinfo) -> datetime:
    """An instant no earlier than any `start` whose `add_days(start, days, zone)` is `moment` or earlier:
    where a walk over starts (a tier's window ends, to which the grace is added) stops. The latest such
    start, or up to the length of a clock change later around one: local time runs back once a year, so no
    one instant divides the starts exactly there, and the walk's few extra are looked at again one by one."""
    if days == 0:
        return moment.astimezone(UTC)
    local = moment.astimezone(zone)
    # In the second pass of a repeated hour every time of that hour has come on the clock (each is read as
    # its first pass), up to as far on as the clocks went back.
    repeated = moment.astimezone(UTC) - local.replace(fold=0).astimezone(UTC)
    wall = local.replace(tzinfo=None) + repeated - timedelta(days=days)
    # The last instant whose clock reads `wall`: its second pass when the clocks repeat it, the offset before
    # the change when they skip it (after every instant reading less).
    return max(wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1))
