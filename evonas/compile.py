"""DAG IR -> ``torch.nn.Module``, shape inference and the analytic cost model.

``compile_graph`` builds one module per weighted node (in ``nodes[<node id>]``,
so weight inheritance can match tensors by node id) and emits straight-line
forward code with ``torch.fx``: no Python loop over nodes at run time, merges
inlined as plain tensor ops. The head is global average pooling + linear.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from functools import lru_cache

import networkx as nx
import torch
import torch.nn.functional as F
from torch import fx, nn

from .errors import GraphError
from .graph import io_nodes, ordered_inputs, validate
from .ops import OPS, Merge, Shape
from .ops import build as build_op


@dataclass(frozen=True)
class Cost:
    params: int  # trainable scalars, head included
    macs: int  # multiply-accumulates of one forward pass of one sample


def infer_shapes(g: nx.DiGraph, input_shape: Shape) -> dict[str, Shape]:
    """Output shape ``(C, H, W)`` of every node for one sample of ``input_shape``."""
    validate(g)
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise GraphError("compile", "input_shape", input_shape, "must be (C, H, W), all >= 1")
    shapes: dict[str, Shape] = {}
    for n in nx.topological_sort(g):
        d = g.nodes[n]
        op = OPS.get(d["op"])
        ins = [shapes[u] for u in ordered_inputs(g, n)]
        out = tuple(input_shape) if op.arity == 0 else op.shape(ins, op.resolve(d.get("params")))
        if min(out) < 1:
            raise GraphError("compile", f"node {n} shape", out, f"op {op.name} produced an empty map")
        shapes[n] = out
    return shapes


def cost(g: nx.DiGraph, input_shape: Shape, num_classes: int) -> Cost:
    """Parameters and MACs from the graph alone, without building any module."""
    shapes = infer_shapes(g, input_shape)
    params = macs = 0
    for n in g:
        d = g.nodes[n]
        op = OPS.get(d["op"])
        if op.arity == 0:
            continue
        p = op.resolve(d.get("params"))
        ins = [shapes[u] for u in ordered_inputs(g, n)]
        params += op.params(ins, p)
        macs += op.macs(ins, shapes[n], p)
    c = shapes[io_nodes(g)[1]][0]
    return Cost(params + c * num_classes + num_classes, macs + c * num_classes)


class Network(nn.Module):
    """Holder of the node modules and the head; ``compile_graph`` replaces its
    forward by generated straight-line code (an ``fx.GraphModule``)."""

    def __init__(self, nodes: nn.ModuleDict, head: nn.Linear):
        super().__init__()
        self.nodes = nodes
        self.head = head


def _emit_merge(graph: fx.Graph, m: Merge, args: list[fx.Node]) -> fx.Node:
    xs = []
    for i, x in enumerate(args):
        if m.resize[i]:
            x = graph.call_function(F.adaptive_max_pool2d, (x, (m.h, m.w)))
        if m.pad[i]:
            x = graph.call_function(F.pad, (x, (0, 0, 0, 0, 0, m.pad[i])))
        if m.weights is not None:
            x = graph.call_function(operator.mul, (x, float(m.weights[i])))
        xs.append(x)
    if m.kind == "concat":
        return graph.call_function(torch.cat, (tuple(xs),), {"dim": 1}) if len(xs) > 1 else xs[0]
    out = xs[0]
    for x in xs[1:]:
        out = graph.call_function(operator.add, (out, x))
    return out


def compile_graph(g: nx.DiGraph, input_shape: Shape, num_classes: int, seed: int = 0) -> fx.GraphModule:
    """Build the module for ``g`` on inputs ``(N, *input_shape)`` with a
    ``num_classes``-way linear head. Weights are initialised from ``seed`` alone."""
    shapes = infer_shapes(g, input_shape)
    src, dst = io_nodes(g)
    modules, merges = nn.ModuleDict(), {}
    # Built on the meta device: PyTorch's default init would draw from the global
    # RNG (and cost a second pass); init_weights then fills every tensor from seed.
    with torch.device("meta"):
        for n in nx.topological_sort(g):
            d = g.nodes[n]
            op = OPS.get(d["op"])
            if op.arity == 0:
                continue
            mod = build_op(op.name, [shapes[u] for u in ordered_inputs(g, n)], op.resolve(d.get("params")))
            if isinstance(mod, Merge):
                merges[n] = mod
            elif mod is not None:
                modules[n] = mod
        net = Network(modules, nn.Linear(shapes[dst][0], num_classes))
    net.to_empty(device="cpu")
    init_weights(net, seed)

    graph = fx.Graph()
    env = {src: graph.placeholder("x")}
    for n in nx.topological_sort(g):
        if n == src:
            continue
        args = [env[u] for u in ordered_inputs(g, n)]
        if n in merges:
            env[n] = _emit_merge(graph, merges[n], args)
        elif n in modules:
            env[n] = graph.call_module(f"nodes.{n}", (args[0],))
        else:  # parameter-free pass-through (identity, output)
            env[n] = args[0]
    pooled = graph.call_function(torch.flatten, (graph.call_function(F.adaptive_avg_pool2d, (env[dst], 1)), 1))
    graph.output(graph.call_module("head", (pooled,)))
    gm = fx.GraphModule(net, graph, class_name="EvonasNet")
    gm.input_shape, gm.num_classes = tuple(input_shape), num_classes
    return gm


def init_weights(net: nn.Module, seed: int) -> None:
    """Deterministic initialisation from ``seed`` with a private generator (the
    global torch RNG is untouched): Kaiming-normal convs (fan-out, ReLU), BN = (1, 0)
    with fresh running statistics,
    linear uniform(+-1/sqrt(fan_in)) as PyTorch's default."""
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for name, m in sorted(net.named_modules(), key=lambda kv: kv[0]):
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=gen)
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1 / math.sqrt(m.in_features)
                nn.init.uniform_(m.weight, -bound, bound, generator=gen)
                nn.init.uniform_(m.bias, -bound, bound, generator=gen)
            elif hasattr(m, "reset_parameters"):  # an op of a plug-in: its own init,
                with torch.random.fork_rng(devices=[]):  # seeded, global RNG restored
                    torch.manual_seed(int(torch.randint(2**31, (1,), generator=gen)))
                    m.reset_parameters()


def build(genome, input_shape: Shape, num_classes: int, seed: int = 0) -> fx.GraphModule:
    """Decode and compile a genome."""
    return compile_graph(genome.decode(), input_shape, num_classes, seed)


def genome_cost(genome, input_shape: Shape, num_classes: int) -> Cost:
    """``cost(genome.decode(), ...)``. A genome type whose cost is additive over its
    genes defines ``cost_terms() -> (base, singles)``: cost = cost(base) + the sum of
    cost(single) - cost(base). Those few genomes are decoded once and cached, so
    e.g. all 15,625 NB201 cells cost microseconds each instead of a decode (~35 ms)."""
    terms = getattr(genome, "cost_terms", None)
    if terms is None:
        return cost(genome.decode(), input_shape, num_classes)
    base, singles = terms()
    key = (tuple(input_shape), int(num_classes))
    b = _decoded_cost(base, *key)
    parts = [_decoded_cost(s, *key) for s in singles]
    return Cost(b.params + sum(c.params - b.params for c in parts),
                b.macs + sum(c.macs - b.macs for c in parts))


@lru_cache(maxsize=1024)
def _decoded_cost(genome, input_shape: Shape, num_classes: int) -> Cost:
    return cost(genome.decode(), input_shape, num_classes)
