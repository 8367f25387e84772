"""Registry of variation operators per genome type (built-in and user plug-ins).

A mutation is a plain function ``(genome, rng) -> genome``; a crossover is
``(genome_a, genome_b, rng) -> (child_a, child_b)``. ``rng`` is a
``numpy.random.Generator``. This layer is torch-free: an operator's weight-transfer
rule, if it has one, is registered by name in ``evonas.transfer`` (L3); operators
without one inherit weights by shape.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .registry import Registry


@dataclass(frozen=True)
class Operator:
    name: str
    genome_type: str
    fn: Callable
    kind: str = "mutation"  # or "crossover"
    weight: float = 1.0  # default relative probability of being chosen

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)


_REGISTRIES: dict[str, Registry[Operator]] = {}


def operators(genome_type: str) -> Registry[Operator]:
    """The operator registry of one genome type (created on first use)."""
    return _REGISTRIES.setdefault(genome_type, Registry(f"{genome_type} operator"))


def register_mutation(genome_type: str, name: str | None = None, *, weight: float = 1.0, kind: str = "mutation"):
    """Decorator: ``@register_mutation("tree", name="my_op")`` on ``fn(genome, rng)``.
    Duplicate names for the same genome type raise ``RegistryError``."""
    def wrap(fn: Callable) -> Callable:
        op = Operator(name or fn.__name__, genome_type, fn, kind, weight)
        operators(genome_type).register(op.name, op)
        return fn
    return wrap


def register_crossover(genome_type: str, name: str | None = None, *, weight: float = 1.0):
    return register_mutation(genome_type, name, weight=weight, kind="crossover")


def mutations(genome_type: str) -> list[Operator]:
    reg = operators(genome_type)
    return [reg.get(n) for n in reg if reg.get(n).kind == "mutation"]


def crossovers(genome_type: str) -> list[Operator]:
    reg = operators(genome_type)
    return [reg.get(n) for n in reg if reg.get(n).kind == "crossover"]
