"""Checkpoint and resume of a ``Search``: ``state_dict`` / ``load_state_dict`` /
``replay``, kept apart from the loop itself (``engine.py``).

A checkpoint is plain JSON: members (genome strings, fitness, weights paths), the
strategy's state, the numpy bit-generator state, counters, the duplicate cache and
the DEAP logbook. Lineage rows written after the last checkpoint (a driver killed
between the two writes) are *replayed*: their jobs are not run again, their rows
not written again, and duplicates regenerate identically from the restored rng.
"""
from __future__ import annotations

import os
import time
from typing import Any

from ..errors import ConfigError
from ..evaluate.base import Job, Result
from ..genome.base import space_to_dict
from ..store.lineage import COLUMNS
from .toolbox import member_from_dict, tools


class Checkpointing:
    """Mixin of ``Search``: every attribute used here is set by ``Search.__init__``."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (JSON-able)."""
        return {
            "version": 1, "genome_type": self.genome_type, "space": space_to_dict(self.space),
            "strategy": self.strategy.name, "strategy_state": self.strategy.state_dict(),
            "rng": self.rng.bit_generator.state, "seeds_used": self.var.seeds_used,
            "elapsed": self.elapsed if self._t0 is None else time.monotonic() - self._t0,
            "counters": {k: getattr(self, k) for k in
                         ("next_id", "births", "spent", "trained", "duplicates", "children")},
            "members": [m.to_dict() for m in self.members.values()],
            "best": None if not len(self.hof) else self.hof[0].to_dict(),
            "pareto": None if self.pareto is None else [m.to_dict() for m in self.pareto],
            "inflight": [[mid, job is not None] for mid, (_, job) in self.inflight.items()]
            + [[job.id, True] for job in self._resubmit],
            "twins": [[k, v] for k, v in self.twins.items()],
            "cache": self.cache.state_dict(),
            "logbook": [dict(r) for r in self.logbook],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict`` into this (freshly built, same-config) Search; its
        in-flight jobs are resubmitted when ``run`` starts (or taken from ``replay``)."""
        for field, mine in (("genome_type", self.genome_type), ("strategy", self.strategy.name),
                            ("space", space_to_dict(self.space))):
            if state.get(field) != mine:
                raise ConfigError("checkpoint", field, state.get(field), f"this search has {mine!r}")
        pareto = self.strategy.pareto
        self.members = {d["id"]: member_from_dict(d, pareto) for d in state["members"]}
        self.strategy.load_state_dict(state["strategy_state"], self.members)
        self.rng.bit_generator.state = state["rng"]
        self.var.seeds_used = int(state.get("seeds_used", 0))
        self.elapsed = float(state["elapsed"])
        for k, v in state["counters"].items():
            setattr(self, k, v)
        self.hof.clear()
        if state["best"] is not None:
            b = state["best"]
            self.hof.insert(self.members.get(b["id"]) or member_from_dict(b, pareto))
        if self.pareto is not None:
            self.pareto.clear()
            self.pareto.update([member_from_dict(d, pareto) for d in state["pareto"]])
        self.cache.load_state_dict(state["cache"])
        self.twins = {int(k): list(v) for k, v in state["twins"]}
        self.inflight, self.parent_refs, self._resubmit = {}, {}, []
        for mid, has_job in state["inflight"]:
            m = self.members[mid]
            if has_job:
                self._resubmit.append(self._job(m))  # sent (or replayed) when run() starts
            else:
                self.inflight[mid] = (m, None)  # waits for its twin
        self.logbook = tools.Logbook()
        for r in state["logbook"]:
            self.logbook.record(**r)

    def replay(self, rows: list[dict]) -> None:
        """Lineage rows written after the checkpoint was taken (a driver killed
        between the two): their jobs are not run again and the rows are not emitted
        again; duplicates regenerate identically from the restored rng."""
        for row in rows:
            self.replayed[int(row["id"])] = row


def result_from_row(row: dict, job: Job) -> Result:
    known = set(COLUMNS)
    extra = {k: v for k, v in row.items() if k not in known}
    extra["_birth"] = int(row.get("birth", 0))
    fit = row.get("fitness")
    weights = job.weights_out if job.weights_out and os.path.exists(job.weights_out) else None
    return Result(job.id, "ok" if row.get("status") == "ok" else "failed",
                  None if fit in (None, "") else float(fit), row.get("reason") or "",
                  _int(row.get("params")), _int(row.get("flops")), _float(row.get("trained_epochs")),
                  _float(row.get("train_seconds")) or 0.0, row.get("worker") or "",
                  row.get("inherited") or "none", weights, extra, int(row.get("attempts") or 1))


def _int(v):
    return None if v in (None, "") else int(float(v))


def _float(v):
    return None if v in (None, "") else float(v)
