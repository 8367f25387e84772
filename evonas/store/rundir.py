"""The run directory ``runs/<name>/`` and its atomic writes.

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
    weights/        <id>.safetensors of the living population (``store.weights``)
    best/           genome.json, weights.safetensors, arch.dot, arch.png

Guarantees: every JSON file is replaced atomically (tmp file in the same
directory, flush + fsync, ``os.replace``, fsync of the directory), so a crash at
any instant leaves either the old or the new version. ``create_run_dir`` builds
the directory under a temporary sibling name and renames it into place, so a
failure leaves nothing half-written. ``open_for_resume`` runs every check before
it touches anything. Only JSON is ever loaded from here (and safetensors, by
``store.weights``): no pickle, and no module or function named in a run
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
from typing import Any, Mapping, Sequence

from ..config import RESUMABLE, Config, read_file
from .. import faults
from ..errors import ConfigError, EvonasError

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

    def weights_for(self, individual_id: int) -> Path:
        """Where the trained weights of one living individual are kept."""
        return self.weights / f"{int(individual_id)}.safetensors"


# --- storage errors and the lock -----------------------------------------------------------
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class StorageError(EvonasError):
    """A write into the run directory failed (typically a full disk); names the file."""


def storage_error(e: OSError, path: str | Path | None = None) -> StorageError:
    """One line for a failed write: the file and the cause; a full disk is said so."""
    where = path or e.filename or "the run directory"
    why = "disk full" if e.errno in DISK_FULL else "cannot write"
    return StorageError(f"{why}: {where}: {e.strerror or e}; the run stopped (free space, then --resume)")


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


# --- atomic writes ------------------------------------------------------------------------
def fsync_dir(path: str | Path) -> None:
    """fsync a directory so a rename inside it survives a power loss (POSIX only)."""
    if os.name != "posix":
        return
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes, fault: str = "") -> None:
    """Replace ``path`` with ``data``: write ``<path>.tmp``, fsync, ``os.replace``.
    ``fault``: name of the ``evonas.faults`` point between the write and the rename."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if fault:
            faults.point(fault)
        faults.point("disk_write")
        os.replace(tmp, path)
    except OSError as e:  # a full disk: no tmp file stays behind, the old file is intact
        _unlink(tmp)
        raise storage_error(e, path) from None
    fsync_dir(path.parent)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def atomic_copy(src: str | Path, dst: str | Path) -> None:
    """Copy a file so ``dst`` is never seen half-copied."""
    dst = Path(dst)
    tmp = dst.with_name(dst.name + ".tmp")
    try:
        shutil.copyfile(src, tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        faults.point("disk_write")
        os.replace(tmp, dst)
    except OSError as e:
        _unlink(tmp)
        if isinstance(e, FileNotFoundError) and e.filename == str(src):
            raise ConfigError("copy", "file", str(src), "not found") from None
        raise storage_error(e, dst) from None
    fsync_dir(dst.parent)


def read_json(path: str | Path, where: str) -> Any:
    """Load a JSON file; unreadable or malformed -> ConfigError naming the file."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(where, path.name, str(path), "file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(where, path.name, str(path), f"unreadable or not valid JSON ({e})") from None


# --- manifest -----------------------------------------------------------------------------
def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def manifest(config: Config, argv: Sequence[str] | None = None, plugins: Sequence[str] = ()) -> dict:
    """What produced this run: versions, plug-ins, seed, command line, start time."""
    from .. import __version__
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
def create_run_dir(path: str | Path, config: Config, argv: Sequence[str] | None = None,
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


def open_for_resume(path: str | Path, overrides: Mapping[str, Any] | None = None,
                    file: str | Path | None = None) -> tuple[Config, RunPaths]:
    """Check ``path`` is a resumable run and return (config, paths).

    ``overrides`` (the flags given) and ``file`` (a config file) are compared with
    the stored config: keys in ``config.RESUMABLE`` may change (budget, hardware,
    data path) and are applied to the returned config; any other differing key
    raises ConfigError naming every such key. ``name``/``run_dir`` given here are
    ignored (the returned config has ``run_dir = path``). Nothing is written: call
    ``record_resume`` once the run really continues."""
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
    stored = Config.from_dict(raw, f"{where}/{CONFIG}")
    if paths.manifest.exists():
        from .resume import check_config_unedited
        info = read_json(paths.manifest, where)
        check_config_unedited(raw, info.get("config") if isinstance(info, dict) else None, RESUMABLE, where)
    stored = dataclasses.replace(stored, sample_size=stored.resolved("-").sample_size)  # 0 = auto
    if paths.state.exists():
        state = read_json(paths.state, where)
        if not isinstance(state, dict):
            raise ConfigError(where, STATE, type(state).__name__, "checkpoint must be a JSON object")
    changes = dict(overrides or {})
    if file:  # every key the file sets counts as given; flags win over the file
        changes = {**read_file(file), **changes}
    _check_named_again(stored, changes, where)
    # the directory is the run's identity: name/run_dir given on resume are ignored
    changes = {k: v for k, v in changes.items() if k not in ("name", "run_dir")}
    wanted = stored.updated(changes, "flags").resolved("unused")
    wanted = dataclasses.replace(wanted, name=stored.name, run_dir=str(root))
    conflicts = {k: v for k, v in stored.diff(wanted).items()
                 if k not in RESUMABLE and k not in ("name", "run_dir")}
    if conflicts:
        detail = "; ".join(f"{k}: stored {a!r}, given {b!r}" for k, (a, b) in conflicts.items())
        raise ConfigError(where, ", ".join(conflicts), {k: b for k, (a, b) in conflicts.items()},
                          f"conflicts with the stored config ({detail}); drop these flags or start a new run")
    from .lineage import read_records
    if not paths.journal.exists() and read_records(paths.lineage):
        raise ConfigError(where, JOURNAL, str(paths.journal), "missing: this run has lineage rows but no "
                          "journal (made by an evonas without journals?); it cannot be resumed exactly")
    if not os.access(root, os.W_OK | os.X_OK):
        raise ConfigError(where, "run_dir", str(root), "not writable")
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


def record_resume(paths: RunPaths, config: Config, argv: Sequence[str] | None = None) -> None:
    """After a successful ``open_for_resume``: store the (possibly extended) config
    and append the resume to the manifest, both atomically."""
    info = read_json(paths.manifest, str(paths.root)) if paths.manifest.exists() else {}
    info.setdefault("resumes", []).append({"time": utc_now(),
                                           "argv": list(sys.argv if argv is None else argv)})
    info["config"] = config.to_dict()
    atomic_write_json(paths.manifest, info)
    config.dump(paths.config)


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
