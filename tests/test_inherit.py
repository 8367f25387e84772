"""Weight inheritance: exact path-level / Net2Net transformations preserve the
function (eval mode, fp32, max abs error <= 1e-5), shape rule copies unchanged
nodes bit for bit, safetensors store round trip."""
import numpy as np
import pytest
import torch

from evonas.compile import build
from evonas.errors import ConfigError
from evonas.genome.nb201 import NB201Genome, NB201Space
from evonas.genome.tree import TreeGenome, TreeSpace
from evonas.genome.tree_ops import EXACT
from evonas.inherit import inherit
from evonas.operators import operators
from evonas.tensor_io import load_weights_file, save_weights_file

SHAPE = (3, 32, 32)
TOL = 1e-5
SPACE = TreeSpace(C=4, S=2, N=1, max_edges=10)


def trainedish(model, seed):
    """Random weights around the init and non-trivial BN statistics (var > 0)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for k, v in model.state_dict().items():
            if k.endswith("running_mean") or (k.endswith("bias") and "head" not in k):
                v.uniform_(-0.3, 0.3, generator=gen)
            elif k.endswith("running_var"):
                v.uniform_(0.5, 2.0, generator=gen)
            elif k.endswith("weight") and v.dim() == 1:
                v.uniform_(0.5, 1.5, generator=gen)
            elif k.endswith("num_batches_tracked"):
                v.fill_(7)
            elif v.dim() == 4:
                v.mul_(0.5 + torch.rand(v.shape, generator=gen))
    model.eval()
    return model


def inputs():
    return torch.rand(3, *SHAPE, generator=torch.Generator().manual_seed(123))


def check(parent, pmodel, child, op="branch", mode="exact", seed=1):
    cmodel = build(child, SHAPE, 10, seed=seed)
    report = inherit(parent, pmodel.state_dict(), child, cmodel, mode, operators("tree").get(op),
                     np.random.default_rng(seed))
    cmodel.eval()
    x = inputs()
    with torch.no_grad():
        err = (cmodel(x) - pmodel(x)).abs().max().item()
    return err, report, cmodel


CASES = [  # (parent tree, child tree): every exact transformation in isolation
    ("rep.add(conv1x1>rep.add(sep3x3>leaf))", "rep.add(conv1x1>rep.add(sep3x3>leaf),conv1x1>rep.add(sep3x3>leaf))"),
    ("rep.add(sep5x5>leaf)", "rep.add(sep5x5>leaf,sep5x5>leaf)"),
    ("rep.add(conv1x1>leaf)", "rep.cat(conv1x1>leaf,conv1x1>leaf)"),
    ("rep.add(sep7x7>leaf)", "rep.cat(sep7x7>leaf,sep7x7>leaf)"),
    ("rep.add(identity>leaf)", "split.cat(identity>leaf,identity>leaf)"),
    ("rep.add(max3x3>leaf)", "split.cat(max3x3>leaf,max3x3>leaf)"),
    ("rep.add(avg3x3>leaf)", "rep.add(avg3x3>leaf,avg3x3>leaf)"),
    ("leaf", "rep.add(identity>leaf)"),
    ("rep.add(sep3x3>leaf)", "rep.add(sep3x3>rep.add(identity>leaf))"),
    ("rep.add(identity>leaf,sep3x3>leaf)", "rep.add(conv1x1>leaf,sep3x3>leaf)"),
    ("split.cat(identity>leaf,avg3x3>leaf)", "split.cat(sep3x3>leaf,avg3x3>leaf)"),
    ("rep.add(identity>leaf)", "rep.add(sep5x5>leaf)"),
    ("rep.add(identity>leaf)", "rep.add(sep7x7>leaf)"),
    ("rep.add(conv1x1>leaf)", "rep.add(sep3x3>leaf)"),  # swap that happens to be exact
    ("rep.add(sep3x3>leaf)", "rep.add(sep7x7>leaf)"),  # kernel zero-padding: exact
]


@pytest.mark.parametrize("ptree,ctree", CASES)
def test_exact_transformation_preserves_function(ptree, ctree):
    parent = TreeGenome.from_string(f"{ptree};head=8", SPACE)
    child = TreeGenome.from_string(f"{ctree};head=8", SPACE)
    pmodel = trainedish(build(parent, SHAPE, 10, seed=0), seed=5)
    err, report, _ = check(parent, pmodel, child)
    assert err <= TOL, (err, report.summary())


def test_widen_head_is_exact_and_shape_is_not():
    parent = TreeGenome.from_string("rep.add(conv1x1>leaf,sep3x3>leaf);head=8", SPACE)
    child = TreeGenome.from_string("rep.add(conv1x1>leaf,sep3x3>leaf);head=13", SPACE)
    pmodel = trainedish(build(parent, SHAPE, 10, seed=0), seed=2)
    err, report, _ = check(parent, pmodel, child, op="widen")
    assert err <= TOL
    assert "head.weight" in report.transformed and "nodes.mix.1.running_var" in report.transformed
    err_shape, _, _ = check(parent, pmodel, child, mode="shape")
    assert err_shape > 1e-3  # the test can fail: without Net2Wider the function changes


def test_deeper_needs_the_identity_init():
    parent = TreeGenome.from_string("rep.add(identity>leaf);head=8", SPACE)
    child = TreeGenome.from_string("rep.add(sep3x3>leaf);head=8", SPACE)
    pmodel = trainedish(build(parent, SHAPE, 10, seed=0), seed=3)
    assert check(parent, pmodel, child)[0] <= TOL
    assert check(parent, pmodel, child, mode="shape")[0] > 1e-3


@pytest.mark.parametrize("seed", [0, 1])
def test_ten_chained_exact_mutations(seed):
    rng = np.random.default_rng(seed)
    genome = TreeGenome.sample(rng, SPACE)
    model = trainedish(build(genome, SHAPE, 10, seed=0), seed=seed)
    x = inputs()
    with torch.no_grad():
        reference = model(x)
    for step in range(10):
        name = EXACT[int(rng.integers(len(EXACT)))]
        op = operators("tree").get(name)
        child = op(genome, rng)
        cmodel = build(child, SHAPE, 10, seed=100 + step)
        inherit(genome, model.state_dict(), child, cmodel, "exact", op, rng)
        cmodel.eval()
        with torch.no_grad():
            out = cmodel(x)
        assert (out - reference).abs().max().item() <= TOL, (step, name, child.to_string())
        genome, model = child, cmodel


def test_shape_mode_copies_unchanged_nodes_bitwise_and_keeps_new_fresh():
    parent = TreeGenome.from_string("rep.add(conv1x1>leaf,identity>leaf);head=8", SPACE)
    child = TreeGenome.from_string("rep.add(conv1x1>leaf,sep5x5>leaf);head=8", SPACE)
    pmodel = trainedish(build(parent, SHAPE, 10, seed=0), seed=4)
    cmodel = build(child, SHAPE, 10, seed=9)
    fresh = {k: v.clone() for k, v in build(child, SHAPE, 10, seed=9).state_dict().items()}
    report = inherit(parent, pmodel.state_dict(), child, cmodel, "shape")
    pstate, cstate = pmodel.state_dict(), cmodel.state_dict()
    for k, v in cstate.items():
        if k in pstate:
            assert torch.equal(v, pstate[k]), k
        else:
            assert ".p1_e." not in k or torch.equal(v, fresh[k])
    new = [k for k in cstate if "_p1_e." in k]
    assert new and all(k in report.fresh and torch.equal(cstate[k], fresh[k]) for k in new)
    assert sorted(report.copied) == sorted(k for k in cstate if k in pstate)


def test_operator_without_rule_falls_back_to_shape_and_none_mode():
    rng = np.random.default_rng(0)
    sp = NB201Space(C=4, N=1)
    parent = NB201Genome.sample(rng, sp)
    op = operators("nb201").get("edge_op")
    child = op(parent, rng)
    pmodel = trainedish(build(parent, SHAPE, 10, seed=0), seed=1)
    cmodel = build(child, SHAPE, 10, seed=1)
    report = inherit(parent, pmodel.state_dict(), child, cmodel, "exact", op)
    assert report.rule in ("shape", "shape+kernel_growth")
    pstate = pmodel.state_dict()
    for k in report.copied:
        assert torch.equal(cmodel.state_dict()[k], pstate[k])
    none = inherit(parent, pstate, child, build(child, SHAPE, 10, seed=1), "none")
    assert not none.copied and not none.transformed
    with pytest.raises(ConfigError):
        inherit(parent, pstate, child, cmodel, "exactly")


def test_weights_file_round_trip(tmp_path):
    genome = TreeGenome.from_string("rep.add(conv1x1>leaf);head=8", SPACE)
    model = trainedish(build(genome, SHAPE, 10), seed=0)
    path = save_weights_file(tmp_path / "weights" / "7.safetensors", model.state_dict())
    assert path.name == "7.safetensors" and not list(path.parent.glob("*.tmp"))
    loaded = load_weights_file(path)
    assert loaded.keys() == model.state_dict().keys()  # BN statistics included
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())
    path.unlink()
    with pytest.raises(ConfigError):
        load_weights_file(path)
    (tmp_path / "weights" / "8.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ConfigError):
        load_weights_file(tmp_path / "weights" / "8.safetensors")


def _nb201(first_edge):
    return NB201Genome((first_edge, "skip_connect", "nor_conv_3x3", "avg_pool_3x3", "nor_conv_1x1",
                        "nor_conv_3x3"), NB201Space(C=4, N=1))


def test_kernel_growth_is_exact_for_operators_without_a_rule():
    """NB201 edge 1x1 -> 3x3: the same node, a bigger kernel; zero-padding the trained
    1x1 kernel keeps the function, where the shape rule re-initialises that conv."""
    parent, child = _nb201("nor_conv_1x1"), _nb201("nor_conv_3x3")
    pmodel = trainedish(build(parent, SHAPE, 10, seed=0), seed=6)
    x = inputs()
    with torch.no_grad():
        want = pmodel(x)
    for mode, exact in (("exact", True), ("shape", False)):
        cmodel = build(child, SHAPE, 10, seed=1)
        report = inherit(parent, pmodel.state_dict(), child, cmodel, mode, operators("nb201").get("edge_op"))
        cmodel.eval()
        with torch.no_grad():
            err = (cmodel(x) - want).abs().max().item()
        assert (err <= TOL) == exact, (mode, err)
        grown = [k for k in report.transformed if k.endswith(".weight")]
        assert report.rule == ("shape+kernel_growth" if exact else "shape")
        # edge 0->1 of every cell (NB201 repeats the cell in each stage), nothing else
        assert (len(grown) >= 1 and all(k.endswith("_e01.1.weight") for k in grown)) == exact, grown
    # shrinking (3x3 -> 1x1) cannot be exact: that conv stays fresh
    shrink = inherit(child, build(child, SHAPE, 10, seed=0).state_dict(), parent,
                     build(parent, SHAPE, 10, seed=1), "exact", operators("nb201").get("edge_op"))
    assert shrink.rule == "shape" and not shrink.transformed


def test_kernel_growth_in_cgp_is_exact():
    """CGP point mutations that only change a ConvSet node's kernel (3 -> 5) inherit
    exactly; found by mutating random genomes."""
    from evonas.genome.cgp import CGPGenome, CGPSpace
    rng, found = np.random.default_rng(0), 0
    for _ in range(400):
        parent = CGPGenome.sample(rng, CGPSpace())
        child = operators("cgp").get("point")(parent, rng)
        pmodel = trainedish(build(parent, SHAPE, 10, seed=0), seed=7)
        cmodel = build(child, SHAPE, 10, seed=1)
        report = inherit(parent, pmodel.state_dict(), child, cmodel, "exact", operators("cgp").get("point"))
        if report.rule != "shape+kernel_growth" or report.fresh:
            continue  # another kind of change
        cmodel.eval()
        x = inputs()
        with torch.no_grad():
            assert (cmodel(x) - pmodel(x)).abs().max().item() <= TOL, child.to_string()
        found += 1
        if found == 3:
            break
    assert found >= 1
