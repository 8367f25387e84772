"""Operator plug-ins: user code that registers variation operators (or genome types).

``load_plugin(spec)`` accepts, in this order:

* a path ending in ``.py`` (``path/to/my_ops.py``), executed as a fresh module;
* the name of an entry point in group ``evonas.plugins`` (installed packages);
* an importable module name (``my_package.my_ops``).

A plug-in must register at least one operator with
``@evonas.register_mutation(genome_type, name=...)`` (or a crossover / genome type).
Each operator it registers is checked: a mutation takes exactly two required
positional parameters ``(genome, rng)``, a crossover three ``(a, b, rng)``; any
further parameter needs a default. Every failure raises ``PluginError`` naming the
plug-in; a half-loaded plug-in's operators are unregistered again. Loading the
same plug-in twice is a no-op (returns the same names).
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import sys
from pathlib import Path

from .errors import PluginError
from .genome.base import GENOMES
from .operators import _REGISTRIES, Operator

GROUP = "evonas.plugins"
_LOADED: dict[str, list[str]] = {}


def _snapshot() -> set[tuple[str, str]]:
    ops = {(t, n) for t, reg in _REGISTRIES.items() for n in reg}
    return ops | {("genome", n) for n in GENOMES}


def load_plugin(spec: str) -> list[str]:
    """Load plug-in ``spec``; return the new registrations as ``type/name`` strings."""
    if not isinstance(spec, str) or not spec:
        raise PluginError(f"plug-in {spec!r}: expected a module name, a .py path or an entry point name")
    key = str(Path(spec).resolve()) if spec.endswith(".py") else spec
    if key in _LOADED:
        return _LOADED[key]
    before = _snapshot()
    try:
        _import(spec)
    except PluginError:
        _rollback(before)
        raise
    except Exception as e:  # ImportError, SyntaxError, RegistryError (duplicate name), ...
        _rollback(before)
        raise PluginError(f"plug-in {spec!r} failed to load: {type(e).__name__}: {e}") from e
    new = sorted(_snapshot() - before)
    if not new:
        raise PluginError(f"plug-in {spec!r} registered no operator (use @evonas.register_mutation"
                          f"(genome_type, name=...) at module level)")
    for t, n in new:
        if t != "genome":
            try:
                check_signature(_REGISTRIES[t].get(n))
            except PluginError as e:
                _rollback(before)
                raise PluginError(f"plug-in {spec!r}: {e}") from None
    _LOADED[key] = [f"{t}/{n}" for t, n in new]
    return _LOADED[key]


def _import(spec: str) -> None:
    if spec.endswith(".py"):
        path = Path(spec)
        if not path.is_file():
            raise PluginError(f"plug-in {spec!r}: file not found")
        name = f"evonas_plugin_{path.stem}"
        mod_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[name] = module  # so pickling functions of the plug-in works in this process
        try:
            mod_spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return
    eps = importlib.metadata.entry_points(group=GROUP, name=spec)
    if eps:
        next(iter(eps)).load()
        return
    importlib.import_module(spec)


def _rollback(before: set[tuple[str, str]]) -> None:
    for t, n in _snapshot() - before:
        (GENOMES if t == "genome" else _REGISTRIES[t]).unregister(n)


def check_signature(op: Operator) -> None:
    """Mutation: 2 required positional params (genome, rng); crossover: 3 (a, b, rng)."""
    need = 3 if op.kind == "crossover" else 2
    try:
        params = list(inspect.signature(op.fn).parameters.values())
    except (TypeError, ValueError) as e:
        raise PluginError(f"operator {op.genome_type}/{op.name}: not introspectable ({e})") from None
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    bad_kw = [p.name for p in params if p.kind == p.KEYWORD_ONLY and p.default is p.empty]
    star = any(p.kind == p.VAR_POSITIONAL for p in params)
    if bad_kw or len(required) > need or (len(positional) < need and not star):
        shape = "(a, b, rng)" if need == 3 else "(genome, rng)"
        raise PluginError(f"operator {op.genome_type}/{op.name} must be a function {shape}; "
                          f"got {op.fn.__name__}{inspect.signature(op.fn)}")
