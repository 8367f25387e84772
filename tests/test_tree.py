"""Tree genome: string form, validation, decoding (stable ids), compile, operators."""
import numpy as np
import pytest
import torch

from evonas.compile import build, cost
from evonas.errors import GenomeError, GraphError
from evonas.genome.tree import TreeGenome, TreeSpace, node_id, parse_node_id
from evonas.graph import add_node, new_graph, validate
from evonas.operators import mutations

EXAMPLE = "rep.add(sep3x3>leaf,identity>split.cat(identity>leaf,conv1x1>leaf));head=16"


def test_round_trip_example_and_samples():
    g = TreeGenome.from_string(EXAMPLE)
    assert g.to_string() == EXAMPLE
    rng = np.random.default_rng(1)
    for _ in range(30):
        g = TreeGenome.sample(rng)
        assert TreeGenome.from_string(g.to_string()) == g
        assert TreeGenome.from_dict(g.to_dict()) == g


@pytest.mark.parametrize("bad", [
    "rep.add(conv1x1>leaf)",  # no head
    "rep.add(conv1x1>leaf);head=0",
    "rep.add(conv1x1>leaf,);head=8",
    "rep.add(foo>leaf);head=8",
    "rep.sum(conv1x1>leaf);head=8",
    "rep.cat(identity>leaf,identity>leaf);head=8",  # identity cannot map 8 -> 4 channels
    "split.add(avg3x3>leaf,conv1x1>leaf);head=8",
    "rep.add(conv1x1>leaf) ;head=8",
    "leaf;head=08",
])
def test_invalid_strings_raise(bad):
    with pytest.raises(GenomeError):
        TreeGenome.from_string(bad)


def test_space_limits():
    sp = TreeSpace(C=2, max_edges=3, max_children=2)
    with pytest.raises(GenomeError):  # 3 children > max_children
        TreeGenome.from_string("rep.add(conv1x1>leaf,conv1x1>leaf,conv1x1>leaf);head=8", sp)
    with pytest.raises(GenomeError):  # 4 edges > max_edges
        TreeGenome.from_string("rep.add(conv1x1>rep.add(conv1x1>rep.add(conv1x1>rep.add(conv1x1>leaf))));head=8", sp)
    with pytest.raises(GenomeError):  # 2 channels cannot be split 3 ways
        TreeGenome.from_string("split.cat(identity>leaf,identity>leaf,identity>leaf);head=8", TreeSpace(C=2))


def test_decode_ids_and_channels():
    g = TreeGenome.from_string(EXAMPLE, TreeSpace(C=8, S=2, N=1))
    dag = validate(g.decode())
    assert {"stem", "r1", "mix", "s0c0_p0_e", "s0c0_p1_e", "s0c0_p1_s0", "s0c0_p1_1_e",
            "s0c0_p1_m", "s0c0_p_m", "s1c0_p1_1_e"} <= set(dag)
    assert dag.nodes["s0c0_p1_s1"]["params"] == {"start": 4, "stop": 8}
    assert dag.nodes["s1c0_p1_s1"]["params"] == {"start": 8, "stop": 16}
    assert dag.nodes["s0c0_p_m"]["params"]["weights"] == [0.5, 0.5]
    assert parse_node_id("s1c0_p1_1_e") == ("s1c0", (1, 1), "e")
    assert parse_node_id(node_id("s0c3", (), "m")) == ("s0c3", (), "m")
    assert parse_node_id("stem") is None


def test_ids_stable_under_mutation():
    g = TreeGenome.from_string("rep.add(conv1x1>leaf,sep3x3>rep.add(identity>leaf));head=16")
    h = TreeGenome.from_string("rep.add(conv1x1>leaf,sep3x3>rep.add(sep5x5>leaf,sep5x5>leaf));head=16")
    a, b = g.decode(), h.decode()
    for n in ("s0c0_p0_e", "s0c0_p1_e", "s1c0_p0_e", "stem", "r1", "mix"):
        assert a.nodes[n] == b.nodes[n]


def test_compile_forward_and_cost():
    g = TreeGenome.from_string(EXAMPLE)
    m = build(g, (3, 32, 32), 10)
    out = m(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 10)
    c = cost(g.decode(), (3, 32, 32), 10)
    assert c.params == sum(p.numel() for p in m.parameters())


def test_slice_op_validation():
    dag = new_graph()
    add_node(dag, "s", "slice", ["input"], start=2, stop=5)
    add_node(dag, "output", "output", ["s"])
    m = __import__("evonas.compile", fromlist=["compile_graph"]).compile_graph(dag, (6, 4, 4), 3)
    x = torch.rand(1, 6, 4, 4)
    assert torch.equal(m.nodes.s(x), x[:, 2:5])
    dag.nodes["s"]["params"] = {"start": 4, "stop": 9}
    with pytest.raises(GraphError):
        cost(dag, (6, 4, 4), 3)


def test_mutations_give_valid_different_genomes():
    rng = np.random.default_rng(0)
    names = {op.name for op in mutations("tree")}
    assert {"branch", "deepen", "identity_to_conv", "widen", "swap_op", "remove_edge"} <= names
    for _ in range(10):
        g = TreeGenome.sample(rng)
        for op in mutations("tree"):
            child = op(g, rng)
            assert isinstance(child, TreeGenome) and child != g
            assert TreeGenome.from_string(child.to_string()) == child


def test_deepen_then_branch_builds_paper_motif():
    rng = np.random.default_rng(0)
    ops = {op.name: op for op in mutations("tree")}
    g = TreeGenome.from_string("leaf;head=8")
    g = ops["deepen"](g, rng)
    assert g.tree.to_string() == "rep.add(identity>leaf)"
    g = ops["branch"](g, rng)
    assert g.tree.to_string() in ("rep.add(identity>leaf,identity>leaf)", "split.cat(identity>leaf,identity>leaf)")
