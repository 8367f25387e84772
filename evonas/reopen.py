"""Open a run directory to resume it: the checks that need the app's ``Config``.

``store.rundir.resumable`` checks the directory itself (a writable run directory,
config.json as written, a journal); this adds what only the config layer knows:
the flags and config file given now against the stored config, where only keys
of ``config.RESUMABLE`` (budget, hardware, data path) may change.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

from .config import HOMES, RESUMABLE, Config, chosen_by, read_file
from .config_sections import canonical, field_of, flat_view, merge
from .errors import ConfigError
from .store.rundir import CONFIG, RunPaths, check_resumable_state, resumable


def open_for_resume(path: str | Path, overrides: Mapping[str, Any] | None = None,
                    file: str | Path | None = None) -> tuple[Config, RunPaths]:
    """Check ``path`` is a resumable run and return (config, paths).

    ``overrides`` (the flags given) and ``file`` (a config file) are compared with
    the stored config: keys in ``config.RESUMABLE`` may change and are applied to
    the returned config; any other differing key raises ConfigError naming every
    such key. ``name``/``run_dir`` given here are ignored (the returned config has
    ``run_dir = path``). Nothing is written: call ``store.rundir.record_resume``
    once the run really continues."""
    raw, paths = resumable(path, RESUMABLE, flat_view)  # config.json: sectioned, or flat from before sections
    root = paths.root
    where = f"resume {root}"
    stored = Config.from_dict(raw, f"{where}/{CONFIG}")
    stored = dataclasses.replace(stored, sample_size=stored.resolved("-").sample_size)  # 0 = auto
    flags = canonical(overrides or {}, "flags", HOMES)
    filed = chosen_by(read_file(file), str(file), flags) if file else {}
    # every key the file sets counts as given; flags win over the file
    _check_named_again(stored, merge(filed, flags), where)

    def kept(d: dict) -> dict:  # the directory is the run's identity: name/run_dir given on resume are ignored
        return {k: v for k, v in d.items() if k not in ("name", "run_dir")}
    wanted = stored.updated(kept(filed), str(file)).updated(kept(flags), "flags", others="refuse").resolved("unused")
    wanted = dataclasses.replace(wanted, name=stored.name, run_dir=str(root))
    conflicts = {k: v for k, v in stored.diff(wanted).items()
                 if field_of(k) not in RESUMABLE and field_of(k) not in ("name", "run_dir")}
    if conflicts:
        detail = "; ".join(f"{k}: stored {a!r}, given {b!r}" for k, (a, b) in conflicts.items())
        raise ConfigError(where, ", ".join(conflicts), {k: b for k, (a, b) in conflicts.items()},
                          f"conflicts with the stored config ({detail}); drop these flags or start a new run")
    check_resumable_state(paths)
    return wanted, paths


def _check_named_again(stored: Config, given: Mapping[str, Any], where: str) -> None:
    """Code named in a run directory runs only if the user names it again: a
    config.json could otherwise make resume import any module or call any function."""
    if stored.plugins and tuple(given.get("plugins") or ()) != tuple(stored.plugins):
        flags = " ".join(f"--plugin {p}" for p in stored.plugins)
        raise ConfigError(where, "plugins", list(stored.plugins),
                          f"are recorded in the run directory but not loaded from it: pass {flags} again")
    code = ":" in stored.dataset and not stored.dataset.startswith("npz:")
    if code and given.get("dataset") != stored.dataset:
        raise ConfigError(where, "dataset", stored.dataset, "is a module:function recorded in the run "
                          f"directory but not called from it: pass --dataset {stored.dataset} again")
