"""NB201 cost: ``genome_cost`` (additive over edges, ``NB201Genome.cost_terms``) vs a
decode + graph cost per cell, side by side in one process; checks they agree.

    python benchmarks/nb201_cost.py
"""
import itertools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evonas.compile import cost, genome_cost  # noqa: E402
from evonas.genome.nb201 import OPS, NB201Genome  # noqa: E402


def main() -> None:
    gs = [NB201Genome(o) for o in itertools.product(OPS, repeat=6)]
    sample = [gs[i] for i in np.random.default_rng(0).choice(len(gs), 100, replace=False)]
    t = time.perf_counter()
    slow = [cost(g.decode(), (3, 32, 32), 10) for g in sample]
    a = (time.perf_counter() - t) / len(sample)
    t = time.perf_counter()
    for g in gs:
        genome_cost(g, (3, 32, 32), 10)
    b = (time.perf_counter() - t) / len(gs)
    assert all(genome_cost(g, (3, 32, 32), 10) == c for g, c in zip(sample, slow))
    print(f"decode+cost {a * 1e3:.1f} ms/cell, genome_cost {b * 1e6:.0f} us/cell "
          f"(all 15,625, the 25 cached decodes included), ratio {a / b:.0f}x")


if __name__ == "__main__":
    main()
