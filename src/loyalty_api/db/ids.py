"""Time-ordered UUIDs (version 7), so keyset pages by id follow creation order and inserts stay local in
B-tree indexes. Within one process they are strictly increasing, even within one millisecond: a member's
events and ledger entries written in one transaction keep their order."""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

_lock = threading.Lock()
_last = 0
# Random bits are read from the OS a page at a time: a system call for every id cost more than the rest of
# making it, and an earn makes four.
_POOL_BYTES = 4096
_pool = b""
_taken = 0


def _random_bits(count: int) -> int:
    """`count` bytes of the OS's randomness, as an integer. Call holding `_lock`."""
    global _pool, _taken
    if _taken + count > len(_pool):
        _pool, _taken = os.urandom(_POOL_BYTES), 0
    start, _taken = _taken, _taken + count
    return int.from_bytes(_pool[start:_taken], "big")


def _forget_pool() -> None:
    """A forked child must not draw the bits its parent draws too."""
    global _pool, _taken
    _pool, _taken = b"", 0


os.register_at_fork(after_in_child=_forget_pool)


def new_id() -> uuid.UUID:
    global _last
    unix_ms = time.time_ns() // 1_000_000
    with _lock:
        rand = _random_bits(10)
        value = (unix_ms & ((1 << 48) - 1)) << 80
        value |= 0x7 << 76  # version
        value |= (rand >> 68) << 64  # 12 bits rand_a
        value |= 0b10 << 62  # variant
        value |= rand & ((1 << 62) - 1)  # 62 bits rand_b
        if value <= _last:
            # Same millisecond, and the random bits drew lower: step just past the last id instead. The
            # low 62 bits are random, so the step never overflows into the variant in practice.
            value = _last + 1
        _last = value
    return uuid.UUID(int=value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def first_id_at(at: datetime) -> uuid.UUID:
    """The smallest id made at `at`'s millisecond: every id made before it sorts lower, so rows older than an
    instant are found through the primary key."""
    unix_ms = (at - _EPOCH) // timedelta(milliseconds=1)
    return uuid.UUID(int=(unix_ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | 0b10 << 62)
