"""Faithful to the reference implementations (issue 18): the published and reference
figures are facts here.

* NB201: the official network (``TinyNetwork`` + ``InferCell``, AutoDL-Projects) builds
  every non-``none`` edge; the paper's CIFAR-10 figures (C=16, N=5, 10 classes):
  params 0.073306..1.531546 M, FLOPs 7.78305..220.11969 M, counted with the
  classifier bias (``xautodl/utils/flop_benchmark.py``: convs and linears only).
* CGP-CNN (sg-nm/cgp-cnn): ResBlock with a zero-padded identity shortcut; the
  (1+lambda)-ES replaces the parent only when a child is strictly better; forced
  mutation keeps 10..50 active nodes (``exp_main.py``) and <= 3 pools
  (sg-nm/cgp-cnn-PyTorch, log2(32) - 2).
"""
from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from evonas.compile import build, cost, genome_cost, infer_shapes
from evonas.errors import ConfigError, GenomeError
from evonas.evaluate.base import FunctionEvaluator, Result
from evonas.evolve import Search
from evonas.genome.cgp import PAPER_RES_SPACE, PAPER_SPACE, CGPGenome, CGPSpace
from evonas.genome.cgp_ops import mut_forced
from evonas.genome.nb201 import OPS, NB201Genome, NB201Space

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from reference_nets import NB201Net  # noqa: E402

CIFAR = ((3, 32, 32), 10)
EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
DEAD_EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|"
ALL = [NB201Genome(ops) for ops in itertools.product(OPS, repeat=6)]


def nb201_flops(genome, shape, classes) -> int:
    """NB201's FLOPs: evonas's MACs plus the classifier bias (one per class)."""
    return genome_cost(genome, shape, classes).macs + classes


def official_cost(ops, C=16, N=5, cin=3, side=32, classes=10) -> tuple[int, int]:
    """(params, FLOPs) of the official TinyNetwork, written from its definition:
    stem conv3x3-BN; 3 stages of N InferCells (every nor_conv edge a ReLU-conv-BN of
    c -> c channels), joined by ResNetBasicblock(stride 2) = two ReLU-conv3x3-BN +
    AvgPool-conv1x1 shortcut; BN-ReLU; global pool; linear with bias."""
    params = flops = 0

    def conv(ci, co, k, s, bn=True):
        nonlocal params, flops
        params += ci * co * k * k + (2 * co if bn else 0)
        flops += ci * co * k * k * s * s

    conv(cin, C, 3, side)
    for stage in range(3):
        c = C * 2 ** stage
        if stage:
            side //= 2
            conv(c // 2, c, 3, side), conv(c, c, 3, side), conv(c // 2, c, 1, side, bn=False)
        for _ in range(N):
            for op in ops:
                if op.startswith("nor_conv_"):
                    k = int(op[-1])
                    conv(c, c, k, side)
    params += 2 * 4 * C + 4 * C * classes + classes
    return params, flops + 4 * C * classes + classes


# --- NB201: published figures ---------------------------------------------------------

def test_nb201_published_example_figures():
    for arch in (EXAMPLE, DEAD_EXAMPLE):  # the second was 73,306 / 7.78 M before issue 18
        g = NB201Genome.from_string(arch)
        assert genome_cost(g, *CIFAR).params == 802_426
        assert nb201_flops(g, *CIFAR) / 1e6 == pytest.approx(113.95137, abs=5e-6)


def test_nb201_all_15625_cells_match_official_and_published_ranges():
    params, flops = [], []
    for g in ALL:
        p, f = genome_cost(g, *CIFAR).params, nb201_flops(g, *CIFAR)
        assert (p, f) == official_cost(g.ops), g.to_string()
        params.append(p), flops.append(f)
    assert len(set(g.to_string() for g in ALL)) == 15_625
    assert (min(params), max(params)) == (73_306, 1_531_546)
    assert min(flops) / 1e6 == pytest.approx(7.78305, abs=5e-6)
    assert max(flops) / 1e6 == pytest.approx(220.11969, abs=5e-6)


@pytest.mark.parametrize("shape, classes", [((3, 32, 32), 100), ((3, 16, 16), 120)])
def test_nb201_other_data_sets_match_the_official_formula(shape, classes):
    for g in ALL[::97]:
        c = genome_cost(g, shape, classes)
        assert (c.params, c.macs + classes) == official_cost(g.ops, side=shape[1], classes=classes)


def _count_nb201_flops(model: nn.Module, shape) -> int:
    """NB201's counter: hooks on Conv2d (k*k*cin*cout/groups per output pixel, + bias)
    and Linear (in*out + bias); pools, BN and ReLU are not counted."""
    total = [0]

    def conv(m, _, out):
        kh, kw = m.kernel_size
        total[0] += kh * kw * m.in_channels * m.out_channels // m.groups * out.shape[2] * out.shape[3]
        total[0] += m.out_channels * out.shape[2] * out.shape[3] if m.bias is not None else 0

    def linear(m, _, out):
        total[0] += m.in_features * m.out_features + (m.out_features if m.bias is not None else 0)

    hooks = [m.register_forward_hook(conv if isinstance(m, nn.Conv2d) else linear)
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, *shape))
    for h in hooks:
        h.remove()
    return total[0]


