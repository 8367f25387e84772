"""What the strategies vary and select with: ``Member`` (an individual with a DEAP
fitness), ``Variation`` (the one way to sample, mutate and cross genomes) and
selections on an explicit RNG.

DEAP is used for what it does well, as is: ``base.Fitness`` (lexicographic
comparison, ``dominates``) through ``deap.creator`` classes, ``tools.selNSGA2``
(nsga2), ``tools.HallOfFame``, ``tools.ParetoFront``, ``tools.Statistics`` and
``tools.Logbook`` (the engine journals each record; report.html shows them). There
is no ``deap.base.Toolbox``: strategies call ``Variation`` directly.

* ``deap.creator`` classes are created at MODULE level (guarded, so re-importing
  never warns) so individuals pickle into worker processes: ``EvonasFitnessMax``
  (one objective, maximised), ``EvonasFitnessPareto`` (maximise fitness, minimise
  cost), ``EvonasIndividual`` / ``EvonasParetoIndividual`` (a ``Member``).
* Every call of a user-replaceable operator goes through ``Variation``, which
  checks its result and turns any misbehaviour into a ``PluginError`` naming the
  operator (fail fast, in the driver, before a job is ever sent to a worker: a
  buggy operator is a programming error, and the journal lets the user fix it and
  resume).
* Randomness: DEAP's selections draw from Python's global ``random``; we never let
  them. The selections below draw from an explicit ``numpy.random.Generator``;
  each docstring says how it relates to the DEAP function of similar purpose
  (only ``sel_tournament`` follows DEAP's rule exactly).
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np
from deap import base, creator, tools

from ..errors import ConfigError, PluginError
from ..plugins import call as plugin_call
from ..genome.base import Genome
from ..operators import Operator, crossovers, mutations, operators


class Member:
    """One individual: a genome plus its lineage and outcome. ``fitness`` is a
    DEAP Fitness (empty until evaluated); ``status`` is pending|ok|failed|duplicate;
    ``birth`` is the completion order (0-based), -1 while pending; ``weights`` the
    safetensors path of its trained weights (None: none kept); ``lineage_epochs``
    all the training its weights carry (its own plus, when it inherited, its
    parent's); ``started_s`` when its trial was submitted (seconds into the run)."""

    def __init__(self, id: int, genome: Genome, parent_ids: tuple[int, ...] = (),
                 operator: str = "init", arch_hash: str = ""):
        self.id, self.genome, self.parent_ids, self.operator = id, genome, tuple(parent_ids), operator
        self.arch_hash = arch_hash
        self.status, self.birth, self.weights = "pending", -1, None
        self.params: Optional[int] = None
        self.flops: Optional[int] = None
        self.lineage_epochs, self.started_s = 0.0, None

    @property
    def value(self) -> float:
        """Scalar fitness (the first objective); -inf when not evaluated."""
        return self.fitness.values[0] if self.fitness.valid else -math.inf

    def __repr__(self) -> str:
        return f"Member(id={self.id}, op={self.operator}, fitness={self.fitness.values})"


def _create(name: str, base_cls: type, **kw) -> None:
    if not hasattr(creator, name):  # re-import (tests, workers) must not re-create
        creator.create(name, base_cls, **kw)


_create("EvonasFitnessMax", base.Fitness, weights=(1.0,))
_create("EvonasFitnessPareto", base.Fitness, weights=(1.0, -1.0))
_create("EvonasIndividual", Member, fitness=creator.EvonasFitnessMax)
_create("EvonasParetoIndividual", Member, fitness=creator.EvonasFitnessPareto)


# --- operator choice ---------------------------------------------------------------

def parse_mutation_spec(genome_type: str, spec: Sequence[str] | dict[str, float] | None) -> list[tuple[Operator, float]]:
    """``--mutation NAME[:WEIGHT]`` (repeatable) -> [(operator, weight)]. None or
    empty: every registered mutation of the type with its registered weight > 0."""
    reg = operators(genome_type)
    if not spec:
        chosen = [(op, float(op.weight)) for op in mutations(genome_type) if op.weight > 0]
        if not chosen:
            raise ConfigError("search", "mutation", genome_type,
                              "no mutation operator with weight > 0 is registered for this genome type")
        return chosen
    items = spec.items() if isinstance(spec, dict) else [_split(s) for s in spec]
    out = []
    for name, w in items:
        if name not in reg or reg.get(name).kind != "mutation":
            known = ", ".join(op.name for op in mutations(genome_type)) or "none"
            raise ConfigError("search", "mutation", name, f"not a {genome_type} mutation (known: {known})")
        if not isinstance(w, (int, float)) or not math.isfinite(w) or w <= 0:
            raise ConfigError("search", f"mutation {name} weight", w, "must be a finite number > 0")
        out.append((reg.get(name), float(w)))
    return out


def _split(s: str) -> tuple[str, float]:
    name, sep, w = str(s).partition(":")
    if not sep:
        return name, 1.0
    try:
        return name, float(w)
    except ValueError:
        raise ConfigError("search", "mutation", s, "weight after ':' must be a number, e.g. edge_op:2") from None


class Variation:
    """Samples and varies genomes of one type and space, checking every operator
    call (see module docstring). ``mutate`` picks an operator by weight."""

    def __init__(self, genome_cls: type[Genome], space: Any, mutation: Sequence[str] | dict | None = None,
                 seeds: Sequence[Genome] = ()):
        self.cls, self.space, self.type = genome_cls, space, genome_cls.type_name
        # user-given starting genomes (--seed-genome): the first samples, in order
        self.seeds, self.seeds_used = list(seeds), 0
        for g in self.seeds:
            if not isinstance(g, genome_cls) or g.space != space:
                raise ConfigError("search", "seed_genomes", str(g),
                                  f"must be a {genome_cls.type_name} genome of the run's space {space}")
        chosen = parse_mutation_spec(self.type, mutation)
        self.ops = [op for op, _ in chosen]
        w = np.array([w for _, w in chosen])
        self.p = w / w.sum()
        self.crossovers = crossovers(self.type)

    def sample(self, rng: np.random.Generator) -> Genome:
        if self.seeds_used < len(self.seeds):
            self.seeds_used += 1
            return self.seeds[self.seeds_used - 1]
        return self.cls.sample(rng, self.space)

    def mutate(self, genome: Genome, rng: np.random.Generator) -> tuple[Genome, str]:
        op = self.ops[0] if len(self.ops) == 1 else self.ops[int(rng.choice(len(self.ops), p=self.p))]
        return self.call(op, genome, rng), op.name

    def call(self, op: Operator, genome: Genome, rng: np.random.Generator) -> Genome:
        # any bug inside a user operator (GenomeError, SystemExit, a hang past the limit included)
        child = plugin_call(op.fn, genome, rng, what=f"operator {op.genome_type}/{op.name}")
        return self.check(op, child)

    def crossover(self, op: Operator, a: Genome, b: Genome, rng: np.random.Generator) -> tuple[Genome, Genome]:
        out = plugin_call(op.fn, a, b, rng, what=f"operator {op.genome_type}/{op.name}")
        if not isinstance(out, tuple) or len(out) != 2:
            raise PluginError(f"operator {op.genome_type}/{op.name} must return a pair of genomes, "
                              f"got {type(out).__name__}")
        return self.check(op, out[0]), self.check(op, out[1])

    def check(self, op: Operator, child: Any) -> Genome:
        if not isinstance(child, self.cls):
            raise PluginError(f"operator {op.genome_type}/{op.name} must return a {self.cls.__name__}, "
                              f"got {type(child).__name__}")
        try:  # a genome built by bypassing the constructor could still be invalid
            child.validate()
        except Exception as e:
            raise PluginError(f"operator {op.genome_type}/{op.name} returned an invalid genome: {e}") from e
        if child.space != self.space:
            raise PluginError(f"operator {op.genome_type}/{op.name} changed the search space "
                              f"({self.space} -> {child.space})")
        return child


def individual_class(pareto: bool = False) -> type:
    """The ``deap.creator`` class of the engine's individuals: one objective
    (fitness, maximised) or the Pareto pair (fitness max, cost min)."""
    return creator.EvonasParetoIndividual if pareto else creator.EvonasIndividual


# --- selection on an explicit rng (DEAP's one-liners, without global random) --------

def sel_tournament(pop: Sequence[Member], size: int, rng: np.random.Generator) -> Member:
    """The rule of ``deap.tools.selTournament(pop, 1, size)``: the best (by
    ``fitness.wvalues``) of ``size`` members drawn with replacement, ties to the
    first drawn; the draws come from ``rng``, not the global ``random``."""
    idx = rng.integers(len(pop), size=size)
    return max((pop[i] for i in idx), key=lambda m: m.fitness.wvalues)


def sel_roulette(pop: Sequence[Member], k: int, rng: np.random.Generator) -> list[Member]:
    """Roulette on (fitness - min fitness) as in Genetic CNN, ``k`` draws with
    replacement; uniform when all are equal. Not ``deap.tools.selRoulette``, which
    weights by the raw fitness (so it cannot take negative values)."""
    f = np.array([m.value for m in pop], dtype=float)
    w = f - f.min()
    p = w / w.sum() if w.sum() > 0 else np.full(len(pop), 1.0 / len(pop))
    return [pop[i] for i in rng.choice(len(pop), size=k, p=p)]


def crowded_binary_tournament(pop: Sequence[Member], k: int, rng: np.random.Generator) -> list[Member]:
    """``k`` binary tournaments, each between two members drawn with replacement:
    the one that Pareto-dominates wins, else the larger crowding distance (as set
    by ``tools.selNSGA2``), ties to the first drawn. Deb et al.'s crowded-comparison
    tournament; not ``deap.tools.selTournamentDCD``, which pairs the members of two
    shuffles without replacement (k a multiple of 4) and breaks ties at random."""
    out = []
    for _ in range(k):
        a, b = (pop[i] for i in rng.integers(len(pop), size=2))
        if a.fitness.dominates(b.fitness):
            out.append(a)
        elif b.fitness.dominates(a.fitness):
            out.append(b)
        else:
            da = getattr(a.fitness, "crowding_dist", 0.0)
            db = getattr(b.fitness, "crowding_dist", 0.0)
            out.append(a if da >= db else b)
    return out


def statistics() -> tools.Statistics:
    st = tools.Statistics(lambda m: m.value)
    for name, fn in (("avg", np.mean), ("std", np.std), ("min", np.min), ("max", np.max)):
        st.register(name, fn)
    return st


__all__ = ["Member", "Variation", "individual_class", "parse_mutation_spec", "sel_tournament",
           "sel_roulette", "crowded_binary_tournament", "statistics", "tools"]
