"""A small per-process cache for what every request reads and operators rarely change: the programme,
the earning rules, the tier ladder, the plans, partners' joint offers, verified API keys.

A change clears the entry when it commits: in the process that made it directly, and on PostgreSQL in every
other process by a notification committed with the change (db/invalidation.py). Entries also live only
settings.cache_seconds, the fallback for a notification missed, and what a change made by another process
waits for on SQLite. Time here is the monotonic clock: it paces the cache and decides nothing in the domain.

A value read before a change committed must not be stored after the change cleared the entry, or it would
outlive the change. So a caller takes a `stamp()` before it reads what it will `put` (a unit of work takes
its own when it begins: one that reads one snapshot throughout sees rows as of its first statement), and
`put` drops the value if an entry was forgotten (or everything cleared) since: the next caller reads again.
What a report reads on the replica, behind by its lag, is never put here.
"""

from __future__ import annotations

import time
from typing import Any


class TtlCache:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._entries: dict[str, tuple[float, Any]] = {}
        self._forgets = 0  # how many times an entry was forgotten or everything cleared

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

    def stamp(self) -> int:
        """Take before reading what will be `put`."""
        return self._forgets

    def put(self, key: str, value: Any, stamp: int) -> None:
        """Keep `value`, read after `stamp()` gave `stamp`, unless something was forgotten since (changes are
        rare: which entry does not matter), in which case the next caller loads it again."""
        if stamp != self._forgets:
            self._entries.pop(key, None)
        elif self.seconds > 0:
            self._entries[key] = (time.monotonic() + self.seconds, value)

    def forget(self, key: str) -> None:
        self._forgets += 1
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._forgets += 1
        self._entries.clear()
