"""Hand-written reference networks, the way one writes them without evonas.

Used twice: by ``benchmarks/compile.py`` as the speed baseline of the compiled
modules, and by ``tests/test_reference.py`` as differential oracles (same weights,
same output). Each ``load_from(compiled)`` copies the compiled module's tensors in.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from evonas.genome.nb201 import EDGES


def _rcb(cin, cout, k, stride=1):
    return nn.Sequential(nn.ReLU(), nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, bias=False),
                         nn.BatchNorm2d(cout))


class NB201Cell(nn.Module):
    """NAS-Bench-201's InferCell: node j = sum of op(i->j) over i < j."""

    def __init__(self, ops, C):
        super().__init__()
        self.ops = list(ops)
        layers = {}
        for (i, j), op in zip(EDGES, ops):
            if op == "nor_conv_3x3":
                layers[f"{i}{j}"] = _rcb(C, C, 3)
            elif op == "nor_conv_1x1":
                layers[f"{i}{j}"] = _rcb(C, C, 1)
            elif op == "avg_pool_3x3":
                layers[f"{i}{j}"] = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        self.layers = nn.ModuleDict(layers)

    def forward(self, x):
        nodes = [x]
        for j in (1, 2, 3):
            acc = None
            for (i, jj), op in zip(EDGES, self.ops):
                if jj != j or op == "none":
                    continue
                y = nodes[i] if op == "skip_connect" else self.layers[f"{i}{j}"](nodes[i])
                acc = y if acc is None else acc + y
            nodes.append(acc if acc is not None else torch.zeros_like(x))
        return nodes[3]


class NB201Reduction(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.a, self.b = _rcb(cin, cout, 3, 2), _rcb(cout, cout, 3)
        self.down = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x):
        return self.b(self.a(x)) + self.down(x)


class NB201Net(nn.Module):
    """The NAS-Bench-201 macro skeleton written by hand."""

    def __init__(self, genome, in_ch, num_classes):
        super().__init__()
        C, N = genome.space.C, genome.space.N
        self.genome = genome
        self.stem = nn.Sequential(nn.Conv2d(in_ch, C, 3, 1, 1, bias=False), nn.BatchNorm2d(C))
        blocks = []
        for s in range(3):
            c = C * 2 ** s
            if s:
                blocks.append(NB201Reduction(c // 2, c))
            blocks += [NB201Cell(genome.ops, c) for _ in range(N)]
        self.blocks = nn.Sequential(*blocks)
        self.last = nn.Sequential(nn.BatchNorm2d(4 * C), nn.ReLU())
        self.head = nn.Linear(4 * C, num_classes)

    def forward(self, x):
        x = self.last(self.blocks(self.stem(x)))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    @torch.no_grad()
    def load_from(self, compiled: nn.Module) -> "NB201Net":
        """Copy the compiled module's tensors (matched by node id) into this net.
        The compiler builds every non-``none`` edge, as this net does, so every
        tensor has its twin."""
        src = compiled.state_dict()
        dst = self.state_dict()
        for k in dst:
            key = _nb201_key(k, self.genome.space.N)
            if key not in src:
                raise KeyError(f"compiled module has no tensor {key} (for {k})")
            dst[k] = src[key]
        self.load_state_dict(dst)
        return self


def _nb201_key(k: str, N: int) -> str:
    parts = k.split(".")
    if parts[0] in ("stem", "head"):
        return ("nodes." + k) if parts[0] == "stem" else k
    if parts[0] == "last":
        return "nodes.lastact." + ".".join(parts[1:])
    b = int(parts[1])  # blocks.<b>....
    stage, rest = (0, b) if b < N else ((1, b - N - 1) if b < 2 * N + 1 else (2, b - 2 * N - 2))
    if rest == -1:  # reduction block
        name = {"a": "a", "b": "b", "down": "down"}[parts[2]]
        tail = parts[3:] if name != "down" else ["0"] + parts[4:]
        return f"nodes.r{stage}_{name}." + ".".join(tail)
    i, j = parts[3]
    return f"nodes.s{stage}c{rest}_e{i}{j}." + ".".join(parts[4:])


def _nb201_ref(genome, compiled):
    return "hand-written NB201 net (official InferCell style)", NB201Net(genome, 3, 10).load_from(compiled)


def _nb201_best():
    from evonas.genome import load_genome
    return load_genome(Path(__file__).resolve().parents[1] / "genomes" / "nb201_best.json")


# genome type -> (genome, compiled) -> (label, hand-written module)
REFERENCES = {"nb201": _nb201_ref}
# genome type -> () -> the genome whose fwd+bwd is timed
BENCH_GENOMES = {"nb201": _nb201_best}


class VGGStack(nn.Module):
    """A plain ``nn.Sequential`` of the same layers, written the VGG way: the
    hand-written twin of any chain-shaped genome (one input, one consumer per node)."""

    def __init__(self, compiled, g):
        super().__init__()
        import copy

        import networkx as nx
        layers = []
        for n in nx.topological_sort(g):
            if hasattr(compiled.nodes, n):
                layers += list(copy.deepcopy(getattr(compiled.nodes, n)).children()) or \
                    [copy.deepcopy(getattr(compiled.nodes, n))]
        self.body = nn.Sequential(*layers)
        self.head = copy.deepcopy(compiled.head)

    def forward(self, x):
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(self.body(x), 1), 1))


