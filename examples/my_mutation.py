"""Example operator plug-in: run with ``--plugin examples/my_mutation.py --mutation swap_edges``."""
import numpy as np

import evonas
from evonas.genome.nb201 import NB201Genome


@evonas.register_mutation("nb201", name="swap_edges")
def swap_edges(genome: NB201Genome, rng: np.random.Generator) -> NB201Genome:
    """Exchange the ops of two distinct edges of the cell."""
    i, j = rng.choice(6, size=2, replace=False)
    ops = list(genome.ops)
    ops[i], ops[j] = ops[j], ops[i]
    return NB201Genome(tuple(ops), genome.space)
