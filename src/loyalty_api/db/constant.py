"""A value written into a statement's SQL text instead of being sent as a parameter.

A partial index holds the rows its predicate picks (`remaining > 0`, `status = 'active'`). A database uses it
for a query only when it can prove the query's condition implies that predicate, and it proves that from
the statement's own text: `remaining > $5` implies nothing before `$5` is known.

- PostgreSQL plans a prepared statement (asyncpg prepares each one) anew for each execution's values (a
  custom plan) or once for all (a generic plan), picking the generic one after five executions if its
  estimated cost is no worse. A generic plan cannot use the partial index, so it looks worse, and the
  statement is planned again at every execution: for the account's read at the till that was about 1.3 ms
  of the database's CPU an execution, four times the read itself (`benchmarks/plans.py` lists a
  scenario's statements by how they were planned).
- SQLite plans a statement before its parameters are bound, so it never uses the partial index at all.

So a condition that selects a partial index's rows is written with `constant(...)`, as the index's
predicate is: `PointLot.remaining > constant(0)`. Each models module that has such an index names the
condition once, beside it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, String, literal_column
from sqlalchemy.sql.elements import ColumnElement


def constant(value: int | str) -> ColumnElement[Any]:
    """`value` as SQL text. Only for the code's own fixed values (a status, a zero): a string must be a
    plain word, so nothing a caller sends can end up in a statement this way."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not a constant of a partial index's predicate here")
    if isinstance(value, int):
        return literal_column(str(value), Integer())
    if not value.isidentifier():
        raise ValueError(f"not a plain word: {value!r}")
    return literal_column(f"'{value}'", String())
