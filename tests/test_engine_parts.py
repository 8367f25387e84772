"""The engine's parts, each on its own: weights by reference count, ordered
release, twins and the duplicate look-up, the budgets, the standing (best, Pareto
front, logbook), the record sink's schema, and the journal file."""
import json

import numpy as np
import pytest

from evonas.errors import ConfigError
from evonas.evaluate.base import Result
from evonas.evolve.budget import Budget
from evonas.evolve.dedup import HashCache, Twins, look_up
from evonas.evolve.base import Proposal
from evonas.evolve.standing import Standing
from evonas.evolve.record import COLUMNS, KINDS, SCHEMA, Outcome, RecordSink, build_row
from evonas.evolve.release import Release
from evonas.evolve.toolbox import creator, individual_class
from evonas.evolve.weights_refs import WeightRefs
from evonas.genome.nb201 import NB201Genome
from evonas.store.journal import Journal, encode, read_events, read_logbook
from evonas.store.lineage import LineageWriter, format_row, read_records

G = NB201Genome(("nor_conv_3x3",) * 6)


def test_weight_refs_delete_on_last_release_only(tmp_path):
    f = tmp_path / "1.safetensors"
    f.write_text("w")
    refs = WeightRefs()
    assert refs.acquire(str(f)) == str(f) and refs.share(str(f)) == str(f)  # a duplicate shares it
    refs.release(str(f))
    assert f.exists() and refs.held(str(f)) == 1
    refs.release(str(f))
    assert not f.exists() and refs.held(str(f)) == 0
    # decided by the counts, not the disk: a released file is never handed out again
    f.write_text("stale")
    assert refs.share(str(f)) is None and refs.acquire(None) is None
    refs.release(str(f))  # no holder: nothing happens
    assert f.exists()


def test_release_in_submission_order():
    unordered = Release(ordered=False)
    assert [r.id for r in unordered.accept([Result(3, "ok"), Result(1, "ok")])] == [3, 1]
    rel = Release(ordered=True)
    assert rel.accept([Result(2, "ok"), Result(3, "ok")]) == []  # held
    assert rel.next_due([1, 2, 3]) is None  # job 1 is older and still running
    assert rel.accept([Result(1, "ok")]) == []
    assert [rel.next_due(running).id for running in ([1, 2, 3], [2, 3], [3])] == [1, 2, 3]
    assert rel.next_due([]) is None
    rel.accept([Result(7, "ok"), Result(5, "ok")])
    assert [r.id for r in rel.drain()] == [5, 7] and not rel.held


