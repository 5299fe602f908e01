"""The cyclic collector kept out of the answers' tail (govshare/collector.py, issue 15): the start-up heap is frozen
out of full collections, and a snapshot replaced is still freed, reference cycles and all."""

from __future__ import annotations

import gc
import weakref

from govshare.collector import Collector


class Part:
    """A long-lived object in a reference cycle, as a schema or a policy engine is."""

    def __init__(self) -> None:
        self.me = self


def test_the_heap_is_frozen_and_a_replaced_part_is_freed_with_its_cycles():
    held = {"part": Part()}
    old = weakref.ref(held["part"])
    collector = Collector(lambda: (held["part"],))
    try:
        collector.start()
        assert gc.get_freeze_count() > 0  # full collections no longer walk the start-up heap
        gc.collect()
        assert old() is not None and collector.thaws == 0  # nothing changed: the frozen heap stays frozen
        held["part"] = Part()  # a new snapshot: the old part is garbage, in a cycle, and frozen
        gc.collect()
        assert old() is None  # walked and freed by the first full collection after the change
        assert collector.thaws == 1 and gc.get_freeze_count() > 0  # and what survived frozen again
        gc.collect()
        assert collector.thaws == 1
    finally:
        collector.stop()
    assert gc.get_freeze_count() == 0


def test_without_a_change_the_frozen_heap_is_still_walked_now_and_then(monkeypatch):
    """What a request alive at a freeze leaves in a cycle is freed within THAW_EVERY full collections."""
    monkeypatch.setattr("govshare.collector.THAW_EVERY", 3)
    collector = Collector(lambda: ())
    try:
        collector.start()
        leftover = Part()
        gone = weakref.ref(leftover)
        gc.freeze()  # as if it had been alive at a freeze
        del leftover
        gc.collect()
        gc.collect()
        assert gone() is not None and collector.thaws == 0
        gc.collect()
        assert gone() is None and collector.thaws == 1
    finally:
        collector.stop()


async def test_a_served_app_freezes_its_heap_while_it_runs(own_world):
    from server import create_app

    app = create_app(own_world.settings)
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
