"""Engine: aging FIFO, tournament, async slots, budgets, dedup, weights, determinism, resume."""
import heapq
import json

import numpy as np
import pytest

from evonas.errors import ConfigError
from evonas.evaluate.base import FunctionEvaluator, Result
from evonas.evolve import Search
from evonas.evolve.toolbox import sel_tournament
from evonas.genome.nb201 import OPS, NB201Genome
from helpers import SCORE, nb201_fitness, untimed


def score(job):
    """Deterministic fitness of an NB201 genome, and a reported extra column."""
    ops = job.genome.ops
    return Result(job.id, "ok", fitness=nb201_fitness(ops),
                  params=sum(SCORE[o] > 1 for o in ops) * 100, extra={"test_acc": len(set(ops))})


def search(slots=1, **kw):
    rows = []
    kw.setdefault("strategy_args", {"population": 8, "sample": 3})
    kw.setdefault("max_evaluations", 60)
    kw.setdefault("confirm_hash", False)  # isomorphism checks cost ~70 ms each; tested below
    s = Search(FunctionEvaluator(score, slots=slots), "nb201", on_record=rows.append, **kw)
    return s, rows


def test_lineage_row_has_exactly_the_columns():
    s, rows = search()
    out = s.run()
    assert out["stop_reason"] == "max_evaluations"
    cols = ["id", "parent_ids", "operator", "genome_type", "genome", "arch_hash", "status", "fitness",
            "params", "flops", "trained_epochs", "lineage_epochs", "inherited", "train_seconds", "started_s",
            "finished_s", "attempts", "worker", "birth", "reason", "test_acc"]
    assert list(rows[0]) == cols
    assert [r["birth"] for r in rows] == list(range(len(rows)))
    assert rows[0]["parent_ids"] == "" and rows[-1]["parent_ids"].isdigit()
    assert out["best"]["fitness"] == max(r["fitness"] for r in rows if r["fitness"] is not None)


def test_aging_kills_the_oldest_not_the_worst():
    s, rows = search(strategy_args={"population": 5, "sample": 2}, max_evaluations=30, dedup="off")
    s.run()
    ok = [r for r in rows if r["status"] == "ok"]
    # the population is the last 5 children, whatever their fitness
    assert [m.id for m in s.strategy.queue] == [r["id"] for r in ok[-5:]]
    best_id = max(ok, key=lambda r: r["fitness"])["id"]
    if best_id not in [r["id"] for r in ok[-5:]]:
        assert best_id not in s.strategy.alive  # even the best ages out


def test_tournament_picks_best_of_sample():
    s, _ = search(max_evaluations=8, strategy_args={"population": 8, "sample": 3})
    s.run()
    pop = list(s.strategy.queue)
    rng = np.random.default_rng(5)
    idx = np.random.default_rng(5).integers(len(pop), size=3)
    assert sel_tournament(pop, 3, rng) is max((pop[i] for i in idx), key=lambda m: m.value)
    # S = P draws with replacement: the winner is the best of the drawn ones, never worse
    for seed in range(20):
        w = sel_tournament(pop, 50, np.random.default_rng(seed))
        assert w.value == max(m.value for m in pop)


class SimClock:
    """Fake evaluator of random durations on W workers (virtual clock)."""

    def __init__(self, slots, seed=0):
        self.slots, self.now, self.heap, self.busy_at_poll = slots, 0.0, [], []
        self.rng = np.random.default_rng(seed)

    def submit(self, job):
        heapq.heappush(self.heap, (self.now + self.rng.uniform(1, 10), job.id, job))

    def poll(self, timeout=None):
        self.busy_at_poll.append(len(self.heap))
        if not self.heap:
            return []
        self.now, _, job = heapq.heappop(self.heap)
        return [score(job)]

    def cancel_all(self):
        ids = [j.id for _, _, j in self.heap]
        self.heap.clear()
        return ids

    def close(self):
        pass


def test_async_keeps_every_worker_busy():
    ev = SimClock(4)
    s = Search(ev, "nb201", strategy_args={"population": 10, "sample": 3}, max_evaluations=80, dedup="off",
               ordered=False)  # completion order: no worker waits for an older trial
    s.run()
    assert s.trained == 80
    # no generation barrier: every poll before the budget tail sees all 4 workers busy
    tail = ev.busy_at_poll[:80 - 4 + 1]
    assert all(b == 4 for b in tail), ev.busy_at_poll


def test_submission_order_makes_the_lineage_independent_of_completion_order():
    """4 workers, random trial durations: by completion order the lineage depends on
    which trial ends first; in submission order it does not (same seed, any timing)."""
    def lineage(clock_seed, ordered):
        rows = []
        s = Search(SimClock(4, seed=clock_seed), "nb201", strategy_args={"population": 6, "sample": 2},
                   max_evaluations=60, seed=1, on_record=rows.append, ordered=ordered, confirm_hash=False)
        s.run()
        return rows
    assert untimed(lineage(0, True)) == untimed(lineage(1, True)) == untimed(lineage(2, True))
    assert untimed(lineage(0, False)) != untimed(lineage(1, False))  # the asynchronous order really differs
    rows = lineage(0, True)
    assert sum(r["status"] != "duplicate" for r in rows) == 60  # --evaluations counts trained networks
    assert [r["birth"] for r in rows] == list(range(len(rows)))


