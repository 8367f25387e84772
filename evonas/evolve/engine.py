"""The search loop: strategy x evaluator x budgets x duplicates x weights x resume.

``Search.run()`` keeps every evaluator slot busy (asynchronous: a free slot gets a
new child from the current population at once), until a budget ends::

    while time is left:
        while a slot is free and the evaluation budget allows:
            proposal = strategy.ask(rng)            # None: barrier or strategy done
            if its arch_hash was evaluated: dedup (reuse the fitness | resample | off)
            else: submit a Job (id in creation order, parent weights, inherit mode)
        if nothing in flight: stop
        for result in evaluator.poll(): finish it -> strategy.tell, lineage row, checkpoint
    on the time budget: evaluator.cancel_all() (cancelled jobs leave no row)

Order: by default results enter the population as they complete (asynchronous,
as Real et al.), so with several workers the lineage depends on which finishes
first. ``ordered=True`` takes them in submission order (id), one tell then its
asks, which gives the same lineage for a seed with any number of workers, at the
cost of workers idling while an older trial is still running.

Budgets: ``max_evaluations`` counts submitted jobs (failed ones included) and, when
``count_duplicates``, reused duplicates; ``max_seconds`` is wall-clock (carried over
on resume); ``max_children`` (default 50 x max_evaluations) bounds children of any
kind, so a search whose children are all duplicates still ends. A broken operator
raises ``PluginError`` naming it (see ``toolbox.Variation``).
"""
from __future__ import annotations

import math
import os
import time
from typing import Any, Callable, Optional

import numpy as np

from .. import faults
from ..config import DEDUP, INHERIT
from ..errors import ConfigError
from ..evaluate.base import Evaluator, Job, Result
from ..genome.base import GENOMES
from .base import STRATEGIES, Proposal
from .checkpoint import Checkpointing, result_from_row
from .dedup import HashCache
from .toolbox import Member, Variation, make_toolbox, statistics, tools



