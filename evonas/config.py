"""One typed run configuration: every setting of a search, its default, its check.

Precedence (lowest to highest): the defaults below < a config file (YAML or
JSON; keys grouped by section, or flat: ``config_sections``) < command-line
flags (``config_cli``). ``Config.from_sources``
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

Every field names its section in its metadata (search, train, data, final,
execution, table, output; ``strategy_args``, ``space`` and ``backend_args`` are
the registered sections ``strategy.<name>``, ``genome.<name>`` and
``backend.<name>`` of the chosen strategy, genome and backend). The dataclass stays flat because the engine and the store read
attributes; the sections exist in files, ``--help`` and error messages.

Resume: ``diff`` lists the keys (``section.key``) two configs disagree on. ``RESUMABLE`` are the
keys a resumed run may change (budget, hardware, data path); any other
difference makes ``--resume`` refuse, because the continued search would no
longer be the same search.
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .config_sections import REGISTERED, SECTIONS, canonical, check_other, named, read_file
from .errors import ConfigError
from .evaluate.base import INHERIT, MEMORY_FORMATS, OPTIMIZERS, PRECISIONS
from .evolve.dedup import DEDUP

RESULT_ORDERS = ("completion", "submission")

# Keys a resumed run may change: more budget, other hardware, moved files. precision
# and memory_format go with the hardware: under "auto", moving from CPU to a GPU
# changes them anyway.
RESUMABLE = frozenset({"evaluations", "max_duplicates", "time_budget", "final_top", "final_epochs", "devices", "workers",
                       "trials_per_device", "backend", "backend_args", "ray_address", "trial_timeout",
                       "data_root", "precision", "memory_format"})

_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_MUTATION = re.compile(r"^[A-Za-z_][\w.-]*(:[0-9.eE+-]+)?$")


def _f(section: str, default: Any, help: str, flag: str | None = None, choices: tuple | None = None,
       metavar: str | None = None):
    """A dataclass field with its section (``config_sections``) and CLI metadata
    (``flag`` defaults to --field-name)."""
    meta = {"section": section, "help": help, "flag": flag, "choices": choices, "metavar": metavar}
    if isinstance(default, (dict, list, tuple)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Config:
    """Every setting of a run. Field docs are the ``--help`` texts."""
    # search
    genome: str = _f("search", "tree", "genome type")
    population: int = _f("search", 100, "population size P (>= 2)")
    sample_size: int = _f("search", 0, "tournament sample size S (1..population; 0 = ceil(population / 4): "
                          "25 for P=100 as Real et al., 3 for P=10 as the NAS-Bench-201 protocol)")
    strategy: str = _f("search", "aging", "search strategy")
    surrogate: str = _f("search", "", "pre-screen the children of --strategy with a surrogate (issue 17; naswot: real "
                        "training only); '' = off")
    surrogate_args: dict = _f("search", {}, "a parameter of the --surrogate middleware (candidates, kappa, explore, "
                              "screen_args: README), KEY=VALUE or a JSON object, repeatable", flag="--surrogate-arg")
    evaluations: int = _f("search", 300, "budget: number of TRAINED networks (>= 1; failed trials count, duplicates "
                          "of an earlier network do not: see --max-duplicates)")
    max_duplicates: int = _f("search", 0, "budget: duplicate children (a network already evaluated, its result "
                             "reused) allowed apart from --evaluations, so a search stuck on duplicates "
                             "still ends (0 = 10 x evaluations + 100)")
    time_budget: float = _f("search", 600.0, "budget: wall-clock seconds, whichever budget ends first (0 = no limit)")
    mutations: tuple = _f("search", (), "mutation operator to use, NAME or NAME:WEIGHT, repeatable "
                          "(empty = all registered, default weights)", flag="--mutation", metavar="NAME[:W]")
    strategy_args: dict = _f("strategy", {}, "a parameter of --strategy, KEY=VALUE (VALUE parsed as JSON) or a JSON "
                             "object, repeatable (e.g. es: lam=8; generational: p_cross=0.5; aging-novel: "
                             "greedy=0.5; --list shows every strategy's parameters and defaults; population, "
                             "sample and selection come from their own flags)", flag="--strategy-arg",
                             metavar="KEY=VALUE")
    result_order: str = _f("search", "submission", "order in which finished trials enter the population: "
                           "submission (by id: the same lineage for a seed with any number of workers, "
                           "on CPU; a worker may wait for an older trial, ~5-10%% fewer trials/s) or "
                           "completion (fully asynchronous, as Real et al.; lineage depends on timing)",
                           choices=RESULT_ORDERS)
    selection: str = _f("search", "fitness", "what tournaments rank by: the raw fitness, or 'matched', the fitness minus "
                        "the population's trend with lineage_epochs (compares architectures at equal "
                        "training under weight inheritance; the same as fitness without inheritance; "
                        "strategies that take it: aging). The final stage ranks its top K the same way",
                        choices=("fitness", "matched"))
    dedup: str = _f("search", "reuse", "isomorphic duplicates: reuse the earlier fitness, resample another child, "
                    "or off (train them again)", choices=DEDUP)
    seed: int = _f("search", 0, "master seed of the search (>= 0)")
    seed_genomes: tuple = _f("search", (), "genome JSON file (genomes/ schema) to start the population from, "
                             "repeatable", flag="--seed-genome", metavar="FILE")
    space: dict = _f("genome", {}, "genome space override KEY=VALUE (VALUE parsed as JSON) or a JSON object, "
                     "repeatable", metavar="KEY=VALUE")
    plugins: tuple = _f("search", (), "plug-in module or .py file to import (registers operators/genomes), "
                        "repeatable", flag="--plugin", metavar="MODULE")
    # data and training
    dataset: str = _f("data", "digits", "dataset: digits (offline, bundled), mnist, cifar10, ..., npz:PATH, "
                      "module:function")
    data_root: str = _f("data", "data", "directory of downloaded datasets")
    val_fraction: float = _f("data", 0.2, "fraction of the training split held out for fitness (0 < f < 1)")
    epochs: int = _f("train", 3, "training epochs per evaluation (>= 1)")
    batch_size: int = _f("train", 64, "training batch size (>= 1)")
    lr: float = _f("train", 0.05, "learning rate (> 0)")
    optimizer: str = _f("train", "sgd", "optimizer", choices=OPTIMIZERS)
    inherit: str = _f("train", "none", "weight inheritance from the parent (none: every child trains from scratch, "
                      "the default since benchmarks/search_real.py, where exact inheritance lost; exact/shape: "
                      "start from the parent's trained weights, see --selection matched)", choices=INHERIT)
    precision: str = _f("train", "auto", "training arithmetic: bf16 autocast or fp32 (auto = bf16 on CUDA, "
                        "fp32 on CPU)", choices=PRECISIONS)
    memory_format: str = _f("train", "auto", "activation/weight layout (auto = channels_last, faster on CPU "
                            "too: benchmarks/memory_format.py)", choices=MEMORY_FORMATS)
    max_params: int = _f("train", 5_000_000, "children with more parameters fail without training (0 = no limit)")
    max_macs: int = _f("train", 1_000_000_000, "children with more multiply-accumulates per image fail "
                       "without training (0 = no limit)")
    trial_timeout: float = _f("train", 600.0, "seconds before a trial is killed and recorded failed (0 = no limit)")
    # final stage (real training only)
    final_top: int = _f("final", 3, "after the search, retrain the K best distinct networks from scratch, choose "
                        "one by validation accuracy and report its test accuracy in final.csv (0 = off)",
                        metavar="K")
    final_epochs: int = _f("final", 0, "epochs of each final retraining (0 = auto: as many as the most trained of "
                           "the K carries in its lineage_epochs, so the final validation accuracy is "
                           "comparable with the search fitness; at most 100)", metavar="E")
    # execution
    devices: str = _f("execution", "auto", "devices: auto, cpu, cuda, or a list like cuda:0,cuda:1")
    workers: int = _f("execution", 0, "worker processes (0 = auto: CPU cores on CPU, devices x trials-per-device on GPU)")
    trials_per_device: int = _f("execution", 1, "concurrent trials per GPU (>= 1)")
    backend: str = _f("execution", "local", "execution backend")
    backend_args: dict = _f("backend", {}, "an option of --backend, KEY=VALUE (VALUE parsed as JSON) or a JSON "
                            "object, repeatable (local: max_retries; ray: address ('' = start a local Ray), "
                            "max_retries, startup_timeout_s; --list shows every backend's options)",
                            flag="--backend-arg", metavar="KEY=VALUE")
    # table evaluator (benchmark lookups instead of training)
    benchmark_table: str = _f("table", "", "CSV lookup table (e.g. NAS-Bench-201); '' = train for real")
    fitness_column: str = _f("table", "c10_val_12", "table column used as fitness")
    report_column: str = _f("table", "", "table column reported in the lineage, never used as fitness ('' = none)")
    # output
    run_dir: str = _f("output", "", "run directory ('' = runs/<name>)")
    name: str = _f("output", "", "run name ('' = <genome>-<strategy>-s<seed>-<UTC time>)")

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
        ``where`` names them in errors). Dict keys (``space``, ``strategy_args``, the
        sub-sections) merge key by key into the file's; list overrides replace the
        file's list. The file's sub-sections are read for the strategy and genome the
        overrides choose (``--strategy es`` takes the file's ``strategy.es``)."""
        over = canonical(overrides or {}, where, HOMES)
        cfg = cls.from_dict(chosen_by(read_file(file), str(file), over), str(file)) if file else cls()
        return cfg.updated(over, where, others="refuse")

    def updated(self, changes: Mapping[str, Any], where: str = "config", others: str = "check") -> "Config":
        """A copy with ``changes`` (flat, sectioned or mixed) applied: keys checked,
        values coerced and validated. The chosen strategy's (genome's) sub-section
        merges key by key into ``strategy_args`` (``space``); when ``changes`` choose
        another strategy (genome), the old one's parameters go with it. Sub-sections
        of entries not chosen: ``others="check"`` checks their keys against the
        registry and drops them (a config file may keep settings for several
        strategies); ``"refuse"`` raises ConfigError naming the flag (a
        ``--strategy.NAME.KEY`` flag for another strategy is a mistake)."""
        changes = canonical(changes, where, HOMES)
        names = {f.name: f for f in dataclasses.fields(self)}
        kw = {k: _coerce(names[k], v, where) for k, v in changes.items() if k in names}
        plugins = kw.get("plugins", self.plugins)
        for section, key in REGISTERED.items():
            chosen, current = kw.get(section, getattr(self, section)), getattr(self, section)
            # the parameters of the previously chosen entry are its section, not the new one's
            value = dict(getattr(self, key)) if chosen == current else {}
            value.update(kw.get(key, {}))
            for name, params in named(changes, section).items():
                if name == chosen:
                    value.update(params)
                elif others == "refuse":
                    flag = f"--{section}.{name}.{next(iter(params), '')}"
                    raise ConfigError(where, flag, next(iter(params.values()), None),
                                      f"{name} is not the run's {section} ({chosen}): use --{section} {name}, "
                                      f"or --{section}.{chosen}.KEY")
                else:
                    check_other(section, name, params, where, plugins)
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
        """Flat JSON-able dict (tuples become lists); ``from_dict(to_dict())`` round-trips."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_sections(self) -> dict[str, Any]:
        """The sectioned form (what ``dump`` writes): ``{search: {...}, ..., strategy:
        {<chosen>: {...}}, genome: {<chosen>: {...}}}``; ``from_dict`` reads it back."""
        out: dict[str, Any] = {s: {} for s in SECTIONS}
        for f in dataclasses.fields(self):
            if f.name not in REGISTERED.values():
                out[f.metadata["section"]][f.name] = _jsonable(getattr(self, f.name))
        for section, key in REGISTERED.items():
            out[section] = {getattr(self, section): _jsonable(getattr(self, key))}
        return out

    def dotted(self) -> dict[str, Any]:
        """``section.key`` -> value (``strategy.<name>.<param>`` for each parameter)."""
        out = {}
        for section, keys in self.to_sections().items():
            for k, v in keys.items():
                if section in REGISTERED:
                    out.update({f"{section}.{k}.{p}": x for p, x in v.items()})
                else:
                    out[f"{section}.{k}"] = v
        return out

    def dump(self, path: str | Path) -> None:
        """Write ``to_sections()`` as JSON atomically (tmp file, fsync, rename)."""
        from .io import atomic_write_text
        atomic_write_text(path, json.dumps(self.to_sections(), indent=2, sort_keys=False) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Config":
        """Read a ``config.json`` written by ``dump`` (or, flat, by an evonas before
        sections; JSON only, validated)."""
        return cls.from_dict(read_file(path, json_only=True), str(path))

    def diff(self, other: "Config") -> dict[str, tuple[Any, Any]]:
        """``{section.key: (self value, other value)}`` for every key that differs
        (``config_sections.field_of`` maps a key back to its field)."""
        a, b = self.dotted(), other.dotted()
        return {k: (a.get(k), b.get(k)) for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)}

    def mutation_weights(self) -> dict[str, float | None]:
        """``mutations`` parsed: name -> weight (None = the operator's default)."""
        out: dict[str, float | None] = {}
        for item in self.mutations:
            name, _, w = item.partition(":")
            out[name] = float(w) if w else None
        return out


# --- types and values ---------------------------------------------------------------------
def _coerce(f: dataclasses.Field, value: Any, where: str) -> Any:
    """Convert file/flag values to the field's stored type or raise ConfigError."""
    kind = f.type
    if kind == "float" and ((isinstance(value, str) and _FLOAT.match(value.strip()))
                            or (isinstance(value, int) and not isinstance(value, bool))):
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
    need(bool(c.surrogate) or not c.surrogate_args, "surrogate_args", "needs --surrogate")
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


HOMES = {f.name: f.metadata["section"] for f in dataclasses.fields(Config)}  # field -> its section


def chosen_by(data: Mapping[str, Any], where: str, over: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` (a config file) canonical, with the strategy and genome that ``over``
    (the flags, canonical) choose, so the file's sections are read for the final choice."""
    out = canonical(data, where, HOMES)
    out.update({k: over[k] for k in REGISTERED if isinstance(over.get(k), str)})
    return out


def check_names(c: Config) -> None:
    """Check ``genome``, ``strategy``, ``mutations`` and ``backend`` against the
    registries. Call it after the plug-ins are imported (they may register genomes,
    operators, strategies and backends)."""
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
    from .evaluate.backends import BACKENDS  # importing it registers the built-in backends
    if c.backend not in BACKENDS:
        raise ConfigError("config", "backend", c.backend,
                          f"unknown backend (known: {', '.join(BACKENDS.names())})")
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


__all__ = ["Config", "ConfigError", "RESUMABLE", "INHERIT", "DEDUP", "SECTIONS",
           "OPTIMIZERS", "check_names", "read_file"]
