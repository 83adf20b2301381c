"""Whether a write changed a row: PUT and PATCH take no Idempotency-Key because a repeat sets the same
values, so a write that sets what is stored already is no change. It answers as a change does, and moves no
`updated_at`, emits no event and forgets no cached copy: receivers are told of changes that happened.

A service takes the row's values before it applies a request (`column_values`) and compares them after; the
values compare as Python does (equal decimals, instants and JSON documents are equal). Taken and compared
in memory, it works whatever the write flushed meanwhile.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect


def column_values(row: Any) -> dict[str, object]:
    """The values `row` holds in its mapped columns now (every column must be loaded)."""
    return {column.key: getattr(row, column.key) for column in inspect(row).mapper.column_attrs}
