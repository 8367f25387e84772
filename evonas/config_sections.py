"""The sections of a run's config: which key lives where, and the registered sections.

A config file (and ``config.json``) groups the keys of ``Config`` by section::

    search: {genome: tree, strategy: es, population: 10}
    train: {epochs: 3}
    strategy: {es: {lam: 8}}         # strategy.<name>: that strategy's constructor parameters
    genome: {tree: {channels: 16}}   # genome.<name>: that genome's Space fields

Each ``Config`` field names its section in its metadata (``section``); the two
dict fields are the registered sections of the chosen entry: ``strategy_args``
is ``strategy.<chosen strategy>``, ``space`` is ``genome.<chosen genome>``.
Flat keys (every config.json written before sections, and users' flat files)
stay accepted, also mixed with sections.

``canonical`` turns either form into one flat mapping: field -> value, plus a
key ``strategy.<name>`` / ``genome.<name>`` per registered sub-section (a top-level
``strategy`` that is a string is the field, one that is a mapping is the
section). ``Config.updated`` then applies the chosen entry's sub-section and
checks the others' keys against their registries without applying them: a
typo in a section for another strategy is still caught.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import ConfigError

SECTIONS = ("search", "train", "data", "final", "execution", "table", "output")
REGISTERED = {"strategy": "strategy_args", "genome": "space"}  # section -> the field holding the chosen one's

# strategy constructor keywords set by their own flags (or by the engine), never by
# --strategy-arg / strategy.<name>: flag that sets it ('' = none)
RESERVED = {"variation": "", "population": "--population", "sample": "--sample-size",
            "selection": "--selection", "base": "--strategy", "base_args": "--strategy-arg",
            "screen": "--surrogate"}


def read_file(path: str | Path, json_only: bool = False) -> dict[str, Any]:
    """Read a YAML (.yaml/.yml) or JSON config file into a dict. YAML uses
    ``safe_load`` (no object construction, no code execution)."""
    path = Path(path)
    try:
        text = path.read_text()
    except (FileNotFoundError, IsADirectoryError, PermissionError, UnicodeDecodeError) as e:
        raise ConfigError(str(path), "file", str(path), f"cannot read ({type(e).__name__})") from None
    try:
        if not json_only and path.suffix.lower() in (".yaml", ".yml"):
            import yaml
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as e:  # json/yaml parse errors of many classes
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(str(path), "file", path.name, f"not valid {path.suffix or 'JSON'}: {msg}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "file", type(data).__name__, "must contain a mapping of keys to values")
    return data


def canonical(data: Mapping[str, Any], where: str, homes: Mapping[str, str]) -> dict[str, Any]:
    """``data`` (flat, sectioned or mixed) -> field -> value plus ``strategy.<name>`` /
    ``genome.<name>`` -> params. ``homes``: field -> its section. A key given twice
    (flat and in its section) must agree."""
    if not isinstance(data, Mapping):
        raise ConfigError(where, "config", type(data).__name__, "must be a mapping of keys to values")
    out: dict[str, Any] = {}

    def put(key: str, value: Any, named: str) -> None:
        if key in out and out[key] != value:
            raise ConfigError(where, named, value, f"given twice (also as {out[key]!r})")
        out[key] = value

    for key, value in data.items():
        key = str(key)
        head, dot, name = key.partition(".")
        if key in SECTIONS:
            if not isinstance(value, Mapping):
                raise ConfigError(where, key, value, "a section must be a mapping of keys to values")
            for k, v in value.items():
                k = str(k)
                home = homes.get(k)
                if home is None:
                    held = ", ".join(f for f, s in homes.items() if s == key)
                    raise ConfigError(where, f"{key}.{k}", v, f"unknown key (section {key} holds: {held})")
                if home != key:
                    place = f"{home}.<name>" if home in REGISTERED else f"{home}.{k}"
                    raise ConfigError(where, f"{key}.{k}", v, f"not a key of section {key}: it belongs in {place}")
                put(k, v, f"{key}.{k}")
        elif key in REGISTERED and isinstance(value, Mapping):
            for n, params in value.items():
                _put_named(out, where, f"{key}.{n}", params)
        elif dot and head in REGISTERED and name:
            _put_named(out, where, key, value)
        elif key in homes:
            put(key, value, key)
        elif isinstance(value, Mapping):
            raise ConfigError(where, key, value, f"unknown section (sections: {', '.join(SECTIONS)}, "
                              "strategy.<name>, genome.<name>)")
        else:
            raise ConfigError(where, key, value, f"unknown key (known: {', '.join(homes)})")
    return out


def _put_named(out: dict, where: str, key: str, params: Any) -> None:
    if not isinstance(params, Mapping):
        raise ConfigError(where, key, params, "a section must be a mapping of keys to values")
    if not all(isinstance(k, str) for k in params):
        raise ConfigError(where, key, dict(params), "keys must be strings")
    out[key] = {**out.get(key, {}), **params}


def merge(*sources: Mapping[str, Any]) -> dict[str, Any]:
    """Canonical mappings, later ones winning; dict values merge key by key (as
    ``Config.updated`` merges them into a config)."""
    out: dict[str, Any] = {}
    for src in sources:
        for k, v in src.items():
            out[k] = {**out[k], **v} if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def named(data: Mapping[str, Any], section: str) -> dict[str, dict]:
    """The ``section.<name>`` entries of a canonical mapping: name -> params."""
    return {k.partition(".")[2]: v for k, v in data.items() if k.partition(".")[0] == section and "." in k}


def parameters(section: str, name: str) -> list[str] | None:
    """The keys ``section.<name>`` takes (a strategy's constructor keywords minus
    the reserved ones; a genome's Space fields); None when ``name`` is not
    registered (yet: a plug-in registers its entries only when loaded)."""
    import dataclasses
    import inspect
    reg = _registry(section)
    if name not in reg:
        return None
    if section == "strategy":
        params = inspect.signature(reg.get(name).__init__).parameters
        return [p for p in params if p != "self" and p not in RESERVED]
    return [f.name for f in dataclasses.fields(reg.get(name).Space)]


def _registry(section: str):
    if section == "strategy":
        from . import evolve  # noqa: F401  (registers the built-in strategies)
        from .evolve.base import STRATEGIES
        return STRATEGIES
    from .genome import GENOMES
    return GENOMES


def check_other(section: str, name: str, params: Mapping[str, Any], where: str, plugins: Iterable[str]) -> None:
    """The sub-section of a strategy/genome that is not the chosen one: its keys must
    be that entry's, its values are not applied (nor checked: the entry is not built)."""
    known = parameters(section, name)
    if known is None:
        if tuple(plugins):
            return  # maybe a plug-in's, not loaded yet: its keys are checked if it is ever chosen
        raise ConfigError(where, f"{section}.{name}", dict(params),
                          f"unknown {section} (known: {', '.join(_registry(section).names())})")
    for key, value in params.items():
        if key not in known:
            what = "parameter of strategy" if section == "strategy" else "space field of genome"
            raise ConfigError(where, f"{section}.{name}.{key}", value,
                              f"not a {what} {name} (its keys: {', '.join(known) or 'none'})")


def flat_view(raw: Any) -> Any:
    """A stored config.json (sectioned or flat) as flat keys, never raising: for the
    readers of run directories (report, plots, export) and the unedited check,
    which compares what is there rather than validating it."""
    if not isinstance(raw, Mapping):
        return raw
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in SECTIONS and isinstance(value, Mapping):
            out.update(value)
        elif key not in REGISTERED or not isinstance(value, Mapping):
            out.setdefault(key, value)
    for section, field in REGISTERED.items():
        subs = raw.get(section)
        if isinstance(subs, Mapping):
            chosen = subs.get(out.get(section))
            out[field] = {**out.get(field, {}), **chosen} if isinstance(chosen, Mapping) else out.get(field, {})
    return out


def field_of(dotted: str) -> str:
    """``search.population`` -> ``population``; ``strategy.es.lam`` -> ``strategy_args``."""
    head, _, rest = dotted.partition(".")
    return REGISTERED.get(head) or rest or head
