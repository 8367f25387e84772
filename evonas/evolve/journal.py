"""The search's journal events: how a result is written as a "done" event and read
back, and how ``Search.replay`` dispatches each event of a journal. The events are
the run's one source of truth (``engine`` docstring); this module knows their
format, the engine knows what they mean."""
from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import ConfigError
from ..evaluate.base import Job, Result

JOURNAL_VERSION = 1
_RESULT_FIELDS = tuple(f.name for f in dataclasses.fields(Result))


def done_event(r: Result) -> dict:
    """A result as a "done" event; the weights path is implied by the job (``weights_out``)."""
    ev = {"e": "done", **{k: getattr(r, k) for k in _RESULT_FIELDS}}
    ev["weights"] = bool(r.weights)
    return ev


def result_of(ev: dict, job: Job) -> Result:
    kw = {k: ev[k] for k in _RESULT_FIELDS if k in ev}
    kw["weights"] = job.weights_out if ev.get("weights") else None
    return Result(**kw)


def mismatch(ev: dict, what: str) -> ConfigError:
    return ConfigError("journal", f"{ev.get('e')} event of id {ev.get('id')}", ev.get("hash", ev.get("id")),
                       f"is not reproduced ({what}): the journal belongs to a different seed, config, "
                       "plug-in or evonas version")


def replay_one(search: Any, i: int, ev: dict) -> None:
    """Apply journal event ``i`` to ``search`` (a ``Search`` in replay mode): the same
    code paths as the live run, fed from the journal instead of the evaluator."""
    if not isinstance(ev, dict) or not isinstance(ev.get("t"), (int, float)):
        raise ConfigError("journal", f"event {i}", ev, "not a journal event")
    search._event_t = float(ev["t"])
    search.elapsed = max(search.elapsed, search._event_t)
    kind = ev.get("e")
    if kind == "search":
        for k, v in search._identity().items():
            if ev.get(k) != v:
                raise ConfigError("journal", k, ev.get(k), f"the journal's run has this, this search {v!r}")
        search.events += 1
    elif kind == "child":
        search._child(expect=ev)
    elif kind == "done":
        entry = search.inflight.get(ev.get("id"))
        if entry is None or entry[1] is None:
            raise mismatch(ev, f"job {ev.get('id')} is not in flight here")
        search._finish(result_of(ev, entry[1]), replayed=ev)
    elif kind in ("run", "stop"):
        search.events += 1
    elif kind == "log":
        pass  # the replayed "done" before it logged the same record again
    else:
        raise ConfigError("journal", f"event {i}", kind, "unknown event kind")
