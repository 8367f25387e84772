"""CGP-CNN genome: activity, inert genes, operators, levels_back, shape repair."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from evonas.compile import compile_graph, cost
from evonas.errors import GenomeError
from evonas.genome import load_genome
from evonas.genome.cgp import PAPER_RES_SPACE, PAPER_SPACE, PRESETS, CGPGenome, CGPSpace
from evonas.genome.cgp_ops import mut_forced, mut_neutral, mut_point
from evonas.graph import arch_hash, validate
from evonas.operators import mutations

GENOMES = Path(__file__).resolve().parent.parent / "genomes"
SPACES = [CGPSpace(), CGPSpace(rows=1, cols=6, levels_back=1), CGPSpace(rows=3, cols=5, levels_back=2),
          CGPSpace(rows=2, cols=6, levels_back=6, function_set="ResSet", n_inputs=3)]


def sample(seed: int, space: CGPSpace = CGPSpace()) -> CGPGenome:
    return CGPGenome.sample(np.random.default_rng(seed), space)


def randomize_inactive(g: CGPGenome, rng: np.random.Generator) -> CGPGenome:
    """Redraw every inactive gene uniformly (independent of the operators under test)."""
    sp, active = g.space, set(g.active_genes())
    nodes = [list(n) for n in g.nodes]
    for k, gene in enumerate(nodes):
        lo, hi = sp.input_range(k // sp.rows)
        for pos in range(len(gene)):
            if (k, pos) not in active:
                gene[pos] = int(rng.integers(len(sp.funcs))) if pos == 0 else int(rng.integers(lo, hi + 1))
    return CGPGenome(tuple(tuple(n) for n in nodes), g.output, sp)


def check_levels_back(g: CGPGenome) -> None:
    """levels_back from first principles: column of id i is (i-1)//rows, input is column -1."""
    sp = g.space
    col = lambda i: -1 if i == 0 else (i - 1) // sp.rows  # noqa: E731
    for k, gene in enumerate(g.nodes):
        c = k // sp.rows
        assert 0 <= gene[0] < len(sp.funcs)
        for src in gene[1:]:
            assert c - sp.levels_back <= col(src) < c, (k + 1, src)
    assert sp.cols - sp.levels_back <= col(g.output) < sp.cols


def state_shapes(g: CGPGenome, shape=(1, 8, 8)) -> dict:
    m = compile_graph(g.decode(), shape, 10)
    return {k: tuple(v.shape) for k, v in m.state_dict().items()}


# --- encoding ---------------------------------------------------------------------

def test_default_is_small_and_paper_presets():
    assert CGPSpace() == PRESETS["small"] and (CGPSpace().rows, CGPSpace().cols, CGPSpace().levels_back) == (2, 8, 4)
    assert (PAPER_SPACE.rows, PAPER_SPACE.cols, PAPER_SPACE.levels_back) == (5, 30, 10)
    assert PAPER_RES_SPACE.function_set == "ResSet" and len(PAPER_SPACE.funcs) == 10


@pytest.mark.parametrize("space", [PAPER_SPACE, PAPER_RES_SPACE])
def test_paper_preset_samples_validate_and_decode(space):
    for seed in range(10):
        g = sample(seed, space)
        check_levels_back(g)
        graph = validate(g.decode())
        assert len(graph) == len(g.active_nodes()) + 2 + sum(n.endswith(tuple(f"_in{s}" for s in range(1, 4)))
                                                             for n in graph)
        assert CGPGenome.from_string(g.to_string(), space) == g
        assert cost(graph, (3, 32, 32), 10).params > 0


def test_string_form_is_readable_and_exact():
    g = load_genome(GENOMES / "cgp_convset_small.json")
    s = g.to_string()
    assert s == REF and CGPGenome.from_string(REF) == g
    assert s.startswith("C32k3:0,0 C32k5:0,0 / C32k3:1,0 cat:1,2 /") and s.endswith("/ out:15")
    assert g.active_nodes() == (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 15)
    assert sorted(n for n in g.decode() if n.startswith("n")) == sorted(f"n{i}" for i in g.active_nodes())
    for seed in range(30):
        h = sample(seed, SPACES[seed % len(SPACES)])
        assert CGPGenome.from_string(h.to_string(), h.space).to_string() == h.to_string()


REF = ("C32k3:0,0 C32k5:0,0 / C32k3:1,0 cat:1,2 / sum:3,4 max:4,1 / max:5,3 C64k3:6,2 / "
       "C64k3:7,5 avg:1,1 / sum:9,8 C128k5:3,3 / max:11,5 avg:7,7 / C128k3:13,9 sum:9,10 / out:15")


