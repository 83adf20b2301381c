"""A small per-process cache for what every request reads and operators rarely change: the programme,
the earning rules, verified API keys.

Entries live for a few seconds (settings.cache_seconds). A change made through this process clears the
entry at once; other processes see it once their entry has aged out and been loaded again. Time here is
the monotonic clock: it paces the cache and decides nothing in the domain.
"""

from __future__ import annotations

import time
from typing import Any


class TtlCache:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._entries: dict[str, tuple[float, Any]] = {}

    def get(self, key: str) -> Any | None:
        """The entry, or None for the caller that should load it (and `put` it). When an entry ages out, only
        the first caller gets None; the others keep the old value for one more period meanwhile, instead of
        every request in flight loading it at once."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        now = time.monotonic()
        if expires >= now:
            return value
        self._entries[key] = (now + self.seconds, value)
        return None

    def put(self, key: str, value: Any) -> None:
        if self.seconds > 0:
            self._entries[key] = (time.monotonic() + self.seconds, value)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