@pytest.mark.parametrize("seed", [0] + [pytest.param(s, marks=pytest.mark.slow) for s in (1, 2)])
def test_nb201_analytic_cost_equals_real_modules(seed):
    """A random sample (plus a dead-edge cell) built for real: the compiled module and the
    hand-written official-style net have genome_cost's params and NB201's FLOPs."""
    rng = np.random.default_rng(seed)
    genomes = [NB201Genome.sample(rng) for _ in range(2)]
    if seed == 0:
        genomes.append(NB201Genome.from_string(DEAD_EXAMPLE))
    for g in genomes:
        c = genome_cost(g, *CIFAR)
        assert c == cost(g.decode(), *CIFAR)  # the additive shortcut is the graph's cost
        compiled = build(g, *CIFAR)
        ref = NB201Net(g, 3, 10).load_from(compiled)  # every tensor has its twin
        for m in (compiled, ref):
            assert sum(p.numel() for p in m.parameters()) == c.params
            assert _count_nb201_flops(m, CIFAR[0]) == c.macs + 10


def test_nb201_hash_stays_on_the_pruned_cell():
    """Cells whose extra convs read only zeros hash alike (same function at init) but are
    built, and priced, like the official network."""
    space = NB201Space(C=8, N=1)
    dead = NB201Genome(("none",) * 6, space)
    conv_dead = NB201Genome(("nor_conv_3x3",) + ("none",) * 5, space)
    assert conv_dead.arch_hash() == dead.arch_hash()
    extra = sum(c * c * 9 + 2 * c for c in (8, 16, 32))  # edge 0->1 of the one cell per stage
    assert genome_cost(conv_dead, *CIFAR).params == genome_cost(dead, *CIFAR).params + extra
    ops = [d["op"] for _, d in conv_dead.decode().nodes(data=True)]
    assert ops.count("relu_conv_bn") == 3 + 2 * 2  # one per cell + two per reduction block


# --- CGP-CNN --------------------------------------------------------------------------

def test_cgp_resblock_zero_padded_identity_shortcut():
    """``R128k3:0,0 / R32k3:1,1 / out:2``: 197,632 body params and a 128x32x32 map (the
    authors' code; their param_num adds 320 conv biases, which evonas omits as BN follows)."""
    g = CGPGenome.from_string("R128k3:0,0 / R32k3:1,1 / out:2", CGPSpace(rows=1, cols=2, levels_back=2,
                                                                        function_set="ResSet"))
    c = genome_cost(g, *CIFAR)
    head = 128 * 10 + 10
    assert c.params - head == 197_632 and c.params - head + 2 * 128 + 2 * 32 == 197_952
    assert infer_shapes(g.decode(), CIFAR[0])["n2"] == (128, 32, 32)
    m = build(g, *CIFAR)
    assert sum(p.numel() for p in m.parameters()) == c.params
    assert not any("short" in k for k in m.state_dict())  # no projection
    # the shortcut is the input itself, zero-padded: a zero body gives relu(x) on the first channels
    block = m.nodes.n2
    with torch.no_grad():
        block.body[-1].weight.zero_(), block.body[-1].bias.zero_()
        x = torch.randn(2, 128, 8, 8)
        torch.testing.assert_close(block(x), torch.relu(x))


