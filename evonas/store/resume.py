"""What a resume reads from a run directory, checked before anything is written.

* Weights paths in the checkpoint are stored relative to the run directory
  (``weights/12.safetensors``), so a copied or moved run directory, or a resume
  from another working directory, reads and deletes only its own files. An
  absolute path (older checkpoints) is rebased onto this directory's ``weights/``.
* ``check_checkpoint``: the lineage holds every evaluation the checkpoint counts
  (a lineage shorter than its checkpoint lost rows: refused), and every weights
  file the checkpoint names that exists is a readable safetensors file of the
  genome recorded for it. A file that is absent is not an error here: members
  that die while the rows after the checkpoint are replayed had theirs deleted
  before the stop; a child that needs an absent parent file stops the run naming
  it (``evonas.run``).
* ``restore`` loads a checked checkpoint into a Search; ``Sink`` is where the
  engine's rows and checkpoints go (opened only after that check).
* ``check_config_unedited``: the stored ``config.json`` still has the settings
  recorded in ``manifest.json`` (an edited ``population`` would change the search
  silently).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import ConfigError, EvonasError

KEY = "weights"  # every checkpoint entry with this key (members, best, cache) holds a path


def _walk(obj: Any, fix) -> Any:
    if isinstance(obj, dict):
        return {k: (fix(v) if k == KEY and isinstance(v, str) else _walk(v, fix)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_walk(v, fix) for v in obj]
    return obj


def relative_paths(state: Mapping[str, Any], root: str | Path) -> dict:
    """Weights paths inside ``root`` -> relative to it (others are kept as they are)."""
    base = os.path.abspath(root)

    def fix(p: str) -> str:
        full = os.path.abspath(p)
        return os.path.relpath(full, base) if full.startswith(base + os.sep) else p
    return _walk(dict(state), fix)


def absolute_paths(state: Mapping[str, Any], root: str | Path) -> dict:
    """Weights paths -> absolute under ``root/weights``, by file name: a path written
    before paths were relative, or by the run this one was copied from, is rebased
    onto this directory, and no path can point outside it."""
    weights = os.path.join(os.path.abspath(root), "weights")
    # every weights file lives in weights/: the name alone locates it, and nothing can escape
    return _walk(dict(state), lambda p: os.path.join(weights, os.path.basename(p)))


def check_checkpoint(state: Mapping[str, Any], rows: Iterable[Mapping[str, Any]], root: str | Path) -> None:
    """Refuse a checkpoint that the lineage or the weights files contradict."""
    where = f"resume {root}"
    try:
        births = int(state["counters"]["births"])
        members = list(state["members"])
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(where, "state.json", type(e).__name__, f"not a checkpoint of a run ({e})") from None
    before = [int(r["id"]) for r in rows if int(r["birth"]) < births]
    if len(before) != births or len(set(before)) != births:
        raise ConfigError(where, "lineage.csv", f"{len(set(before))} rows",
                          f"the checkpoint (state.json) counts {births} evaluations: the lineage lost "
                          "rows, the run directory is damaged (restore it from a copy)")
    for m in members:
        if isinstance(m, dict) and isinstance(m.get(KEY), str) and os.path.exists(m[KEY]):
            check_weights_file(m[KEY], m.get("genome"), where)


def check_weights_file(path: str | Path, genome: Any, where: str) -> None:
    """``path`` is a safetensors file whose recorded genome (metadata) is ``genome``
    (a genome dict); only the header is read."""
    from safetensors import SafetensorError, safe_open
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise ConfigError(f"{where}: {path}", "weights file", Path(path).name,
                          f"unreadable, not safetensors ({e})") from None
    recorded = meta.get("genome")
    if genome is not None and recorded is not None:
        try:
            same = json.loads(recorded) == genome
        except json.JSONDecodeError:
            same = False
        if not same:
            raise ConfigError(f"{where}: {path}", "weights file", Path(path).name,
                              "holds the weights of another network than the one recorded for it")


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


# --- used by the CLI (evonas.run) -------------------------------------------------------
def restore(search, state: dict, rows: list, paths) -> None:
    """Load a checkpoint into ``search``; anything in it that does not fit this run
    is one ConfigError naming state.json (nothing has been written yet)."""
    check_checkpoint(state, rows, paths.root)
    try:
        search.load_state_dict(state)
    except EvonasError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise ConfigError(f"resume {paths.root}", "state.json", f"{type(e).__name__}: {e}",
                          "valid JSON but not a checkpoint of this run") from None
    done = state["counters"]["births"]
    search.replay([r for r in rows if int(r["birth"]) >= done])


class Sink:
    """Where the engine's rows and checkpoints go. Opened (the lineage writer, which
    repairs a torn tail) only after a resumed checkpoint has been checked. A failed
    row that says the disk is full, or that a parent's weights file is missing or
    does not fit its network, stops the run after it is written: every later
    child would fail the same way."""

    def __init__(self, paths, extra_columns, progress):
        self.paths, self.extra_columns, self.progress = paths, extra_columns, progress
        self.writer = None

    def open(self) -> None:
        from .lineage import LineageWriter
        self.writer = LineageWriter(self.paths.lineage, self.extra_columns)

    def record(self, row: dict) -> None:
        self.writer.write(row, sync=False)
        self.progress.update(row)
        reason = str(row.get("reason") or "")
        if row.get("status") == "failed" and ("[Errno 28]" in reason or "No space left" in reason):
            from .rundir import StorageError
            raise StorageError(f"disk full: a worker could not write weights into {self.paths.weights} "
                               f"(individual {row.get('id')}); the run stopped (free space, then --resume)")
        if row.get("status") == "failed" and reason.startswith("parent weights "):
            from .rundir import DamagedRunError
            raise DamagedRunError(f"{reason} (needed by child {row.get('id')}: the run directory is "
                                  "damaged; restore the file from a copy)")

    def checkpoint(self, state: dict) -> None:
        """fsync the lineage, then write state.json: the checkpoint is never ahead
        of the lineage on disk."""
        from .rundir import save_state
        self.writer.sync()
        save_state(self.paths, state)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
