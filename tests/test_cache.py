from __future__ import annotations

import time

from loyalty_api.cache import TtlCache


def test_an_aged_entry_is_loaded_again_by_one_caller_while_the_others_keep_the_old_value() -> None:
    cache = TtlCache(0.05)
    cache.put("programme", "old", cache.stamp())
    assert cache.get("programme") == "old"
    time.sleep(0.06)

    assert cache.get("programme") is None  # the first caller after it aged out loads it
    assert cache.get("programme") == "old"  # requests meanwhile do not all load it too
    cache.put("programme", "new", cache.stamp())
    assert cache.get("programme") == "new"


def test_an_entry_nobody_reloads_comes_round_again() -> None:
    cache = TtlCache(0.05)
    cache.put("ladder", "old", cache.stamp())
    time.sleep(0.06)
    assert cache.get("ladder") is None  # that caller failed and put nothing
    time.sleep(0.06)
    assert cache.get("ladder") is None  # so a later caller is asked to load it


def test_a_forgotten_entry_is_loaded_at_once() -> None:
    cache = TtlCache(60)
    cache.put("key:abc", "verified", cache.stamp())
    cache.forget("key:abc")
    assert cache.get("key:abc") is None


def test_a_value_read_before_a_change_is_not_kept_after_the_change_forgot_it() -> None:
    cache = TtlCache(60)
    stamp = cache.stamp()  # a request starts reading the programme
    cache.forget("program")  # a change commits meanwhile (here or, by a notification, elsewhere)
    cache.put("program", "read before the change", stamp)
    assert cache.get("program") is None  # the next caller reads it again
    cache.put("program", "read after", cache.stamp())
    assert cache.get("program") == "read after"


def test_clearing_drops_values_being_read_too() -> None:
    cache = TtlCache(60)
    stamp = cache.stamp()
    cache.clear()  # the listener reconnected: it may have missed changes
    cache.put("tier_ladder", "old", stamp)
    assert cache.get("tier_ladder") is None
