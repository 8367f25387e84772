"""Search quality (issue 8): the reference NB201 mutation, the network-changing
mutation, the ``aging-novel`` strategy, and (when the NB201 table is present) the
benchmark's protocol (on the synthetic table; its figures on a few seeds of the real
one are a data test)."""
import importlib.util
import json
import math
from collections import Counter

import numpy as np
import pytest

from evonas.errors import ConfigError
from evonas.evaluate.base import FunctionEvaluator, Result
from evonas.evaluate.table import TableEvaluator
from evonas.evolve import STRATEGIES, Search
from evonas.genome.nb201 import EDGES, NB201Genome, mut_edge_op_by_node, mut_edge_op_new_net, mut_edge_swap, neighbours
from helpers import REAL_NB201, ROOT, nb201_fitness, untimed


def score(job):
    return Result(job.id, "ok", fitness=nb201_fitness(job.genome.ops))


def search(slots=1, **kw):
    rows = []
    kw.setdefault("strategy", "aging-novel")
    kw.setdefault("strategy_args", {"population": 8, "sample": 3})
    kw.setdefault("max_evaluations", 60)
    s = Search(FunctionEvaluator(score, slots=slots), "nb201", confirm_hash=False, on_record=rows.append, **kw)
    return s, rows


def changed_edges(a, b):
    return [i for i in range(6) if a.ops[i] != b.ops[i]]


# --- operators -----------------------------------------------------------------------

def test_edge_op_by_node_matches_the_reference_edge_distribution():
    rng = np.random.default_rng(0)
    g = NB201Genome.sample(rng)
    counts = Counter()
    n = 9000
    for _ in range(n):
        child = mut_edge_op_by_node(g, rng)
        (e,) = changed_edges(g, child)  # exactly one edge, with a different op
        counts[e] += 1
    expect = [1 / 3, 1 / 6, 1 / 6, 1 / 9, 1 / 9, 1 / 9]  # node uniform, then edge within the node
    for e, p in enumerate(expect):
        assert abs(counts[e] / n - p) < 4 * math.sqrt(p * (1 - p) / n), (EDGES[e], counts[e] / n, p)


