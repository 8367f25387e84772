"""Random search (Li & Talwalkar 2019): the baseline, at the same budget.

Pseudocode::

    ask():       return random genome
    tell(child): if child is the best so far: keep it (its weights), drop the previous best
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .base import Proposal, Strategy, register_strategy
from .toolbox import Member


@register_strategy("random")
class RandomSearch(Strategy):
    def ask(self, rng: np.random.Generator) -> Optional[Proposal]:
        return Proposal(self.var.sample(rng))

    def tell(self, m: Member) -> None:
        if m.status == "failed":
            return
        best = next(iter(self.alive.values()), None)
        if best is None or m.fitness.wvalues > best.fitness.wvalues:
            if best is not None:
                self._evict(best)
            self._admit(m)
