"""Where a search stands: the best member, the Pareto front and the logbook.

DEAP's own containers, as they are: ``tools.HallOfFame(1)`` for the best (its
comparison is the Fitness's: lexicographic, the first found wins ties),
``tools.ParetoFront`` for two-objective strategies (one entry per network:
isomorphic duplicates share ``arch_hash`` and fitness), and a ``tools.Logbook`` of
population statistics every ``log_every`` births, which the engine journals and
report.html draws.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

from .toolbox import Member, statistics, tools


class Standing:
    def __init__(self, pareto: bool, log_every: int = 10):
        self.hof = tools.HallOfFame(1)
        self.pareto = tools.ParetoFront(lambda a, b: a.arch_hash == b.arch_hash) if pareto else None
        self.logbook, self.stats, self.log_every = tools.Logbook(), statistics(), max(1, log_every)

    def best(self) -> Optional[Member]:
        return self.hof[0] if len(self.hof) else None

    def is_best(self, mid: int) -> bool:
        return len(self.hof) > 0 and self.hof[0].id == mid

    def update(self, m: Member) -> Optional[int]:
        """Take an evaluated member; -> the id of the best it replaced (None: none)."""
        old = self.hof[0].id if len(self.hof) else None
        self.hof.update([m])
        if self.pareto is not None:
            self.pareto.update([m])
        return old if old is not None and self.hof[0].id != old else None

    def log(self, birth: int, alive: Iterable[Member]) -> Optional[dict[str, Any]]:
        """Every ``log_every`` births: the population's statistics, recorded in the
        logbook and returned (JSON-able) for the journal; else None."""
        if birth % self.log_every:
            return None  # before listing the population: this runs after every birth
        alive = list(alive)
        if not alive:
            return None
        rec = {"birth": birth, **self.stats.compile(alive)}
        self.logbook.record(**rec)
        return {k: float(v) if k != "birth" else v for k, v in rec.items()}

    def best_dict(self, weights: bool = False) -> Optional[dict[str, Any]]:
        b = self.best()
        if b is None:
            return None
        out = {"id": b.id, "genome": b.genome.to_string(), "fitness": b.value}
        return {**out, "weights": b.weights} if weights else out

    def front(self, objective: str) -> list[dict[str, Any]]:
        return [{"id": m.id, "genome": m.genome.to_string(), "fitness": m.fitness.values[0],
                 objective: m.fitness.values[1]} for m in (self.pareto or ())]
