"""DAG IR: schema validation, canonical form and the isomorphism-invariant hash."""
import networkx as nx
import numpy as np
import pytest

from evonas.errors import GraphError
from evonas.graph import add_node, arch_hash, canonical, isomorphic, new_graph, validate


def _diamond(first="conv_bn_relu", merge="add"):
    g = new_graph()
    a = add_node(g, "a", first, ["input"], C=8)
    b = add_node(g, "b", "max_pool", ["input"], k=3, stride=1)
    m = add_node(g, "m", merge, [a, b])
    add_node(g, "output", "output", [m])
    return g


def test_valid_graph_passes():
    assert validate(_diamond()) is not None


@pytest.mark.parametrize("mutate,field", [
    (lambda g: (add_node(g, "z", "add", ["m"]), g.add_edge("z", "m")), "cycle"),
    (lambda g: g.nodes["a"].update(op="warp_drive"), "node a.op"),
    (lambda g: add_node(g, "dangling", "identity", ["input"]), "dangling nodes"),
    (lambda g: g.add_edge("input", "a"), "node a inputs"),  # already there -> no-op
    (lambda g: g.nodes["a"].update(params={"kernel": 3}), "params"),
    (lambda g: g.add_node("bad id!", op="identity", params={}), "node id"),
    (lambda g: add_node(g, "o2", "output", ["m"]), "output nodes"),
])
def test_invalid_graphs_raise_named_error(mutate, field):
    g = _diamond()
    mutate(g)
    if field == "node a inputs":
        g.add_edge("b", "a")  # a now has two inputs but is a single-input op
    with pytest.raises(GraphError) as e:
        validate(g)
    msg = str(e.value)
    assert field in msg and "\n" not in msg


def test_concat_needs_distinct_orders():
    g = _diamond(merge="concat")
    g.edges["b", "m"]["order"] = 0
    with pytest.raises(GraphError, match="order"):
        validate(g)


def test_hash_invariant_under_relabelling():
    g = _diamond()
    rng = np.random.default_rng(0)
    for _ in range(5):
        ids = list(g)
        perm = dict(zip(ids, [f"n{i}" for i in rng.permutation(len(ids))]))
        h = nx.relabel_nodes(g, perm)
        assert arch_hash(h) == arch_hash(g)


def test_hash_changes_with_structure_and_params():
    base = arch_hash(_diamond())
    assert arch_hash(_diamond(first="sep_conv")) != base
    g = _diamond()
    g.nodes["a"]["params"]["C"] = 16
    assert arch_hash(g) != base
    assert arch_hash(_diamond(merge="concat")) != base


def test_concat_order_matters_add_order_does_not():
    g = _diamond(merge="concat")
    h = _diamond(merge="concat")
    h.edges["a", "m"]["order"], h.edges["b", "m"]["order"] = 1, 0
    assert arch_hash(g) != arch_hash(h)
    g, h = _diamond(), _diamond()
    h.edges["a", "m"]["order"], h.edges["b", "m"]["order"] = 1, 0
    assert arch_hash(g) == arch_hash(h)


def test_canonical_splices_identity_but_keeps_parallel_meaning():
    g = new_graph()
    i1 = add_node(g, "i1", "identity", ["input"])
    i2 = add_node(g, "i2", "identity", ["input"])
    m = add_node(g, "m", "add", [i1, i2])  # x + x = 2x: must not collapse to x
    add_node(g, "output", "output", [m])
    c = canonical(g)
    assert c.in_degree("m") == 2
    single = new_graph()
    add_node(single, "m", "add", ["input"])
    add_node(single, "output", "output", ["m"])
    assert arch_hash(g) != arch_hash(single)
    # an identity chain is the same network as no identity at all
    chain = new_graph()
    add_node(chain, "i", "identity", ["input"])
    add_node(chain, "output", "output", ["i"])
    bare = new_graph()
    add_node(bare, "output", "output", ["input"])
    assert arch_hash(chain) == arch_hash(bare)


def test_isomorphic_confirms_a_hash_match():
    g = _diamond()
    relabelled = nx.relabel_nodes(g, {"a": "x", "b": "y", "m": "z"})
    assert arch_hash(g) == arch_hash(relabelled) and isomorphic(g, relabelled)
    assert not isomorphic(_diamond(first="sep_conv"), g)