@pytest.mark.parametrize("text, field", [
    ("C32k3:0,0 C32k5:0,0 / out:1", "columns"),
    (REF.replace("C32k3:1,0 cat:1,2", "C32k3:1,0"), "column 1"),
    (REF.replace("C32k5:0,0", "X:0,0"), "node 2 (column 0, row 1) function"),
    (REF.replace("C32k5:0,0", "R32k5:0,0"), "node 2 (column 0, row 1) function"),
    (REF.replace("C32k5:0,0", "C32k5:0"), "node 2 (column 0, row 1) inputs"),
    (REF.replace("C32k5:0,0", "C32k5:0,a"), "node 2 (column 0, row 1) inputs"),
    (REF.replace("C32k5:0,0", "C32k5 0,0"), "column 0"),
    (REF.replace("C32k5:0,0", "C32k5:0,1"), "node 2 (column 0, row 1) input 1"),
    (REF.replace("max:11,5", "max:11,4"), "node 13 (column 6, row 0) input 1"),
    (REF.replace("out:15", "out:3"), "output"),
    (REF.replace("out:15", "15"), "output"),
    (42, "genome"),
])
def test_malformed_strings_name_the_field(text, field):
    with pytest.raises(GenomeError) as e:
        CGPGenome.from_string(text)
    assert e.value.field == field


def test_out_of_range_genes_and_spaces_raise():
    g = sample(0)
    nodes = list(g.nodes)
    nodes[9] = (0, 1, 1)  # node 10 sits in column 4: levels_back 4 allows ids 1..8, so id 1 is ok
    CGPGenome(tuple(nodes), g.output, g.space)
    for bad, field in (((10, 1, 1), "node 10 (column 4, row 1) function"),
                       ((0, 9, 1), "node 10 (column 4, row 1) input 0"),
                       ((0, 1, 0), "node 10 (column 4, row 1) input 1"),
                       ((0, 1), "node 10 (column 4, row 1)"), ((0, 1, True), "node 10 (column 4, row 1) input 1")):
        nodes[9] = bad
        with pytest.raises(GenomeError) as e:
            CGPGenome(tuple(nodes), g.output, g.space)
        assert e.value.field == field
    with pytest.raises(GenomeError, match="output"):
        CGPGenome(g.nodes, 17, g.space)
    for kw, field in (({"rows": 0}, "space.rows"), ({"levels_back": 9}, "space.levels_back"),
                      ({"function_set": "Foo"}, "space.function_set"), ({"n_inputs": 1}, "space.n_inputs")):
        with pytest.raises(GenomeError) as e:
            CGPGenome.sample(np.random.default_rng(0), CGPSpace(**kw))
        assert e.value.field == field


# --- inert genes and hashing --------------------------------------------------------

def test_inactive_genes_never_change_hash_or_module():
    for seed in range(60):
        g = sample(seed, SPACES[seed % len(SPACES)])
        rng = np.random.default_rng(seed)
        for other in (randomize_inactive(g, rng), mut_neutral(g, rng, rate=0.5)):
            assert other.active_nodes() == g.active_nodes()
            assert other.arch_hash() == g.arch_hash()
            if seed < 12:  # compiling is the slow part
                assert state_shapes(other) == state_shapes(g)
                assert cost(other.decode(), (1, 8, 8), 10) == cost(g.decode(), (1, 8, 8), 10)
    # and randomizing inactive genes does change the genotype somewhere
    assert any(randomize_inactive(sample(s), np.random.default_rng(s)) != sample(s) for s in range(10))


def test_neutral_mutation_never_changes_hash():
    changed = 0
    for seed in range(200):
        g = sample(seed, SPACES[seed % len(SPACES)])
        child = mut_neutral(g, np.random.default_rng(seed))
        assert child.arch_hash() == g.arch_hash()
        changed += child != g
    assert changed > 100  # it does drift the genotype


def test_forced_mutation_always_changes_hash():
    for seed in range(200):
        g = sample(seed, SPACES[seed % len(SPACES)])
        child = mut_forced(g, np.random.default_rng(seed))
        assert child.arch_hash() != g.arch_hash(), g.to_string()
        # the direct-edit fallback alone also always changes the network
        direct = mut_forced(g, np.random.default_rng(seed), tries=0)
        assert direct.arch_hash() != g.arch_hash(), g.to_string()
        assert sum(a != b for a, b in zip(direct.nodes + ((direct.output,),), g.nodes + ((g.output,),))) == 1


