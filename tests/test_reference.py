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


# Cells where a conv reads an all-zero node (node 1 or 2 has only 'none' inputs)
# or where a conv never reaches node 3: the official network builds those convs.
DEAD = ["|none~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|",
        "|none~0|+|none~0|avg_pool_3x3~1|+|nor_conv_1x1~0|nor_conv_3x3~1|nor_conv_3x3~2|"]


@pytest.mark.parametrize("arch", DEAD)
def test_nb201_dead_edges_are_built_like_the_official_net(arch):
    """With random BN affine parameters (as after training) a conv of a zero map
    outputs its BN bias, so pruning it would change the output."""
    genome = NB201Genome.from_string(arch, NB201Space(C=4, N=2))
    compiled = build(genome, (3, 16, 16), 10, seed=0)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in compiled.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen))
    ref = NB201Net(genome, 3, 10).load_from(compiled)
    assert sum(p.numel() for p in ref.parameters()) == sum(p.numel() for p in compiled.parameters())
    x = torch.randn(4, 3, 16, 16, generator=gen)
    for mode in ("train", "eval"):
        getattr(compiled, mode)(), getattr(ref, mode)()
        torch.testing.assert_close(compiled(x), ref(x), rtol=0, atol=1e-5)