def _chain_ref(genome, compiled):
    g = genome.decode()
    if any(g.in_degree(n) > 1 or g.out_degree(n) > 1 for n in g):
        raise ValueError(f"{genome} is not chain-shaped")
    return "hand-written VGG-style nn.Sequential", VGGStack(compiled, g)


def _gcnn_chain():
    from evonas.genome.genetic_cnn import GeneticCNNGenome
    return GeneticCNNGenome.from_string("1-01_1-01-001_1-01-001-0001")


def _cgp_chain():
    from evonas.genome.cgp import CGPGenome
    funcs = ["C32k3", "C32k3", "max", "C64k3", "C64k3", "max", "C128k3", "avg"]
    src = [max(0, 2 * c - 1) for c in range(len(funcs))]  # row 0 of the previous column
    cols = [f"{f}:{s},{s} C32k3:{s},{s}" for f, s in zip(funcs, src)]
    return CGPGenome.from_string(" / ".join(cols) + " / out:15")


REFERENCES.update({"genetic-cnn": _chain_ref, "cgp": _chain_ref})
BENCH_GENOMES.update({"genetic-cnn": _gcnn_chain, "cgp": _cgp_chain})


class TreeCellRef(nn.Module):
    """A path-level tree cell written the way PathLevel-EAS writes it: one module
    per tree node, recursing in ``forward`` (allocation, edges, children, merge)."""

    def __init__(self, node, c, cell, path, compiled):
        super().__init__()
        import copy

        from evonas.genome.tree import child_channels, node_id, parts
        self.merge, m = node.merge, len(node.edges)
        self.ranges = parts(c, m) if m else []
        self.sliced = [a != c for a, _ in child_channels(node, c)] if m else []
        edges, kids = [], []
        for i, ((_, child), (_, b)) in enumerate(zip(node.edges, child_channels(node, c) if m else [])):
            name = node_id(cell, path + (i,), "e")
            edges.append(copy.deepcopy(getattr(compiled.nodes, name)) if hasattr(compiled.nodes, name)
                         else nn.Identity())
            kids.append(TreeCellRef(child, b, cell, path + (i,), compiled))
        self.edges, self.kids = nn.ModuleList(edges), nn.ModuleList(kids)

    def forward(self, x):
        if not len(self.edges):
            return x
        ys = [kid(edge(x[:, s:e] if cut else x))
              for edge, kid, (s, e), cut in zip(self.edges, self.kids, self.ranges, self.sliced)]
        if len(ys) == 1:
            return ys[0]
        return sum(y / len(ys) for y in ys) if self.merge == "add" else torch.cat(ys, 1)


class TreeNet(nn.Module):
    """The tree genome's macro skeleton written by hand around ``TreeCellRef``;
    tensors are copied from the compiled module, so outputs must match."""

    def __init__(self, genome, compiled):
        super().__init__()
        import copy
        layers = [copy.deepcopy(compiled.nodes.stem)]
        for s, w in enumerate(genome.stage_widths()):
            if s:
                layers.append(copy.deepcopy(getattr(compiled.nodes, f"r{s}")))
            layers += [TreeCellRef(genome.tree, w, f"s{s}c{k}", (), compiled) for k in range(genome.space.N)]
        layers.append(copy.deepcopy(compiled.nodes.mix))
        self.body = nn.Sequential(*layers)
        self.head = copy.deepcopy(compiled.head)

    def forward(self, x):
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(self.body(x), 1), 1))


def _tree_ref(genome, compiled):
    return "hand-written recursive tree cell (PathLevel-EAS style)", TreeNet(genome, compiled)


def _tree_motif():
    from evonas.genome import load_genome
    return load_genome(Path(__file__).resolve().parents[1] / "genomes" / "tree_paper_motif.json")


REFERENCES["tree"] = _tree_ref
BENCH_GENOMES["tree"] = _tree_motif
