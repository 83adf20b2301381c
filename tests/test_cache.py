from __future__ import annotations

import time

from loyalty_api.cache import TtlCache


def test_an_aged_entry_is_loaded_again_by_one_caller_while_the_others_keep_the_old_value() -> None:
    cache = TtlCache(0.05)
    cache.put("programme", "old")
    assert cache.get("programme") == "old"
    time.sleep(0.06)

    assert cache.get("programme") is None  # the first caller after it aged out loads it
    assert cache.get("programme") == "old"  # requests meanwhile do not all load it too
    cache.put("programme", "new")
    assert cache.get("programme") == "new"


def test_an_entry_nobody_reloads_comes_round_again() -> None:
    cache = TtlCache(0.05)
    cache.put("ladder", "old")
    time.sleep(0.06)
    assert cache.get("ladder") is None  # that caller failed and put nothing
    time.sleep(0.06)
    assert cache.get("ladder") is None  # so a later caller is asked to load it


def test_a_forgotten_entry_is_loaded_at_once() -> None:
    cache = TtlCache(60)
    cache.put("key:abc", "verified")
    cache.forget("key:abc")
    assert cache.get("key:abc") is None
