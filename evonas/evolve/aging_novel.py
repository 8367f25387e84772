"""Aging evolution that never proposes a network it has already proposed.

At a fixed evaluation budget, every duplicate child (a network this run already
evaluated, or an isomorphic copy of one: ``arch_hash`` is isomorphism-invariant) is
a wasted slot under ``dedup='off'``, and under ``dedup='reuse'`` it still re-enters
the population, pushing out an older member for no new information. On
NAS-Bench-201 (P=10, S=3, 100 evaluations) about a quarter of plain aging's
children are such duplicates. This strategy keeps the set of every hash it has
proposed and draws mutations of the SAME tournament winner until one is new, so
all evaluations are distinct networks whatever the engine's dedup setting.

Pseudocode (``Aging`` plus the ``seen`` set; ``tries`` bounds each rejection loop)::

    ask():
        if |population| + pending_init < P: return new_random()
        if population is empty:             return None
        parent = best of population            with probability greedy, else
                 best of S drawn uniformly WITH replacement from population
        repeat tries times:
            child = mutate(parent)                    # weighted operator choice
            if hash(child) not in seen: return child
        return new_random()                           # parent's neighbourhood is spent
    new_random(): a random genome whose hash is not in seen (after tries draws: the last)
    submitted(m): seen.add(hash(m))                   # pending children count as seen
    tell(child):  as Aging (push; the oldest dies)

``greedy`` (0..1): the probability that the parent is the best member of the whole
population instead of a tournament winner. ``greedy=1`` is a randomised local
search from the current best, restarted by aging: the novelty rule makes each
child a not-yet-tried neighbour of the best, so exploitation cannot stall on a
fixed point, and the FIFO still retires a best that has stopped improving after
P births. At a small budget (NAS-Bench-201: 100 evaluations, P=10) selection
pressure pays more than diversity: see ``benchmarks/search_nb201.py``.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import ConfigError
from ..genome.base import Genome
from .aging import Aging
from .base import Proposal, register_strategy
from .matched import tournament
from .toolbox import Member, Variation


@register_strategy("aging-novel")
class AgingNovel(Aging):
    """``population`` P and ``sample`` S as in ``Aging``; ``tries`` (>= 1): mutation
    (and sampling) draws per proposal before giving up on novelty; ``greedy``
    (0..1): probability that the parent is the population's best (ties: the oldest)."""

    def __init__(self, variation: Variation, population: int = 100, sample: int = 25, tries: int = 100,
                 greedy: float = 0.0):
        super().__init__(variation, population, sample)
        if not isinstance(tries, int) or isinstance(tries, bool) or tries < 1:
            raise ConfigError("aging-novel", "tries", tries, "must be an integer >= 1")
        if isinstance(greedy, bool) or not isinstance(greedy, (int, float)) or not 0.0 <= greedy <= 1.0:
            raise ConfigError("aging-novel", "greedy", greedy, "must be a number in 0..1")
        self.tries, self.greedy = tries, float(greedy)
        self.seen: set[str] = set()  # arch_hash of every proposal submitted so far

    def ask(self, rng: np.random.Generator) -> Optional[Proposal]:
        if len(self.queue) + self.pending_init < self.P:
            return Proposal(self._new_random(rng))
        if not self.queue:
            return None
        if self.greedy and (self.greedy == 1.0 or rng.random() < self.greedy):
            parent = max(self.queue, key=lambda m: m.fitness.wvalues)
        else:
            parent = tournament(self.queue, self.S, rng, self.selection)
        for _ in range(self.tries):
            child, op = self.var.mutate(parent.genome, rng)
            if child.arch_hash() not in self.seen:
                return Proposal(child, (parent.id,), op)
        return Proposal(self._new_random(rng))  # every tried neighbour was seen

    def _new_random(self, rng: np.random.Generator) -> Genome:
        return sample_novel(self.var, self.seen, self.tries, rng)

    def submitted(self, m: Member) -> None:
        super().submitted(m)
        self.seen.add(m.arch_hash)


@register_strategy("aging-novel-best")
class AgingNovelBest(AgingNovel):
    """``aging-novel`` with ``greedy=1`` by default (always mutate the population's
    best; ``sample`` is then unused), under its own name so a CLI run can pick it."""

    def __init__(self, variation: Variation, population: int = 100, sample: int = 25, tries: int = 100,
                 greedy: float = 1.0):
        super().__init__(variation, population, sample, tries, greedy)


def sample_novel(var: Variation, seen: set, tries: int, rng: np.random.Generator) -> Genome:
    """A random genome whose ``arch_hash`` is not in ``seen``, within ``tries`` draws
    (the last draw is returned if every one was seen)."""
    g = var.sample(rng)
    for _ in range(tries - 1):
        if g.arch_hash() not in seen:
            break
        g = var.sample(rng)
    return g
