"""Re-opening processed windows (for a re-issue after a merge or split) never moves the cursor back."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from exchange.state.db import open_engine
from exchange.state.windows import WindowCounts, WindowStore
from transforms.model import Window

NOW = datetime(2026, 11, 25, tzinfo=timezone.utc)


@pytest.fixture()
def store(tmp_path) -> WindowStore:
    """A window store for one exchange on a fresh SQLite state database."""
    return WindowStore(open_engine(f"sqlite:///{tmp_path / 'state.db'}"), "county")


def _windows(*names: str) -> list[Window]:
    return [Window(name, f"cursor-after-{name}", {"file": f"{name}.csv", "start": 1}) for name in names]


def test_a_window_the_cursor_passed_is_read_again_and_the_cursor_stays(store):
    store.add(_windows("a", "b"))
    for key in ("a", "b"):
        store.complete(key, WindowCounts(), NOW)
    assert store.pending() == [] and store.cursor() == "cursor-after-b"

    assert store.reopen(["a"]) == ["a"]
    assert store.pending() == ["a"] and store.get("a").spec == {"file": "a.csv", "start": 1}
    store.complete("a", WindowCounts(), NOW)
    assert store.cursor() == "cursor-after-b"  # not back to after-a: b stays done

    assert store.reopen(["never-planned"]) == []


def test_a_reopened_window_queues_behind_pending_ones_and_keeps_their_cursor(store):
    store.add(_windows("a", "b", "c"))
    store.complete("a", WindowCounts(), NOW)
    store.complete("c", WindowCounts(), NOW)  # b failed: c is done but the cursor waits for b
    assert store.reopen(["a", "c"]) == ["a", "c"]
    assert store.pending() == ["b", "c", "a"]  # c back in its place, a after everything planned
    store.complete("a", WindowCounts(), NOW)
    store.complete("c", WindowCounts(), NOW)
    assert store.cursor() == "cursor-after-a"  # the first run's cursor; nothing passed b yet
    store.complete("b", WindowCounts(), NOW)
    assert store.cursor() == "cursor-after-c" and store.pending() == []


def test_reopening_a_window_being_read_adds_a_second_reading_that_its_completion_leaves_pending(store):
    store.add(_windows("a", "b"))
    # "a" is planned, perhaps being read by a task right now: its completion must not swallow the re-open
    [again] = store.reopen(["a"])
    assert again.startswith("a#reissue-") and store.pending() == ["a", "b", again]
    assert store.get(again).spec == store.get("a").spec
    store.complete("a", WindowCounts(), NOW)
    assert store.pending() == ["b", again]
    for key in ("b", again):
        store.complete(key, WindowCounts(), NOW)
    assert store.cursor() == "cursor-after-b" and store.pending() == []
    # a message built by the second reading names its key: that key can be re-opened in turn
    assert store.reopen([again]) == [again] and store.pending() == [again]
    [third] = store.reopen([again])  # while that one is pending: a reading of "a" again, not of a#...#...
    assert third.startswith("a#reissue-") and third.count("#reissue-") == 1 and third != again
