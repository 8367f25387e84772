"""Differential tests: compiled modules vs hand-written reference networks."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from reference_nets import NB201Net  # noqa: E402

from evonas.compile import build  # noqa: E402
from evonas.genome.nb201 import NB201Genome, NB201Space  # noqa: E402


@pytest.mark.parametrize("seed", range(6))
def test_nb201_compiled_equals_handwritten(seed):
    rng = np.random.default_rng(seed)
    genome = NB201Genome.sample(rng, NB201Space(C=4, N=2))
    compiled = build(genome, (3, 16, 16), 10, seed=seed)
    ref = NB201Net(genome, 3, 10).load_from(compiled)
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(seed))
    for mode in ("train", "eval"):
        getattr(compiled, mode)(), getattr(ref, mode)()
        torch.testing.assert_close(compiled(x), ref(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_tree_compiled_equals_handwritten(seed):
    from reference_nets import TreeNet

    from evonas.genome.tree import TreeGenome
    genome = TreeGenome.sample(np.random.default_rng(seed))
    compiled = build(genome, (3, 16, 16), 10, seed=seed)
    ref = TreeNet(genome, compiled)
    x = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(seed))
    for mode in ("train", "eval"):
        getattr(compiled, mode)(), getattr(ref, mode)()
        torch.testing.assert_close(compiled(x), ref(x), rtol=0, atol=1e-5)
