"""What a resume reads from a run directory, checked before anything is written.

Resume replays ``journal.jsonl`` (``store.journal``); this module checks what the
replay reads and rebuilds, so that a damaged run directory is one line naming the
file, with nothing written to it:

* ``read_run_files``: the journal and the lineage parse, and every lineage row is
  an individual the journal made (a lineage row the journal does not know means
  the journal lost events: refused). Lineage rows the journal has but the lineage
  lacks are not an error: the replay writes them again.
* ``replay``: the journal rebuilds the search (an event this search does not
  reproduce is one ConfigError naming the journal); then every weights file a
  rebuilt member names that exists is a readable safetensors file of that member's
  genome. A file that is absent is not an error here: members that die later had
  theirs deleted; a child that needs an absent parent file stops the run naming
  it (``Sink``). Weights paths are not in the journal: the engine derives them
  from the run's ``weights/`` directory, so a copied or moved run directory, or a
  resume from another working directory, reads and deletes only its own files.
* ``Sink`` is where the engine's rows, events and checkpoints go; it writes only
  once opened, after those checks (rows emitted by the replay wait until then).

The checks of the directory itself (config.json unedited, writable, ...) are
``store.rundir.resumable``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError, EvonasError

def read_run_files(paths) -> tuple[list[dict], list[dict]]:
    """(journal events, lineage rows), refused when the lineage has rows the
    journal does not know (nothing is written)."""
    from .journal import read_events
    from .lineage import read_records
    events, rows = read_events(paths.journal), read_records(paths.lineage)
    made = {ev.get("id") for ev in events if ev.get("e") == "child"}
    lost = sorted(int(r["id"]) for r in rows if int(r["id"]) not in made)
    if lost:
        raise ConfigError(f"resume {paths.root}", "journal.jsonl", f"{len(lost)} rows",
                          f"the lineage has individuals the journal does not (ids {lost[:5]}...): the "
                          "journal lost events, the run directory is damaged (restore it from a copy)")
    return events, rows


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


# --- used by the CLI (evonas.run) -------------------------------------------------------
def replay(search, events: list, rows: list, paths) -> None:
    """Rebuild ``search`` from the journal, then check the weights files of the
    members it rebuilt; any misfit is one ConfigError (nothing has been written)."""
    where = f"resume {paths.root}"
    try:
        search.replay(events, written={int(r["id"]) for r in rows})
    except EvonasError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise ConfigError(where, "journal.jsonl", f"{type(e).__name__}: {e}",
                          "valid JSON but not a journal of this run") from None
    for m in list(search.members.values()):
        if isinstance(m.weights, str) and os.path.exists(m.weights):
            check_weights_file(m.weights, m.genome.to_dict(), where)


class Sink:
    """Where the engine's rows, journal events and checkpoints go. Opened (the
    journal and lineage writers, which repair a torn tail) only after a resume has
    been checked; rows and events before that wait. A failed row that says the
    disk is full, or that a parent's weights file is missing or does not fit its
    network, stops the run after it is written: every later child would fail the
    same way."""

    def __init__(self, paths, extra_columns):
        self.paths, self.extra_columns = paths, extra_columns
        self.writer = self.journal = None
        self.after = None
        self._rows: list = []
        self._events: list = []

    def open(self, after=None) -> None:
        """Open the files, write what waited, then pass every row on to ``after``."""
        from .journal import Journal
        from .lineage import LineageWriter
        self.journal = Journal(self.paths.journal)
        self.writer = LineageWriter(self.paths.lineage, self.extra_columns)
        for ev in self._events:
            self.journal.append(ev)
        for row in self._rows:  # rows of the replay (journaled, not yet in the lineage)
            self.writer.write(row, sync=False)
            after and after(row)
        self._rows = self._events = None
        self.after = after

    def event(self, ev: dict) -> None:
        if self.journal is None:
            self._events.append(ev)
        else:
            self.journal.append(ev)

    def record(self, row: dict) -> None:
        if self.writer is None:
            self._rows.append(row)
            return
        self.writer.write(row, sync=False)
        if self.after is not None:
            self.after(row)
        reason = str(row.get("reason") or "")
        if row.get("status") == "failed" and ("[Errno 28]" in reason or "No space left" in reason):
            from ..io import StorageError
            raise StorageError(f"disk full: a worker could not write weights into {self.paths.weights} "
                               f"(individual {row.get('id')}); the run stopped (free space, then --resume)")
        if row.get("status") == "failed" and reason.startswith("parent weights "):
            from .rundir import DamagedRunError
            raise DamagedRunError(f"{reason} (needed by child {row.get('id')}: the run directory is "
                                  "damaged; restore the file from a copy)")

    def sync(self) -> None:
        """fsync the journal, then the lineage (the journal is never behind it)."""
        if self.journal is not None:
            self.journal.sync()
            self.writer.sync()

    def checkpoint(self, state: dict) -> None:
        """The engine's ``on_checkpoint`` (at most every ``CHECKPOINT_EVERY_S``):
        fsyncs, then the small ``state.json`` summary. Each event is flushed when
        appended (a killed driver loses nothing); this spaces out the fsyncs, so a
        power loss costs at most the last interval's work, which a resume re-runs."""
        from .rundir import save_state
        self.sync()
        save_state(self.paths, state)

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()
            self.writer.close()
