"""What can be chosen, read from the registries: ``python -m evonas.run --list``
and the choices that ``--help`` names.

Nothing here is a hand-kept list: a genome, strategy, operator, backend or
surrogate that registers itself (built-in or a ``--plugin``) is listed with its
defaults and a one-line doc. The doc is, in order: the object's ``summary``
attribute; for a registered subclass of another registered entry (a variant
such as ``aging-novel-best``) in the same module, its class docstring; otherwise its module's
docstring (one module per strategy or genome, whose first sentence says what it
is). Defaults: a strategy's constructor keywords, a genome's space, an
operator's kind and default weight.
"""
from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from typing import Any

WIDTH = 110  # one-line docs are cut here so the listing stays one line per entry


def registries() -> dict[str, Any]:
    """The registries by what they hold (importing the built-in entries)."""
    from . import evolve  # noqa: F401  (registers the built-in strategies)
    from .evaluate.backends import BACKENDS  # importing it registers the built-in backends
    from .evolve.base import STRATEGIES
    from .evolve.surrogate import _screens
    from .genome import GENOMES
    return {"genomes": GENOMES, "strategies": STRATEGIES, "backends": BACKENDS, "surrogates": _screens()}


def choices() -> dict[str, list[str]]:
    """Config key -> its registered names (what ``--help`` lists)."""
    from .operators import operators
    reg = registries()
    out = {"genome": reg["genomes"].names(), "strategy": reg["strategies"].names(),
           "backend": reg["backends"].names(), "surrogate": reg["surrogates"].names()}
    out["mutations"] = [f"{g}: {' '.join(operators(g).names())}" for g in reg["genomes"].names()]
    return out


def one_line(obj: Any, registry: Any = None) -> str:
    """The one-line doc of a registered object (see the module docstring)."""
    doc = getattr(obj, "summary", None)
    if not doc and inspect.isclass(obj) and registry is not None:
        others = [registry.get(n) for n in registry.names()]
        if any(o is not obj and inspect.isclass(o) and issubclass(obj, o) and o.__module__ == obj.__module__
               for o in others):
            doc = obj.__doc__
    if not doc:
        module = sys.modules.get(getattr(obj, "__module__", ""), None)
        doc = (module.__doc__ if module is not None else None) or getattr(obj, "__doc__", None)
    return _first_sentence(doc or "")


def _first_sentence(doc: str) -> str:
    para = " ".join(doc.strip().split("\n\n")[0].split())
    m = re.search(r"(?<=[.!?])\s+(?=[A-Z])", para)  # "Deb et al. 2002" is no sentence end
    text = para[:m.start()] if m else para
    text = text.replace("``", "")
    return text if len(text) <= WIDTH else text[:WIDTH - 3].rstrip() + "..."


def _keywords(fn: Any, skip: tuple = ("self", "variation")) -> str:
    params = inspect.signature(fn).parameters.values()
    kw = [f"{p.name}={p.default!r}" for p in params
          if p.name not in skip and p.default is not inspect.Parameter.empty]
    return ", ".join(kw) or "no parameters"


def listing() -> str:
    """The text of ``--list``."""
    from .operators import operators
    reg = registries()
    lines = ["genomes (--genome; space keys settable with --genome.NAME.KEY VALUE or --space KEY=VALUE):"]
    for name in reg["genomes"].names():
        cls = reg["genomes"].get(name)
        lines.append(f"  {name:<18} {one_line(cls, reg['genomes'])}")
        lines.append(f"  {'':<18} space: {_space(cls)}")
    lines.append("strategies (--strategy; defaults of their parameters, set with --strategy.NAME.KEY VALUE or "
                 "--strategy-arg KEY=VALUE; population/sample come from --population/--sample-size):")
    for name in reg["strategies"].names():
        cls = reg["strategies"].get(name)
        lines.append(f"  {name:<18} {one_line(cls, reg['strategies'])}")
        lines.append(f"  {'':<18} {_keywords(cls.__init__)}")
    lines.append("operators (--mutation NAME[:WEIGHT]; kind, default weight):")
    for g in reg["genomes"].names():
        lines.append(f"  {g}:")
        for name in operators(g).names():
            op = operators(g).get(name)
            lines.append(f"    {name:<20} {op.kind}, weight {op.weight:g}: {_first_sentence(op.fn.__doc__ or '')}")
    lines.append("backends (--backend; defaults of their options, set with --backend.NAME.KEY VALUE or "
                 "--backend-arg KEY=VALUE):")
    for name in reg["backends"].names():
        cls = reg["backends"].get(name)
        lines.append(f"  {name:<18} {one_line(cls, reg['backends'])}")
        lines.append(f"  {'':<18} {_keywords(cls.open, ('cls', 'data', 'cfg', 'slots'))}")
    from .config_sections import RESERVED
    from .evolve.surrogate import Surrogate
    own = _keywords(Surrogate.__init__, ("self", "screen_args", *RESERVED))
    lines.append(f"surrogates (--surrogate; pre-screen the children of --strategy; --surrogate-arg KEY=VALUE sets "
                 f"{own}, and screen_args={{...}} the parameters below):")
    for name in reg["surrogates"].names():
        cls = reg["surrogates"].get(name)
        lines.append(f"  {name:<18} {one_line(cls, reg['surrogates'])}")
        lines.append(f"  {'':<18} {_keywords(cls.__init__, ('self', 'genome_type'))}")
    return "\n".join(lines)


def _space(cls: Any) -> str:
    space = cls.Space()
    if dataclasses.is_dataclass(space):
        return ", ".join(f"{f.name}={getattr(space, f.name)!r}" for f in dataclasses.fields(space))
    return repr(space)
