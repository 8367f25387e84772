"""Issue 15, items 1-5: resume loses no rows, a run directory is locked, nothing
named in it is executed, and everything read from it is checked before anything
is written. Table runs on a generated NAS-Bench-201 table (no ../shared needed);
a second process is a real forked one; kills are real SIGKILLs."""
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from reliability_helpers import evaluated, fork_cli, one_line, table_argv, tree_hash, wait_rc  # noqa: E402

from evonas.lineage import load_lineage  # noqa: E402
from evonas.run import main  # noqa: E402
from evonas.store.lineage import LineageWriter, read_records  # noqa: E402
from evonas.store.journal import read_events  # noqa: E402


@pytest.fixture(scope="module")
def table(nb201_table):
    return nb201_table


@pytest.fixture
def finished(table, tmp_path):
    d = tmp_path / "run"
    assert main(table_argv(table, d, 30)) == 0
    return d


# --- 1. rows of any size ------------------------------------------------------------------
def test_a_row_longer_than_the_csv_field_limit_survives_reopening_and_loading(tmp_path):
    path = tmp_path / "lineage.csv"
    long_genome = "x" * 300_000  # > csv's default 131,072-character field limit
    with LineageWriter(path) as w:
        w.write({"id": 0, "birth": 0, "status": "ok", "genome": long_genome, "genome_type": "cgp"})
        w.write({"id": 1, "birth": 1, "status": "ok", "genome": "short", "genome_type": "cgp"})
    size = path.stat().st_size
    again = LineageWriter(path)  # what resume does: repair a torn tail only
    again.close()
    assert again.repaired_bytes == 0 and path.stat().st_size == size
    assert again.ids == {0, 1}
    assert [r["genome"] for r in read_records(path)] == [long_genome, "short"]
    assert load_lineage(path)["genome"].str.len().tolist() == [300_000, 5]


# --- 2. no paths in the journal -----------------------------------------------------------
def test_the_journal_stores_no_paths_so_a_moved_copy_resumes_on_its_own_files(table, tmp_path, monkeypatch):
    """Weights paths follow from the run directory (the engine derives them from its
    weights/); the journal only says whether a trial kept weights. A copy, with the
    original gone, resumes to the uninterrupted lineage."""
    d, whole = tmp_path / "run", tmp_path / "whole"
    assert main(table_argv(table, d, 20)) == 0
    assert main(table_argv(table, whole, 20)) == 0
    assert main(["--resume", str(whole), "--evaluations", "30", "--quiet"]) == 0  # extended the same way
    for ev in read_events(d / "journal.jsonl"):
        assert not any(isinstance(v, str) and os.sep in v for v in ev.values()), ev
        if ev["e"] == "done":
            assert isinstance(ev["weights"], bool)
    shutil.copytree(d, tmp_path / "moved")
    shutil.rmtree(d)
    monkeypatch.chdir(tmp_path)
    assert main(["--resume", "moved", "--evaluations", "30", "--quiet"]) == 0
    got, want = (load_lineage(p / "lineage.csv") for p in (tmp_path / "moved", whole))
    cols = [c for c in want.columns if c not in ("started_s", "finished_s", "duration_s")]
    pd.testing.assert_frame_equal(got[cols], want[cols])


# --- 3. one process per run directory ----------------------------------------------------
def test_a_second_process_is_refused_while_the_first_holds_the_lock(table, tmp_path, capsys):
    d = tmp_path / "run"
    log = tmp_path / "first.err"
    pid = fork_cli(table_argv(table, d, 200), fault="driver_inflight:12:hang", stderr=log)
    try:
        deadline = time.monotonic() + 120
        before = None
        while before is None or tree_hash(d) != before:  # the first one now hangs, lock held
            assert time.monotonic() < deadline, "the first run never got going"
            time.sleep(1.0)
            before = tree_hash(d) if (d / "lineage.csv").exists() and \
                len(read_records(d / "lineage.csv")) >= 11 else None
        assert main(["--resume", str(d), "--quiet"]) == 2
        one_line(capsys, "in use by another evonas process")
        # refused before reading, let alone writing (the first one, stuck in flight, still
        # refreshes its own state.json)
        assert {k: v for k, v in tree_hash(d).items() if k != "state.json"} == \
            {k: v for k, v in before.items() if k != "state.json"}
    finally:
        os.kill(pid, signal.SIGKILL)
    assert wait_rc(pid) == -9
    assert main(["--resume", str(d), "--quiet"]) == 0  # the OS released the dead process's lock
    df = pd.read_csv(d / "lineage.csv")
    assert evaluated(df) == 200 and df["id"].is_unique and df["birth"].tolist() == list(range(len(df)))


# --- 4. nothing named in a run directory is executed ------------------------------------
def _edit(d, **changes):
    """Edit config.json and the manifest's record alike (a deliberate attacker)."""
    for name, key in (("config.json", None), ("manifest.json", "config")):
        p = d / name
        obj = json.loads(p.read_text())
        if key is None:  # config.json is sectioned: each key where the run wrote it
            for k, v in changes.items():
                next(s for s in obj.values() if isinstance(s, dict) and k in s)[k] = v
        else:
            obj[key].update(changes)
        p.write_text(json.dumps(obj))


