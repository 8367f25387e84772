"""Architecture encodings: genome -> fixed-length float vector, for predictors.

Registered in ``ENCODINGS`` (name -> ``fn(genome) -> np.ndarray``):

* ``wl`` (every genome type): computed from the DAG IR. The canonical form of
  ``genome.hash_graph()`` (the one ``arch_hash`` digests) is relabelled by two
  Weisfeiler-Lehman rounds, forward (a node's label plus its inputs' labels) and
  backward (plus its consumers'), i.e. the multiset of all op paths of length <= 3
  through each node. Each label is hashed (sha256, so it is stable across runs and
  processes, unlike ``hash()``) into one of ``WL_DIM`` buckets; the vector is
  ``log1p`` of the bucket counts. Isomorphic networks get the same vector, graphs
  of any size the same length, and no genome type has to cooperate.
* ``nb201`` (NB201 only, ~100x faster): one-hot of the 6 edge ops (6 x 5 = 30
  dims) where every edge that no input->output path uses counts as ``none``, so
  networks that differ only in dead edges (isomorphic copies) coincide too.
* ``nb201-path`` (NB201 only): BANANAS' path encoding, one bit per op sequence
  on each of the 4 input->output paths (100 dims). Tried for the surrogate
  (benchmarks/RESULTS.md): on NB201 it ranked worse than ``nb201``.

``default_encoding(genome_type)`` picks the fast one where it exists. Genome, graph
and this module never import torch (layering, issue 13).
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Callable

import networkx as nx
import numpy as np

from ..genome.base import Genome
from ..graph import _label, canonical, ordered_inputs
from ..registry import Registry

ENCODINGS: Registry[Callable[[Genome], np.ndarray]] = Registry("encoding")
WL_DIM = 256
WL_ROUNDS = 2


def _bucket(s: str) -> int:
    return int.from_bytes(hashlib.sha256(s.encode()).digest()[:4], "little") % WL_DIM


@ENCODINGS.decorator("wl")
def wl_encoding(genome: Genome) -> np.ndarray:
    cached = genome.__dict__.get("_wl_enc")  # genomes are immutable: compute once
    if cached is not None:
        return cached
    vec = _wl_vector(canonical(genome.hash_graph()))
    object.__setattr__(genome, "_wl_enc", vec)
    return vec


def _wl_vector(g: nx.DiGraph) -> np.ndarray:
    lab = {n: _label(g, n) for n in g}
    counts = np.zeros(WL_DIM)
    for n in g:
        counts[_bucket("0" + lab[n])] += 1
    fwd, bwd = dict(lab), dict(lab)
    order = list(nx.topological_sort(g))
    for r in range(1, WL_ROUNDS + 1):
        # order-sensitive inputs (concat) keep their order, others are a multiset
        fwd = {n: fwd[n] + "<" + "|".join(sorted(fwd[u] for u in ordered_inputs(g, n))) for n in order}
        bwd = {n: bwd[n] + ">" + "|".join(sorted(bwd[w] for w in g.successors(n))) for n in order}
        for n in order:
            counts[_bucket(f"f{r}" + fwd[n])] += 1
            counts[_bucket(f"b{r}" + bwd[n])] += 1
    return np.log1p(counts)


@ENCODINGS.decorator("nb201")
def nb201_encoding(genome: Genome) -> np.ndarray:
    return _nb201_onehot(tuple(genome.ops))


@lru_cache(maxsize=None)
def _nb201_onehot(ops: tuple[str, ...]) -> np.ndarray:
    from ..genome.nb201 import EDGES, OPS
    live = _nb201_live(ops, EDGES)
    v = np.zeros((6, len(OPS)))
    for e, op in enumerate(ops):
        v[e, OPS.index(op if live[e] else "none")] = 1.0
    v.flags.writeable = False  # shared by the cache
    return v.ravel()


@ENCODINGS.decorator("nb201-path")
def nb201_path_encoding(genome: Genome) -> np.ndarray:
    return _nb201_paths(tuple(genome.ops))


# the cell's four input->output paths, as indices into EDGES: 0-3, 0-1-3, 0-2-3, 0-1-2-3
_PATHS = ((3,), (0, 4), (1, 5), (0, 2, 5))


@lru_cache(maxsize=None)
def _nb201_paths(ops: tuple[str, ...]) -> np.ndarray:
    """BANANAS' path encoding (White et al., AAAI 2021): one bit per (path, op
    sequence) with no ``none`` on it, 4 + 16 + 16 + 64 = 100 dims. Features that
    recur across cells (a skip straight to the output, a conv-conv chain) are shared
    by networks far apart in the edge one-hot, so the predictor generalises."""
    from ..genome.nb201 import OPS
    live = OPS[1:]  # a path through a none edge carries nothing
    v, base = np.zeros(4 + 16 + 16 + 64), 0
    for path in _PATHS:
        seq = [ops[e] for e in path]
        if "none" not in seq:
            idx = 0
            for o in seq:
                idx = idx * len(live) + live.index(o)
            v[base + idx] = 1.0
        base += len(live) ** len(path)
    v.flags.writeable = False  # shared by the cache
    return v


@ENCODINGS.decorator("nb201-feat")
def nb201_feat_encoding(genome: Genome) -> np.ndarray:
    return _nb201_feat(tuple(genome.ops))


@lru_cache(maxsize=None)
def _nb201_feat(ops: tuple[str, ...]) -> np.ndarray:
    """``nb201`` plus four counts a one-hot spreads over many weights: the live
    3x3 and 1x1 convolutions, the most convolutions on one input->output path (the
    cell's depth), and log of the convolutions' parameter count (9 per 3x3, 1 per
    1x1, in C^2). Each is shared by cells far apart in the one-hot, so a predictor
    fitted on a few dozen results can use it."""
    from ..genome.nb201 import EDGES
    live = _nb201_live(ops, EDGES)
    n3 = sum(on and op == "nor_conv_3x3" for on, op in zip(live, ops))
    n1 = sum(on and op == "nor_conv_1x1" for on, op in zip(live, ops))
    conv = [op in ("nor_conv_3x3", "nor_conv_1x1") for op in ops]
    depth = max([sum(conv[e] for e in p) for p in _PATHS if all(ops[e] != "none" for e in p)] or [0])
    v = np.concatenate([_nb201_onehot(ops), [n3 / 3, n1 / 3, depth / 3, np.log1p(9 * n3 + n1) / 3]])
    v.flags.writeable = False  # shared by the cache
    return v


def _nb201_live(ops, edges) -> list[bool]:
    """Edge e = (i, j) is live when its op is not none, node i is reachable from node
    0 and node j reaches node 3 through non-none edges."""
    on = [op != "none" for op in ops]
    reach = {0}
    for (i, j), o in zip(edges, on):  # EDGES is in topological order of j
        if o and i in reach:
            reach.add(j)
    back = {3}
    for (i, j), o in sorted(zip(edges, on), key=lambda t: -t[0][1]):
        if o and j in back:
            back.add(i)
    return [o and i in reach and j in back for (i, j), o in zip(edges, on)]


def default_encoding(genome_type: str) -> str:
    """The fastest encoding registered for ``genome_type`` (its own name), else ``wl``."""
    return genome_type if genome_type in ENCODINGS else "wl"


def encode(genomes, name: str) -> np.ndarray:
    """Stack the encodings of ``genomes`` into an (n, d) float array."""
    fn = ENCODINGS.get(name)
    return np.stack([fn(g) for g in genomes]) if genomes else np.zeros((0, 0))
