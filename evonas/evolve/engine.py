"""The search loop: a strategy, an Evaluator and a record sink, plus small parts.

``Search.run()`` keeps every evaluator slot busy (asynchronous: a free slot gets a
new child from the current population at once), until a budget ends::

    while time is left:
        while a slot is free and the budgets allow: make a child  -> journal "child"
        if nothing in flight: stop
        for result in release(evaluator.poll()): finish it        -> journal "done"
    on the time budget: evaluator.cancel_all() (cancelled jobs leave no row)

The parts, each a module with its own tests: ``dedup`` (a network already
evaluated is a duplicate: reuse its result | resample another child | off; one
being trained right now waits for that result), ``weights_refs`` (weights files
freed by reference count), ``release`` (``ordered=True``, the CLI's default:
results enter in submission order, the same lineage for a seed with any number of
workers; ``ordered=False``: as they complete, as Real et al.), ``record`` (the
lineage row), ``budget`` (which budget is spent), ``standing`` (best, Pareto
front, logbook) and ``journal`` (the events).

One source of truth: every decision that is not a pure function of the seed (a
child made, a result taken, in that order) is an event passed to ``on_event``
(the CLI appends it to ``journal.jsonl``). ``replay(events)`` rebuilds the whole
state -- strategy, rng, duplicate cache, members, best, counters -- by running
the same code on the journal instead of the evaluator, so resume is exact.
"""
from __future__ import annotations

import math
import os
import time
from collections import Counter
from typing import Any, Callable, Iterable, Optional

import numpy as np

from .. import faults
from ..errors import ConfigError
from ..evaluate.base import INHERIT, Evaluator, Job, Result
from ..genome.base import GENOMES, space_to_dict
from .base import STRATEGIES, Proposal
from .budget import Budget, check_limit
from .dedup import DEDUP, HashCache, Twins, look_up
from .journal import JOURNAL_VERSION, done_event, mismatch, result_of
from .record import Outcome, RecordSink
from .release import Release
from .standing import Standing
from .toolbox import Member, Variation, individual_class
from .weights_refs import WeightRefs, remove


