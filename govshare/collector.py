"""Python's cyclic garbage collector kept out of the answers' tail.

A server holds a large, long-lived heap (the modules, the schema, the catalog, the policy engine): for the demo world
about 150,000 tracked containers, some of them large. CPython's collector walks all of it on every full (generation 2)
collection, which comes about once a thousand requests and stops the event loop for 70-270 ms on this machine (more
for a city's catalog). ``Collector.start`` collects once after start-up and moves every object alive into the permanent
generation (``gc.freeze``), which no collection walks: a full collection then walks only what requests left behind.

Freezing has one cost: a frozen object is never collected as part of a reference cycle (reference counting still
frees it). When a new snapshot replaces the catalog, policies or schema, the old one's cycles would stay in memory;
so the first full collection after such a change (or after every ``THAW_EVERY`` full collections, to bound what a
request alive at the moment of a freeze may leave behind) walks the frozen objects too (``gc.unfreeze`` when it
starts) and freezes what survives when it ends. That one collection costs what every full collection cost before.

Imports nothing of govshare.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

THAW_EVERY = 100  # full collections between two that walk the frozen heap too, whatever changed


class Collector:
    """``parts()`` names the long-lived objects whose replacement should free the old ones' cycles (the snapshot's
    catalog, policies, schema...): compared by identity at each full collection."""

    def __init__(self, parts: Callable[[], tuple[Any, ...]]) -> None:
        self._parts = parts
        self._frozen_with: tuple[int, ...] = ()
        self._thawed = False
        self._since_thaw = 0
        self.thaws = 0  # full collections that walked the frozen heap (after start-up)

    def _identity(self) -> tuple[int, ...]:
        return tuple(id(part) for part in self._parts())

    def start(self) -> None:
        """After start-up: one full collection, then everything alive frozen."""
        gc.collect()
        gc.freeze()
        self._frozen_with = self._identity()
        if self._collected not in gc.callbacks:
            gc.callbacks.append(self._collected)

    def stop(self) -> None:
        if self._collected in gc.callbacks:
            gc.callbacks.remove(self._collected)
        gc.unfreeze()

    def _collected(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._since_thaw += 1
            if self._since_thaw >= THAW_EVERY or self._identity() != self._frozen_with:
                gc.unfreeze()  # this collection walks the old snapshot too, and frees its cycles
                self._thawed = True
        elif self._thawed:
            gc.freeze()
            self._thawed, self._since_thaw = False, 0
            self._frozen_with = self._identity()
            self.thaws += 1
