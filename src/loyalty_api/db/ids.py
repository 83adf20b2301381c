"""Time-ordered UUIDs (version 7), so keyset pages by id follow creation order and inserts stay local in
B-tree indexes. Within one process they are strictly increasing, even within one millisecond: a member's
events and ledger entries written in one transaction keep their order."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last = 0


def new_id() -> uuid.UUID:
    global _last
    unix_ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= (rand >> 68) << 64  # 12 bits rand_a
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # 62 bits rand_b
    with _lock:
        if value <= _last:
            # Same millisecond, and the random bits drew lower: step just past the last id instead. The
            # low 62 bits are random, so the step never overflows into the variant in practice.
            value = _last + 1
        _last = value
    return uuid.UUID(int=value)
