"""Surrogate pre-screen: a middleware around any mutation-based strategy.

Every proposal of the wrapped (``base``) strategy is replaced by the best of M
of its proposals as a screen (``evonas.predict.screen``: a predictor trained on
the results so far, or a zero-cost proxy) ranks them. On a real run every child
the screen rejects is a network that is never trained.

Pseudocode::

    ask():
        p = base.ask()
        if p is None or not screen.ready(): return p        # barrier / too few results
        C = distinct (by arch_hash) proposals among p, base.ask() x (M - 1)
        with probability explore: return uniform(C)         # keeps the screen honest
        mean, std = screen.score(C)                         # refits every k results (warm)
        return argmax over C of mean + kappa * std          # UCB; kappa=0: greedy
    submitted(m): base.submitted(m)
    tell(m):      base.tell(m); if m is ok: screen.add(m.genome, m.fitness)

The base strategy's own ``ask`` draws the candidates, so its selection (e.g. the
tournament, or ``aging-novel``'s never-propose-twice rule) still holds; only the
submitted one reaches ``submitted``. All randomness comes from the ``rng`` given to
``ask`` (screen refits included), so the lineage is a function of the seed and the
ask/tell sequence. CLI: ``--surrogate NAME`` wraps ``--strategy``.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import ConfigError
from ..predict.screen import SCREENS
from .base import STRATEGIES, Proposal, Strategy, register_strategy
from .toolbox import Member, Variation


def _screens():
    from ..evaluate import zero_cost  # noqa: F401  registers 'naswot' (imports torch on use only)
    return SCREENS


@register_strategy("surrogate")
class Surrogate(Strategy):
    """``base``: a registered strategy name, built with ``base_args`` (plus
    ``population``/``sample`` when given and it accepts them); ``screen``: a
    ``SCREENS`` name built with ``screen_args``; ``candidates`` M >= 1; ``explore``
    in 0..1; ``kappa`` >= 0 the weight of the screen's uncertainty."""

    def __init__(self, variation: Variation, base: str = "aging-novel-best", base_args: Optional[dict] = None,
                 screen: str = "mlp", screen_args: Optional[dict] = None, candidates: int = 24,
                 explore: float = 0.0, kappa: float = 0.0, population: Optional[int] = None,
                 sample: Optional[int] = None):
        super().__init__(variation)
        if base == "surrogate" or base not in STRATEGIES:
            raise ConfigError("surrogate", "base", base, "must name a registered strategy other than surrogate")
        screens = _screens()
        if screen not in screens:
            raise ConfigError("surrogate", "screen", screen, f"unknown surrogate (known: {', '.join(screens.names())})")
        if not isinstance(candidates, int) or isinstance(candidates, bool) or candidates < 1:
            raise ConfigError("surrogate", "candidates", candidates, "must be an integer >= 1")
        for field, v, hi in (("explore", explore, 1.0), ("kappa", kappa, float("inf"))):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= hi:
                raise ConfigError("surrogate", field, v, f"must be a number in 0..{hi}")
        cls = STRATEGIES.get(base)
        if cls.pareto:
            raise ConfigError("surrogate", "base", base, "two-objective strategies are not supported")
        args = dict(base_args or {})
        import inspect
        accepted = inspect.signature(cls.__init__).parameters
        for k, v in (("population", population), ("sample", sample)):
            if v is not None and k in accepted:
                args.setdefault(k, v)
        self.base = cls(variation, **args)
        self.screen = screens.get(screen)(variation.type, **(screen_args or {}))
        self.M, self.explore, self.kappa = candidates, float(explore), float(kappa)
        self.alive = self.base.alive  # the same dict: the base owns the population

    def ask(self, rng: np.random.Generator) -> Optional[Proposal]:
        first = self.base.ask(rng)
        if first is None or self.M == 1 or not self.screen.ready():
            return first
        cands, hashes = [first], {first.genome.arch_hash()}
        for _ in range(self.M - 1):
            p = self.base.ask(rng)
            if p is not None and p.genome.arch_hash() not in hashes:
                hashes.add(p.genome.arch_hash())
                cands.append(p)
        if len(cands) == 1:
            return first
        if self.explore and rng.random() < self.explore:
            return cands[int(rng.integers(len(cands)))]
        mean, std = self.screen.score([p.genome for p in cands], rng)
        return cands[int(np.argmax(mean + self.kappa * std))]  # ties: the first drawn

    def resample(self, prop: Proposal, rng: np.random.Generator) -> Optional[Proposal]:
        return self.ask(rng)

    def submitted(self, m: Member) -> None:
        self.base.submitted(m)

    def tell(self, m: Member) -> None:
        self.base.tell(m)
        if m.status != "failed" and m.fitness.valid:
            self.screen.add(m.genome, m.value)

    def drain_evicted(self) -> list[Member]:
        return self.base.drain_evicted()
