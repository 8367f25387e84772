"""Decode+compile time per genome type, and the compiled forward+backward time
relative to an equivalent hand-written module, measured side by side.

    python benchmarks/compile.py [--samples 20] [--batch 32] [--repeats 15]

For each registered genome type: median wall time to decode + compile one random
genome (default space, 3x32x32 input), and the ratio
t(compiled fwd+bwd) / t(reference fwd+bwd) for a fixed architecture, where the
reference is a hand-written ``nn.Module`` (``reference_nets.py``) or, for types
without one, a plain Python interpreter walking the same graph each call. The two
are timed alternately in one process (medians of ``repeats``); goal: ratio <= 1.10.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference_nets  # noqa: E402

from evonas.compile import compile_graph  # noqa: E402
from evonas.genome import GENOMES  # noqa: E402
from evonas.graph import io_nodes, ordered_inputs  # noqa: E402
from evonas.ops import OPS, Merge  # noqa: E402

SHAPE = (3, 32, 32)


class Interpreter(nn.Module):
    """Baseline: runs the graph by walking it in Python on every call."""

    def __init__(self, compiled, g):
        super().__init__()
        self.c, self.g = compiled, g
        self.order = [n for n in __import__("networkx").topological_sort(g)]
        self.src, self.dst = io_nodes(g)
        self.inputs = {n: ordered_inputs(g, n) for n in g}

    def forward(self, x):
        env = {self.src: x}
        for n in self.order[1:]:
            args = [env[u] for u in self.inputs[n]]
            if hasattr(self.c.nodes, n):
                env[n] = getattr(self.c.nodes, n)(args[0])
            elif self.g.nodes[n]["op"] in ("add", "concat"):
                op = OPS.get(self.g.nodes[n]["op"])
                env[n] = Merge(op.name, [tuple(a.shape[1:]) for a in args],
                               self.g.nodes[n]["params"].get("weights"))(*args)
            else:
                env[n] = args[0]
        h = torch.flatten(nn.functional.adaptive_avg_pool2d(env[self.dst], 1), 1)
        return self.c.head(h)


def reference(type_name, genome, compiled):
    """(label, module) of the hand-written twin of ``compiled``."""
    make = getattr(reference_nets, "REFERENCES", {}).get(type_name)
    if make:
        return make(genome, compiled)
    return "python graph interpreter", Interpreter(compiled, genome.decode())


def fixed_genome(cls):
    """The architecture timed for the ratio: the type's reference genome."""
    pick = getattr(reference_nets, "BENCH_GENOMES", {}).get(cls.type_name)
    return pick() if pick else cls.sample(np.random.default_rng(0))


def time_pair(a, b, x, repeats):
    ta, tb = [], []
    for m in (a, b):  # warm-up
        m(x).sum().backward()
    for _ in range(repeats):
        for m, acc in ((a, ta), (b, tb)):
            t = time.perf_counter()
            m(x).sum().backward()
            acc.append(time.perf_counter() - t)
    return statistics.median(ta), statistics.median(tb)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=20, help="genomes timed per type (default 20)")
    ap.add_argument("--batch", type=int, default=32, help="batch size of the fwd+bwd timing (default 32)")
    ap.add_argument("--repeats", type=int, default=15, help="timed fwd+bwd repeats (default 15)")
    ap.add_argument("--types", nargs="*", default=None, help="genome types (default: all registered)")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    x = torch.randn(args.batch, *SHAPE)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, input {args.batch}x{SHAPE}")
    print(f"{'genome':12s} {'compile ms (median)':>20s} {'fwd+bwd ms':>11s} {'reference ms':>13s} {'ratio':>6s}  reference")
    for name in args.types or GENOMES.names():
        cls = GENOMES.get(name)
        rng = np.random.default_rng(1)
        times = []
        for _ in range(args.samples):
            g = cls.sample(rng)
            t = time.perf_counter()
            compile_graph(g.decode(), SHAPE, 10, seed=0)
            times.append(time.perf_counter() - t)
        genome = fixed_genome(cls)
        compiled = compile_graph(genome.decode(), SHAPE, 10, seed=0)
        label, ref = reference(name, genome, compiled)
        tc, tr = time_pair(compiled, ref, x, args.repeats)
        print(f"{name:12s} {1e3 * statistics.median(times):20.1f} {1e3 * tc:11.1f} {1e3 * tr:13.1f} "
              f"{tc / tr:6.2f}  {label}")


if __name__ == "__main__":
    main()
