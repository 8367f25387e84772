"""The genome protocol, the genome-type registry and genome files.

A genome is an immutable value (a frozen dataclass) that carries its search space,
so it can be decoded on its own. Every genome type implements:

* ``sample(rng, space=None)`` classmethod: a random genome (``rng`` is a
  ``numpy.random.Generator``; no global RNG is touched);
* ``validate()``: raise ``GenomeError`` naming the field and value (called on
  construction, so an invalid genome never exists);
* ``to_string()`` / ``from_string(s, space=None)``: compact human-readable form
  of the encoding (the space travels separately, in the dict form);
* ``to_dict()`` / ``from_dict(d)``: ``{"type", "genome", "space"}``, JSON-able;
* ``decode()``: the DAG IR (``evonas.graph``), stem included, head excluded.

Register a type with ``@register_genome("name")`` on the class; names are unique.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

import networkx as nx
import numpy as np

from ..errors import GenomeError, RegistryError
from ..io import atomic_write_text
from ..registry import Registry


class Genome:
    """Base class of genome types (subclasses are frozen dataclasses with a
    ``space`` field holding a frozen ``Space`` dataclass)."""

    type_name: ClassVar[str] = ""
    Space: ClassVar[type]

    def __post_init__(self) -> None:
        self.validate()

    # --- to implement ---------------------------------------------------------------
    @classmethod
    def sample(cls, rng: np.random.Generator, space: Any = None) -> "Genome":
        raise NotImplementedError

    def validate(self) -> None:
        raise NotImplementedError

    def to_string(self) -> str:
        raise NotImplementedError

    @classmethod
    def from_string(cls, s: str, space: Any = None) -> "Genome":
        raise NotImplementedError

    def decode(self) -> nx.DiGraph:
        raise NotImplementedError

    # --- shared -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type_name, "genome": self.to_string(),
                "space": space_to_dict(self.space)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Genome":
        if not isinstance(d, dict):
            raise GenomeError(cls.type_name, "genome file", type(d).__name__, "must be a JSON object")
        if d.get("type") != cls.type_name:
            raise GenomeError(cls.type_name, "type", d.get("type"), f"expected {cls.type_name!r}")
        if not isinstance(d.get("genome"), str):
            raise GenomeError(cls.type_name, "genome", d.get("genome"), "must be the genome string")
        return cls.from_string(d["genome"], space_from_dict(cls, d.get("space") or {}))

    def __str__(self) -> str:
        return self.to_string()

    def hash_graph(self) -> nx.DiGraph:
        """The graph that identifies the network: ``decode()`` by default. A type
        whose network is a fixed function of a smaller graph and its space (e.g. a
        cell repeated in a fixed skeleton) returns that smaller graph; hashing and
        isomorphism confirmation then compare genomes of the same space on it."""
        return self.decode()

    def arch_hash(self) -> str:
        """``graph.arch_hash(self.hash_graph())``, computed once per genome value
        (genomes are immutable; operators and the engine both ask for it)."""
        cached = self.__dict__.get("_arch_hash")
        if cached is None:
            from ..graph import arch_hash
            cached = arch_hash(self.hash_graph())
            object.__setattr__(self, "_arch_hash", cached)
        return cached


def space_to_dict(space: Any) -> dict[str, Any]:
    return {f.name: _jsonable(getattr(space, f.name)) for f in dataclasses.fields(space)}


def _jsonable(v: Any) -> Any:
    return [_jsonable(x) for x in v] if isinstance(v, (tuple, list)) else v


def space_from_dict(cls: type, d: dict[str, Any]):
    """Build ``cls.Space`` from a dict; unknown keys and wrong types raise GenomeError."""
    if not isinstance(d, dict):
        raise GenomeError(cls.type_name, "space", d, "must be a JSON object")
    fields = {f.name: f for f in dataclasses.fields(cls.Space)}
    kw = {}
    for key, value in d.items():
        if key not in fields:
            raise GenomeError(cls.type_name, f"space.{key}", value,
                              f"unknown space field (allowed: {sorted(fields)})")
        kw[key] = tuple(_tuplify(value)) if isinstance(value, list) else value
    try:
        return cls.Space(**kw)
    except TypeError as e:
        raise GenomeError(cls.type_name, "space", d, str(e)) from None


def _tuplify(v):
    return [tuple(_tuplify(x)) if isinstance(x, list) else x for x in v]


GENOMES: Registry[type[Genome]] = Registry("genome type")


def register_genome(name: str):
    """Class decorator: register a Genome subclass under ``name``."""
    return GENOMES.class_decorator(name, "type_name")


def genome_type(name: str) -> type[Genome]:
    return GENOMES.get(name)


def genome_from_dict(d: Any) -> Genome:
    if not isinstance(d, dict) or "type" not in d:
        raise GenomeError("genome file", "type", d if not isinstance(d, dict) else None,
                          "a genome object needs a 'type' field")
    try:
        cls = GENOMES.get(d["type"])
    except RegistryError as e:
        raise GenomeError("genome file", "type", d["type"], str(e)) from None
    return cls.from_dict(d)


def load_genome(path: str | Path) -> Genome:
    """Read a genome JSON file (the ``genomes/`` schema: ``type``, ``genome``,
    ``space``, optional ``name``/``note``/``source`` metadata)."""
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        raise GenomeError(str(path), "path", str(path), "file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GenomeError(str(path), "json", path.name, f"not valid JSON ({e})") from None
    if isinstance(d, dict):
        d = {k: v for k, v in d.items() if k not in ("name", "note", "source", "fitness")}
    return genome_from_dict(d)


def save_genome(genome: Genome, path: str | Path, **meta: Any) -> None:
    """Write ``genome`` as a genome JSON file atomically (``io.atomic_write_text``)."""
    atomic_write_text(path, json.dumps({**meta, **genome.to_dict()}, indent=2) + "\n")
