"""Ids: version 7 UUIDs, strictly increasing in a process, never shared with a forked child."""

from __future__ import annotations

import itertools
import os
import uuid

from loyalty_api.db.ids import new_id


def test_ids_are_version_7_and_strictly_increasing() -> None:
    ids = [new_id() for _ in range(5_000)]  # more than one page of pooled random bits
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert all(a < b for a, b in itertools.pairwise(ids))


def test_a_forked_child_draws_other_random_bits_than_its_parent() -> None:
    new_id()  # the parent's pool of random bits is filled
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            os.write(write, new_id().bytes)
        finally:
            os._exit(0)  # never back into pytest
    os.close(write)
    from_child = uuid.UUID(bytes=os.read(read, 16))
    os.close(read)
    os.waitpid(child, 0)
    from_parent = new_id()
    # The low 62 bits are random: the same draw in both would give the same bits.
    mask = (1 << 62) - 1
    assert from_child.int & mask != from_parent.int & mask