def test_levels_back_never_violated_after_mutation():
    for seed in range(150):
        space = SPACES[seed % len(SPACES)]
        g = sample(seed, space)
        rng = np.random.default_rng(seed)
        check_levels_back(g)
        for _ in range(3):
            g = mut_point(g, rng, rate=0.5)
            check_levels_back(g)
            g = mut_forced(g, rng)
            check_levels_back(g)
            g = mut_neutral(g, rng, rate=0.5)
            check_levels_back(g)


def test_point_mutation_rate_and_determinism():
    g = sample(1, PAPER_SPACE)
    a, b = (mut_point(g, np.random.default_rng(5)) for _ in range(2))
    assert a == b
    genes = lambda x: [v for n in x.nodes for v in n] + [x.output]  # noqa: E731
    diffs = [sum(u != v for u, v in zip(genes(g), genes(mut_point(g, np.random.default_rng(s))))) for s in range(20)]
    n = len(genes(g))  # 451 genes; column-0 input genes cannot change
    assert 0.02 * n < np.mean(diffs) < 0.06 * n
    assert mut_point(g, np.random.default_rng(0), rate=0.0) == g


def test_operators_registered_with_forced_as_default():
    ops = {op.name: op for op in mutations("cgp")}
    assert set(ops) == {"point", "forced", "neutral"}
    assert ops["forced"].weight > 0 and ops["point"].weight == 0 and ops["neutral"].weight == 0


# --- decoding and compilation ----------------------------------------------------

POOL_CHAIN = "C32k3:0,0 / max:1,1 / avg:2,2 / max:3,3 / avg:4,4 / max:5,5 / max:6,6 / sum:7,1 / cat:8,4 / out:9"


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_many_pools_compile_and_train(shape):
    """Six pools in a chain (past 1x1 on 8x8), then a sum and a concat of maps of
    very different sizes and channels, relying on the compiler's merge repair."""
    sp = CGPSpace(rows=1, cols=9, levels_back=8)
    g = CGPGenome.from_string(POOL_CHAIN, sp)
    graph = g.decode()
    assert [graph.nodes[f"n{i}"]["op"] for i in range(1, 10)] == [
        "conv_bn_relu", "max_pool", "avg_pool", "max_pool", "avg_pool", "max_pool", "max_pool", "add", "concat"]
    m = compile_graph(graph, shape, 10, seed=0)
    y = m(torch.randn(2, *shape))
    assert y.shape == (2, 10) and torch.isfinite(y).all()
    y.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    assert cost(graph, shape, 10).params == sum(p.numel() for p in m.parameters())


def test_random_pool_heavy_genomes_compile_on_8x8():
    """Genomes where most functions are pools or merges, many seeds."""
    sp = CGPSpace(rows=2, cols=8, levels_back=4)
    for seed in range(15):
        rng = np.random.default_rng(seed)
        g = CGPGenome.sample(rng, sp)
        nodes = tuple((int(rng.choice([0, 6, 7, 8, 9], p=[.1, .35, .25, .15, .15])), *n[1:]) for n in g.nodes)
        g = CGPGenome(nodes, g.output, sp)
        m = compile_graph(g.decode(), (1, 8, 8), 10)
        m(torch.randn(2, 1, 8, 8)).sum().backward()


def test_repeated_inputs_keep_their_meaning():
    """sum(x, x) = 2x and cat(x, x) doubles channels, through an identity node."""
    sp = CGPSpace(rows=1, cols=1, levels_back=1)
    twice = CGPGenome.from_string("sum:0,0 / out:1", sp)
    graph = twice.decode()
    assert set(graph.predecessors("n1")) == {"input", "n1_in1"} and graph.nodes["n1_in1"]["op"] == "identity"
    m = compile_graph(graph, (3, 4, 4), 5)
    x = torch.randn(2, 3, 4, 4)
    assert torch.allclose(m(x), m.head(2 * x.mean((2, 3))), atol=1e-6)
    cat = CGPGenome.from_string("cat:0,0 / out:1", sp)
    assert cost(cat.decode(), (3, 4, 4), 5).params == 6 * 5 + 5
    assert len({twice.arch_hash(), cat.arch_hash(), CGPGenome.from_string("max:0,0 / out:1", sp).arch_hash()}) == 3


def test_resset_compiles():
    g = load_genome(GENOMES / "cgp_resset_small.json")
    graph = g.decode()
    assert {graph.nodes[n]["op"] for n in graph} >= {"res_block", "add", "concat", "max_pool"}
    m = compile_graph(graph, (3, 16, 16), 10)
    m(torch.randn(2, 3, 16, 16)).sum().backward()
    assert cost(graph, (3, 16, 16), 10).params == sum(p.numel() for p in m.parameters())
    assert arch_hash(graph) != load_genome(GENOMES / "cgp_convset_small.json").arch_hash()