def test_edge_swap_moves_an_op_and_keeps_the_op_counts():
    rng = np.random.default_rng(2)
    pairs = Counter()
    g = NB201Genome.from_string("|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    for _ in range(500):
        child = mut_edge_swap(g, rng)
        e = changed_edges(g, child)
        assert len(e) == 2 and sorted(child.ops) == sorted(g.ops)
        pairs[tuple(e)] += 1
    assert set(pairs) == {(0, j) for j in range(1, 6)}  # the skip goes to each other edge
    assert min(pairs.values()) > 500 / 5 / 2  # uniform over the five pairs
    for _ in range(30):
        h = NB201Genome.sample(rng)
        if len(set(h.ops)) > 1:
            c = mut_edge_swap(h, rng)
            assert sorted(c.ops) == sorted(h.ops) and len(changed_edges(h, c)) == 2
    same = NB201Genome(("nor_conv_3x3",) * 6)  # no pair to swap: one edge changes instead
    assert len(changed_edges(same, mut_edge_swap(same, rng))) == 1


def test_edge_op_new_net_always_changes_the_network():
    rng = np.random.default_rng(1)
    for _ in range(15):  # 24 uncached cell hashes per call: keep it small
        g = NB201Genome.sample(rng)
        child = mut_edge_op_new_net(g, rng)
        assert len(changed_edges(g, child)) == 1
        assert child.arch_hash() != g.arch_hash()
    # and it really filters: some neighbours of a sparse cell are isomorphic to it
    sparse = NB201Genome(("none",) * 6)
    assert any(c.arch_hash() == sparse.arch_hash() for c in neighbours(sparse))
    assert len(neighbours(sparse)) == 24


def test_reference_mutations_are_opt_in():
    """Weight 0: the default mutation mix (CLI without --mutation) is unchanged."""
    s, _ = search(strategy="aging", mutation=None)
    assert [op.name for op in s.var.ops] == ["edge_op"]
    s, _ = search(strategy="aging", mutation=["edge_op_by_node"])
    assert [op.name for op in s.var.ops] == ["edge_op_by_node"]


# --- aging-novel -----------------------------------------------------------------------

def test_aging_novel_is_registered_and_validates_its_arguments():
    assert "aging-novel" in STRATEGIES
    for args, field in (({"tries": 0}, "tries"), ({"greedy": 1.5}, "greedy"), ({"greedy": True}, "greedy"),
                        ({"population": 0}, "population")):
        with pytest.raises(ConfigError, match=field):
            search(strategy_args={"population": 8, "sample": 3, **args})


@pytest.mark.parametrize("slots", [1, 3])
def test_aging_novel_never_proposes_a_network_twice(slots):
    s, rows = search(slots=slots, dedup="off", max_evaluations=80, mutation=["edge_op_by_node"])
    out = s.run()
    assert len(rows) == 80 and out["duplicates"] == 0
    assert len({r["arch_hash"] for r in rows}) == 80
    # plain aging on the same setting does repeat networks (so the check above can fail)
    s, rows = search(slots=slots, strategy="aging", dedup="off", max_evaluations=80)
    s.run()
    assert len({r["arch_hash"] for r in rows}) < 80


def test_aging_novel_greedy_mutates_the_population_best():
    P = 6
    s, rows = search(strategy_args={"population": P, "sample": 2, "greedy": 1.0}, max_evaluations=50)
    s.run()
    assert [r["operator"] for r in rows[:P]] == ["init"] * P
    for k in range(P, len(rows)):
        if rows[k]["operator"] == "init":
            continue  # the best's neighbourhood was spent: a fresh random network
        pop = rows[k - P:k]  # synchronous: the population is the last P births
        best = max(pop, key=lambda r: r["fitness"])  # ties: the oldest, as max() keeps the first
        assert rows[k]["parent_ids"] == str(best["id"])


def test_aging_novel_best_is_aging_novel_with_greedy_one():
    a = search(strategy="aging-novel-best", strategy_args={"population": 6, "sample": 2}, seed=3)
    b = search(strategy_args={"population": 6, "sample": 2, "greedy": 1.0}, seed=3)
    a[0].run(), b[0].run()
    assert untimed(a[1]) == untimed(b[1]) and a[0].strategy.greedy == 1.0


def test_aging_novel_resume_gives_the_same_lineage():
    """Resume by journal replay: the ``seen`` set is rebuilt from the replayed asks."""
    args = {"population": 8, "sample": 3, "greedy": 0.5}
    full, rows_full = search(seed=5, strategy_args=args)
    events = []
    full.on_event = events.append
    full.run()
    k = 1 + next(i for i, e in enumerate(events) if e["e"] == "done" and e["id"] == 25)  # rows 0..25 written
    second, rows_second = search(seed=5, strategy_args=args)
    second.replay(json.loads(json.dumps(events[:k])), written=range(26))
    assert second.strategy.seen == {r["arch_hash"] for r in rows_full if r["id"] < second.next_id}
    second.run()
    done = {r["id"] for r in rows_full[:26]}
    assert untimed([r for r in rows_full if r["id"] in done] + rows_second) == untimed(rows_full)


# --- the benchmark on an NB201 table -----------------------------------------------------

@pytest.fixture(scope="module")
def bench_mod():
    spec = importlib.util.spec_from_file_location("search_nb201", ROOT / "benchmarks" / "search_nb201.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_budget_rule(bench_mod, nb201_table):
    """The protocol's budget, whatever the accuracies: the synthetic table."""
    mod, ev = bench_mod, TableEvaluator(nb201_table, report_column="c10_test_200")
    best, out, _ = mod.one_run(ev, "aging", 0, 100)
    assert out["children"] == 100 and out["evaluations"] == 100  # 10 random + 90 children, all looked up
    best, out, _ = mod.one_run(ev, "aging-novel-best", 0, 100)
    assert out["children"] == 100 and out["dup_children"] == 0 and out["duplicates"] == 0
    assert best["fitness"] == ev.table[best["genome"]][0]  # the reported arch is what was looked up


def test_ours_beats_reference_aging_on_the_same_seeds(bench_mod, any_nb201_table):
    mod, ev = bench_mod, TableEvaluator(any_nb201_table, report_column="c10_test_200")
    seeds = range(25)
    ref = [mod.one_run(ev, "aging", s, 100)[0]["c10_test_200"] for s in seeds]
    ours = [mod.one_run(ev, "aging-novel-best", s, 100)[0]["c10_test_200"] for s in seeds]
    # 500-seed figures: 93.9 vs 94.2 (std ~0.3-0.4); 25 seeds leave ~3 standard errors of
    # margin (synthetic table: 91.9 vs 92.8, std ~1.0 and 0.5)
    assert np.mean(ours) > np.mean(ref) + 0.05
    if any_nb201_table == REAL_NB201:
        assert np.mean(ours) > 94.0  # the paper's figure holds on the real table only


@pytest.mark.slow
def test_surrogate_preset_with_edge_swap_on_the_real_table(bench_mod, real_nb201_table):
    """Issue 17's figure on 25 of its seeds (500-seed mean 94.36, std 0.09): the
    preset nearly always ends on the top cell (94.37); without edge_swap (the same
    predictor) and without the predictor it does not."""
    mod, ev = bench_mod, TableEvaluator(real_nb201_table, report_column="c10_test_200")
    mean = {p: np.mean([mod.one_run(ev, p, s, 100)[0]["c10_test_200"] for s in range(25)])
            for p in ("surrogate", "surrogate-1edit", "aging-novel-best")}
    assert mean["surrogate"] > 94.33, mean
    assert mean["surrogate"] > max(mean["surrogate-1edit"], mean["aging-novel-best"]) + 0.05, mean
