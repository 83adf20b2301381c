"""What the kinds of benefits and of earning rules share: a pydantic model per kind, told apart by `kind`."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict


def _kind_required(schema: dict[str, Any]) -> None:
    # `kind` picks the model in a union, so the schema requires it, though Python code may leave it to its
    # default.
    required = schema.setdefault("required", [])
    if "kind" not in required:
        required.insert(0, "kind")


# One schema for requests and replies alike (pydantic would otherwise name two, `-Input` and `-Output`,
# which generated clients turn into one class twice).
KIND_MODEL_CONFIG = ConfigDict(
    extra="forbid", frozen=True, json_schema_mode_override="validation", json_schema_extra=_kind_required
)
