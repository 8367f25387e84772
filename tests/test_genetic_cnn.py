"""Genetic CNN genome: the paper's decoding rules, string errors, and operators."""
from __future__ import annotations

import numpy as np
import pytest

from evonas.errors import GenomeError
from evonas.genome.genetic_cnn import (GeneticCNNGenome as G, GeneticCNNSpace as Space,
                                        cx_stage_swap, mut_bit_flip, mut_bit_flip_forced)
from evonas.graph import arch_hash, ordered_inputs, validate
from evonas.operators import crossovers, mutations

ONE = Space(stages=(4,), channels=(8,))


def convs(graph, stage=1):
    return sorted(n for n in graph if n.startswith(f"s{stage}_") and graph.nodes[n]["op"] == "conv_bn_relu")


def test_default_space_is_the_papers_cifar10_setting():
    g = G.sample(np.random.default_rng(0))
    assert g.space.stages == (3, 4, 5) and [len(b) for b in g.bits] == [3, 6, 10]
    assert g.to_string().count("_") == 2


def test_bit_order_and_string_follow_the_paper():
    g = G.from_string("1-01-100", ONE)  # v2<-v1 | v3<-v2 | v4<-v1
    assert g.bits == ((1, 0, 1, 1, 0, 0),)
    assert g.edges(0) == [(1, 2), (2, 3), (1, 4)]
    assert G.from_string("1-01-100", ONE) == G.from_string(" 1-01-100 ", ONE)
    two = Space(stages=(3, 4), channels=(8, 8))
    assert G.from_string("1-01|0-01-100", two).to_string() == "1-01_0-01-100"


def test_paper_figure1_example_decodes_as_described():
    """Fig. 1: S=2, K=(4,5), codes 1-00-111 and 0-10-000-0011; stage-2 v2 is isolated."""
    g = G.from_string("1-00-111_0-10-000-0011", Space(stages=(4, 5), channels=(32, 64)))
    graph = validate(g.decode())
    # stage 1: v0 (default input), v1..v4, v5 (default output) = 6 convs
    assert convs(graph, 1) == ["s1_v0", "s1_v1", "s1_v2", "s1_v3", "s1_v4", "s1_v5"]
    assert set(graph.successors("s1_v0")) == {"s1_v1", "s1_v3"}  # nodes without predecessor
    assert ordered_inputs(graph, "s1_v4_sum") == ["s1_v1", "s1_v2", "s1_v3"]
    assert list(graph.predecessors("s1_v5")) == ["s1_v4"]  # only v4 has no successor
    # stage 2: v2 is dropped; v0 feeds v1 and v4; output sums v5 only
    assert "s2_v2" not in graph
    assert convs(graph, 2) == ["s2_v0", "s2_v1", "s2_v3", "s2_v4", "s2_v5", "s2_v6"]
    assert set(graph.successors("s2_v0")) == {"s2_v1", "s2_v4"}
    assert ordered_inputs(graph, "s2_v5_sum") == ["s2_v3", "s2_v4"]
    assert graph.nodes["pool1"]["op"] == "max_pool" and graph.nodes["pool1"]["params"] == {"k": 2, "stride": 2}
    assert all(graph.nodes[n]["params"]["C"] == (32 if n.startswith("s1") else 64) for n in convs(graph, 1) + convs(graph, 2))


def test_all_zero_stage_is_a_single_convolution():
    g = G.from_string("0-00-000", ONE)
    graph = validate(g.decode())
    assert convs(graph) == ["s1_v0"]
    assert sorted(graph.edges) == [("input", "s1_v0"), ("s1_v0", "output")]


def test_chain_code_is_a_plain_stack():
    graph = G.from_string("1-01-001", ONE).decode()
    assert len(convs(graph)) == 6 and not [n for n in graph if graph.nodes[n]["op"] == "add"]
    assert all(graph.in_degree(n) == 1 and graph.out_degree(n) == 1 for n in convs(graph))


def test_isolated_nodes_are_dropped_and_share_a_hash():
    space = Space(stages=(3,), channels=(8,))
    variants = [G.from_string(s, space) for s in ("1-00", "0-10", "0-01")]  # v3 / v2 / v1 isolated
    graphs = [g.decode() for g in variants]
    assert [len(convs(x)) for x in graphs] == [4, 4, 4]
    assert "s1_v3" not in graphs[0] and "s1_v2" not in graphs[1] and "s1_v1" not in graphs[2]
    assert len({g.arch_hash() for g in variants}) == 1
    assert G.from_string("1-01", space).arch_hash() != variants[0].arch_hash()
    # the same in a bigger stage, embedded in a 2-stage genome
    two = Space(stages=(4, 3), channels=(8, 16))
    a = G.from_string("1-00-000_1-01", two)  # v3, v4 isolated
    b = G.from_string("0-00-001_1-01", two)  # v1, v2 isolated
    assert a != b and a.arch_hash() == b.arch_hash()


def test_node_ids_are_stable_across_genomes():
    a = G.from_string("1-01-100", ONE).decode()
    b = G.from_string("1-01-101", ONE).decode()
    assert {"s1_v0", "s1_v1", "s1_v2", "s1_v4", "s1_v5"} <= set(a) & set(b)