def test_twins_wait_for_the_job_training_their_network():
    cache = HashCache(confirm=True)
    twins = Twins(cache)
    a = NB201Genome.from_string("|skip_connect~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    b = NB201Genome.from_string("|skip_connect~0|+|avg_pool_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    genomes = {4: a}
    twins.started("h", 4)
    assert twins.twin_of("h", b, genomes.get) == 4   # isomorphic: waits
    assert twins.twin_of("h", G, genomes.get) is None  # a hash collision: does not
    assert twins.twin_of("other", a, genomes.get) is None
    twins.wait(4, 9)
    twins.wait(4, 11)
    twins.cancelled("h", 4)  # cancelled: the twins keep waiting for its re-run
    assert twins.twin_of("h", b, genomes.get) is None and twins.waiting[4] == [9, 11]
    twins.started("h", 4)
    assert twins.finished("h", 4) == [9, 11] and twins.finished("h", 4) == [] and not twins.training


def _member(status="ok"):
    m = creator.EvonasIndividual(3, G, (1,), "edge_op", "abc")
    m.status, m.birth, m.params, m.flops, m.lineage_epochs, m.started_s = status, 2, 10, 20, 3.0, 1.5
    return m


def test_record_schema_is_the_lineage_files_schema(tmp_path):
    m = _member()
    m.fitness.values = (91.5,)
    row = build_row(m, Outcome(1.0, 2.5, "cpu:0", "exact", 2, "", 4.0, {"test_acc": 90.0, "id": -1}))
    assert list(row) == [*COLUMNS, "test_acc"] and row["id"] == 3  # extras never overwrite a column
    assert (row["parent_ids"], row["fitness"], row["inherited"], row["attempts"]) == ("1", 91.5, "exact", 2)
    assert set(KINDS.values()) <= {"int", "nint", "float", "text"} and len(SCHEMA) == len(set(COLUMNS))
    w = LineageWriter(tmp_path / "l.csv", ("test_acc",))
    w.write(row)
    w.close()
    back = read_records(tmp_path / "l.csv")[0]
    assert back["parent_ids"] == (1,) and back["fitness"] == 91.5 and back["test_acc"] == 90.0
    assert len(format_row(row, ("test_acc",))) == len(COLUMNS) + 1


def test_record_sink_skips_rows_already_written():
    got = []
    sink = RecordSink(got.append)
    m = _member("failed")
    sink.skip = {3}
    assert sink.emit(m, Outcome())["fitness"] is None and got == []
    sink.skip = set()
    sink.emit(m, Outcome())
    assert [r["id"] for r in got] == [3] and sink.written == 1


def test_journal_appends_and_repairs_a_torn_tail(tmp_path):
    p = tmp_path / "journal.jsonl"
    with Journal(p) as j:
        j.append({"e": "search", "t": 0.0, "seed": np.int64(3)})
        j({"e": "done", "t": 1.0, "fitness": np.float64(0.5), "extra": {"acc": np.float32(2.0)}})
        j.append({"e": "log", "t": 1.0, "birth": 0, "avg": 1.0})
    assert [e["e"] for e in read_events(p)] == ["search", "done", "log"]
    assert read_events(p)[0]["seed"] == 3 and read_logbook(p) == [{"birth": 0, "avg": 1.0}]
    good = p.read_bytes()
    p.write_bytes(good + b'{"e":"child","id":4,"ha')  # killed mid-write
    j = Journal(p)
    assert len(j.events) == 3 and p.read_bytes() == good
    j.append({"e": "stop", "t": 2.0})
    j.close()
    assert read_events(p)[-1]["e"] == "stop"
    p.write_bytes(good + b"\x00" * 40 + b"\n")  # NUL-filled last line
    assert len(Journal(p).events) == 3
    p.write_bytes(b"not json\n" + good)  # damage before the tail is corruption: refused
    with pytest.raises(ConfigError, match="corrupt"):
        read_events(p)
    with pytest.raises(TypeError):
        encode({"e": "x", "obj": object()})
    assert json.loads(encode({"e": "x", "a": np.arange(2)})) == {"e": "x", "a": [0, 1]}


def test_budget_names_the_limit_spent_and_counts_duplicates_only_when_asked():
    b = Budget(max_evaluations=10, max_seconds=None)
    assert b.max_duplicates == 10 * 10 + 100  # the default keeps an all-duplicates search finite
    assert b.spent(9, 50) == "" and b.spent(10, 0) == "max_evaluations" and b.spent(0, 200) == "max_duplicates"
    paid = Budget(max_evaluations=10, max_seconds=None, count_duplicates=True)
    assert paid.counted(6, 4) == 10 and paid.spent(6, 4) == "max_evaluations"
    timed = Budget(max_evaluations=None, max_seconds=5.0)
    assert timed.max_duplicates is None and timed.spent(10**6, 10**6) == ""
    assert timed.seconds_left(2.0) == 3.0 and timed.seconds_left(7.0) == 0.0 and b.seconds_left(1e9) is None
    with pytest.raises(ConfigError, match="budget"):
        Budget(max_evaluations=None, max_seconds=None)
    for bad in (-1, float("inf"), True, "3"):
        with pytest.raises(ConfigError, match="max_evaluations"):
            Budget(max_evaluations=bad)


def _scored(cls, mid, genome, *values):
    m = cls(mid, genome, arch_hash=genome.arch_hash())
    m.fitness.values = values
    return m


def test_standing_keeps_the_first_best_and_logs_every_k_births():
    one = individual_class(False)
    st = Standing(pareto=False, log_every=2)
    other = NB201Genome(("skip_connect",) * 6)
    a, b, c = _scored(one, 0, G, 50.0), _scored(one, 1, other, 50.0), _scored(one, 2, other, 60.0)
    assert st.best() is None and st.best_dict() is None and st.update(a) is None
    assert st.update(b) is None and st.best().id == 0  # a tie keeps the first found
    assert st.update(c) == 0 and st.is_best(2) and not st.is_best(0)  # 0 was replaced
    assert st.best_dict(weights=True) == {"id": 2, "genome": other.to_string(), "fitness": 60.0, "weights": None}
    assert st.log(1, [a, b]) is None and st.log(2, []) is None
    rec = st.log(2, [a, c])
    assert rec == {"birth": 2, "avg": 55.0, "std": 5.0, "min": 50.0, "max": 60.0} and len(st.logbook) == 1


def test_standing_pareto_front_has_one_entry_per_network():
    two = individual_class(True)
    st = Standing(pareto=True)
    cheap, big = NB201Genome(("skip_connect",) * 6), G
    for m in (_scored(two, 0, big, 90.0, 1000.0), _scored(two, 1, cheap, 80.0, 10.0),
              _scored(two, 2, cheap, 80.0, 10.0)):  # 2: the same network again
        st.update(m)
    assert sorted((e["id"], e["params"]) for e in st.front("params")) == [(0, 1000.0), (1, 10.0)]


def test_look_up_reuses_resamples_or_trains_again():
    cache = HashCache()
    cache.put(G.arch_hash(), G, {"id": 0, "fitness": 1.0})
    fresh = NB201Genome(("skip_connect",) * 6)
    dup = Proposal(G)
    assert look_up(dup, cache, "reuse", None, 5)[2]["id"] == 0
    assert look_up(dup, cache, "off", None, 5)[2] is None
    assert look_up(Proposal(G, neutral=True), cache, "off", None, 5)[2]["id"] == 0  # ES drift: always reused
    asked = []
    prop, h, hit = look_up(dup, cache, "resample", lambda p: asked.append(p) or Proposal(fresh), 5)
    assert prop.genome == fresh and h == fresh.arch_hash() and hit is None and len(asked) == 1
    prop, _, hit = look_up(dup, cache, "resample", lambda p: p, 3)  # only duplicates: give up after 3
    assert prop is dup and hit["id"] == 0
    assert look_up(dup, cache, "resample", lambda p: None, 3)[2]["id"] == 0  # the strategy has none
