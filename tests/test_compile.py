"""Compiler: shapes, merge repair, straight-line code, cost model, deterministic init."""
import pytest
import torch

from evonas.compile import compile_graph, cost, infer_shapes
from evonas.errors import GraphError
from evonas.graph import add_node, new_graph


def _mixed():
    """Merges of maps with different sizes and channel counts."""
    g = new_graph()
    a = add_node(g, "a", "conv_bn_relu", ["input"], C=8, k=3)
    b = add_node(g, "b", "max_pool", [a])  # 8 x 16 x 16
    c = add_node(g, "c", "sep_conv", [b], C=12, k=5)  # 12 x 16 x 16
    s = add_node(g, "s", "add", [a, c])  # pool a, pad to 12
    t = add_node(g, "t", "concat", [s, b, a])  # 12 + 8 + 8
    r = add_node(g, "r", "res_block", [t], C=16, stride=2)
    add_node(g, "output", "output", [r])
    return g


def test_shapes_follow_documented_merge_rule():
    shapes = infer_shapes(_mixed(), (3, 32, 32))
    assert shapes["s"] == (12, 16, 16)
    assert shapes["t"] == (28, 16, 16)
    assert shapes["r"] == (28, 8, 8)  # res_block: max(C=16, 28 input channels)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 8, 8), (3, 1, 1)])
def test_forward_backward_and_cost(shape):
    g = _mixed()
    m = compile_graph(g, shape, 10, seed=1)
    x = torch.randn(2, *shape)
    y = m(x)
    assert y.shape == (2, 10)
    y.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    assert cost(g, shape, 10).params == sum(p.numel() for p in m.parameters())


def test_generated_code_is_straight_line():
    code = compile_graph(_mixed(), (3, 32, 32), 10).code
    assert "for " not in code and "nodes.a" in code.replace("nodes_a", "nodes.a")


def test_init_is_deterministic_per_seed_and_leaves_global_rng():
    state = torch.random.get_rng_state()
    a = compile_graph(_mixed(), (3, 32, 32), 10, seed=3).state_dict()
    b = compile_graph(_mixed(), (3, 32, 32), 10, seed=3).state_dict()
    c = compile_graph(_mixed(), (3, 32, 32), 10, seed=4).state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())


def test_state_keys_are_node_ids():
    keys = compile_graph(_mixed(), (3, 32, 32), 10).state_dict().keys()
    assert any(k.startswith("nodes.a.") for k in keys) and any(k.startswith("nodes.r.") for k in keys)


def test_strided_ops_on_one_pixel_maps_are_skipped():
    g = new_graph()
    x = "input"
    for i in range(6):
        x = add_node(g, f"p{i}", "max_pool" if i % 2 else "avg_pool", [x])
    add_node(g, "output", "output", [x])
    assert infer_shapes(g, (1, 8, 8))["p5"] == (1, 1, 1)
    assert compile_graph(g, (1, 8, 8), 3)(torch.randn(2, 1, 8, 8)).shape == (2, 3)


def test_bad_input_shape_raises():
    with pytest.raises(GraphError, match="input_shape"):
        infer_shapes(_mixed(), (3, 32))
