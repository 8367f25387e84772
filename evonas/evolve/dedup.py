"""Duplicate detection: arch_hash -> cached result of the network, confirmed;
and twins: a child whose network is being trained right now waits for that result.

``genome.arch_hash()`` is isomorphism-invariant, so different genomes of the same
network share it. A hash match is trusted outright when the genome strings are
equal; otherwise (``confirm=True``) it is confirmed by an isomorphism check of the
hash graphs (``Genome.hash_graph``; memoised per pair of strings), so a hash collision can never hand
one network another's fitness. An unconfirmed match is a new entry.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable, Optional

from ..genome.base import Genome
from ..graph import isomorphic

DEDUP = ("reuse", "resample", "off")  # what the engine does with a duplicate child


@lru_cache(maxsize=200_000)
def _same(cls: type, space: Any, a: str, b: str) -> bool:
    return isomorphic(cls.from_string(a, space).hash_graph(), cls.from_string(b, space).hash_graph())


class HashCache:
    """``entries[hash]``: list of dicts {id, genome (string), fitness, params, flops,
    weights, extra}; ``inflight[hash]``: id of the job training that network now."""

    def __init__(self, confirm: bool = True):
        self.confirm = confirm
        self.entries: dict[str, list[dict]] = {}
        self.inflight: dict[str, int] = {}

    def same(self, a: Genome, b: Genome) -> bool:
        sa, sb = a.to_string(), b.to_string()
        if sa == sb or not self.confirm:
            return True
        return _same(type(a), a.space, *sorted((sa, sb)))

    def get(self, h: str, genome: Genome) -> Optional[dict]:
        entries = self.entries.get(h)
        if not entries:
            return None
        s = genome.to_string()
        for e in entries:
            if e["genome"] == s or not self.confirm or _same(type(genome), genome.space, *sorted((e["genome"], s))):
                return e
        return None

    def put(self, h: str, genome: Genome, entry: dict) -> None:
        if self.get(h, genome) is None:  # keep the first evaluation of a network
            self.entries.setdefault(h, []).append({**entry, "genome": genome.to_string()})


class Twins:
    """Children waiting for a network that is being trained right now.

    ``training[hash]`` is the id of the job training that network; ``waiting[id]``
    the ids of children that will take its result (a duplicate row, or a failed one
    if that job fails) instead of training it a second time."""

    def __init__(self, cache: HashCache):
        self.cache = cache
        self.training: dict[str, int] = {}
        self.waiting: dict[int, list[int]] = {}

    def started(self, h: str, mid: int) -> None:
        self.training[h] = mid

    def twin_of(self, h: str, genome: Genome, genome_of) -> Optional[int]:
        """Id of the job training ``genome``'s network now, or None.
        ``genome_of(id)`` gives that job's genome (to confirm the match)."""
        tid = self.training.get(h)
        if tid is None or not self.cache.same(genome_of(tid), genome):
            return None
        return tid

    def wait(self, twin: int, mid: int) -> None:
        self.waiting.setdefault(twin, []).append(mid)

    def finished(self, h: str, mid: int) -> list[int]:
        """Job ``mid`` is done (or cancelled): the ids that waited for it."""
        if self.training.get(h) == mid:
            del self.training[h]
        return self.waiting.pop(mid, [])

    def cancelled(self, h: str, mid: int) -> None:
        """Job ``mid`` was cancelled; its waiting twins keep waiting for its re-run."""
        if self.training.get(h) == mid:
            del self.training[h]


def look_up(prop, cache: HashCache, mode: str, resample: Callable[[Any], Any], tries: int):
    """(proposal, its hash, the cached result of its network or None) for the
    strategy's proposal ``prop``. ``mode`` (``DEDUP``): off looks nothing up
    (except a ``neutral`` proposal, whose parent's result is always reused);
    resample asks ``resample(prop)`` for another proposal (None: none) up to
    ``tries`` times while the proposal is a duplicate."""
    h = prop.genome.arch_hash()
    hit = cache.get(h, prop.genome) if (mode != "off" or prop.neutral) else None
    n = 0
    while hit is not None and mode == "resample" and not prop.neutral and n < tries:
        nxt = resample(prop)
        if nxt is None:
            break
        prop, n = nxt, n + 1
        h = prop.genome.arch_hash()
        hit = cache.get(h, prop.genome)
    return prop, h, hit
