"""Issue 17 strategies: reinforce and the surrogate pre-screen, on every genome type."""
import json

import numpy as np
import pytest

from evonas.errors import ConfigError
from evonas.evaluate.base import FunctionEvaluator, Result
from evonas.evolve import Search
from evonas.evolve.reinforce import CHOICES

from test_evolve import score as nb201_score, untimed


def generic_score(job):
    """A deterministic fitness of any genome (its string's digest), in 0..100."""
    s = job.genome.to_string()
    return Result(job.id, "ok", fitness=float(sum(map(ord, s)) % 997) / 9.97)


CASES = [("nb201", "reinforce", {}), ("nb201", "surrogate", {"population": 5, "sample": 2, "candidates": 6,
                                                            "screen_args": {"min_data": 4}}),
         ("cgp", "reinforce", {}), ("genetic-cnn", "reinforce", {}), ("tree", "reinforce", {"population": 3}),
         ("tree", "surrogate", {"base": "aging", "population": 4, "sample": 2, "candidates": 3,
                                "screen_args": {"min_data": 3}}),
         ("nb201", "pvll", {"population": 4}), ("cgp", "pvll", {"population": 4}),
         ("tree", "pvll", {"population": 4, "candidates": 4}),
         ("nb201", "nao", {"population": 4, "model_args": {"epochs": 5, "epochs_first": 20}}),
         ("genetic-cnn", "nao", {"population": 4, "model_args": {"epochs": 5, "epochs_first": 20}}),
         ("tree", "nao", {"population": 4, "candidates": 4})]


def run(gtype, strategy, args, seed=3, n=16, on_event=None, events=None, written=()):
    """One search; with ``events``, first replay that journal prefix (resume)."""
    rows = []
    fn = nb201_score if gtype == "nb201" else generic_score
    s = Search(FunctionEvaluator(fn), gtype, strategy=strategy, strategy_args=args, seed=seed,
               max_evaluations=n, dedup="off", confirm_hash=False, on_record=rows.append,
               on_event=on_event)
    if events is not None:
        s.replay(events, written=written)
    s.run()
    return rows


@pytest.mark.slow
@pytest.mark.parametrize("gtype,strategy,args", CASES)
def test_same_seed_same_lineage_and_exact_resume(gtype, strategy, args):
    """Resume is by journal replay (strategies keep no saved state): cut the journal
    after a third and two thirds of its events, replay, run on: the same lineage."""
    events, at = [], []
    full = []

    def record(r):
        full.append(r)
        at.append(len(events))
    fn = nb201_score if gtype == "nb201" else generic_score
    Search(FunctionEvaluator(fn), gtype, strategy=strategy, strategy_args=args, seed=3, max_evaluations=16,
           dedup="off", confirm_hash=False, on_record=record, on_event=events.append).run()
    assert len(full) == 16 and all(r["status"] == "ok" for r in full)
    assert untimed(run(gtype, strategy, args)) == untimed(full)
    events = json.loads(json.dumps(events))  # what the journal file holds
    for k in (len(events) // 3, 2 * len(events) // 3):
        written = [r for r, n in zip(full, at) if n <= k]
        rest = run(gtype, strategy, args, events=events[:k], written={r["id"] for r in written})
        assert untimed(written + rest) == untimed(full), k


@pytest.mark.parametrize("gtype", sorted(CHOICES))
def test_decision_vectors_round_trip(gtype):
    from evonas.genome import GENOMES
    cls = GENOMES.get(gtype)
    sizes_fn, to, back = CHOICES[gtype]()
    rng = np.random.default_rng(0)
    for _ in range(5):
        g = cls.sample(rng, cls.Space())
        c = to(g)
        assert len(c) == len(sizes_fn(g.space)) and all(0 <= v < n for v, n in zip(c, sizes_fn(g.space)))
        assert back(c, g.space) == g


def test_reinforce_learns_on_nb201():
    """The policy moves towards the high-scoring ops: later children beat the first ones."""
    rows = run("nb201", "reinforce", {"lr": 0.05}, seed=0, n=300)
    f = [r["fitness"] for r in rows]
    assert np.mean(f[-50:]) > np.mean(f[:50]) + 1.0


def test_surrogate_screens_children_better_than_its_base():
    """With the same base and budget, ranking 24 candidates by the MLP finds fitter networks."""
    base = {"population": 10, "sample": 3}
    gain = []
    for seed in range(3):
        plain = max(r["fitness"] for r in run("nb201", "aging", base, seed=seed, n=40))
        screened = max(r["fitness"] for r in run("nb201", "surrogate", {**base, "base": "aging"}, seed=seed, n=40))
        gain.append(screened - plain)
    assert np.mean(gain) > 0


def test_bad_arguments_raise_config_errors():
    for args in ({"base": "surrogate"}, {"base": "nsga2"}, {"screen": "nope"}, {"candidates": 0},
                 {"explore": 2}):
        with pytest.raises(ConfigError):
            run("nb201", "surrogate", args, n=2)
    for args in ({"lr": 0}, {"momentum": 1.0}):
        with pytest.raises(ConfigError):
            run("nb201", "reinforce", args, n=2)
