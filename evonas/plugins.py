"""Plug-ins: user code that registers variation operators, genome types and, when
the caller passes their registries (``also``; the CLI passes every registry of
``evonas.catalog``), strategies, backends and surrogates.

``load_plugin(spec)`` accepts, in this order:

* a path ending in ``.py`` (``path/to/my_ops.py``), executed as a fresh module;
* the name of an entry point in group ``evonas.plugins`` (installed packages);
* an importable module name (``my_package.my_ops``).

A plug-in must register at least one entry: an operator with
``@evonas.register_mutation(genome_type, name=...)``, a crossover, a genome type or
an entry of an ``also`` registry.
Each operator it registers is checked: a mutation takes exactly two required
positional parameters ``(genome, rng)``, a crossover three ``(a, b, rng)``; any
further parameter needs a default. Every failure raises ``PluginError`` naming the
plug-in; a half-loaded plug-in's operators are unregistered again. Loading the
same plug-in twice is a no-op (returns the same names).

``call(fn, *args, what=...)`` runs plug-in code (loading, every operator call)
under a time limit (``CALL_LIMIT_S``; the CLI sets it to the search's
``--time-budget``) and turns anything it raises into ``PluginError``, including
``SystemExit`` and ``KeyboardInterrupt``: a plug-in cannot end the run as if it
had finished, only a real stop signal (``evonas.stops``) passes through. The limit
is a SIGALRM timer, so it applies in the main thread (where the search runs) and
interrupts Python code, not a call blocked inside C.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Mapping

from . import stops
from .errors import PluginError
from .genome.base import GENOMES
from .operators import _REGISTRIES, Operator

GROUP = "evonas.plugins"
_LOADED: dict[str, list[str]] = {}
CALL_LIMIT_S = 600.0  # seconds one plug-in call may take (0: no limit)


class _TimeUp(BaseException):
    """Raised into a plug-in at its time limit; BaseException so its own
    ``except Exception`` cannot swallow it."""


@contextmanager
def time_limit(seconds: float):
    """Raise ``_TimeUp`` in the main thread after ``seconds`` (no-op elsewhere or at 0)."""
    if not seconds or not hasattr(signal, "setitimer") or \
            threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise _TimeUp()
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def call(fn: Callable, *args: Any, what: str) -> Any:
    """``fn(*args)`` as plug-in code: PluginError("<what> raised ...") for anything
    it raises (SystemExit and a plain KeyboardInterrupt included) or when it runs
    past ``CALL_LIMIT_S``."""
    try:
        with time_limit(CALL_LIMIT_S):
            return fn(*args)
    except PluginError:
        raise
    except stops.Stop:
        raise  # a real SIGINT/SIGTERM while the plug-in ran: stop the run
    except _TimeUp:
        raise PluginError(f"{what} did not return within {CALL_LIMIT_S:g} s (the plug-in time limit, "
                          "the search's --time-budget)") from None
    except KeyboardInterrupt as e:
        if not stops.installed():  # no stop handler: this may be the user's own Ctrl-C
            raise
        raise PluginError(f"{what} raised KeyboardInterrupt{_msg(e)}") from None
    except (Exception, SystemExit, GeneratorExit) as e:
        raise PluginError(f"{what} raised {type(e).__name__}{_msg(e)}") from e


def _msg(e: BaseException) -> str:
    return f": {e}" if str(e) else ""


def _registries(also: Mapping[str, Any]) -> dict[str, Any]:
    own = {"genome": GENOMES, **_REGISTRIES}
    mine = {id(r) for r in own.values()}  # ``also`` may hold GENOMES again: count it once
    return {**{f"registry:{k}": r for k, r in also.items() if id(r) not in mine}, **own}


def _snapshot(regs: Mapping[str, Any]) -> set[tuple[str, str]]:
    return {(t, n) for t, reg in regs.items() for n in reg}


def load_plugin(spec: str, also: Mapping[str, Any] | None = None) -> list[str]:
    """Load plug-in ``spec``; return the new registrations as ``type/name`` strings.
    ``also``: more registries (kind -> Registry, e.g. strategies) whose new entries
    count as the plug-in's (and are rolled back when it fails)."""
    regs = _registries(also or {})
    if not isinstance(spec, str) or not spec:
        raise PluginError(f"plug-in {spec!r}: expected a module name, a .py path or an entry point name")
    key = str(Path(spec).resolve()) if spec.endswith(".py") else spec
    if key in _LOADED:
        return _LOADED[key]
    before = _snapshot(regs)
    try:  # ImportError, SyntaxError, RegistryError (duplicate name), SystemExit, a hang...
        call(_import, spec, what=f"plug-in {spec!r} (while loading)")
    except BaseException:
        _rollback(regs, before)
        raise
    new = sorted(_snapshot(regs) - before)
    if not new:
        raise PluginError(f"plug-in {spec!r} registered nothing (use @evonas.register_mutation"
                          f"(genome_type, name=...), or a strategy/genome/backend registry, at module level)")
    for t, n in new:
        if t in _REGISTRIES:
            try:
                check_signature(_REGISTRIES[t].get(n))
            except PluginError as e:
                _rollback(regs, before)
                raise PluginError(f"plug-in {spec!r}: {e}") from None
    _LOADED[key] = [f"{t.removeprefix('registry:')}/{n}" for t, n in new]
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


def _rollback(regs: Mapping[str, Any], before: set[tuple[str, str]]) -> None:
    for t, n in _snapshot(regs) - before:
        regs[t].unregister(n)


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
