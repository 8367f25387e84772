"""The genome protocol, checked for every registered genome type.

Parametrized over ``GENOMES.names()``, so a newly registered type is covered
automatically. Bulk tests use a small space: from ``SMALL_SPACES`` below, else the
type's optional ``small_space()`` classmethod, else its default space.
"""
from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch

from evonas.compile import compile_graph, cost
from evonas.genome import GENOMES, genome_from_dict, load_genome
from evonas.graph import arch_hash, isomorphic, validate
from evonas.operators import crossovers, mutations, operators

NAMES = GENOMES.names()
GENOME_DIR = Path(__file__).resolve().parent.parent / "genomes"
SMALL_SPACES = {
    "nb201": {"C": 8, "N": 1},
    "genetic-cnn": {"stages": (3, 4, 5), "channels": (4, 8, 8)},
}
CONVS = ("conv_bn_relu", "relu_conv_bn", "conv_bn", "conv")


def small_space(name: str):
    cls = GENOMES.get(name)
    if name in SMALL_SPACES:
        return cls.Space(**SMALL_SPACES[name])
    if hasattr(cls, "small_space"):
        return cls.small_space()
    return cls.Space()


def samples(name: str, n: int, space=None, seed0: int = 0):
    cls = GENOMES.get(name)
    space = small_space(name) if space is None else space
    return [cls.sample(np.random.default_rng(seed0 + i), space) for i in range(n)]


@pytest.fixture(params=NAMES)
def name(request):
    return request.param


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny networks: intra-op threads only add spin-wait overhead, which becomes
    10x slowdowns when the CPU is shared with other processes."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_registry_has_builtin_types():
    assert {"nb201", "genetic-cnn"} <= set(NAMES)


def test_random_genomes_validate(name):
    for space in (small_space(name), GENOMES.get(name).Space()):
        for g in samples(name, 10, space):
            assert g.space == space
            g.validate()
            validate(g.decode())


def test_same_seed_same_genome(name):
    cls = GENOMES.get(name)
    a = [cls.sample(np.random.default_rng(7), small_space(name)) for _ in range(2)]
    assert a[0] == a[1] and a[0].to_string() == a[1].to_string()
    assert len({g.to_string() for g in samples(name, 10)}) > 1  # the seed matters


def test_string_and_dict_round_trip(name):
    cls = GENOMES.get(name)
    for g in samples(name, 20) + samples(name, 5, cls.Space()):
        s = g.to_string()
        back = cls.from_string(s, g.space)
        assert back == g and back.to_string() == s
        d = json.loads(json.dumps(g.to_dict()))
        assert d["type"] == name
        for back in (cls.from_dict(d), genome_from_dict(d)):
            assert back == g and back.to_string() == s and back.to_dict() == g.to_dict()
        assert hash(g) == hash(back)  # immutable value: usable as a dict key


def _relabelled(graph: nx.DiGraph, rng: np.random.Generator) -> nx.DiGraph:
    nodes = list(graph)
    perm = rng.permutation(len(nodes))
    return nx.relabel_nodes(graph, {n: f"x{int(k)}" for n, k in zip(nodes, perm)})


def test_hash_invariant_to_node_relabelling(name):
    rng = np.random.default_rng(0)
    for g in samples(name, 10):
        graph = g.decode()
        other = _relabelled(graph, rng)
        assert set(other).isdisjoint(set(graph) - {"input", "output"}) or len(graph) < 3
        assert arch_hash(other) == arch_hash(graph)


def test_hash_changes_with_op_label(name):
    for g in samples(name, 5):
        graph = g.decode()
        convs = [n for n in graph if graph.nodes[n]["op"] in CONVS]
        if not convs:
            continue
        changed = graph.copy()
        node = convs[0]
        old = changed.nodes[node]["op"]
        changed.nodes[node]["op"] = next(c for c in CONVS if c != old)
        validate(changed)
        assert arch_hash(changed) != arch_hash(graph)


