"""The final stage (evonas/final.py) and the lineage's training columns: top-K
distinct networks retrained from scratch, final.csv, resume after SIGKILL, the
lineage-matched score, lineage_epochs under each inheritance mode."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evonas.evaluate.base import FunctionEvaluator, Result
from evonas.evolve.matched import matched_scores
from evonas.final import FINAL_COLUMNS, FinalStage, final_epochs, read_final, select_top
from evonas.genome.nb201 import NB201Genome
from tests.forking import forked

G = NB201Genome.sample(np.random.default_rng(0))


def row(i, fit, h=None, L=1.0, status="ok"):
    return {"id": i, "fitness": fit, "arch_hash": h or f"h{i}", "genome": G.to_string(), "status": status,
            "lineage_epochs": L, "trained_epochs": 1.0}


def test_select_top_takes_distinct_networks_best_first():
    rows = [row(0, 50.0, "a"), row(1, 70.0, "b"), row(2, 70.0, "a"), row(3, 90.0, status="failed"),
            row(4, 60.0, "c"), row(5, None, "d")]
    top = select_top(rows, 3)
    assert [r["id"] for r in top] == [1, 2, 4]  # ties by id; 'a' once (id 2 beats id 0); failed/None skipped
    assert len({r["arch_hash"] for r in top}) == 3
    assert select_top(rows, 0) == [] and len(select_top(rows, 10)) == 3


def test_matched_score_removes_the_training_trend():
    # accuracy grows with training along the lineage; the architecture of id 1 is
    # the better one for its amount of training
    fit = [40.0, 48.0, 55.0, 60.0]
    L = [1.0, 1.0, 4.0, 8.0]
    s = matched_scores(fit, L)
    assert np.argmax(fit) == 3 and np.argmax(s) != 3
    assert list(np.argsort(matched_scores(fit, [2.0] * 4))) == list(np.argsort(fit))  # equal L: raw order
    assert np.allclose(matched_scores([1.0, 2.0], [1.0, 2.0]), [1.0, 2.0 - 1.0])
    rows = [row(i, f, L=l) for i, (f, l) in enumerate(zip(fit, L))]
    assert select_top(rows, 1)[0]["id"] == 3 and select_top(rows, 1, "matched")[0]["id"] != 3


def test_auto_epochs_follow_the_most_trained_of_the_chosen():
    assert final_epochs([row(0, 1.0, L=3.0), row(1, 1.0, L=7.5)], 0) == 8
    assert final_epochs([row(0, 1.0, L=1.0)], 0) == 1
    assert final_epochs([row(0, 1.0, L=1e6)], 0) == 100
    assert final_epochs([row(0, 1.0, L=7.0)], 4) == 4


def fake_train(job):
    acc = 10.0 + job.id
    return Result(job.id, "ok", fitness=acc, params=100 + job.id, flops=1000, epochs=5.0,
                  extra={"test_accuracy": acc - 1.0})


def stage(tmp_path, rows, top=3, epochs=5):
    return FinalStage(tmp_path / "final.csv", rows, top, epochs, 7, lambda s: NB201Genome.from_string(s),
                      tmp_path / "final")


def test_final_stage_writes_rows_and_chooses_by_validation(tmp_path):
    rows = [row(i, 90.0 - i) for i in range(5)]
    st = stage(tmp_path, rows)
    jobs = st.jobs()
    assert [j.id for j in jobs] == [0, 1, 2] and all(j.inherit == "none" for j in jobs)
    assert len({j.seed for j in jobs}) == 3  # fixed, recorded, distinct seeds
    out = st.run(FunctionEvaluator(fake_train, slots=2))
    df = pd.read_csv(tmp_path / "final.csv")
    assert tuple(df.columns) == FINAL_COLUMNS and list(df["id"]) == [0, 1, 2]
    assert list(df["seed"]) == [j.seed for j in jobs] and (df["final_epochs"] == 5).all()
    best = st.best()
    assert best["id"] == 2 and best["final_test"] == pytest.approx(11.0)  # best *validation*, not search fitness
    assert [r["id"] for r in out] == [0, 1, 2]


def test_final_stage_resumes_without_retraining(tmp_path):
    rows = [row(i, 90.0 - i) for i in range(5)]
    st = stage(tmp_path, rows)
    ev = FunctionEvaluator(fake_train)
    st.run(ev)
    text = (tmp_path / "final.csv").read_text()
    lines = text.splitlines(keepends=True)
    (tmp_path / "final.csv").write_text("".join(lines[:2]) + lines[2][:7])  # killed mid-write of row 2
    again = stage(tmp_path, rows)
    assert [j.id for j in again.jobs()] == [1, 2]
    calls = []
    again.run(FunctionEvaluator(lambda j: (calls.append(j.id), fake_train(j))[1]))
    assert calls == [1, 2] and (tmp_path / "final.csv").read_text() == text
    other = stage(tmp_path, rows, epochs=9)  # another recipe is not mixed into the table: kept apart
    assert other.archived == tmp_path / "final-1.csv" and other.archived.read_text() == text
    assert not (tmp_path / "final.csv").exists() and len(other.jobs()) == 3
    longer = stage(tmp_path, [row(9, 99.0)] + rows)  # the search went on: a new best, a new table
    assert longer.archived is None and [j.id for j in longer.jobs()] == [9, 0, 1]


def test_bad_final_table_is_a_named_error(tmp_path):
    (tmp_path / "final.csv").write_text("not,a,final,table\n")
    with pytest.raises(Exception, match="not a final-stage table"):
        read_final(tmp_path / "final.csv")
    with pytest.raises(Exception, match="final_top"):
        stage(tmp_path, [], top=-1)


# --- through the CLI ----------------------------------------------------------------------
def cli_args(run_dir, inherit="exact", extra=()):
    return ["--genome", "tree", "--population", "3", "--sample-size", "2", "--evaluations", "6",
            "--time-budget", "0", "--workers", "1", "--seed", "2", "--inherit", inherit,
            "--final-top", "2", "--final-epochs", "1", "--run-dir", str(run_dir), "--quiet", *extra]


@pytest.mark.slow
def test_cli_lineage_epochs_and_final_stage(tmp_path):
    from evonas import run as cli
    d = tmp_path / "run"
    assert cli.main(cli_args(d)) == 0
    lin = pd.read_csv(d / "lineage.csv")
    ok = lin[lin.status == "ok"]
    by_id = lin.set_index("id")
    for _, r in ok.iterrows():  # lineage_epochs = parent's + own when inherited, own alone otherwise
        own = r.trained_epochs
        if r.inherited != "none":
            parent = int(r.parent_ids.strip("[]"))
            assert r.lineage_epochs == by_id.loc[parent, "lineage_epochs"] + own
        else:
            assert r.lineage_epochs == own
    assert (lin.attempts == 1).all() and (lin.finished_s >= lin.started_s.fillna(0)).all()
    assert lin.finished_s.is_monotonic_increasing
    fin = pd.read_csv(d / "final.csv")
    assert len(fin) == 2 and fin.arch_hash.is_unique and fin.status.eq("ok").all()
    assert fin.final_test.between(0, 100).all()
    meta = json.loads((d / "best" / "genome.json").read_text())
    chosen = fin.loc[fin.final_val.idxmax()]
    assert meta["genome"] == chosen.genome and (d / "best" / "weights.safetensors").exists()


@pytest.mark.slow
def test_cli_inherit_none_has_lineage_epochs_equal_to_own(tmp_path):
    from evonas import run as cli
    d = tmp_path / "run"
    assert cli.main(cli_args(d, "none", ["--final-top", "0"])) == 0
    lin = pd.read_csv(d / "lineage.csv")
    ok = lin[lin.status == "ok"]
    assert (ok.lineage_epochs == ok.trained_epochs).all() and not (d / "final.csv").exists()


@pytest.mark.slow
def test_sigkill_during_final_stage_then_resume_loses_nothing(tmp_path):
    straight, part = tmp_path / "straight", tmp_path / "part"
    assert forked(cli_args(straight)) == 0
    assert forked(cli_args(part), fault="after_final_row:1:kill") == -9
    assert len(pd.read_csv(part / "final.csv")) == 1
    assert forked(["--resume", str(part), "--quiet"]) == 0
    a, b = (pd.read_csv(p / "final.csv").drop(columns=["train_seconds"]) for p in (straight, part))
    pd.testing.assert_frame_equal(a, b)  # the same networks, seeds and accuracies; nothing twice
    assert (part / "best" / "weights.safetensors").exists()
