"""Ordered release of finished results.

By completion order (``ordered=False``) every result enters the search as soon as
the evaluator returns it. In submission order (``ordered=True``) a result waits
until every older job in flight has entered: one result at a time, the oldest
first, so that each tell is followed by its own asks and the lineage of a seed
does not depend on which worker finished first.
"""
from __future__ import annotations

from typing import Iterable, Optional

from ..evaluate.base import Result


class Release:
    def __init__(self, ordered: bool = False):
        self.ordered = bool(ordered)
        self.held: dict[int, Result] = {}

    def accept(self, results: Iterable[Result]) -> list[Result]:
        """Results to finish now: all of them, or (ordered) none: they are held."""
        if not self.ordered:
            return list(results)
        for r in results:
            self.held[r.id] = r
        return []

    def next_due(self, running: Iterable[int]) -> Optional[Result]:
        """Ordered: the held result of the oldest running job, if it is there."""
        if not self.held:
            return None
        oldest = min(running, default=None)
        return self.held.pop(oldest) if oldest in self.held else None

    def drain(self) -> list[Result]:
        """Every held result, oldest first (the time budget is up: keep finished work)."""
        out = [self.held.pop(i) for i in sorted(self.held)]
        return out