def test_function_evaluator_slots_no_barrier():
    s, rows = search(slots=4, dedup="off", max_evaluations=40)
    seen = []
    orig = s.evaluator.poll
    s.evaluator.poll = lambda timeout=None: (seen.append(len(s.evaluator._pending)), orig(timeout))[1]
    s.run()
    assert seen[:37] == [4] * 37


def test_same_seed_same_lineage_and_different_seed_differs():
    a = search(seed=3, slots=3)[1]
    s, b = search(seed=3, slots=3)
    s.run()
    search_a, rows_a = search(seed=3, slots=3)
    search_a.run()
    assert untimed(rows_a) == untimed(b)
    s2, c = search(seed=4, slots=3)
    s2.run()
    assert [r["genome"] for r in c] != [r["genome"] for r in b]
    assert a == []  # not run


def test_dedup_reuse_never_retrains():
    s, rows = search(max_evaluations=60, dedup="reuse", strategy_args={"population": 4, "sample": 4})
    out = s.run()
    ok = [r for r in rows if r["status"] == "ok"]
    dup = [r for r in rows if r["status"] == "duplicate"]
    assert len(ok) == 60 and dup, "greedy aging on a tiny population must produce duplicates"
    assert out["evaluations"] == 60 and out["duplicates"] == len(dup)  # counted apart
    assert len({r["arch_hash"] for r in ok}) == len(ok)
    first = {r["arch_hash"]: r for r in ok}
    for r in dup:
        assert r["fitness"] == first[r["arch_hash"]]["fitness"]
        assert r["reason"] == f"duplicate of {first[r['arch_hash']]['id']}"
        assert r["train_seconds"] == 0.0


def test_dedup_resample_and_off():
    s, rows = search(max_evaluations=60, dedup="resample", strategy_args={"population": 4, "sample": 4})
    s.run()
    assert len({r["arch_hash"] for r in rows if r["status"] == "ok"}) == sum(r["status"] == "ok" for r in rows)
    assert s.duplicates < 5  # resampling (20 tries) avoids almost all of them
    s, rows = search(max_evaluations=60, dedup="off", strategy_args={"population": 4, "sample": 4})
    s.run()
    assert all(r["status"] == "ok" for r in rows) and len({r["arch_hash"] for r in rows}) < 60


@pytest.mark.parametrize("limit", [200, None])
def test_all_duplicate_search_still_ends(limit):
    # every child is the same network: one is trained, the rest are duplicates
    s, rows = search(max_evaluations=10, dedup="reuse", max_duplicates=limit,
                     mutation=["edge_op"], strategy_args={"population": 1, "sample": 1})
    s.var.sample = lambda rng: NB201Genome(("none",) * 6)
    s.var.mutate = lambda g, rng: (NB201Genome(("none",) * 6), "edge_op")
    out = s.run()
    dups = limit if limit is not None else 10 * 10 + 100  # the default: a multiple of the evaluations
    assert out["stop_reason"] == "max_duplicates" and len(rows) == 1 + dups
    assert (out["evaluations"], out["duplicates"]) == (1, dups)


def test_count_duplicates_counts_them_as_evaluations():
    """The benchmark protocol's rule (every query pays): duplicates count too."""
    s, rows = search(max_evaluations=60, dedup="reuse", count_duplicates=True,
                     strategy_args={"population": 4, "sample": 4})
    out = s.run()
    assert out["evaluations"] + out["duplicates"] == 60 == len(rows) and out["duplicates"]


def test_seconds_budget_cancels_in_flight():
    import time

    class Slow(FunctionEvaluator):
        def poll(self, timeout=None):
            time.sleep(min(0.02, timeout or 0.02))
            return super().poll(timeout)

    ev = Slow(score, slots=4)
    s = Search(ev, "nb201", max_seconds=0.3, strategy_args={"population": 4, "sample": 2})
    t = time.monotonic()
    out = s.run()
    assert time.monotonic() - t < 3.0 and out["stop_reason"] == "max_seconds"
    assert out["cancelled"] and not ev._pending
    assert set(out["cancelled"]) <= set(s.inflight)  # still in flight here: a later run() re-runs them
    sent = []
    ev.submit = (lambda f: lambda job: (sent.append(job.id), f(job)))(ev.submit)
    s.budget.max_seconds = None
    s.budget.max_evaluations = s.trained + 4
    s.run()
    assert set(out["cancelled"]) & set(s.inflight) == set() and set(sent) >= {
        i for i in out["cancelled"] if i not in s.twins.training.values()}