class Search(Checkpointing):
    """One search. ``strategy_args`` go to the strategy (e.g. ``population``,
    ``sample``); ``mutation`` is ``["edge_op:2", ...]`` or ``{name: weight}`` (None:
    all registered with their weights); ``on_record(dict)`` gets one lineage row per
    finished individual; ``on_checkpoint(state)`` the ``state_dict()`` after it, at
    most every ``checkpoint_every_s`` seconds (0: after every individual; the state
    is only built when it is due, as it grows with the run)."""

    def __init__(self, evaluator: Evaluator, genome_type: str = "nb201", *, space: Any = None,
                 strategy: str = "aging", strategy_args: Optional[dict] = None, mutation=None,
                 seed: int = 0, max_evaluations: Optional[int] = None, max_seconds: Optional[float] = None,
                 max_children: Optional[int] = None, dedup: str = "reuse", count_duplicates: bool = True,
                 confirm_hash: bool = True, resample_tries: int = 20, inherit: str = "none",
                 weights_dir: Optional[str] = None, on_record: Optional[Callable[[dict], Any]] = None,
                 on_checkpoint: Optional[Callable[[dict], Any]] = None, log_every: int = 10,
                 seed_genomes: tuple = (), checkpoint_every_s: float = 0.0, ordered: bool = False):
        cls = GENOMES.get(genome_type)
        self.genome_type, self.cls = genome_type, cls
        self.space = space if space is not None else cls.Space()
        _check_choice("dedup", dedup, DEDUP)
        _check_choice("inherit", inherit, INHERIT)
        if max_evaluations is None and max_seconds is None:
            raise ConfigError("search", "budget", None, "set max_evaluations and/or max_seconds (a run must end)")
        for field, v in (("max_evaluations", max_evaluations), ("max_children", max_children),
                         ("max_seconds", max_seconds), ("resample_tries", resample_tries)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0
                                  or not math.isfinite(v)):
                raise ConfigError("search", field, v, "must be a finite number >= 0")
        self.evaluator, self.seed = evaluator, int(seed)
        self.max_evaluations, self.max_seconds = max_evaluations, max_seconds
        self.max_children = max_children if max_children is not None else (
            50 * max_evaluations + 100 if max_evaluations is not None else None)
        self.dedup, self.count_duplicates, self.resample_tries = dedup, count_duplicates, resample_tries
        self.inherit, self.weights_dir = inherit, weights_dir
        self.on_record, self.on_checkpoint, self.log_every = on_record, on_checkpoint, max(1, log_every)
        self.checkpoint_every_s, self._last_checkpoint = float(checkpoint_every_s), -math.inf
        self.ordered, self._held = bool(ordered), {}  # held: finished results not yet due (ordered)
        self.rng = np.random.default_rng(self.seed)
        self.var = Variation(cls, self.space, mutation, seed_genomes)
        self.strategy = STRATEGIES.get(strategy)(self.var, **(strategy_args or {}))
        self.toolbox = make_toolbox(self.var, self.strategy.pareto)
        self.cache = HashCache(confirm_hash)
        self.hof = tools.HallOfFame(1)
        # one entry per network: isomorphic duplicates share arch_hash and fitness
        self.pareto = tools.ParetoFront(lambda a, b: a.arch_hash == b.arch_hash) if self.strategy.pareto else None
        self.logbook, self.stats = tools.Logbook(), statistics()
        self.next_id = self.births = self.spent = self.trained = self.duplicates = self.children = 0
        self.elapsed, self.stop_reason, self.cancelled = 0.0, "", []
        self.members: dict[int, Member] = {}     # alive, in flight, parents of in-flight, best
        self.inflight: dict[int, tuple[Member, Optional[Job]]] = {}  # Job None: waits for a twin
        self.twins: dict[int, list[int]] = {}    # in-flight id -> ids of its waiting duplicates
        self.parent_refs: dict[int, int] = {}    # member id -> in-flight children reading its weights
        self.replayed: dict[int, dict] = {}      # lineage rows written but not in the checkpoint
        self._replay_due: list[Result] = []
        self._resubmit: list[Job] = []
        self._t0: Optional[float] = None  # monotonic start (minus earlier elapsed) while running

    # --- run ---------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Search until a budget ends; return ``summary()``."""
        self._t0 = time.monotonic() - self.elapsed
        try:
            for job in self._resubmit:
                self._send(job)
            self._resubmit = []
            while True:
                if self._time_up():
                    self._release_held(everything=True)  # finished work is kept, not cancelled
                    self._cancel()
                    self.stop_reason = "max_seconds"
                    break
                self._fill()
                if self._replay_due and self._replay_first():
                    continue
                if not self.inflight:
                    self.stop_reason = self._why_stopped()
                    break
                left = None if self.max_seconds is None else max(0.0, self._t0 + self.max_seconds - time.monotonic())
                if self._release_held():
                    continue
                for r in self.evaluator.poll(left):
                    if self.ordered:
                        self._held[r.id] = r
                    else:
                        self._finish(r)
        finally:
            self.elapsed, self._t0 = time.monotonic() - self._t0, None
        return self.summary()

    def _release_held(self, everything: bool = False) -> bool:
        """Ordered mode: finish the held result of the oldest job in flight, if it is
        there (one per call: each tell is followed by its own asks, so the lineage
        does not depend on which worker finished first); True if one was finished.
        ``everything``: finish all held results (the time budget is up)."""
        if everything:
            for rid in sorted(self._held):
                self._finish(self._held.pop(rid))
            return False
        running = [i for i, (_, job) in self.inflight.items() if job is not None]
        if running and min(running) in self._held:
            self._finish(self._held.pop(min(running)))
            return True
        return False

    def _time_up(self) -> bool:
        return self.max_seconds is not None and time.monotonic() - self._t0 >= self.max_seconds

    def _may_create(self) -> bool:
        if self.max_evaluations is not None and self.spent >= self.max_evaluations:
            return False
        if self.max_children is not None and self.children >= self.max_children:
            return False
        return not self._time_up()

    def _why_stopped(self) -> str:
        if self.max_evaluations is not None and self.spent >= self.max_evaluations:
            return "max_evaluations"
        if self.max_children is not None and self.children >= self.max_children:
            return "max_children"
        return "strategy finished"

    def _fill(self) -> None:
        slots = max(1, int(getattr(self.evaluator, "slots", 1)))
        while self._busy() < slots and self._may_create():
            prop = self.strategy.ask(self.rng)
            self._drain()
            if prop is None:
                return
            self._launch(prop)

    def _busy(self) -> int:
        return sum(1 for _, job in self.inflight.values() if job is not None)

    # --- creating children ---------------------------------------------------------------
    def _launch(self, prop: Proposal) -> None:
        h = prop.genome.arch_hash()
        hit = self.cache.get(h, prop.genome) if (self.dedup != "off" or prop.neutral) else None
        tries = 0
        while hit is not None and self.dedup == "resample" and not prop.neutral and tries < self.resample_tries:
            nxt = self.strategy.resample(prop, self.rng)
            self._drain()
            if nxt is None:
                break
            prop, tries = nxt, tries + 1
            h = prop.genome.arch_hash()
            hit = self.cache.get(h, prop.genome)
        m = self.toolbox.individual(self.next_id, prop.genome, prop.parent_ids, prop.operator, h)
        self.next_id += 1
        self.children += 1
        self.members[m.id] = m
        self.strategy.submitted(m)
        if hit is not None:
            self._duplicate(m, hit)
            return
        twin = self.cache.inflight.get(h) if self.dedup != "off" else None
        if twin in self.inflight and self.cache.same(self.members[twin].genome, m.genome):
            # the same network is being trained right now: wait for its result
            self.inflight[m.id] = (m, None)
            self.twins.setdefault(twin, []).append(m.id)
            self.spent += self.count_duplicates
            return
        self.spent += 1
        self.trained += 1
        self._send(self._job(m))

    def _job(self, m: Member) -> Job:
        parent = self.members.get(m.parent_ids[0]) if m.parent_ids else None
        out = os.path.join(self.weights_dir, f"{m.id}.safetensors") if self.weights_dir else None
        return Job(m.id, m.genome, m.parent_ids, m.operator, self.inherit,
                   parent.genome if parent else None, parent.weights if parent else None, out,
                   seed=(self.seed * 1_000_003 + m.id) % 2**31)

    def _now(self) -> float:
        """Seconds since the run began, continued across resume."""
        return self.elapsed if self._t0 is None else time.monotonic() - self._t0

    def _send(self, job: Job) -> None:
        m = self.members[job.id]
        m.started_s = self._now()
        self.inflight[job.id] = (m, job)
        self.cache.inflight[m.arch_hash] = job.id
        for pid in job.parent_ids:
            self.parent_refs[pid] = self.parent_refs.get(pid, 0) + 1
        if job.id in self.replayed:  # already in the lineage: use the written row
            self._replay_due.append(result_from_row(self.replayed[job.id], job))
        else:
            self.evaluator.submit(job)
            faults.point("driver_inflight")

    def _replay_first(self) -> bool:
        """Finish the replayed result due next (by birth); True if one was finished."""
        self._replay_due.sort(key=lambda r: r.extra.get("_birth", 0))
        r = self._replay_due[0]
        if r.extra.get("_birth", 0) > self.births and self._busy() > len(self._replay_due):
            return False  # a live job finishes first in the original order
        self._replay_due.pop(0)
        r.extra.pop("_birth", None)
        self._finish(r)
        return True

    # --- finishing ---------------------------------------------------------------------
    def _duplicate(self, m: Member, hit: dict) -> None:
        m.status, m.params, m.flops = "duplicate", hit["params"], hit["flops"]
        m.lineage_epochs = float(hit.get("lineage_epochs", 0.0))
        m.fitness.values = self.strategy.objectives(m, hit["fitness"])
        w = hit["weights"]
        if w and os.path.exists(w):  # same network: its trained weights serve as m's
            m.weights = w
        self.duplicates += 1
        self.spent += self.count_duplicates
        row = {"trained_epochs": 0.0, "train_seconds": 0.0, "worker": "", "inherited": "none",
               "attempts": 1, "reason": f"duplicate of {hit['id']}", **hit["extra"]}
        self._complete(m, row)

    def _finish(self, r: Result) -> None:
        entry = self.inflight.pop(r.id, None)
        if entry is None or entry[1] is None:
            return  # not ours (or a cancelled job's late result)
        m, job = entry
        if self.cache.inflight.get(m.arch_hash) == m.id:
            del self.cache.inflight[m.arch_hash]
        ok = r.status == "ok" and r.fitness is not None and math.isfinite(r.fitness)
        m.status, m.params, m.flops = ("ok" if ok else "failed"), r.params, r.flops
        m.lineage_epochs = self._lineage_epochs(job, r)
        m.weights = r.weights if r.weights and ok else None
        if r.weights and not ok:
            _remove(r.weights)
        if ok:
            m.fitness.values = self.strategy.objectives(m, float(r.fitness))
            # the learning curve goes to curves.jsonl once, not into every checkpoint's cache
            self.cache.put(m.arch_hash, m.genome, {
                "id": m.id, "fitness": float(r.fitness), "params": r.params, "flops": r.flops,
                "weights": m.weights, "lineage_epochs": m.lineage_epochs,
                "extra": {k: v for k, v in r.extra.items() if k != "curve"}})
        reason = r.reason if ok or r.reason else "failed without a reason"
        self._complete(m, {"trained_epochs": r.epochs, "train_seconds": r.train_seconds, "worker": r.worker,
                           "inherited": r.inherited, "attempts": r.attempts, "reason": reason, **r.extra})
        for tid in self.twins.pop(m.id, []):
            t, _ = self.inflight.pop(tid)
            hit = self.cache.get(m.arch_hash, t.genome) if ok else None
            if hit is not None:
                self.spent -= self.count_duplicates  # counted when it started waiting
                self._duplicate(t, hit)
            else:
                t.status = "failed"
                self._complete(t, {"trained_epochs": 0.0, "train_seconds": 0.0, "worker": "",
                                   "inherited": "none", "attempts": 1,
                                   "reason": f"duplicate of {m.id}, which failed"})
        for pid in job.parent_ids:
            self.parent_refs[pid] -= 1
            if not self.parent_refs[pid]:
                del self.parent_refs[pid]
                self._release(pid)

    def _lineage_epochs(self, job: Job, r: Result) -> float:
        """The training ``r``'s weights carry: its own epochs, plus the parent's
        ``lineage_epochs`` when it inherited (the parent stays in ``members`` while
        a child in flight reads its weights)."""
        own = float(r.epochs or 0.0)
        parent = self.members.get(job.parent_ids[0]) if job.parent_ids else None
        if r.inherited != "none" and parent is not None:
            return parent.lineage_epochs + own
        return own

    def _complete(self, m: Member, row: dict) -> None:
        m.birth = self.births
        self.births += 1
        self.strategy.tell(m)
        if m.status != "failed":
            old = self.hof[0].id if len(self.hof) else None
            self.hof.update([m])
            if old is not None and self.hof[0].id != old:
                self._release(old)
            if self.pareto is not None:
                self.pareto.update([m])
        self._drain()
        self._release(m.id)
        self._emit(m, row)

    def _emit(self, m: Member, row: dict) -> None:
        rec = {"id": m.id, "parent_ids": ";".join(map(str, m.parent_ids)), "operator": m.operator,
               "genome_type": self.genome_type, "genome": m.genome.to_string(), "arch_hash": m.arch_hash,
               "status": m.status, "fitness": m.value if m.status != "failed" else None,
               "params": m.params, "flops": m.flops, "trained_epochs": row.pop("trained_epochs"),
               "lineage_epochs": m.lineage_epochs, "inherited": row.pop("inherited"),
               "train_seconds": row.pop("train_seconds"), "started_s": m.started_s,
               "finished_s": self._now(), "attempts": row.pop("attempts"),
               "worker": row.pop("worker"), "birth": m.birth, "reason": row.pop("reason")}
        for k, v in row.items():
            rec.setdefault(k, v)  # Result.extra metrics; never overwrite a lineage column
        if m.birth % self.log_every == 0 and self.strategy.alive:
            self.logbook.record(birth=m.birth, **self.stats.compile(list(self.strategy.alive.values())))
        if self.on_record is not None and m.id not in self.replayed:
            faults.point("before_lineage_row")
            self.on_record(rec)
            faults.point("after_lineage_row")
        if self.on_checkpoint is not None and \
                time.monotonic() - self._last_checkpoint >= self.checkpoint_every_s:
            self.on_checkpoint(self.state_dict())
            self._last_checkpoint = time.monotonic()

    # --- weights files ------------------------------------------------------------------
    def _drain(self) -> None:
        for m in self.strategy.drain_evicted():
            self._release(m.id)

    def _release(self, mid: int) -> None:
        """Forget member ``mid`` (and delete its weights file, unless another live
        member shares it) once it is not alive, not best, not in flight and no
        in-flight child reads its weights."""
        m = self.members.get(mid)
        if (m is None or mid in self.strategy.alive or mid in self.inflight or mid in self.parent_refs
                or (len(self.hof) and self.hof[0].id == mid)):
            return
        del self.members[mid]
        if m.weights and not any(o.weights == m.weights for o in self.members.values()):
            _remove(m.weights)

    def _cancel(self) -> None:
        """Drop in-flight work (no lineage rows). The cancelled jobs stay listed as
        in flight in ``state_dict()`` (and for a later ``run()``): resuming re-runs them."""
        self.cancelled = sorted(set(self.evaluator.cancel_all()) | set(self.inflight))
        for mid, (m, job) in list(self.inflight.items()):
            if job is None:
                continue  # a waiting twin stays waiting
            del self.inflight[mid]
            self.cache.inflight.pop(m.arch_hash, None)
            for pid in job.parent_ids:
                self.parent_refs[pid] -= 1
                if not self.parent_refs[pid]:
                    del self.parent_refs[pid]
            self._resubmit.append(job)

    # --- results ------------------------------------------------------------------------
    def best(self) -> Optional[Member]:
        return self.hof[0] if len(self.hof) else None

    def summary(self) -> dict[str, Any]:
        b = self.best()
        out = {"stop_reason": self.stop_reason, "evaluations": self.trained, "duplicates": self.duplicates,
               "children": self.children, "births": self.births, "seconds": self.elapsed,
               "cancelled": list(self.cancelled),
               "best": None if b is None else {"id": b.id, "genome": b.genome.to_string(),
                                               "fitness": b.value, "weights": b.weights}}
        if self.pareto is not None:
            out["pareto_front"] = [{"id": m.id, "genome": m.genome.to_string(), "fitness": m.fitness.values[0],
                                    self.strategy.objective: m.fitness.values[1]} for m in self.pareto]
        return out


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _check_choice(field: str, v: Any, allowed: tuple[str, ...]) -> None:
    if v not in allowed:
        raise ConfigError("search", field, v, f"must be one of {', '.join(allowed)}")