def test_hash_changes_when_mutation_changes_structure(name):
    """Some mutations may be neutral by design (e.g. CGP's inactive-gene drift), so
    each mutation is applied until the network differs; at least one must get there,
    and whenever the network differs the hash must differ too."""
    ops = mutations(name)
    if not ops:
        pytest.skip(f"no mutation registered for {name}")
    changed = 0
    for op in ops:
        g = samples(name, 1, seed0=3)[0]
        rng = np.random.default_rng(1)
        parent = g.decode()
        for _ in range(100):
            g = op(g, rng)
            child = g.decode()
            if not isomorphic(parent, child):
                assert arch_hash(child) != arch_hash(parent), f"{op.name}: {name_of(g)}"
                changed += 1
                break
    assert changed, f"{name}: no mutation changed the network in 100 steps"


# every genome type x every operator registered for it (plug-ins loaded later are not collected)
OPERATOR_CASES = [pytest.param(g, op.name, id=f"{g}/{op.name}") for g in NAMES for op in mutations(g) + crossovers(g)]


def test_every_genome_type_has_operators():
    assert all(mutations(g) for g in NAMES), {g: [op.name for op in mutations(g)] for g in NAMES}


@pytest.mark.parametrize("gname, opname", OPERATOR_CASES)
def test_operator_contract(gname, opname):
    """A child is a valid genome of the parent's type and space that decodes to a valid
    DAG and survives its string form; the same seed gives the same child."""
    cls, op = GENOMES.get(gname), operators(gname).get(opname)
    parents = samples(gname, 6)

    def apply(i):
        rng = np.random.default_rng(100 + i)
        if op.kind == "crossover":
            return list(op(parents[i], parents[(i + 1) % len(parents)], rng))
        return [op(parents[i], rng)]

    for i in range(len(parents)):
        children = apply(i)
        assert children and children == apply(i), f"{opname}: not deterministic for the seed"
        for child in children:
            assert isinstance(child, cls) and child.space == parents[i].space
            child.validate()
            validate(child.decode())
            assert cls.from_string(child.to_string(), child.space) == child


def _check_module(g, shape):
    module = compile_graph(g.decode(), shape, 10, seed=0)
    y = module(torch.randn(2, *shape, generator=torch.Generator().manual_seed(0)))
    assert y.shape == (2, 10)
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    for pname, p in module.named_parameters():
        assert p.grad is not None, f"{name_of(g)}: no gradient for {pname}"
        assert torch.isfinite(p.grad).all(), f"{name_of(g)}: non-finite gradient for {pname}"
    return module


def name_of(g) -> str:
    return f"{g.type_name} {g.to_string()}"


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_compiled_module_forward_backward(name, shape):
    for g in samples(name, 4, seed0=10):
        _check_module(g, shape)


def test_cost_params_equal_module_params(name):
    shape = (3, 32, 32)
    for g in samples(name, 50, seed0=100):
        module = compile_graph(g.decode(), shape, 10)
        assert cost(g.decode(), shape, 10).params == sum(p.numel() for p in module.parameters()), name_of(g)


def test_default_space_compiles_with_exact_cost(name):
    g = samples(name, 1, GENOMES.get(name).Space(), seed0=5)[0]
    module = _check_module(g, (3, 32, 32))
    assert cost(g.decode(), (3, 32, 32), 10).params == sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("path", sorted(GENOME_DIR.glob("*.json")), ids=lambda p: p.name)
def test_genome_files_load(path):
    raw = json.loads(path.read_text())
    assert set(raw) <= {"type", "genome", "space", "name", "note", "source", "fitness"}
    g = load_genome(path)
    assert g.type_name == raw["type"] and g.to_string() == raw["genome"]
    assert json.loads(json.dumps(g.to_dict()))["space"] == {**g.to_dict()["space"], **raw.get("space", {})}
    validate(g.decode())
