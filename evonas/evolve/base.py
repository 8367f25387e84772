"""Strategy protocol and registry.

A strategy only decides WHICH genomes to evaluate; the engine (``engine.Search``)
owns ids, budgets, duplicates, weights files and the evaluator. The engine calls::

    ask(rng)        -> Proposal | None   # None: nothing to propose now (barrier) or done
    submitted(m)    # the proposal became member m (id assigned, pending)
    tell(m)         # m finished: status ok | failed | duplicate, fitness set if not failed
    drain_evicted() -> [Member]   # members that left the population since the last call

Resume is by replay, so a strategy has no state/load_state pair: its state must be
a pure function of (constructor arguments, the sequence of ask/submitted/tell calls
with their arguments). The engine journals which calls happened in which order and
replays them on a fresh instance. What a strategy must guarantee for that:

* all randomness comes from the ``rng`` passed to ``ask``/``resample`` (never
  ``random``, ``np.random`` globals, time, or ``id()``/hash-of-object order);
* an ``ask`` that returns None changes nothing (no draw from ``rng``, no state):
  how often the engine asks in vain depends on timing, which is not replayed;
* iteration over sets or dicts that decides anything follows insertion order or
  a sort, never Python's string-hash order (it changes between processes);
* ``tell``/``submitted``/``drain_evicted`` are deterministic in their arguments.

``tests/test_strategies.py`` checks this for every registered strategy (resume in
the middle of a run gives the uninterrupted lineage).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np

from ..genome.base import Genome
from ..registry import Registry
from .toolbox import Member, Variation


@dataclass(frozen=True)
class Proposal:
    """A child to evaluate. ``neutral``: the strategy expects the parent's network
    unchanged (ES neutral drift), so a cached fitness is always reused."""
    genome: Genome
    parent_ids: tuple[int, ...] = ()
    operator: str = "init"
    neutral: bool = False


class Strategy:
    name: ClassVar[str] = ""
    pareto: ClassVar[bool] = False  # True: two objectives (EvonasFitnessPareto)

    def __init__(self, variation: Variation):
        self.var = variation
        self.alive: dict[int, Member] = {}  # the current population (weights kept)
        self._evicted: list[Member] = []

    # --- to implement ------------------------------------------------------------
    def ask(self, rng: np.random.Generator) -> Optional[Proposal]:
        raise NotImplementedError

    def tell(self, m: Member) -> None:
        raise NotImplementedError

    # --- shared ------------------------------------------------------------------
    def submitted(self, m: Member) -> None:
        pass

    def resample(self, prop: Proposal, rng: np.random.Generator) -> Optional[Proposal]:
        """Another child instead of ``prop`` (a duplicate); default: ask again."""
        return self.ask(rng)

    def objectives(self, m: Member, fitness: float) -> tuple[float, ...]:
        return (fitness,)

    def drain_evicted(self) -> list[Member]:
        out, self._evicted = self._evicted, []
        return out

    def _admit(self, m: Member) -> None:
        self.alive[m.id] = m

    def _evict(self, m: Member) -> None:
        if self.alive.pop(m.id, None) is not None:
            self._evicted.append(m)


STRATEGIES: Registry[type[Strategy]] = Registry("strategy")


def register_strategy(name: str):
    """Class decorator: register a Strategy subclass under ``name``."""
    return STRATEGIES.class_decorator(name, "name")