def test_budget_required_and_config_errors():
    with pytest.raises(ConfigError, match="budget"):  # the defaults are the CLI's budgets; both off: refused
        Search(FunctionEvaluator(score), "nb201", max_evaluations=None, max_seconds=None)
    with pytest.raises(ConfigError, match="dedup"):
        Search(FunctionEvaluator(score), "nb201", max_evaluations=3, dedup="maybe")
    with pytest.raises(ConfigError, match="mutation"):
        Search(FunctionEvaluator(score), "nb201", max_evaluations=3, mutation=["nope"])
    with pytest.raises(ConfigError, match="weight"):
        Search(FunctionEvaluator(score), "nb201", max_evaluations=3, mutation=["edge_op:-1"])


def journaled(slots=1, **kw):
    """A full run with its journal: (search, rows, events, events journaled before each row)."""
    s, rows = search(slots=slots, **kw)
    events, at = [], []
    s.on_event = events.append
    s.record.on_record = lambda r: (rows.append(r), at.append(len(events)))
    s.run()
    return s, rows, json.loads(json.dumps(events)), at


@pytest.mark.parametrize("slots, ordered", [(1, False), (3, False), (3, True)])
def test_resume_by_replay_gives_the_same_lineage(slots, ordered):
    """Killed after any event: a fresh Search replays the journal up to there (rows
    already written are not emitted again, the others are), then runs on; the
    lineage equals the uninterrupted one and no finished job is evaluated again."""
    kw = dict(seed=7, max_evaluations=50, ordered=ordered)
    full, rows_full, events, at = journaled(slots, **kw)
    assert [e["e"] for e in events[:2]] == ["search", "run"] and events[-1]["e"] == "stop"
    for k in sorted({3, 10, len(events) // 3, len(events) // 2, len(events) - 2}):
        written = [r for r, n in zip(rows_full, at) if n <= k]
        done = {e["id"] for e in events[:k] if e["e"] == "done"}
        again, rows = search(slots=slots, **kw)
        calls = []
        again.evaluator.submit = (lambda f: lambda job: (calls.append(job.id), f(job)))(again.evaluator.submit)
        again.replay(events[:k], written={r["id"] for r in written})
        again.run()
        assert untimed(written + rows) == untimed(rows_full), k
        assert not done & set(calls), "a finished job was evaluated again"


def test_replay_of_another_search_is_refused():
    _, _, events, _ = journaled(seed=1, max_evaluations=20)
    other, _ = search(seed=2, max_evaluations=20)
    with pytest.raises(ConfigError, match="seed"):
        other.replay(events)
    tampered = [dict(e, hash="0" * 16) if e["e"] == "child" and e["id"] == 5 else e for e in events]
    with pytest.raises(ConfigError, match="not reproduced"):
        search(seed=1, max_evaluations=20)[0].replay(tampered)


def test_replay_rebuilds_the_strategy_state_without_state_dicts():
    full, _, events, _ = journaled(slots=2, seed=4, max_evaluations=40)
    again, _ = search(slots=2, seed=4, max_evaluations=40)
    again.replay(events)
    assert [m.id for m in again.strategy.queue] == [m.id for m in full.strategy.queue]
    assert again.rng.bit_generator.state == full.rng.bit_generator.state
    assert (again.births, again.trained, again.duplicates) == (full.births, full.trained, full.duplicates)
    assert again.best().id == full.best().id and sorted(again.members) == sorted(full.members)
    assert again.standing.logbook == full.standing.logbook


def test_weights_paths_and_cleanup(tmp_path):
    def with_weights(job):
        r = score(job)
        open(job.weights_out, "w").write("w")
        r.weights = job.weights_out
        return r

    jobs = []
    ev = FunctionEvaluator(lambda j: (jobs.append(j), with_weights(j))[1], slots=2)
    s = Search(ev, "nb201", max_evaluations=40, strategy_args={"population": 5, "sample": 2},
               weights_dir=str(tmp_path), inherit="shape", dedup="off")
    s.run()
    child = next(j for j in jobs if j.parent_ids)
    assert child.inherit == "shape" and child.parent_genome is not None
    assert child.parent_weights == str(tmp_path / f"{child.parent_ids[0]}.safetensors")
    assert child.weights_out == str(tmp_path / f"{child.id}.safetensors")
    kept = {p.name for p in tmp_path.iterdir()}
    expect = {f"{i}.safetensors" for i in list(s.strategy.alive) + [s.best().id]}
    assert kept == expect


def test_hash_confirmation():
    from evonas.evolve.dedup import HashCache
    a = NB201Genome.from_string("|skip_connect~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    b = NB201Genome.from_string("|skip_connect~0|+|avg_pool_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    c = NB201Genome(("nor_conv_3x3",) * 6)
    assert a.arch_hash() == b.arch_hash() != c.arch_hash()
    cache = HashCache(confirm=True)
    cache.put("h", a, {"id": 0, "fitness": 1.0})
    assert cache.get("h", b)["id"] == 0          # isomorphic: confirmed duplicate
    assert cache.get("h", c) is None             # forged collision: rejected
    assert HashCache(confirm=False).get("h", c) is None
    loose = HashCache(confirm=False)
    loose.put("h", a, {"id": 0, "fitness": 1.0})
    assert loose.get("h", c)["id"] == 0          # unconfirmed: trusts the hash

