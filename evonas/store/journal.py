"""``journal.jsonl``: the run's one source of truth, append-only.

One JSON object per line, in the order the engine made its decisions (see
``evolve.engine``): ``search`` (what is searched: genome type, space, strategy,
seed), ``run`` (a run or resume starts), ``child`` (id and arch_hash of a child
made), ``done`` (a trial's full result), ``log`` (a DEAP logbook record), ``stop``
(why a run ended). Every event has ``t``, seconds into the run. ``--resume``
rebuilds the search by replaying the events; nothing else is read for that.

Durability: each event is one ``write`` of one line, flushed at once (it survives
the driver being killed); ``sync()`` fsyncs (the CLI calls it at most once a
second and at the end, so a power loss costs at most the last second, which is
then re-run). On opening, a torn last line (no newline, not JSON) is cut off; good
lines are never rewritten. Appending costs the same at event 10 as at event
1,000,000: no file grows by rewriting.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

from ..errors import ConfigError
from .lineage import SyncedAppend

JOURNAL = "journal.jsonl"


def _jsonable(v: Any) -> Any:
    """numpy scalars and arrays, tuples: as plain JSON values."""
    if hasattr(v, "item") and callable(v.item) and getattr(v, "ndim", 0) == 0:
        return v.item()
    if hasattr(v, "tolist"):
        return v.tolist()
    raise TypeError(f"not JSON-serialisable in a journal event: {type(v).__name__}")


def encode(event: dict) -> bytes:
    return (json.dumps(event, separators=(",", ":"), default=_jsonable) + "\n").encode("utf-8")


def _events(data: bytes, path: Path) -> tuple[list[dict], int]:
    """(events, length of the good prefix). A bad line other than the last is
    corruption, not a torn write: refused."""
    events, good = [], 0
    lines = data.split(b"\n")
    for n, raw in enumerate(lines[:-1]):  # the last element follows the final newline
        try:
            ev = json.loads(raw)
        except ValueError:
            ev = None
        if not isinstance(ev, dict) or "e" not in ev:
            if n == len(lines) - 2:  # the last complete line: torn (e.g. NUL-filled) tail
                break
            raise ConfigError(str(path), f"line {n + 1}", raw[:60].decode("utf-8", "replace"),
                              "not a journal event (the journal is corrupt)")
        events.append(ev)
        good += len(raw) + 1
    return events, good


def read_events(path: str | Path) -> list[dict]:
    """Every good event of a journal file ([] if there is none)."""
    path = Path(path)
    return _events(path.read_bytes(), path)[0] if path.exists() else []


def read_logbook(path: str | Path) -> list[dict]:
    """The DEAP logbook records of a run (birth, avg, std, min, max), in order."""
    return [{k: v for k, v in ev.items() if k not in ("e", "t")} for ev in read_events(path) if ev["e"] == "log"]


class Journal(SyncedAppend):
    """Appends events to ``path`` (created if absent); ``events`` are the ones
    already there when opened (a torn tail cut off first)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        data = self.path.read_bytes() if self.path.exists() else b""
        self.events, good = _events(data, self.path)
        if good < len(data):
            with open(self.path, "rb+") as fh:  # repair: drop the torn tail only
                fh.truncate(good)
                os.fsync(fh.fileno())
        self._fh = open(self.path, "ab")
        self._unsynced = False

    def append(self, event: dict) -> None:
        self._fh.write(encode(event))
        self._fh.flush()
        self._unsynced = True

    __call__ = append  # usable directly as the engine's on_event


    def __iter__(self) -> Iterator[dict]:
        return iter(self.events)

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
