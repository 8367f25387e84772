"""The CGP-CNN variation operators (Suganuma et al., GECCO 2017), as pure genome ->
genome functions: ``point`` (each gene redrawn with probability ``rate``),
``neutral`` (the paper's drift: inactive genes only, the network unchanged) and
``forced`` (the paper's mutation: point mutation repeated until the network
changes within the space's bounds; the default operator). The encoding and its
bounds are ``genome.cgp``.
"""
from __future__ import annotations

import numpy as np

from ..errors import GenomeError
from ..operators import register_mutation
from .cgp import FORCED_TRIES, MUTATION_RATE, CGPGenome, CGPSpace, _bounds


def _choices(sp: CGPSpace, k: int, pos: int) -> tuple[int, int]:
    """Inclusive value range of gene ``(k, pos)`` (see ``CGPGenome.active_genes``)."""
    if k < sp.n_nodes and pos == 0:
        return 0, len(sp.funcs) - 1
    return sp.input_range(sp.cols if k == sp.n_nodes else k // sp.rows)


def _genes(genome: CGPGenome) -> list[list[int]]:
    return [list(g) for g in genome.nodes] + [[genome.output]]


def _assemble(genome: CGPGenome, genes: list[list[int]]) -> CGPGenome:
    return CGPGenome(tuple(tuple(g) for g in genes[:-1]), genes[-1][0], genome.space)


def _redraw(genes: list[list[int]], sp: CGPSpace, k: int, pos: int, rng: np.random.Generator) -> bool:
    """Give gene ``(k, pos)`` a uniformly drawn *different* valid value; False when
    it has a single valid value."""
    lo, hi = _choices(sp, k, pos)
    if hi == lo:
        return False
    v = lo + int(rng.integers(hi - lo))  # hi - lo values other than the current one
    genes[k][pos] = v + 1 if v >= genes[k][pos] else v
    return True


def _mutate(genome: CGPGenome, rng: np.random.Generator, rate: float, only_inactive: bool) -> CGPGenome:
    genes, sp = _genes(genome), genome.space
    active = set(genome.active_genes()) if only_inactive else set()
    for k, row in enumerate(genes):
        for pos in range(len(row)):
            # one draw per gene even when skipped, so the rng stream is per gene
            if rng.random() < rate and (k, pos) not in active:
                _redraw(genes, sp, k, pos, rng)
    return _assemble(genome, genes)


@register_mutation("cgp", name="point", weight=0.0)
def mut_point(genome: CGPGenome, rng: np.random.Generator, rate: float = MUTATION_RATE) -> CGPGenome:
    """Each gene, with probability ``rate`` (0..1), takes a different valid value
    (within levels_back). May leave the network unchanged (inactive genes), hence
    weight 0 in the default operator mix: use ``forced`` for a new network."""
    return _mutate(genome, rng, rate, only_inactive=False)


@register_mutation("cgp", name="neutral", weight=0.0)
def mut_neutral(genome: CGPGenome, rng: np.random.Generator, rate: float = MUTATION_RATE) -> CGPGenome:
    """The paper's neutral drift: point mutation of inactive genes only (genes of
    inactive nodes and unused input genes), so the network and hash never change.
    May return an identical genome when no gene is drawn (probability (1-rate)^n)."""
    return _mutate(genome, rng, rate, only_inactive=True)


@register_mutation("cgp", name="forced")
def mut_forced(genome: CGPGenome, rng: np.random.Generator, rate: float = MUTATION_RATE,
               tries: int = FORCED_TRIES) -> CGPGenome:
    """The paper's forced mutation: point mutation of the parent, repeated until the
    network changes and the child lies within the space's bounds (active nodes,
    pools; the authors' code). The paper checks "an active gene changed"; we check
    the decoded graph's hash instead, because rewiring to a duplicate node is an
    active change with an identical network. After ``tries`` attempts one active
    gene is edited directly (changing an active function always changes the
    network), so this terminates; GenomeError if no single edit changes the hash
    within the bounds."""
    h = genome.arch_hash()
    parent_genes, active = _genes(genome), genome.active_genes()
    for _ in range(tries):
        child = mut_point(genome, rng, rate)
        child_genes = _genes(child)
        # no active gene changed -> same network for sure: skip the decode + hash
        if all(child_genes[k][p] == parent_genes[k][p] for k, p in active):
            continue
        if child.within_bounds() and child.arch_hash() != h:
            return child
    sp = genome.space
    for a in rng.permutation(len(active)):
        k, pos = active[int(a)]
        lo, hi = _choices(sp, k, pos)
        for v in rng.permutation(np.arange(lo, hi + 1)):
            genes = _genes(genome)
            if int(v) == genes[k][pos]:
                continue
            genes[k][pos] = int(v)
            child = _assemble(genome, genes)
            if child.within_bounds() and child.arch_hash() != h:
                return child
    raise GenomeError("cgp", "forced mutation", genome.to_string(),
                      f"no single active-gene change alters the network within {_bounds(sp)}")
