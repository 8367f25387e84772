"""The format of the search's journal events: a result written as a "done" event
and read back, and the error for an event a search does not reproduce. The events
are the run's one source of truth (``engine`` docstring); this module knows their
format, ``Search.replay`` what they mean."""
from __future__ import annotations

import dataclasses
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
