"""Python API for notebooks and scripts, mirroring ``python -m evonas.run``.

    >>> import evonas
    >>> run = evonas.search(genome="tree", population=10, evaluations=30, run_dir="runs/nb")
    >>> run.lineage.groupby("operator").fitness.max()     # a pandas DataFrame
    >>> run.summary["best fitness"], run.best_genome
    >>> model = run.best_model()                           # nn.Module, trained weights, eval mode
    >>> evonas.load_run("runs/nb").summary                 # a CLI run reads the same way

``search`` takes the keys of the config file and of the CLI flags (``Config``'s
fields, with the same defaults; its signature and help are built from them) and
runs through the same code as the CLI (``evonas.run.execute``): the same checks
before anything is written, the same run directory with its journal, lock,
final stage and ``best/``. Bad input raises ``ConfigError`` naming the key and
the value; the API never exits the interpreter. Ctrl-C (Jupyter's interrupt)
keeps the last checkpoint: continue with ``evonas.resume(run_dir)``.
"""
from __future__ import annotations

import dataclasses
import inspect
import sys
from pathlib import Path
from typing import Any, Optional

from .config import Config
from .errors import ConfigError

_FIELDS = {f.name: f for f in dataclasses.fields(Config)}
_WHERE = "evonas.search"


class Run:
    """A run directory, read on demand (each access re-reads the files, so a run
    still writing shows its latest rows)."""

    def __init__(self, root: str | Path):
        from .store.rundir import is_run_dir
        self.root = Path(root)
        if not is_run_dir(self.root):
            raise ConfigError("load_run", "run_dir", str(self.root),
                              "not a run directory (needs config.json and lineage.csv)")

    def __repr__(self) -> str:
        return f"Run({str(self.root)!r})"

    @property
    def config(self) -> Config:
        """The run's resolved configuration (``config.json``)."""
        from .store.rundir import RunPaths
        return Config.load(RunPaths(self.root).config)

    @property
    def lineage(self):
        """One row per individual (``evonas.lineage.load_lineage``): a DataFrame."""
        from .lineage import load_lineage
        return load_lineage(self.root)

    @property
    def final(self):
        """The final stage's table (``final.csv``) as a DataFrame; None without one."""
        import pandas as pd

        from .final import FINAL_FILE, read_final
        path = self.root / FINAL_FILE
        return pd.DataFrame(read_final(path)) if path.exists() else None

    @property
    def best_genome(self):
        """The exported best (``best/genome.json``: after the final stage, the network
        it chose); None while the run has none."""
        from .genome import load_genome
        from .store.rundir import RunPaths
        path = RunPaths(self.root).best / "genome.json"
        return load_genome(path) if path.exists() else None

    def best_model(self):
        """The best network as an ``nn.Module`` with its trained weights
        (``best/weights.safetensors``), in eval mode; the model that
        ``python -m evonas.export`` exports. Table-lookup runs have no weights and
        raise ConfigError."""
        from .export import load_best
        return load_best(self.root)[0]

    @property
    def summary(self) -> dict[str, Any]:
        """The numbers of the CLI's closing table: budget used, the search's best,
        and, after the final stage, its choice and test accuracy."""
        from .final import FINAL_FILE, final_summary, read_final
        from .report import summarize, wall_seconds
        from .store.rundir import RunPaths
        out = {"run": str(self.root), **summarize(self.lineage, wall_seconds(RunPaths(self.root)))}
        path = self.root / FINAL_FILE
        if path.exists():
            out.update(final_summary(read_final(path)))
        return out


def load_run(run_dir: str | Path) -> Run:
    """Open a run directory written by ``search`` or ``python -m evonas.run``."""
    return Run(run_dir)


def search(config: Optional[str | Path] = None, *, quiet: bool = False, progress: str = "auto",
           **settings: Any) -> Run:
    """Run a search and return its ``Run``. ``settings`` are config keys (see the
    signature: the CLI's defaults); ``config`` a YAML/JSON file of them, which
    ``settings`` override, as flags override it on the CLI."""
    overrides = _overrides(settings)
    from .run import execute
    root = execute(overrides, str(config) if config is not None else None, None,
                   _argv("search", config, overrides), quiet, _bar(progress), where=_WHERE)
    return Run(root)


def resume(run_dir: str | Path, config: Optional[str | Path] = None, *, quiet: bool = False,
           progress: str = "auto", **settings: Any) -> Run:
    """Continue a stopped or finished run exactly where it stopped, as
    ``python -m evonas.run --resume``: only budget, hardware and data-path keys
    may change (e.g. ``evaluations=500``)."""
    overrides = _overrides(settings)
    from .run import execute
    root = execute(overrides, str(config) if config is not None else None, str(run_dir),
                   _argv("resume", run_dir, overrides), quiet, _bar(progress), where=_WHERE)
    return Run(root)


def _overrides(settings: dict) -> dict:
    """Keyword arguments -> config overrides. ``None`` means "not given" (the file's
    or the default value); a single string is accepted for a list key."""
    out = {}
    for key, value in settings.items():
        if key not in _FIELDS:
            raise ConfigError(_WHERE, key, value, f"unknown key (known: {', '.join(_FIELDS)})")
        if value is None:
            continue
        if _FIELDS[key].type == "tuple" and isinstance(value, (str, Path)):
            value = [str(value)]
        elif _FIELDS[key].type == "tuple" and isinstance(value, (list, tuple)):
            value = [str(v) if isinstance(v, Path) else v for v in value]
        elif isinstance(value, Path):
            value = str(value)
        out[key] = value
    return out


def _bar(progress: str) -> Optional[bool]:
    """``auto``: a bar on a terminal or in Jupyter, plain lines otherwise."""
    if progress not in ("auto", "bar", "lines"):
        raise ConfigError(_WHERE, "progress", progress, "must be one of auto, bar, lines")
    if progress == "auto":
        return True if "ipykernel" in sys.modules else None
    return progress == "bar"


def _argv(call: str, first: Any, overrides: dict) -> list:
    """What the manifest records as the command: the call and its arguments."""
    return [f"evonas.{call}", *([] if first is None else [str(first)]),
            *(f"{k}={v!r}" for k, v in overrides.items())]


def _signature() -> inspect.Signature:
    """``search``'s keyword parameters: one per config key, with its default."""
    defaults = Config()
    params = [inspect.Parameter("config", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)]
    for name in _FIELDS:
        value = getattr(defaults, name)
        if name == "run_dir":
            value = None  # '' on the CLI: runs/<name>
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=value))
    params += [inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, default=False),
               inspect.Parameter("progress", inspect.Parameter.KEYWORD_ONLY, default="auto")]
    return inspect.Signature(params, return_annotation=Run)


def _keys_doc() -> str:
    defaults = Config()
    lines = ["", "Keys (default: the CLI's):"]
    for name, f in _FIELDS.items():
        lines.append(f"    {name} = {getattr(defaults, name)!r}: {f.metadata['help'].replace('%%', '%')}")
    return "\n".join(lines)


search.__signature__ = _signature()  # type: ignore[attr-defined]
search.__doc__ = (search.__doc__ or "") + _keys_doc()

__all__ = ["Run", "load_run", "search", "resume"]
