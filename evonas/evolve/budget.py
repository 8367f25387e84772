"""The budgets of a search: which one is spent, given the engine's counters.

``max_evaluations`` counts TRAINED networks (jobs sent, failed ones included);
duplicates (reused results and children waiting for a twin) count apart, under
``max_duplicates`` (default ``10 x max_evaluations + 100``), so a search whose
children are all duplicates still ends; ``count_duplicates=True`` also counts
them as evaluations (benchmark protocols that pay for every query).
``max_seconds`` is wall-clock, carried over on resume. None: no such limit (at
least one of ``max_evaluations`` and ``max_seconds`` is required).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

from ..errors import ConfigError


@dataclass
class Budget:
    max_evaluations: Optional[int] = 300
    max_seconds: Optional[float] = 600.0
    max_duplicates: Optional[int] = None
    count_duplicates: bool = False

    def __post_init__(self) -> None:
        if self.max_evaluations is None and self.max_seconds is None:
            raise ConfigError("search", "budget", None, "set max_evaluations and/or max_seconds (a run must end)")
        for field in ("max_evaluations", "max_duplicates", "max_seconds"):
            check_limit(field, getattr(self, field))
        if self.max_duplicates is None and self.max_evaluations is not None:
            self.max_duplicates = 10 * self.max_evaluations + 100
        self.count_duplicates = bool(self.count_duplicates)

    def counted(self, trained: int, duplicates: int) -> int:
        """The evaluations that count against ``max_evaluations``."""
        return trained + (duplicates if self.count_duplicates else 0)

    def spent(self, trained: int, duplicates: int) -> str:
        """'' while children may be made, else the name of the budget that is spent."""
        if self.max_evaluations is not None and self.counted(trained, duplicates) >= self.max_evaluations:
            return "max_evaluations"
        if self.max_duplicates is not None and duplicates >= self.max_duplicates:
            return "max_duplicates"
        return ""

    def seconds_left(self, elapsed: float) -> Optional[float]:
        """Wall-clock seconds left after ``elapsed`` (None: no time limit)."""
        return None if self.max_seconds is None else max(0.0, self.max_seconds - elapsed)


def check_limit(field: str, v: Any) -> None:
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or not math.isfinite(v)):
        raise ConfigError("search", field, v, "must be a finite number >= 0")