@pytest.mark.parametrize("what", ["dataset", "plugin"])
def test_resume_never_runs_code_named_in_the_run_directory(finished, tmp_path, capsys, what):
    marker = tmp_path / "pwned"
    if what == "dataset":
        _edit(finished, dataset="os:system", data_root=f"touch {marker}")
        needle = "--dataset os:system again"
    else:
        evil = tmp_path / "evil.py"
        evil.write_text(f"open({str(marker)!r}, 'w').close()\n")
        _edit(finished, plugins=[str(evil)])
        needle = f"--plugin {evil} again"
    before = tree_hash(finished)
    assert main(["--resume", str(finished), "--evaluations", "40", "--quiet"]) == 2
    one_line(capsys, needle)
    assert not marker.exists() and tree_hash(finished) == before


def test_a_plugin_named_again_on_the_command_line_is_loaded(table, tmp_path, capsys):
    plug = tmp_path / "t15_plug.py"
    plug.write_text("import evonas\n@evonas.register_mutation('nb201', name='t15_same')\n"
                    "def same(genome, rng):\n    return genome\n")
    d = tmp_path / "run"
    assert main([*table_argv(table, d, 20), "--plugin", str(plug)]) == 0
    assert main(["--resume", str(d), "--evaluations", "30", "--quiet"]) == 2
    one_line(capsys, "--plugin")
    assert main(["--resume", str(d), "--evaluations", "30", "--plugin", str(plug), "--quiet"]) == 0
    assert evaluated(pd.read_csv(d / "lineage.csv")) == 30


# --- 5. everything read is checked before anything is written ----------------------------
def _events(d):
    return [json.loads(line) for line in (d / "journal.jsonl").read_text().splitlines()]


def _bad_journal(d, case):
    evs = _events(d)
    child = next(i for i, ev in enumerate(evs) if ev["e"] == "child" and ev["id"] > 3)
    done = next(i for i, ev in enumerate(evs) if ev["e"] == "done")
    if case == "child of another network":
        evs[child]["hash"] = "0" * len(str(evs[child]["hash"]))
    elif case == "result of a job not in flight":
        evs[done]["id"] = 10_000
    elif case == "another seed":
        next(ev for ev in evs if ev["e"] == "search")["seed"] = 12345
    elif case == "unknown kind":
        evs[child]["e"] = "birth"
    elif case == "no time":
        del evs[done]["t"]
    (d / "journal.jsonl").write_text("".join(json.dumps(ev) + "\n" for ev in evs))


@pytest.mark.parametrize("case", ["child of another network", "result of a job not in flight", "another seed",
                                  "unknown kind", "no time"])
def test_valid_json_with_wrong_content_in_the_journal_is_one_line_and_nothing_is_written(finished, capsys,
                                                                                         case):
    _bad_journal(finished, case)
    before = tree_hash(finished)
    assert main(["--resume", str(finished), "--evaluations", "40", "--quiet"]) == 2
    one_line(capsys, "journal")
    assert tree_hash(finished) == before


def test_a_lineage_with_individuals_the_journal_lost_is_refused(finished, capsys):
    lines = (finished / "journal.jsonl").read_text().splitlines(keepends=True)
    (finished / "journal.jsonl").write_text("".join(lines[:len(lines) // 2]))  # the journal lost events
    before = tree_hash(finished)
    assert main(["--resume", str(finished), "--evaluations", "40", "--quiet"]) == 2
    one_line(capsys, "journal lost events")
    assert tree_hash(finished) == before


def test_lineage_rows_lost_are_written_again_from_the_journal(finished):
    want = load_lineage(finished / "lineage.csv")
    lines = (finished / "lineage.csv").read_text().splitlines(keepends=True)
    (finished / "lineage.csv").write_text("".join(lines[:-5]))  # five good rows lost
    assert main(["--resume", str(finished), "--quiet"]) == 0
    got = load_lineage(finished / "lineage.csv")
    pd.testing.assert_frame_equal(got, want)


def test_an_edited_config_is_refused(finished, capsys):
    p = finished / "config.json"
    p.write_text(p.read_text().replace('"population": 8', '"population": 20'))
    before = tree_hash(finished)
    assert main(["--resume", str(finished), "--evaluations", "40", "--quiet"]) == 2
    one_line(capsys, "edited", "population")
    assert tree_hash(finished) == before


def test_resume_from_another_working_directory_and_of_a_copy(table, tmp_path, monkeypatch):
    """The table run has no weights; this checks the directory, not the cwd, is used."""
    d = tmp_path / "run"
    assert main(table_argv(table, d, 20)) == 0
    shutil.copytree(d, tmp_path / "copy")
    monkeypatch.chdir(tmp_path / "copy")
    assert main(["--resume", ".", "--evaluations", "30", "--quiet"]) == 0
    assert evaluated(pd.read_csv(tmp_path / "copy" / "lineage.csv")) == 30
    assert evaluated(pd.read_csv(d / "lineage.csv")) == 20  # the original is untouched
