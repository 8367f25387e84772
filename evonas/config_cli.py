"""The command line of a config: one flag per ``Config`` field, grouped by section
in ``--help``, and the dotted flags of the registered sections.

``--strategy.NAME.KEY VALUE`` sets a parameter of strategy NAME (``strategy.NAME``
in a config file), ``--genome.NAME.KEY VALUE`` a Space field of genome NAME,
``--backend.NAME.KEY VALUE`` an option of backend NAME; one flag per parameter of
every registered entry, read from the registries when the parser is built. The
CLI loads the ``--plugin`` modules named on the command line first
(``run.preload_plugins``), so their entries have dotted flags too; a plug-in named
only in a config file has none (set its parameters in the file, or with
``--strategy-arg`` / ``--space`` / ``--backend-arg``). A dotted flag for an entry
that is not the run's exits 2 (``Config.updated(others="refuse")``).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any, Mapping

from .config import Config, _jsonable
from .config_sections import REGISTERED, parameters

# section -> (argparse group title, description)
GROUPS = {
    "search": ("search", "genome, strategy, population, selection, mutations, seeds, budgets (file section "
               "'search')"),
    "strategy": ("strategy.<name>", "parameters of the chosen --strategy (file: strategy: {NAME: {...}}); "
                 "also the --strategy.NAME.KEY flags below"),
    "genome": ("genome.<name>", "space fields of the chosen --genome (file: genome: {NAME: {...}}); "
               "also the --genome.NAME.KEY flags below"),
    "backend": ("backend.<name>", "options of the chosen --backend (file: backend: {NAME: {...}}); "
                "also the --backend.NAME.KEY flags below"),
    "train": ("train", "training of each evaluated network (file section 'train')"),
    "data": ("data", "the data set (file section 'data')"),
    "final": ("final", "the final stage: retraining the best from scratch (file section 'final')"),
    "execution": ("execution", "where trials run (file section 'execution')"),
    "table": ("table", "benchmark-table lookups instead of training (file section 'table')"),
    "output": ("output", "the run directory (file section 'output')"),
}


def add_arguments(parser: argparse.ArgumentParser, registered: Mapping[str, Any] | None = None,
                  only: tuple | None = None, defaults: Config | None = None) -> argparse.ArgumentParser:
    """Add one flag per Config field (``--sample-size`` for ``sample_size``; list
    fields are repeatable). Every flag defaults to None, so ``overrides_from_args``
    sees only the flags actually given and the config file is not overridden by
    defaults; the help text states each real default. ``registered``: field ->
    the names its registry holds (``catalog.choices()``), named in its help.
    ``only``: these fields alone (``evonas.train``'s flags); ``defaults``: the
    defaults the help states (another command's, e.g. more epochs)."""
    defaults = defaults or Config()
    registered = registered or {}
    groups: dict[str, Any] = {}
    for f in dataclasses.fields(Config):
        if only is not None and f.name not in only:
            continue
        meta = f.metadata
        flag = meta.get("flag") or "--" + f.name.replace("_", "-")
        default = _jsonable(getattr(defaults, f.name))
        shown = "none" if default in ((), [], {}, "") else default
        names = registered.get(f.name)
        sep = "; " if names and any(":" in n for n in names) else ", "
        known = f"; registered: {sep.join(names)} (plug-ins may add more; see --list)" if names else ""
        metavar = meta.get("metavar") or ("KEY=VALUE" if f.type == "dict" else None)
        kw: dict[str, Any] = {"dest": f.name, "default": None, "metavar": metavar,
                              "help": f"{meta['help']}{known} (default: {shown})"}
        if meta.get("choices"):
            kw.update(choices=meta["choices"], metavar=None)
        if f.type in ("tuple", "dict"):
            kw["action"] = "append"
            if f.type == "dict":
                kw["type"] = _space_item
        else:
            kw["type"] = {"int": int, "float": float, "str": str}[f.type]
        section = meta["section"]
        if section not in groups:
            groups[section] = parser.add_argument_group(*GROUPS.get(section, (section,)))
        groups[section].add_argument(flag, **kw)
    return parser


def overrides_from_args(ns: argparse.Namespace) -> dict[str, Any]:
    """The Config fields given on the command line (flags left at None are absent);
    repeated ``--space`` (``--strategy-arg``) items are merged into one dict."""
    names = {f.name for f in dataclasses.fields(Config)}
    out: dict[str, Any] = {k: v for k, v in vars(ns).items() if k in names and v is not None}
    for dest, v in vars(ns).items():
        section, _, rest = dest.partition(".")
        if section in REGISTERED and rest and v is not None:  # --strategy.NAME.KEY -> strategy.NAME: {KEY: v}
            name, _, key = rest.rpartition(".")
            out.setdefault(f"{section}.{name}", {})[key] = v
    for f in dataclasses.fields(Config):
        if f.type == "dict" and f.name in out:
            merged: dict[str, Any] = {}
            for item in out[f.name]:
                merged.update(item)
            out[f.name] = merged
    return out


def _space_item(text: str) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` (VALUE as JSON, else as a string) or a JSON object."""
    if text.lstrip().startswith("{"):
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise argparse.ArgumentTypeError(f"{text!r}: not a JSON object ({e})") from None
        if isinstance(d, dict):
            return d
    key, eq, raw = text.partition("=")
    if not eq or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE or a JSON object")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # a bare word such as a op name
    return {key.strip(): value}


def add_dotted_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--strategy.NAME.KEY`` / ``--genome.NAME.KEY`` / ``--backend.NAME.KEY`` for
    every registered strategy, genome and backend (VALUE parsed as JSON, else a
    string), one help group per entry, each flag's help stating the entry's default."""
    from .config_sections import _NO_DEFAULT, WHAT, _registry, defaults
    for section, field in REGISTERED.items():
        for name in _registry(section).names():
            found = defaults(section, name) or {}
            if not found:
                continue
            flag = next(f for f in dataclasses.fields(Config) if f.name == field).metadata["flag"] or f"--{field}"
            group = parser.add_argument_group(f"{section}.{name}", f"{WHAT[section].replace(' of ', 's of ')} {name}; only with "
                                              f"--{section} {name} (also {flag} KEY=VALUE)")
            for key, default in found.items():
                shown = "" if default is _NO_DEFAULT else f" (default: {_shown(_jsonable(default))})"
                group.add_argument(f"--{section}.{name}.{key}", dest=f"{section}.{name}.{key}", default=None,
                                   type=_json_value, metavar="VALUE", help=f"{section}.{name}.{key}{shown}")
    return parser


def _shown(v: Any) -> str:
    try:
        return json.dumps(v)  # what the flag takes (null, not None)
    except (TypeError, ValueError):
        return repr(v)


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a bare word, such as an op name


__all__ = ["add_arguments", "add_dotted_arguments", "overrides_from_args", "GROUPS"]
