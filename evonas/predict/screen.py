"""Screens: score candidate genomes for a strategy that pre-screens its children.

A screen is told every evaluated (genome, fitness) and scores candidates::

    add(genome, fitness)               # in tell order
    ready() -> bool                    # enough data to be trusted
    score(genomes, rng) -> (mean, std) # higher is better; std 0 if it has none

``SCREENS`` registers them (``--surrogate NAME``): ``mlp`` (``ModelScreen`` on the
MLP ensemble) here, ``naswot`` (a zero-cost proxy, no data needed) in
``evonas.evaluate.zero_cost``. ``ModelScreen`` refits its predictor lazily inside
``score``, at most every ``refit_every`` new results, with the predictor's warm
start, and draws the fit's randomness from the ``rng`` passed in: its whole state
is a function of (seed, the sequence of add/score calls), so a run resumes by
replaying its journal and a screen needs no saved state.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..errors import ConfigError
from ..genome.base import Genome
from ..registry import Registry
from .encoding import ENCODINGS, default_encoding
from . import gp  # noqa: F401  (registers the "gp" predictor)
from .mlp_ensemble import PREDICTORS

SCREENS: Registry[type] = Registry("surrogate")


class Screen:
    name = ""

    def __init__(self, genome_type: str, **kw: Any):
        self.genome_type = genome_type

    def add(self, genome: Genome, fitness: float) -> None:
        pass

    def ready(self) -> bool:
        return True

    def score(self, genomes: list[Genome], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


@SCREENS.class_decorator("mlp", "name")
class ModelScreen(Screen):
    summary = "MLP-ensemble predictor of fitness, refitted on the results so far."  # for --list
    """A trained predictor (``predictor``: a ``PREDICTORS`` name, ``predictor_args``
    its constructor's) on ``encoding`` (default: the genome type's fastest).
    ``min_data``: results before it is ready; ``refit_every`` (k): new results
    between refits."""

    def __init__(self, genome_type: str, predictor: str = "mlp", predictor_args: Optional[dict] = None,
                 encoding: Optional[str] = None, min_data: int = 10, refit_every: int = 1):
        super().__init__(genome_type)
        self.encoding = encoding or default_encoding(genome_type)
        if self.encoding not in ENCODINGS:
            raise ConfigError("surrogate", "encoding", self.encoding,
                              f"unknown encoding (known: {', '.join(ENCODINGS.names())})")
        if predictor not in PREDICTORS:
            raise ConfigError("surrogate", "predictor", predictor,
                              f"unknown predictor (known: {', '.join(PREDICTORS.names())})")
        for field, v in (("min_data", min_data), ("refit_every", refit_every)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError("surrogate", field, v, "must be an integer >= 1")
        self.enc = ENCODINGS.get(self.encoding)
        self.model = PREDICTORS.get(predictor)(**(predictor_args or {}))
        self.min_data, self.k = min_data, refit_every
        self.X: list[np.ndarray] = []
        self.y: list[float] = []
        self.fitted_at = 0  # len(y) at the last refit

    def add(self, genome: Genome, fitness: float) -> None:
        self.X.append(self.enc(genome))
        self.y.append(float(fitness))

    def ready(self) -> bool:
        return len(self.y) >= self.min_data

    def score(self, genomes, rng):
        if self.fitted_at == 0 or len(self.y) - self.fitted_at >= self.k:
            self.model.fit(np.stack(self.X), np.array(self.y), rng)
            self.fitted_at = len(self.y)
        return self.model.predict(np.stack([self.enc(g) for g in genomes]))