def test_cgp_paper_presets_carry_the_authors_bounds():
    for sp in (PAPER_SPACE, PAPER_RES_SPACE):
        assert (sp.min_active, sp.max_active, sp.max_pool, sp.es_accept) == (10, 50, 3, "better")
    assert (CGPSpace().min_active, CGPSpace().max_active, CGPSpace().max_pool) == (1, None, None)


def test_cgp_sampling_and_forced_mutation_stay_within_bounds():
    rng = np.random.default_rng(0)
    g = CGPGenome.sample(rng, PAPER_SPACE)
    for _ in range(15):
        assert g.within_bounds() and 10 <= g.count_active() <= 50 and g.count_pools() <= 3
        g = mut_forced(g, rng)
    # a tight bound is honoured too: no active pool at all
    sp = CGPSpace(max_pool=0, max_active=6)
    g = CGPGenome.sample(rng, sp)
    for _ in range(40):
        assert g.count_pools() == 0 and g.count_active() <= 6
        g = mut_forced(g, rng)


def test_cgp_active_count_includes_the_output_node_as_the_authors_do():
    g = CGPGenome.from_string("C32k3:0,0 / max:1,1 / out:2", CGPSpace(rows=1, cols=2, levels_back=2))
    assert g.active_nodes() == (1, 2) and g.count_active() == 3 and g.count_pools() == 1
    assert not CGPGenome(g.nodes, g.output, CGPSpace(rows=1, cols=2, levels_back=2, max_pool=0)).within_bounds()


@pytest.mark.parametrize("kw, field", [({"min_active": 0}, "space.min_active"),
                                       ({"min_active": 18}, "space.min_active"),  # 2x8 grid + output
                                       ({"min_active": 5, "max_active": 4}, "space.max_active"),
                                       ({"max_pool": -1}, "space.max_pool"),
                                       ({"es_accept": "maybe"}, "space.es_accept")])
def test_cgp_bad_bounds_name_the_field(kw, field):
    with pytest.raises(GenomeError) as e:
        CGPGenome.sample(np.random.default_rng(0), CGPSpace(**kw))
    assert e.value.field == field


def _es_rows(strategy_args=None, space=None, n=24):
    rows = []
    ev = FunctionEvaluator(lambda job: Result(job.id, "ok", fitness=1.0))  # every child ties
    Search(ev, "cgp", strategy="es", strategy_args=strategy_args or {}, space=space, seed=0,
           max_evaluations=n, confirm_hash=False, on_record=rows.append).run()
    return rows


def test_es_strict_acceptance_is_the_authors_default():
    """A tie keeps the parent and drifts it neutrally (modified_evolution); with 'ties' a
    tied child replaces the parent and no neutral step is taken."""
    strict = _es_rows()
    assert sum(r["operator"] == "neutral" for r in strict) >= 5
    assert {_parent_op(strict, r) for r in strict if r["operator"] == "forced"} == {"init", "neutral"}
    for ties in (_es_rows({"accept": "ties"}), _es_rows(space=CGPSpace(es_accept="ties"))):
        assert not any(r["operator"] == "neutral" for r in ties)
        assert "forced" in {_parent_op(ties, r) for r in ties if r["operator"] == "forced"}


def _parent_op(rows, r) -> str:
    """Operator of the (single) parent of record ``r``."""
    (pid,) = re.findall(r"\d+", str(r["parent_ids"]))
    return next(p["operator"] for p in rows if p["id"] == int(pid))


def test_es_bad_accept_is_a_config_error():
    with pytest.raises(ConfigError, match="accept"):
        _es_rows({"accept": "maybe"}, n=2)