@pytest.mark.parametrize("text, field", [
    ("1-01", "stage 1"),  # K=4 needs 3 groups
    ("1-01-10", "stage 1 node v4"),  # wrong bit count
    ("1-0a-100", "stage 1 node v3"),  # non-binary
    ("1-01-1000", "stage 1 node v4"),
    ("1--01-100", "stage 1"),
    ("1-01-100_1", "genome"),  # too many stages
    ("", "stage 1"),
    (None, "genome"),
])
def test_malformed_strings_raise_named_error(text, field):
    with pytest.raises(GenomeError) as e:
        G.from_string(text, ONE)
    assert e.value.field == field and "\n" not in str(e.value) and field in str(e.value)


@pytest.mark.parametrize("bits, field", [
    (((1, 0, 1),), "stage 1 bits"),
    (((1, 0, 2, 0, 0, 0),), "stage 1 bits"),
    (((True, 0, 1, 0, 0, 0),), "stage 1 bits"),
    (((1, 0, 1, 0, 0, 0), (1,)), "bits"),
    ([[1, 0, 1, 0, 0, 0]], "bits"),
])
def test_bad_bits_raise_named_error(bits, field):
    with pytest.raises(GenomeError) as e:
        G(bits, ONE)
    assert e.value.field == field


@pytest.mark.parametrize("kw, field", [
    ({"stages": (3, 1), "channels": (8, 8)}, "space.stages[1]"),
    ({"stages": (3, 4), "channels": (8,)}, "space.channels"),
    ({"stages": (3,), "channels": (0,)}, "space.channels[0]"),
    ({"stages": [3], "channels": (8,)}, "space.stages"),
])
def test_bad_space_raises_named_error(kw, field):
    with pytest.raises(GenomeError) as e:
        Space(**kw)
    assert e.value.field == field


def test_space_from_dict_errors_are_genome_errors():
    with pytest.raises(GenomeError):
        G.from_dict({"type": "genetic-cnn", "genome": "1-01", "space": {"stages": [3], "channels": [8], "x": 1}})
    g = G.from_dict({"type": "genetic-cnn", "genome": "1-01", "space": {"stages": [3], "channels": [8]}})
    assert g.space == Space(stages=(3,), channels=(8,))


def test_operators_are_registered_and_not_permutations():
    assert {op.name for op in mutations("genetic-cnn")} >= {"bit_flip", "bit_flip_forced"}
    assert [op.name for op in crossovers("genetic-cnn")] == ["stage_swap"]
    # a permutation would keep the number of ones; bit flips change it
    g = G.from_string("0-00-000_0-00-000-0000_0-00-000-0000-00000",
                      Space(stages=(4, 5, 6), channels=(4, 4, 4)))
    counts = {sum(map(sum, mut_bit_flip(g, np.random.default_rng(s)).bits)) for s in range(20)}
    assert max(counts) > 0


def test_bit_flip_rate_matches_q():
    g = G.sample(np.random.default_rng(0))
    n = sum(len(b) for b in g.bits)
    flips = [sum(x != y for sa, sb in zip(g.bits, mut_bit_flip(g, np.random.default_rng(s)).bits)
                 for x, y in zip(sa, sb)) for s in range(2000)]
    rate = np.mean(flips) / n  # expected 0.05, std of the mean ~ 0.0011
    assert abs(rate - 0.05) < 0.006
    assert np.mean(np.array(flips) == 0) == pytest.approx(0.95 ** n, abs=0.04)
    flips_q = [sum(x != y for sa, sb in zip(g.bits, mut_bit_flip(g, np.random.default_rng(s), q=0.5).bits)
                   for x, y in zip(sa, sb)) for s in range(300)]
    assert abs(np.mean(flips_q) / n - 0.5) < 0.05
    with pytest.raises(GenomeError):
        mut_bit_flip(g, np.random.default_rng(0), q=1.5)


def test_forced_bit_flip_always_changes_a_bit():
    g = G.sample(np.random.default_rng(1))
    children = [mut_bit_flip_forced(g, np.random.default_rng(s)) for s in range(300)]
    assert all(c != g for c in children)
    assert sum(mut_bit_flip(g, np.random.default_rng(s)) == g for s in range(300)) > 100


def test_stage_swap_exchanges_whole_stages_only():
    space = Space(stages=(3, 4, 5), channels=(4, 4, 4))
    a = G.from_string("0-00_0-00-000_0-00-000-0000", space)
    b = G.from_string("1-11_1-11-111_1-11-111-1111", space)
    swapped = 0
    for s in range(500):
        ca, cb = cx_stage_swap(a, b, np.random.default_rng(s))
        for i in range(3):
            assert {ca.bits[i], cb.bits[i]} == {a.bits[i], b.bits[i]}  # whole stage, complementary
            swapped += ca.bits[i] == b.bits[i]
    assert abs(swapped / 1500 - 0.2) < 0.04  # each stage swapped with probability 0.2
    ca, cb = cx_stage_swap(a, b, np.random.default_rng(0), p=1.0)
    assert (ca, cb) == (b, a)
    with pytest.raises(GenomeError):
        cx_stage_swap(a, G.sample(np.random.default_rng(0)), np.random.default_rng(0))


def test_same_rng_same_children():
    g = G.sample(np.random.default_rng(3))
    assert mut_bit_flip(g, np.random.default_rng(9)) == mut_bit_flip(g, np.random.default_rng(9))
    h = G.sample(np.random.default_rng(4))
    assert cx_stage_swap(g, h, np.random.default_rng(9)) == cx_stage_swap(g, h, np.random.default_rng(9))


def test_graph_hash_equals_between_decoded_duplicates():
    space = Space(stages=(3,), channels=(8,))
    assert arch_hash(G.from_string("1-00", space).decode()) == arch_hash(G.from_string("0-01", space).decode())
