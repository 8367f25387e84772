"""One typed run configuration: every setting of a search, its default, its check.

Precedence (lowest to highest): the defaults below < a config file (YAML or
JSON, same keys as the fields) < command-line flags. ``Config.from_sources``
applies it; unknown keys, wrong types and bad values raise ``ConfigError``
naming the key and the value (one line; the CLI maps it to exit code 2).

The default budget makes ``python -m evonas.run --genome tree --population 100``
run offline on scikit-learn's bundled 8x8 digits and stop on a 2-core CPU
laptop in minutes: 300 evaluations of 3 epochs each, capped at 600 s of wall time
(3, not 1: on digits one epoch is ~20 SGD steps, and a 1-epoch fitness ranks networks
by seed luck; benchmarks/RESULTS.md, "Default run").

Types: ``int`` fields take integers (not bools), ``float`` fields take numbers
(and numeric strings such as ``1e-3``, which YAML 1.1 reads as strings), list
fields take lists of strings (stored as tuples, so a Config is immutable),
``space`` takes a JSON object. Zero means "no limit" for ``time_budget``,
``max_params``, ``max_macs`` and ``trial_timeout``; ``workers = 0`` means auto.

Resume: ``diff`` lists the keys two configs disagree on. ``RESUMABLE`` are the
keys a resumed run may change (budget, hardware, data path); any other
difference makes ``--resume`` refuse, because the continued search would no
longer be the same search.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError
from .evaluate.base import INHERIT
from .evaluate.train import MEMORY_FORMATS, OPTIMIZERS, PRECISIONS
from .evolve.dedup import DEDUP

BACKENDS = ("local", "ray")
RESULT_ORDERS = ("completion", "submission")

# Keys a resumed run may change: more budget, other hardware, moved files. precision
# and memory_format go with the hardware: under "auto", moving from CPU to a GPU
# changes them anyway.
RESUMABLE = frozenset({"evaluations", "max_duplicates", "time_budget", "final_top", "final_epochs", "devices", "workers",
                       "trials_per_device", "backend", "ray_address", "trial_timeout",
                       "data_root", "precision", "memory_format"})

_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_MUTATION = re.compile(r"^[A-Za-z_][\w.-]*(:[0-9.eE+-]+)?$")


def _f(default: Any, help: str, flag: str | None = None, choices: tuple | None = None,
       metavar: str | None = None):
    """A dataclass field with CLI metadata (``flag`` defaults to --field-name)."""
    meta = {"help": help, "flag": flag, "choices": choices, "metavar": metavar}
    if isinstance(default, (dict, list, tuple)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Config:
    """Every setting of a run. Field docs are the ``--help`` texts."""
    # search
    genome: str = _f("tree", "genome type")
    population: int = _f(100, "population size P (>= 2)")
    sample_size: int = _f(0, "tournament sample size S (1..population; 0 = ceil(population / 4): "
                          "25 for P=100 as Real et al., 3 for P=10 as the NAS-Bench-201 protocol)")
    strategy: str = _f("aging", "search strategy")
    surrogate: str = _f("", "pre-screen the children of --strategy with a surrogate (issue 17; naswot: real "
                        "training only); '' = off")
    evaluations: int = _f(300, "budget: number of TRAINED networks (>= 1; failed trials count, duplicates "
                          "of an earlier network do not: see --max-duplicates)")
    max_duplicates: int = _f(0, "budget: duplicate children (a network already evaluated, its result "
                             "reused) allowed apart from --evaluations, so a search stuck on duplicates "
                             "still ends (0 = 10 x evaluations + 100)")
    time_budget: float = _f(600.0, "budget: wall-clock seconds, whichever budget ends first (0 = no limit)")
    mutations: tuple = _f((), "mutation operator to use, NAME or NAME:WEIGHT, repeatable "
                          "(empty = all registered, default weights)", flag="--mutation", metavar="NAME[:W]")
    strategy_args: dict = _f({}, "a parameter of --strategy, KEY=VALUE (VALUE parsed as JSON) or a JSON "
                             "object, repeatable (e.g. es: lam=8; generational: p_cross=0.5; aging-novel: "
                             "greedy=0.5; --list shows every strategy's parameters and defaults; population, "
                             "sample and selection come from their own flags)", flag="--strategy-arg",
                             metavar="KEY=VALUE")
    result_order: str = _f("submission", "order in which finished trials enter the population: "
                           "submission (by id: the same lineage for a seed with any number of workers, "
                           "on CPU; a worker may wait for an older trial, ~5-10%% fewer trials/s) or "
                           "completion (fully asynchronous, as Real et al.; lineage depends on timing)",
                           choices=RESULT_ORDERS)
    selection: str = _f("fitness", "what tournaments rank by: the raw fitness, or 'matched', the fitness minus "
                        "the population's trend with lineage_epochs (compares architectures at equal "
                        "training under weight inheritance; the same as fitness without inheritance; "
                        "strategies that take it: aging). The final stage ranks its top K the same way",
                        choices=("fitness", "matched"))
    dedup: str = _f("reuse", "isomorphic duplicates: reuse the earlier fitness, resample another child, "
                    "or off (train them again)", choices=DEDUP)
    seed: int = _f(0, "master seed of the search (>= 0)")
    seed_genomes: tuple = _f((), "genome JSON file (genomes/ schema) to start the population from, "
                             "repeatable", flag="--seed-genome", metavar="FILE")
    space: dict = _f({}, "genome space override KEY=VALUE (VALUE parsed as JSON) or a JSON object, "
                     "repeatable", metavar="KEY=VALUE")
    plugins: tuple = _f((), "plug-in module or .py file to import (registers operators/genomes), "
                        "repeatable", flag="--plugin", metavar="MODULE")
    # data and training
    dataset: str = _f("digits", "dataset: digits (offline, bundled), mnist, cifar10, ..., npz:PATH, "
                      "module:function")
    data_root: str = _f("data", "directory of downloaded datasets")
    val_fraction: float = _f(0.2, "fraction of the training split held out for fitness (0 < f < 1)")
    epochs: int = _f(3, "training epochs per evaluation (>= 1)")
    batch_size: int = _f(64, "training batch size (>= 1)")
    lr: float = _f(0.05, "learning rate (> 0)")
    optimizer: str = _f("sgd", "optimizer", choices=OPTIMIZERS)
    inherit: str = _f("none", "weight inheritance from the parent (none: every child trains from scratch, "
                      "the default since benchmarks/search_real.py, where exact inheritance lost; exact/shape: "
                      "start from the parent's trained weights, see --selection matched)", choices=INHERIT)
    precision: str = _f("auto", "training arithmetic: bf16 autocast or fp32 (auto = bf16 on CUDA, "
                        "fp32 on CPU)", choices=PRECISIONS)
    memory_format: str = _f("auto", "activation/weight layout (auto = channels_last, faster on CPU "
                            "too: benchmarks/memory_format.py)", choices=MEMORY_FORMATS)
    max_params: int = _f(5_000_000, "children with more parameters fail without training (0 = no limit)")
    max_macs: int = _f(1_000_000_000, "children with more multiply-accumulates per image fail "
                       "without training (0 = no limit)")
    trial_timeout: float = _f(600.0, "seconds before a trial is killed and recorded failed (0 = no limit)")
    # final stage (real training only)
    final_top: int = _f(3, "after the search, retrain the K best distinct networks from scratch, choose "
                        "one by validation accuracy and report its test accuracy in final.csv (0 = off)",
                        metavar="K")
    final_epochs: int = _f(0, "epochs of each final retraining (0 = auto: as many as the most trained of "
                           "the K carries in its lineage_epochs, so the final validation accuracy is "
                           "comparable with the search fitness; at most 100)", metavar="E")
    # execution
    devices: str = _f("auto", "devices: auto, cpu, cuda, or a list like cuda:0,cuda:1")
    workers: int = _f(0, "worker processes (0 = auto: CPU cores on CPU, devices x trials-per-device on GPU)")
    trials_per_device: int = _f(1, "concurrent trials per GPU (>= 1)")
    backend: str = _f("local", "execution backend", choices=BACKENDS)
    ray_address: str = _f("", "Ray cluster address ('' = start a local Ray)")
    # table evaluator (benchmark lookups instead of training)
    benchmark_table: str = _f("", "CSV lookup table (e.g. NAS-Bench-201); '' = train for real")
    fitness_column: str = _f("c10_val_12", "table column used as fitness")
    report_column: str = _f("", "table column reported in the lineage, never used as fitness ('' = none)")
    # output
    run_dir: str = _f("", "run directory ('' = runs/<name>)")
    name: str = _f("", "run name ('' = <genome>-<strategy>-s<seed>-<UTC time>)")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            # frozen: normalise in place (int -> float, list -> tuple) before checking
            object.__setattr__(self, f.name, _coerce(f, getattr(self, f.name), "config"))
            _check_type(f, getattr(self, f.name))
        _check_values(self)

    # --- construction ------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "config") -> "Config":
        """Build from a mapping with a subset of the field names (others default)."""
        return cls().updated(d, where)

    @classmethod
    def from_sources(cls, file: str | Path | None = None,
                     overrides: Mapping[str, Any] | None = None, where: str = "flags") -> "Config":
        """Defaults < ``file`` (YAML/JSON) < ``overrides`` (e.g. the given CLI flags;
        ``where`` names them in errors).
        ``space`` overrides merge key by key into the file's ``space``; list
        overrides replace the file's list."""
        cfg = cls.from_dict(read_file(file), str(file)) if file else cls()
        return cfg.updated(overrides or {}, where)

    def updated(self, changes: Mapping[str, Any], where: str = "config") -> "Config":
        """A copy with ``changes`` applied (keys checked, values coerced and validated)."""
        if not isinstance(changes, Mapping):
            raise ConfigError(where, "config", type(changes).__name__, "must be a mapping of keys to values")
        names = {f.name: f for f in dataclasses.fields(self)}
        kw = {}
        for key, value in changes.items():
            if key not in names:
                raise ConfigError(where, str(key), value, f"unknown key (known: {', '.join(names)})")
            value = _coerce(names[key], value, where)
            if names[key].type == "dict":  # space, strategy_args: merged key by key
                value = {**getattr(self, key), **value}
            kw[key] = value
        try:
            return dataclasses.replace(self, **kw)
        except ConfigError as e:
            raise ConfigError(where, e.field, e.value, e.why) from None

    def resolved(self, now: str) -> "Config":
        """Fill the automatic values: ``name`` and ``run_dir`` when empty, and
        ``sample_size`` when 0. ``now`` is a UTC timestamp such as ``20240101-120000``
        (passed in so this stays deterministic). The run stores the resolved config."""
        name = self.name or f"{self.genome}-{self.strategy}-s{self.seed}-{now}"
        return dataclasses.replace(self, name=name, run_dir=self.run_dir or str(Path("runs") / name),
                                   sample_size=self.sample_size or -(-self.population // 4))

    # --- output --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples become lists); ``from_dict(to_dict())`` round-trips."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def dump(self, path: str | Path) -> None:
        """Write ``to_dict()`` as JSON atomically (tmp file, fsync, rename)."""
        from .io import atomic_write_text
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Config":
        """Read a ``config.json`` written by ``dump`` (JSON only, validated)."""
        return cls.from_dict(read_file(path, json_only=True), str(path))

    def diff(self, other: "Config") -> dict[str, tuple[Any, Any]]:
        """``{key: (self value, other value)}`` for every key that differs."""
        a, b = self.to_dict(), other.to_dict()
        return {k: (a[k], b[k]) for k in a if a[k] != b[k]}

    def mutation_weights(self) -> dict[str, float | None]:
        """``mutations`` parsed: name -> weight (None = the operator's default)."""
        out: dict[str, float | None] = {}
        for item in self.mutations:
            name, _, w = item.partition(":")
            out[name] = float(w) if w else None
        return out


# --- file reading -------------------------------------------------------------------------
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


# --- types and values ---------------------------------------------------------------------
def _coerce(f: dataclasses.Field, value: Any, where: str) -> Any:
    """Convert file/flag values to the field's stored type or raise ConfigError."""
    kind = f.type
    if kind == "float" and isinstance(value, str) and _FLOAT.match(value.strip()):
        return float(value)
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind == "tuple":
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(where, f.name, value, "must be a list of strings")
    if kind == "dict" and not isinstance(value, dict):
        raise ConfigError(where, f.name, value, "must be a mapping (JSON object)")
    return value


def _check_type(f: dataclasses.Field, v: Any) -> None:
    ok = {"int": isinstance(v, int) and not isinstance(v, bool),
          "float": isinstance(v, float),
          "str": isinstance(v, str),
          "tuple": isinstance(v, tuple) and all(isinstance(x, str) for x in v),
          "dict": isinstance(v, dict) and all(isinstance(k, str) for k in v)}[f.type]
    if not ok:
        want = {"int": "an integer", "float": "a number", "str": "a string",
                "tuple": "a list of strings", "dict": "a mapping with string keys"}[f.type]
        raise ConfigError("config", f.name, v, f"must be {want}")


def _check_values(c: Config) -> None:
    def need(ok: bool, key: str, why: str) -> None:
        if not ok:
            raise ConfigError("config", key, getattr(c, key), why)
    for f in dataclasses.fields(c):
        choices = f.metadata.get("choices")
        if choices:
            need(getattr(c, f.name) in choices, f.name, f"must be one of {', '.join(choices)}")
    need(bool(c.genome), "genome", "must name a genome type")
    need(bool(c.strategy), "strategy", "must name a search strategy")
    need(c.population >= 2, "population", "must be >= 2")
    need(0 <= c.sample_size <= c.population, "sample_size",
         f"must be in 1..population ({c.population}), or 0 for ceil(population / 4)")
    need(c.evaluations >= 1, "evaluations", "must be >= 1")
    need(c.max_duplicates >= 0, "max_duplicates", "must be >= 0 (0 = 10 x evaluations + 100)")
    need(c.time_budget >= 0, "time_budget", "must be >= 0 seconds (0 = no limit)")
    need(c.seed >= 0, "seed", "must be >= 0")
    need(0 < c.val_fraction < 1, "val_fraction", "must be strictly between 0 and 1")
    need(c.epochs >= 1, "epochs", "must be >= 1")
    need(c.batch_size >= 1, "batch_size", "must be >= 1")
    need(c.lr > 0, "lr", "must be > 0")
    need(c.max_params >= 0, "max_params", "must be >= 0 (0 = no limit)")
    need(c.max_macs >= 0, "max_macs", "must be >= 0 (0 = no limit)")
    need(c.trial_timeout >= 0, "trial_timeout", "must be >= 0 seconds (0 = no limit)")
    need(c.final_top >= 0, "final_top", "must be >= 0 (0 = no final stage)")
    need(c.final_epochs >= 0, "final_epochs", "must be >= 0 (0 = auto)")
    need(c.workers >= 0, "workers", "must be >= 0 (0 = auto)")
    need(c.trials_per_device >= 1, "trials_per_device", "must be >= 1")
    need(bool(c.dataset), "dataset", "must not be empty")
    need(bool(c.fitness_column), "fitness_column", "must not be empty")
    need("/" not in c.name and "\\" not in c.name, "name", "must not contain path separators")
    for item in c.mutations:
        name, _, w = item.partition(":")
        good = bool(_MUTATION.match(item)) and (not w or (_FLOAT.match(w) and float(w) > 0))
        if not good:
            raise ConfigError("config", "mutations", item, "must be NAME or NAME:WEIGHT with WEIGHT > 0")


def check_names(c: Config) -> None:
    """Check ``genome``, ``strategy`` and ``mutations`` against the registries. Call
    it after the plug-ins are imported (they may register genomes and operators)."""
    from . import evolve  # noqa: F401  (its __init__ registers the built-in strategies)
    from .evolve.base import STRATEGIES
    from .genome import GENOMES
    from .operators import operators
    if c.strategy not in STRATEGIES:
        raise ConfigError("config", "strategy", c.strategy,
                          f"unknown strategy (known: {', '.join(STRATEGIES.names())})")
    if c.surrogate:
        from .evolve.surrogate import _screens
        if c.surrogate not in _screens():
            raise ConfigError("config", "surrogate", c.surrogate,
                              f"unknown surrogate (known: {', '.join(_screens().names())})")
        if c.strategy == "surrogate" or STRATEGIES.get(c.strategy).pareto:
            raise ConfigError("config", "surrogate", c.surrogate,
                              f"cannot wrap strategy {c.strategy} (needs a one-objective strategy)")
        if c.surrogate == "naswot" and c.benchmark_table:
            raise ConfigError("config", "surrogate", c.surrogate, "needs real training (not --benchmark-table)")
    if c.genome not in GENOMES:
        raise ConfigError("config", "genome", c.genome,
                          f"unknown genome type (known: {', '.join(GENOMES.names())})")
    known = operators(c.genome)
    for name in c.mutation_weights():
        if name not in known:
            raise ConfigError("config", "mutations", name,
                              f"unknown {c.genome} operator (known: {', '.join(known.names()) or 'none'})")


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


# --- argparse -----------------------------------------------------------------------------
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
        kw: dict[str, Any] = {"dest": f.name, "default": None, "metavar": meta.get("metavar"),
                              "help": f"{meta['help']}{known} (default: {shown})"}
        if meta.get("choices"):
            kw.update(choices=meta["choices"], metavar=None)
        if f.type in ("tuple", "dict"):
            kw["action"] = "append"
            if f.type == "dict":
                kw["type"] = _space_item
        else:
            kw["type"] = {"int": int, "float": float, "str": str}[f.type]
        parser.add_argument(flag, **kw)
    return parser


def overrides_from_args(ns: argparse.Namespace) -> dict[str, Any]:
    """The Config fields given on the command line (flags left at None are absent);
    repeated ``--space`` (``--strategy-arg``) items are merged into one dict."""
    names = {f.name for f in dataclasses.fields(Config)}
    out = {k: v for k, v in vars(ns).items() if k in names and v is not None}
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


__all__ = ["Config", "ConfigError", "RESUMABLE", "INHERIT", "BACKENDS", "DEDUP",
           "OPTIMIZERS", "add_arguments", "overrides_from_args", "check_names", "read_file"]
