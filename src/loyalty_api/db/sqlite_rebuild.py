"""For migrations: SQLite rebuilds a table to change its constraints or column types, which needs the rows
of tables others reference set aside while it does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

_SET_ASIDE = "_loyalty_rows_set_aside"


@contextmanager
def rows_set_aside_on_sqlite(table: str) -> Iterator[None]:
    """Dialect branch: SQLite adds or drops a CHECK by copying the table into a new one and dropping the old.
    Dropping a table deletes its rows first, which fails while foreign keys are enforced and other rows
    reference them, and enforcement cannot be switched off inside the transaction the migrations run in. So
    the rows of a table others reference are set aside and put back once the table is rebuilt: with foreign
    keys checked at commit, taking the rows out counts the rows that reference them as violations and putting
    them back counts those off again (a row really left without its parent still fails the commit)."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        yield
        return
    inspector = sa.inspect(bind)
    references = [
        foreign_key
        for other in inspector.get_table_names()
        for foreign_key in inspector.get_foreign_keys(other)
        if foreign_key["referred_table"] == table
    ]
    if not references:
        yield
        return
    if any(foreign_key["options"].get("ondelete") for foreign_key in references):
        # Taking the rows out would cascade to, or clear, the rows that reference them.
        raise RuntimeError(f"{table} is referenced with an ON DELETE action: its rows cannot be set aside")
    # Names from this revision's list and the database's own catalogue, quoted: no outside input.
    quote = bind.dialect.identifier_preparer.quote
    name = quote(table)
    columns = ", ".join(quote(column["name"]) for column in inspector.get_columns(table))
    op.execute("PRAGMA defer_foreign_keys = ON")
    op.execute(f"CREATE TEMP TABLE {_SET_ASIDE} AS SELECT {columns} FROM {name}")  # noqa: S608
    op.execute(f"DELETE FROM {name}")  # noqa: S608
    yield
    # The columns both before and after the rebuild: one added is filled by its default, one dropped is gone.
    before = [column["name"] for column in inspector.get_columns(table)]
    after = {column["name"] for column in sa.inspect(bind).get_columns(table)}
    columns = ", ".join(quote(column) for column in before if column in after)
    op.execute(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM {_SET_ASIDE}")  # noqa: S608
    op.execute(f"DROP TABLE {_SET_ASIDE}")
    op.execute("PRAGMA defer_foreign_keys = OFF")
