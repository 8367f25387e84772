"""Issue 19: search trials save weights only when something reads them (a child
inheriting, or the search's best exported with no final stage); each save costs two
fsyncs. Resume stays exact either way."""
from __future__ import annotations

import pandas as pd
import pytest

from evonas.run import main
from evonas.store.journal import read_events

TINY = ["--genome", "tree", "--space", "C=4", "--population", "2", "--sample-size", "2", "--epochs", "1",
        "--batch-size", "128", "--workers", "1", "--devices", "cpu", "--time-budget", "0", "--seed", "3",
        "--quiet"]
TIMING = ["train_seconds", "worker", "started_s", "finished_s"]


def _done(d):
    return [ev for ev in read_events(d / "journal.jsonl") if ev["e"] == "done"]


@pytest.mark.slow
def test_no_trial_weights_without_a_reader_and_exact_resume(tmp_path):
    d = tmp_path / "run"
    assert main([*TINY, "--evaluations", "3", "--final-top", "1", "--final-epochs", "1", "--run-dir", str(d)]) == 0
    done = _done(d)
    assert len(done) == 3 and not any(ev["weights"] for ev in done)
    assert not list((d / "weights").glob("*.safetensors"))
    assert (d / "best" / "weights.safetensors").is_file()  # the final stage's retrained best
    first = pd.read_csv(d / "lineage.csv")
    assert main(["--resume", str(d), "--evaluations", "5", "--quiet"]) == 0
    resumed = pd.read_csv(d / "lineage.csv")
    whole = tmp_path / "whole"
    assert main([*TINY, "--evaluations", "5", "--final-top", "1", "--final-epochs", "1", "--run-dir", str(whole)]) == 0
    straight = pd.read_csv(whole / "lineage.csv")
    pd.testing.assert_frame_equal(resumed.iloc[:3].drop(columns=TIMING), first.drop(columns=TIMING))
    pd.testing.assert_frame_equal(resumed.drop(columns=TIMING), straight.drop(columns=TIMING))


@pytest.mark.slow
@pytest.mark.parametrize("extra", [["--final-top", "0"], ["--inherit", "shape", "--final-top", "1"]])
def test_trial_weights_kept_when_read(tmp_path, extra):
    d = tmp_path / "run"
    assert main([*TINY, "--evaluations", "3", "--final-epochs", "1", *extra, "--run-dir", str(d)]) == 0
    ok = [ev for ev in _done(d) if ev["status"] == "ok"]
    assert ok and all(ev["weights"] for ev in ok)
    assert list((d / "weights").glob("*.safetensors"))