class Search:
    """One search. ``strategy_args`` go to the strategy (e.g. ``population``,
    ``sample``); ``mutation`` is ``["edge_op:2", ...]`` or ``{name: weight}`` (None:
    all registered with their weights); ``on_record(dict)`` gets one lineage row per
    finished individual; ``on_event(dict)`` every journal event (JSON-able);
    ``on_checkpoint(snapshot)`` a small summary (``snapshot()``) at most every
    ``checkpoint_every_s`` seconds, e.g. to fsync the journal and lineage.

    The defaults are ``python -m evonas.run``'s (``evonas.config.Config``; this layer
    cannot import it, tests/test_config_sections.py compares them): the tree genome,
    300 evaluations capped at 600 s (``max_seconds=None``: no time limit), results
    in submission order. ``max_evaluations=None, max_seconds=None`` is refused."""

    def __init__(self, evaluator: Evaluator, genome_type: str = "tree", *, space: Any = None,
                 strategy: str = "aging", strategy_args: Optional[dict] = None, mutation=None,
                 seed: int = 0, max_evaluations: Optional[int] = 300, max_seconds: Optional[float] = 600.0,
                 max_duplicates: Optional[int] = None, dedup: str = "reuse", count_duplicates: bool = False,
                 confirm_hash: bool = True, resample_tries: int = 20, inherit: str = "none",
                 weights_dir: Optional[str] = None, on_record: Optional[Callable[[dict], Any]] = None,
                 on_event: Optional[Callable[[dict], Any]] = None,
                 on_checkpoint: Optional[Callable[[dict], Any]] = None, log_every: int = 10,
                 seed_genomes: tuple = (), checkpoint_every_s: float = 0.0, ordered: bool = True):
        cls = GENOMES.get(genome_type)
        self.genome_type, self.cls = genome_type, cls
        self.space = space if space is not None else cls.Space()
        _check_choice("dedup", dedup, DEDUP)
        _check_choice("inherit", inherit, INHERIT)
        check_limit("resample_tries", resample_tries)
        self.budget = Budget(max_evaluations, max_seconds, max_duplicates, count_duplicates)
        self.evaluator, self.seed = evaluator, int(seed)
        self.dedup, self.resample_tries = dedup, resample_tries
        self.inherit, self.weights_dir = inherit, weights_dir
        self.on_event, self.on_checkpoint = on_event, on_checkpoint
        self.checkpoint_every_s, self._last_checkpoint = float(checkpoint_every_s), -math.inf
        self.rng = np.random.default_rng(self.seed)
        self.var = Variation(cls, self.space, mutation, seed_genomes)
        self.strategy = STRATEGIES.get(strategy)(self.var, **(strategy_args or {}))
        self.individual = individual_class(self.strategy.pareto)
        # the parts: duplicate cache and twins, weights by refcount, ordered release, rows, best
        self.cache = HashCache(confirm_hash)
        self.twins, self.refs, self.release = Twins(self.cache), WeightRefs(), Release(ordered)
        self.record, self.standing = RecordSink(on_record), Standing(self.strategy.pareto, log_every)
        self.next_id = self.births = self.trained = self.duplicates = self.children = self.events = 0
        self.elapsed, self.stop_reason, self.cancelled = 0.0, "", []
        self.members: dict[int, Member] = {}     # alive, in flight, parents of in-flight, best
        self.inflight: dict[int, tuple[Member, Optional[Job]]] = {}  # Job None: waits for a twin
        self.pins: Counter[int] = Counter()       # member id -> in-flight children reading its weights
        self._unsent: list[Job] = []              # in flight, not (yet, again) at the evaluator
        self._replaying, self._event_t = False, 0.0
        self._t0: Optional[float] = None  # monotonic start (minus earlier elapsed) while running

    # --- run ---------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Search until a budget ends; return ``summary()``."""
        self._t0 = time.monotonic() - self.elapsed
        try:
            if not self.events:
                self._log({"e": "search", "version": JOURNAL_VERSION, **self._identity()})
            self._log({"e": "run"})
            unsent, self._unsent = self._unsent, []
            for job in unsent:  # replayed or cancelled earlier: run (again)
                self._submit(job)
            self.stop_reason = self._loop()
            self._log({"e": "stop", "reason": self.stop_reason})
        finally:
            self.elapsed, self._t0 = time.monotonic() - self._t0, None
        return self.summary()

    def _loop(self) -> str:
        while True:
            if self._time_up():
                for r in self.release.drain():  # finished work is kept, not cancelled
                    self._finish(r)
                self._cancel()
                return "max_seconds"
            self._fill()
            if not self.inflight:
                return self._budget_left() or "strategy finished"
            due = self.release.next_due(self._running())
            if due is not None:
                self._finish(due)  # ordered: one tell, then its asks
                continue
            left = self.budget.seconds_left(time.monotonic() - self._t0)
            for r in self.release.accept(self.evaluator.poll(left)):
                self._finish(r)

    def _running(self) -> Iterable[int]:
        return (i for i, (_, job) in self.inflight.items() if job is not None)

    def _time_up(self) -> bool:
        return self.budget.seconds_left(time.monotonic() - self._t0) == 0.0

    def _counted(self) -> int:
        return self.budget.counted(self.trained, self.duplicates)

    def _budget_left(self) -> str:
        """'' while children may be made, else the budget that is spent."""
        return self.budget.spent(self.trained, self.duplicates)

    def _fill(self) -> None:
        slots = max(1, int(getattr(self.evaluator, "slots", 1)))
        while sum(1 for _ in self._running()) < slots and not self._budget_left() and not self._time_up():
            if not self._child():
                return

    def _now(self) -> float:
        """Seconds since the run began, continued across resume (a replayed event's own time)."""
        if self._replaying:
            return self._event_t
        return self.elapsed if self._t0 is None else time.monotonic() - self._t0

    def _log(self, event: dict) -> float:
        """Journal one event (stamped with the run time ``t``); returns ``t``."""
        t = self._now()
        self.events += 1
        if not self._replaying and self.on_event is not None:
            self.on_event({**event, "t": t})
        return t

    # --- creating children ---------------------------------------------------------------
    def _child(self, expect: Optional[dict] = None) -> bool:
        """Ask for one child and launch it; False if the strategy has none now.
        ``expect``: the journal's "child" event this must reproduce (replay)."""
        prop = self.strategy.ask(self.rng)
        self._drain()
        if prop is None:
            if expect is not None:
                raise mismatch(expect, "the strategy proposed nothing")
            return False
        prop, h, hit = look_up(prop, self.cache, self.dedup, self._resample, self.resample_tries)
        m = self.individual(self.next_id, prop.genome, prop.parent_ids, prop.operator, h)
        if expect is not None and (expect.get("id") != m.id or expect.get("hash") != h):
            raise mismatch(expect, f"this search made child {m.id} of hash {h}")
        t = self._log({"e": "child", "id": m.id, "hash": h})
        self.next_id += 1
        self.children += 1
        self.members[m.id] = m
        self.strategy.submitted(m)
        if hit is not None:
            self.duplicates += 1
            self._duplicate(m, hit, t)
            return True
        twin = self.twins.twin_of(h, m.genome, lambda i: self.members[i].genome) if self.dedup != "off" else None
        if twin is not None:  # the same network is being trained right now: wait for its result
            self.duplicates += 1
            self.inflight[m.id] = (m, None)
            self.twins.wait(twin, m.id)
            return True
        self.trained += 1
        m.started_s = t
        job = self._job(m)
        self.inflight[m.id] = (m, job)
        self.twins.started(h, m.id)
        for pid in job.parent_ids:
            self.pins[pid] += 1
        if not self._replaying:  # replayed jobs still in flight are sent by run()
            self._submit(job)
        return True

    def _resample(self, prop: Proposal) -> Optional[Proposal]:
        nxt = self.strategy.resample(prop, self.rng)
        self._drain()
        return nxt

    def _job(self, m: Member) -> Job:
        parent = self.members.get(m.parent_ids[0]) if m.parent_ids else None
        out = os.path.join(self.weights_dir, f"{m.id}.safetensors") if self.weights_dir else None
        return Job(m.id, m.genome, m.parent_ids, m.operator, self.inherit,
                   parent.genome if parent else None, parent.weights if parent else None, out,
                   seed=(self.seed * 1_000_003 + m.id) % 2**31)

    def _submit(self, job: Job) -> None:
        self.evaluator.submit(job)
        faults.point("driver_inflight")

    # --- finishing ---------------------------------------------------------------------
    def _duplicate(self, m: Member, hit: dict, t: float) -> None:
        m.status, m.params, m.flops = "duplicate", hit["params"], hit["flops"]
        m.lineage_epochs = float(hit.get("lineage_epochs", 0.0))
        m.fitness.values = self.strategy.objectives(m, hit["fitness"])
        # the very same genome: its trained weights serve as m's. An isomorphic twin with
        # other node names (or NB201 convs on a dead edge, which the hash ignores) has
        # other tensor names, so its file would not load into m's network: no weights.
        same = hit.get("genome") == m.genome.to_string()
        m.weights = self.refs.share(hit["weights"]) if same else None
        self._complete(m, Outcome(reason=f"duplicate of {hit['id']}", finished_s=t, extra=dict(hit["extra"])))

    def _finish(self, r: Result, replayed: Optional[dict] = None) -> None:
        entry = self.inflight.get(r.id)
        if entry is None or entry[1] is None:
            if replayed is not None:
                raise mismatch(replayed, f"job {r.id} is not in flight here")
            return  # not ours (or a cancelled job's late result)
        t = self._log(done_event(r))
        del self.inflight[r.id]
        m, job = entry
        waiting = self.twins.finished(m.arch_hash, m.id)
        ok = r.status == "ok" and r.fitness is not None and math.isfinite(r.fitness)
        m.status, m.params, m.flops = ("ok" if ok else "failed"), r.params, r.flops
        m.lineage_epochs = self._lineage_epochs(job, r)
        if r.weights and not ok:
            remove(r.weights)
        m.weights = self.refs.acquire(job.weights_out) if r.weights and ok else None
        if ok:
            m.fitness.values = self.strategy.objectives(m, float(r.fitness))
            # the learning curve goes to curves.jsonl once, not into every checkpoint's cache
            self.cache.put(m.arch_hash, m.genome, {
                "id": m.id, "fitness": float(r.fitness), "params": r.params, "flops": r.flops,
                "weights": m.weights, "lineage_epochs": m.lineage_epochs,
                "extra": {k: v for k, v in r.extra.items() if k != "curve"}})
        reason = r.reason if ok or r.reason else "failed without a reason"
        self._complete(m, Outcome(r.epochs, r.train_seconds, r.worker, r.inherited, r.attempts, reason, t,
                                  dict(r.extra)))
        for tid in waiting:
            twin, _ = self.inflight.pop(tid)
            hit = self.cache.get(m.arch_hash, twin.genome) if ok else None
            if hit is not None:
                self._duplicate(twin, hit, t)
            else:
                twin.status = "failed"
                self._complete(twin, Outcome(reason=f"duplicate of {m.id}, which failed", finished_s=t))
        for pid in job.parent_ids:
            self.pins[pid] -= 1
            if not self.pins[pid]:
                del self.pins[pid]
                self._forget(pid)

    def _lineage_epochs(self, job: Job, r: Result) -> float:
        """``r``'s own epochs, plus the parent's ``lineage_epochs`` when it inherited
        (a parent stays in ``members`` while a child in flight reads its weights)."""
        own = float(r.epochs or 0.0)
        parent = self.members.get(job.parent_ids[0]) if job.parent_ids else None
        if r.inherited != "none" and parent is not None:
            return parent.lineage_epochs + own
        return own

    def _complete(self, m: Member, outcome: Outcome) -> None:
        m.birth = self.births
        self.births += 1
        self.strategy.tell(m)
        if m.status != "failed":
            replaced = self.standing.update(m)
            if replaced is not None:
                self._forget(replaced)
        self._drain()
        self._forget(m.id)
        rec = self.standing.log(m.birth, self.strategy.alive.values())
        if rec is not None:
            self._log({"e": "log", **rec})
        self.record.emit(m, outcome)
        if (self.on_checkpoint is not None and not self._replaying
                and time.monotonic() - self._last_checkpoint >= self.checkpoint_every_s):
            self.on_checkpoint(self.snapshot())
            self._last_checkpoint = time.monotonic()

    # --- member lifetime ------------------------------------------------------------------
    def _drain(self) -> None:
        for m in self.strategy.drain_evicted():
            self._forget(m.id)

    def _forget(self, mid: int) -> None:
        """Forget member ``mid`` (dropping its reference on its weights file) once it
        is not alive, not best, not in flight and no in-flight child reads its weights."""
        m = self.members.get(mid)
        if (m is None or mid in self.strategy.alive or mid in self.inflight or mid in self.pins
                or self.standing.is_best(mid)):
            return
        del self.members[mid]
        self.refs.release(m.weights)

    def _cancel(self) -> None:
        """Drop in-flight work at the evaluator (no lineage rows). The jobs stay in
        flight here and are sent again by a later ``run()``, as after a resume."""
        self.cancelled = sorted(set(self.evaluator.cancel_all()) | set(self.inflight))
        self._unsent = sorted((job for _, job in self.inflight.values() if job is not None), key=lambda j: j.id)

    # --- resume -------------------------------------------------------------------------
    def replay(self, events: Iterable[dict], written: Iterable[int] = ()) -> None:
        """Rebuild, on a fresh Search of the same settings, the state of the run that
        journaled ``events``; ``run()`` then continues it (sending the jobs still in
        flight). Results come from the journal; rows of ``written`` ids are not emitted
        again. ConfigError at the first event this search does not reproduce."""
        self._replaying, self.record.skip = True, set(written)
        try:
            for i, ev in enumerate(events):
                self._replay_one(i, ev)
        finally:
            self._replaying, self.record.skip = False, set()
        self._unsent = sorted((job for _, job in self.inflight.values() if job is not None), key=lambda j: j.id)

    def _replay_one(self, i: int, ev: dict) -> None:
        if not isinstance(ev, dict) or not isinstance(ev.get("t"), (int, float)):
            raise ConfigError("journal", f"event {i}", ev, "not a journal event")
        self._event_t = float(ev["t"])
        self.elapsed = max(self.elapsed, self._event_t)
        kind = ev.get("e")
        if kind == "search":
            for k, v in self._identity().items():
                if ev.get(k) != v:
                    raise ConfigError("journal", k, ev.get(k), f"the journal's run has this, this search {v!r}")
            self.events += 1
        elif kind == "child":
            self._child(expect=ev)
        elif kind == "done":
            entry = self.inflight.get(ev.get("id"))
            if entry is None or entry[1] is None:
                raise mismatch(ev, f"job {ev.get('id')} is not in flight here")
            self._finish(result_of(ev, entry[1]), replayed=ev)
        elif kind in ("run", "stop"):
            self.events += 1
        elif kind == "log":
            pass  # the replayed "done" before it logged the same record again
        else:
            raise ConfigError("journal", f"event {i}", kind, "unknown event kind")

    def _identity(self) -> dict:
        return {"genome_type": self.genome_type, "space": space_to_dict(self.space),
                "strategy": self.strategy.name, "seed": self.seed}

    # --- results ------------------------------------------------------------------------
    def best(self) -> Optional[Member]:
        return self.standing.best()

    @property
    def evaluated(self) -> int:
        """Trained networks whose result is in (``trained`` counts jobs sent)."""
        return self.trained - sum(1 for _ in self._running())

    def snapshot(self) -> dict[str, Any]:
        """A small summary of where the run stands (its size does not grow with the
        run): counters, elapsed seconds, the best. Not needed to resume."""
        return {"version": JOURNAL_VERSION, "events": self.events, "elapsed": self._now(),
                "counters": {k: getattr(self, k) for k in ("next_id", "births", "trained", "duplicates",
                                                           "children")},
                "best": self.standing.best_dict()}

    def summary(self) -> dict[str, Any]:
        out = {"stop_reason": self.stop_reason, "evaluations": self.trained, "duplicates": self.duplicates,
               "children": self.children, "births": self.births, "seconds": self.elapsed,
               "cancelled": list(self.cancelled), "best": self.standing.best_dict(weights=True)}
        if self.standing.pareto is not None:
            out["pareto_front"] = self.standing.front(self.strategy.objective)
        return out


def _check_choice(field: str, v: Any, allowed: tuple[str, ...]) -> None:
    if v not in allowed:
        raise ConfigError("search", field, v, f"must be one of {', '.join(allowed)}")
