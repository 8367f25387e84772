"""The run directory ``runs/<name>/`` (its files are written with ``evonas.io``).

Layout::

    config.json     the resolved Config (JSON)
    manifest.json   versions (evonas, torch, CUDA, python), plug-ins, seed, command
                    line, start time, and one entry per resume
    lineage.csv     one row per evaluated individual (``evonas.store.lineage``)
    journal.jsonl   every decision of the search, append-only (``store.journal``): the
                    one source of truth; ``--resume`` replays it
    state.json      a small summary (counters, best; its size does not grow with the
                    run), rewritten atomically at most once a second; never needed
                    to resume
    weights/        <id>.safetensors of the living population (``tensor_io``, written by the trials)
    best/           genome.json, weights.safetensors, arch.dot, arch.png

Guarantees: every JSON file is replaced atomically (``io.atomic_path``: tmp file
in the same directory, fsync, ``os.replace``, fsync of the directory), so a crash
at any instant leaves either the old or the new version. ``create_run_dir`` builds
the directory under a temporary sibling name and renames it into place, so a
failure leaves nothing half-written. ``resumable`` (and ``reopen.open_for_resume``
above it) runs every check before anything is touched. Only JSON is ever loaded from here (and safetensors, by
``tensor_io``): no pickle, and no module or function named in a run
directory is imported unless the user names it again on the command line.

Locking: ``RunLock`` holds an exclusive ``fcntl.flock`` on the directory for the
run's life; the OS drops it when the process dies (even by SIGKILL), so a second
process refuses the directory instead of interleaving rows with the first.
A failed write (a full disk) removes its tmp file and raises ``StorageError``
naming the file.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import errno
import json
import os
import platform
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..errors import ConfigError, EvonasError
from ..io import (DISK_FULL, StorageError, atomic_copy, atomic_write_bytes,  # noqa: F401  (re-exported)
                  atomic_write_json, atomic_write_text, fsync_dir, read_json, storage_error)
from ..version import __version__

CONFIG, MANIFEST, LINEAGE, STATE = "config.json", "manifest.json", "lineage.csv", "state.json"
JOURNAL = "journal.jsonl"
WEIGHTS, BEST = "weights", "best"


@dataclass(frozen=True)
class RunPaths:
    """Paths of one run directory (nothing is created by building this)."""
    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def lineage(self) -> Path:
        return self.root / LINEAGE

    @property
    def state(self) -> Path:
        return self.root / STATE

    @property
    def journal(self) -> Path:
        return self.root / JOURNAL

    @property
    def weights(self) -> Path:
        return self.root / WEIGHTS

    @property
    def best(self) -> Path:
        return self.root / BEST


# --- the lock -----------------------------------------------------------------------------
class DamagedRunError(EvonasError):
    """A file the run needs from its directory is missing or not what was recorded."""


class RunLock:
    """Exclusive ``flock`` on a run directory, held until ``release`` or process exit.
    Raises ConfigError (exit 2, one line) when another process holds it."""

    def __init__(self, root: str | Path):
        import fcntl
        self.root = Path(root)
        self._fd = os.open(str(self.root), os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(self._fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ConfigError("run directory", "run_dir", str(self.root),
                                  "is in use by another evonas process (locked); wait for it to "
                                  "end or stop it, then --resume") from None
            raise

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = -1


# --- manifest -----------------------------------------------------------------------------
def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def manifest(config: Any, argv: Sequence[str] | None = None, plugins: Sequence[str] = ()) -> dict:
    """What produced this run: versions, plug-ins, seed, command line, start time.
    ``config``: a ``config.Config`` (used through ``seed``/``to_dict``/``dump``, so
    this layer never imports the app's config)."""
    info: dict[str, Any] = {"evonas": __version__, "python": platform.python_version(),
                            "platform": platform.platform(), "seed": config.seed,
                            "plugins": list(plugins), "argv": list(sys.argv if argv is None else argv),
                            "start_time": utc_now(), "resumes": [],
                            "config": config.to_dict()}  # what resume checks config.json against
    try:
        import torch
        info.update(torch=torch.__version__, cuda=torch.version.cuda,
                    gpus=[torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])
    except ImportError:  # torch is a dependency, but the manifest must never fail a run
        info.update(torch=None, cuda=None, gpus=[])
    return info


# --- create / resume ----------------------------------------------------------------------
def create_run_dir(path: str | Path, config: Any, argv: Sequence[str] | None = None,
                   plugins: Sequence[str] = (), lineage_columns: Sequence[str] = ()) -> RunPaths:
    """Create a new run directory with config.json, manifest.json, an empty
    lineage.csv (header only; ``lineage_columns`` are extra metric columns),
    weights/ and best/. Refuses (ConfigError) a path that exists and is not an
    empty directory, or whose parent cannot be written; a failure leaves nothing
    behind (the directory is assembled under a temporary sibling name). The
    stored config has ``run_dir`` set to ``path``."""
    from .lineage import LineageWriter
    root = Path(path)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ConfigError("run directory", "run_dir", str(root),
                          "exists and is not empty (use --resume to continue it, or another --run-dir)")
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError("run directory", "run_dir", str(root), f"cannot create parent ({e.strerror})") from None
    if not os.access(root.parent, os.W_OK | os.X_OK):
        raise ConfigError("run directory", "run_dir", str(root), "parent directory is not writable")
    tmp = root.parent / f".{root.name}.creating-{os.getpid()}"
    try:
        tmp.mkdir()
        (tmp / WEIGHTS).mkdir()
        (tmp / BEST).mkdir()
        dataclasses.replace(config, run_dir=str(root)).dump(tmp / CONFIG)
        atomic_write_json(tmp / MANIFEST, manifest(config, argv, plugins))
        LineageWriter(tmp / LINEAGE, extra_columns=lineage_columns).close()
        os.replace(tmp, root)  # atomic; also succeeds over an existing empty directory
        fsync_dir(root.parent)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ConfigError("run directory", "run_dir", str(root), f"cannot write ({e.strerror or e})") from None
    return RunPaths(root)


def is_run_dir(path: str | Path) -> bool:
    """A run directory has config.json and lineage.csv (state.json comes later)."""
    p = RunPaths(Path(path))
    return p.config.is_file() and p.lineage.is_file()


def resumable(path: str | Path, resumable_keys: Iterable[str],
              normalize: Callable[[Any], Any] = lambda d: d) -> tuple[dict, RunPaths]:
    """The first checks of a resume, which need no Config: ``path`` is a run
    directory whose config.json is a JSON object left as the run wrote it (only
    ``resumable_keys`` may have been edited) and whose state.json (if any) is an
    object. ``normalize`` maps a stored config to flat keys before the unedited
    check (the config layer knows its sections; this layer does not). Returns
    (the raw config dict, paths); nothing is written.
    ``reopen.open_for_resume`` adds the Config part (L7), then calls
    ``check_resumable_state``."""
    root = Path(path)
    where = f"resume {root}"
    if not root.is_dir():
        raise ConfigError(where, "run_dir", str(root), "not a directory")
    paths = RunPaths(root)
    if not is_run_dir(root):
        raise ConfigError(where, "run_dir", str(root), f"not a run directory (needs {CONFIG} and {LINEAGE})")
    raw = read_json(paths.config, where)
    if not isinstance(raw, dict):
        raise ConfigError(where, CONFIG, type(raw).__name__, "must be a JSON object")
    if paths.manifest.exists():
        info = read_json(paths.manifest, where)
        check_config_unedited(normalize(raw), normalize(info.get("config") if isinstance(info, dict) else None),
                              frozenset(resumable_keys), where)
    if paths.state.exists():
        state = read_json(paths.state, where)
        if not isinstance(state, dict):
            raise ConfigError(where, STATE, type(state).__name__, "checkpoint must be a JSON object")
    return raw, paths


def check_resumable_state(paths: RunPaths) -> None:
    """The last checks before a resume writes: a journal to replay (if the run has
    lineage rows) and a writable directory. Run after the config checks, so a
    config conflict is reported first."""
    from .lineage import read_records
    where = f"resume {paths.root}"
    if not paths.journal.exists() and read_records(paths.lineage):
        raise ConfigError(where, JOURNAL, str(paths.journal), "missing: this run has lineage rows but no "
                          "journal (made by an evonas without journals?); it cannot be resumed exactly")
    if not os.access(paths.root, os.W_OK | os.X_OK):
        raise ConfigError(where, "run_dir", str(paths.root), "not writable")


def record_resume(paths: RunPaths, config: Any, argv: Sequence[str] | None = None) -> None:
    """After a successful ``reopen.open_for_resume``: store the (possibly extended) config
    and append the resume to the manifest, both atomically."""
    info = read_json(paths.manifest, str(paths.root)) if paths.manifest.exists() else {}
    info.setdefault("resumes", []).append({"time": utc_now(),
                                           "argv": list(sys.argv if argv is None else argv)})
    info["config"] = config.to_dict()
    atomic_write_json(paths.manifest, info)
    config.dump(paths.config)


def check_config_unedited(stored: Mapping[str, Any], recorded: Mapping[str, Any] | None,
                          changeable: Iterable[str], where: str) -> None:
    """``stored`` (config.json) against ``recorded`` (the manifest's copy); keys in
    ``changeable`` (budget, hardware) may differ, being changed by ``--resume`` flags."""
    if not isinstance(recorded, Mapping):
        return  # a run directory from before configs were recorded in the manifest
    skip = set(changeable) | {"name", "run_dir"}
    edited = [k for k in sorted(set(stored) | set(recorded))
              if k not in skip and _norm(stored.get(k)) != _norm(recorded.get(k))]
    if edited:
        detail = "; ".join(f"{k}: recorded {recorded.get(k)!r}, config.json {stored.get(k)!r}" for k in edited)
        raise ConfigError(where, "config.json", ", ".join(edited),
                          f"was edited after the run started ({detail}); restore it or start a new run")


def _norm(v: Any) -> Any:
    return json.loads(json.dumps(v))  # tuples and lists compare equal


# --- checkpoint ---------------------------------------------------------------------------
def save_state(paths: RunPaths, state: Mapping[str, Any]) -> None:
    """Write the engine checkpoint (a JSON-able dict) atomically. Compact JSON: the
    C encoder (``indent`` would force the pure-Python one, ~10x slower on a
    checkpoint that holds every evaluated architecture)."""
    data = json.dumps(dict(state), separators=(",", ":")) + "\n"
    atomic_write_bytes(paths.state, data.encode("utf-8"), fault="checkpoint_tmp")


def load_state(paths: RunPaths) -> dict | None:
    """The last checkpoint, or None before the first one. JSON only."""
    if not paths.state.exists():
        return None
    state = read_json(paths.state, str(paths.root))
    if not isinstance(state, dict):
        raise ConfigError(str(paths.root), STATE, type(state).__name__, "checkpoint must be a JSON object")
    return state
