"""Which named constraint an IntegrityError broke, on either database."""

from __future__ import annotations

import re

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (?P<columns>[\w., ]+)")


def violated_constraint(exc: IntegrityError) -> str | None:
    cause = getattr(exc.orig, "__cause__", None)
    name = getattr(cause, "constraint_name", None)  # asyncpg reports the constraint by name
    if isinstance(name, str):
        return name
    # SQLite names the table and columns instead; our naming convention turns them back into the name.
    match = _SQLITE_UNIQUE.search(str(exc.orig))
    if match is None:
        return None
    qualified = [part.strip() for part in match.group("columns").split(",")]
    table = qualified[0].split(".")[0]
    columns = "_".join(part.split(".")[1] for part in qualified)
    return f"uq_{table}__{columns}"


class DuplicateKey(Exception):
    """A unique constraint refused a row; `constraint` names it (see the naming convention in db/base.py)."""

    def __init__(self, constraint: str | None) -> None:
        super().__init__(constraint)
        self.constraint = constraint


async def flush_unique(session: AsyncSession) -> None:
    """Flush, turning a broken unique constraint into DuplicateKey for the service to name.

    Services check for duplicates first to answer clearly; this catches the race where two requests pass
    that check at once on PostgreSQL.
    """
    try:
        await session.flush()
    except IntegrityError as exc:
        name = violated_constraint(exc)
        if name is None or not name.startswith("uq_"):
            raise
        raise DuplicateKey(name) from exc
