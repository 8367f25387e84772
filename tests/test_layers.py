"""The import graph of ``evonas``: layers that point one way (ARCHITECTURE.md).

Every module is parsed with ``ast``; module-level *and* function-level imports count
(a lazy import is still a dependency), relative imports are resolved. A module may
import only from its own layer or a lower one, the graph has no cycle, and the
torch-free modules import without torch.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "evonas"

# layer -> modules (dotted, without the "evonas." prefix). "" is the package itself: the
# public facade, top layer, since it re-exports lazily from every layer (evonas.search is
# L7); no module of evonas may import it, which the direction test enforces.
LAYERS: dict[int, set[str]] = {
    0: {"errors", "registry", "io", "faults", "stops", "version"},
    1: {"opspec", "graph"},
    2: {"genome", "genome.base", "genome.cgp", "genome.genetic_cnn", "genome.nb201",
        "genome.tree", "genome.tree_ops", "genome.cgp_ops", "operators", "plugins"},
    3: {"ops", "compile", "transfer", "transfer_tree", "inherit", "tensor_io",
        "evaluate", "evaluate.base", "evaluate.data", "evaluate.devices", "evaluate.train"},
    4: {"evolve", "evolve.base", "evolve.toolbox", "evolve.engine", "evolve.dedup",
        "evolve.record", "evolve.release", "evolve.weights_refs", "evolve.matched", "evolve.journal",
        "evolve.budget", "evolve.standing",
        "evolve.aging", "evolve.aging_novel", "evolve.random_search", "evolve.generational",
        "evolve.es", "evolve.nsga2", "evolve.reinforce", "evolve.nao", "evolve.pvll",
        "evolve.surrogate", "predict", "predict.encoding", "predict.mlp_ensemble",
        "predict.nao", "predict.pvll", "predict.screen", "predict.gp", "evaluate.zero_cost"},
    5: {"evaluate.pool", "evaluate.backends", "evaluate.workers", "evaluate.ray_backend",
        "evaluate.trial", "evaluate.table"},
    6: {"store", "store.journal", "store.lineage", "store.resume", "store.rundir",
        "lineage"},
    7: {"", "api", "checks", "progress", "catalog", "config", "reopen", "run", "train", "final", "summary", "report", "html_report", "compare",
        "plot", "draw", "export", "config_sections", "config_cli"},
}
LAYER_OF = {("evonas." + m).rstrip("."): n for n, ms in LAYERS.items() for m in ms}
TORCH_FREE = ["evonas", "evonas.genome", "evonas.graph", "evonas.operators", "evonas.lineage",
              "evonas.config"]  # the config layer reads the option lists from torch-free evaluate.base


def modules(pkg: Path = PKG) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is_package) of every module under ``pkg``."""
    out = {}
    for p in sorted(pkg.rglob("*.py")):
        parts = list(p.relative_to(pkg.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (p, is_pkg)
    return out


def imports_of(name: str, path: Path, is_pkg: bool, known) -> set[str]:
    """evonas modules that ``name`` imports anywhere in its file. ``from a import b``
    depends on ``a.b`` if that is a module, else on ``a`` (a name defined there)."""
    package = name if is_pkg else name.rpartition(".")[0]
    deps = set()

    def owner(mod: str) -> str:  # the module that defines dotted name ``mod``
        while mod not in known and "." in mod:
            mod = mod.rpartition(".")[0]
        return mod

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            subs = [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in known]
            plain = [a for a in node.names if f"{mod}.{a.name}" not in known]
            targets = subs + ([mod] if plain else [])
        else:
            continue
        deps |= {owner(t) for t in targets if t == "evonas" or t.startswith("evonas.")}
    deps.discard(name)
    return deps


def import_graph(pkg: Path = PKG) -> nx.DiGraph:
    mods = modules(pkg)
    g = nx.DiGraph()
    g.add_nodes_from(mods)
    for name, (path, is_pkg) in mods.items():
        g.add_edges_from((name, d) for d in imports_of(name, path, is_pkg, mods))
    return g


def violations(g: nx.DiGraph) -> list[str]:
    return [f"{a} (L{LAYER_OF[a]}) imports {b} (L{LAYER_OF[b]})" for a, b in sorted(g.edges)
            if a in LAYER_OF and b in LAYER_OF and LAYER_OF[b] > LAYER_OF[a]]


def test_every_module_is_in_the_layer_map():
    mods = set(modules())
    assert not mods - set(LAYER_OF), f"modules missing from LAYERS: {sorted(mods - set(LAYER_OF))}"
    assert not set(LAYER_OF) - mods, f"LAYERS names missing modules: {sorted(set(LAYER_OF) - mods)}"


def test_imports_point_down():
    bad = violations(import_graph())
    assert not bad, "wrong-way imports:\n" + "\n".join(bad)


def test_no_import_cycle():
    cycles = sorted(sorted(c) for c in nx.simple_cycles(import_graph()))
    assert not cycles, f"import cycles: {cycles}"


def test_the_checks_catch_a_violation(tmp_path):
    """The parser sees function-level and relative imports: a wrong-way import
    inside a function and a two-module cycle are both found."""
    pkg = tmp_path / "evonas"
    (pkg / "genome").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "errors.py").write_text("def f():\n    from .genome import base\n")
    (pkg / "genome" / "__init__.py").write_text("")
    (pkg / "genome" / "base.py").write_text("from .. import errors\nfrom ..errors import f\n")
    g = import_graph(pkg)
    assert set(g.edges) == {("evonas.errors", "evonas.genome.base"), ("evonas.genome.base", "evonas.errors")}
    assert violations(g) == ["evonas.errors (L0) imports evonas.genome.base (L2)"]
    assert list(nx.simple_cycles(g))


def test_torch_free_modules_import_without_torch():
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for mod in TORCH_FREE:
        code = (f"import sys, {mod}; loaded = [m for m in ('torch', 'torchvision') if m in sys.modules]; "
                "print(','.join(loaded))")
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "", f"import {mod} loaded {out.stdout.strip()}"


def test_modules_stay_small():
    """The style guide's ~400 lines per module: a module that outgrows it is split
    (the engine into its parts, a genome's operators into ``<genome>_ops``)."""
    sizes = {str(f.relative_to(PKG)): len(f.read_text().splitlines()) for f in PKG.rglob("*.py")}
    assert not {f: n for f, n in sizes.items() if n > 400}
