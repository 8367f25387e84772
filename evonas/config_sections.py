"""The sections of a run's config: which key lives where, and the registered sections.

A config file (and ``config.json``) groups the keys of ``Config`` by section::

    search: {genome: tree, strategy: es, population: 10}
    train: {epochs: 3}
    strategy: {es: {lam: 8}}         # strategy.<name>: that strategy's constructor parameters
    genome: {tree: {channels: 16}}   # genome.<name>: that genome's Space fields
    backend: {ray: {address: "head:6379"}}  # backend.<name>: that backend's options

Each ``Config`` field names its section in its metadata (``section``); the three
dict fields are the registered sections of the chosen entry: ``strategy_args``
is ``strategy.<chosen strategy>``, ``space`` is ``genome.<chosen genome>``,
``backend_args`` is ``backend.<chosen backend>``. Flat keys (every config.json
written before sections, and users' flat files) stay accepted, also mixed with
sections; so does the old ``ray_address`` key, read as ``backend.ray.address``.

``canonical`` turns either form into one flat mapping: field -> value, plus a
key ``<section>.<name>`` per registered sub-section (a top-level ``strategy``
that is a string is the field, one that is a mapping is the section). ``Config.updated`` then applies the chosen entry's sub-section and
checks the others' keys against their registries without applying them: a
typo in a section for another strategy is still caught.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import ConfigError

SECTIONS = ("search", "train", "data", "final", "execution", "table", "output")
# section -> the field holding the chosen entry's parameters (the field named as the
# section holds the chosen entry's name)
REGISTERED = {"strategy": "strategy_args", "genome": "space", "backend": "backend_args"}
LEGACY = {"ray_address": ("backend.ray", "address")}  # a key before sections -> its sub-section and key
# the backends' ``open``/``placement`` arguments that are not options
BACKEND_POSITIONAL = ("self", "cls", "data", "cfg", "slots", "devices", "workers", "trials_per_device")

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
                if k in LEGACY:
                    _put_legacy(out, where, k, v)
                    continue
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
        elif key in LEGACY:
            _put_legacy(out, where, key, value)
        elif isinstance(value, Mapping):
            raise ConfigError(where, key, value, f"unknown section (sections: {', '.join(SECTIONS)}, "
                              f"{', '.join(s + '.<name>' for s in REGISTERED)})")
        else:
            raise ConfigError(where, key, value, f"unknown key (known: {', '.join(homes)})")
    return out


def _put_named(out: dict, where: str, key: str, params: Any) -> None:
    if not isinstance(params, Mapping):
        raise ConfigError(where, key, params, "a section must be a mapping of keys to values")
    if not all(isinstance(k, str) for k in params):
        raise ConfigError(where, key, dict(params), "keys must be strings")
    out[key] = {**out.get(key, {}), **params}


def _put_legacy(out: dict, where: str, key: str, value: Any) -> None:
    """An old flat key (``ray_address``): into its sub-section; '' (its old default) is no setting."""
    if value in ("", None):
        return
    named_key, param = LEGACY[key]
    _put_named(out, where, named_key, {param: value})


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
    the reserved ones; a genome's Space fields; a backend's ``open`` options);
    None when ``name`` is not registered (yet: a plug-in registers its entries
    only when loaded)."""
    found = defaults(section, name)
    return None if found is None else list(found)


_NO_DEFAULT = object()


def defaults(section: str, name: str) -> dict[str, Any] | None:
    """``parameters`` with each key's default (``_NO_DEFAULT`` when it has none)."""
    import dataclasses
    import inspect
    reg = _registry(section)
    if name not in reg:
        return None
    if section == "genome":
        space = reg.get(name).Space()
        return {f.name: getattr(space, f.name) for f in dataclasses.fields(space)}
    fn, skip = ((reg.get(name).__init__, RESERVED) if section == "strategy" else
                (reg.get(name).open, BACKEND_POSITIONAL))
    params = inspect.signature(fn).parameters.values()
    return {p.name: _NO_DEFAULT if p.default is inspect.Parameter.empty else p.default
            for p in params if p.name not in skip and p.name != "self"
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _registry(section: str):
    if section == "strategy":
        from . import evolve  # noqa: F401  (registers the built-in strategies)
        from .evolve.base import STRATEGIES
        return STRATEGIES
    if section == "backend":
        from .evaluate.backends import BACKENDS  # importing it registers the built-in backends
        return BACKENDS
    from .genome import GENOMES
    return GENOMES


WHAT = {"strategy": "parameter of strategy", "genome": "space field of genome", "backend": "option of backend"}
ARTICLE = {"strategy": "a", "genome": "a", "backend": "an"}


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
            what = WHAT[section]
            raise ConfigError(where, f"{section}.{name}.{key}", value,
                              f"not {ARTICLE[section]} {what} {name} (its keys: {', '.join(known) or 'none'})")


def flat_view(raw: Any) -> Any:
    """A stored config.json (sectioned or flat) as flat keys, never raising: for the
    readers of run directories (report, plots, export) and the unedited check,
    which compares what is there rather than validating it."""
    if not isinstance(raw, Mapping):
        return raw
    out: dict[str, Any] = {}
    legacy: dict[str, Any] = {}
    for key, value in raw.items():
        if key in SECTIONS and isinstance(value, Mapping):
            out.update({k: v for k, v in value.items() if k not in LEGACY})
            legacy.update({k: v for k, v in value.items() if k in LEGACY})
        elif key in LEGACY:
            legacy[key] = value
        elif key not in REGISTERED or not isinstance(value, Mapping):
            out.setdefault(key, value)
    for section, field in REGISTERED.items():
        subs = raw.get(section)
        if isinstance(subs, Mapping):
            chosen = subs.get(out.get(section))
            out[field] = {**out.get(field, {}), **chosen} if isinstance(chosen, Mapping) else out.get(field, {})
    for key, value in legacy.items():  # an old run directory's key, read as canonical reads it
        section, _, name = LEGACY[key][0].partition(".")
        if value not in ("", None) and out.get(section) == name:
            field = REGISTERED[section]
            out[field] = {LEGACY[key][1]: value, **out.get(field, {})}
    return out


def field_of(dotted: str) -> str:
    """``search.population`` -> ``population``; ``strategy.es.lam`` -> ``strategy_args``;
    ``backend.ray.address`` -> ``backend_args``."""
    head, _, rest = dotted.partition(".")
    return REGISTERED.get(head) or rest or head
