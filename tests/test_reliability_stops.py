"""Issue 15, items 6-9: a full disk (a real tmpfs where one can be mounted, and
ENOSPC injected at the write points), weights checked against their network,
SIGTERM, plug-ins that exit, interrupt or hang, and data sets without meaning."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from reliability_helpers import evaluated, fork_cli, one_line, table_argv, tree_hash, wait_rc  # noqa: E402

from evonas.errors import ConfigError  # noqa: E402
from evonas.run import main  # noqa: E402
from evonas.store.journal import read_events  # noqa: E402
from evonas.store.lineage import read_records, scan  # noqa: E402

IGNORED = ["train_seconds", "worker", "started_s", "finished_s"]
DIGITS = ["--genome", "nb201", "--space", "C=4", "--space", "N=1", "--population", "3", "--sample-size", "2",
          "--epochs", "1", "--batch-size", "128", "--workers", "1", "--devices", "cpu", "--inherit", "shape",
          "--final-top", "0", "--quiet"]


@pytest.fixture(scope="module")
def table(nb201_table):
    return nb201_table


def no_tmp_files(d):
    assert not [p for p in Path(d).rglob("*") if p.name.endswith(".tmp")]


# --- 6. a full disk ------------------------------------------------------------------------
@pytest.fixture
def tiny_fs(tmp_path):
    mnt = tmp_path / "fs"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=192k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root): the injected-ENOSPC tests cover this")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.slow
def test_a_really_full_disk_stops_with_one_line_and_resumes_after_space_is_freed(table, tiny_fs, tmp_path):
    d, log = tiny_fs / "run", tmp_path / "err"
    rc = wait_rc(fork_cli(table_argv(table, d, 3000), stderr=log, every_s=0.0))
    assert rc == 2
    one_line(log.read_text(), "disk full")
    no_tmp_files(d)
    data = (d / "lineage.csv").read_bytes()
    header, good_end, rows = scan(data)
    assert header is not None and 0 < len(rows) < 3000  # a torn last row at most, repaired on resume
    subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_fs)], check=True)
    assert main(["--resume", str(d), "--quiet"]) == 0
    df = pd.read_csv(d / "lineage.csv")
    assert df["id"].is_unique and df["birth"].tolist() == list(range(len(df)))
    # the run ends as an uninterrupted one does (its budget of evaluations or of duplicates)
    assert main(table_argv(table, tmp_path / "whole", 3000)) == 0
    want = pd.read_csv(tmp_path / "whole" / "lineage.csv")
    cols = [c for c in want.columns if c not in ("started_s", "finished_s", "duration_s")]
    pd.testing.assert_frame_equal(df[cols], want[cols])


@pytest.mark.parametrize("hit", [1, 7, 25])
def test_injected_enospc_in_the_driver_is_one_line_no_tmp_file_left(table, tmp_path, hit):
    d, log = tmp_path / "run", tmp_path / "err"
    assert wait_rc(fork_cli(table_argv(table, d, 40), fault=f"disk_write:{hit}:enospc", stderr=log)) == 2
    one_line(log.read_text(), "No space left on device")
    if d.exists():
        no_tmp_files(d)
        assert main(["--resume", str(d), "--quiet"]) == 0
        assert evaluated(pd.read_csv(d / "lineage.csv")) == 40


@pytest.mark.slow
def test_a_worker_that_cannot_save_weights_stops_the_run_nothing_ok_without_weights(tmp_path):
    d, log = tmp_path / "run", tmp_path / "err"
    rc = wait_rc(fork_cli([*DIGITS, "--evaluations", "8", "--run-dir", str(d)], stderr=log,
                          env={"EVONAS_FAULT": "disk_write:3:enospc"}))  # the workers' third save
    assert rc == 2
    one_line(log.read_text(), "disk full")
    no_tmp_files(d)
    done = [ev for ev in read_events(d / "journal.jsonl") if ev["e"] == "done"]
    assert done and all(ev["weights"] for ev in done if ev["status"] == "ok")  # no ok trial without weights
    assert not (d / "best" / "genome.json").exists()
    assert main(["--resume", str(d), "--quiet"]) == 0
    assert (d / "best" / "weights.safetensors").is_file()


# --- 7. weights checked -----------------------------------------------------------------
def test_parent_weights_of_another_shape_are_refused_naming_the_file():
    from evonas.compile import compile_graph
    from evonas.genome import GENOMES
    from evonas.inherit import check_parent_state
    g = GENOMES.get("nb201").sample(np.random.default_rng(0))
    state = compile_graph(g.decode(), (1, 8, 8), 10).state_dict()
    check_parent_state(g, state, (1, 8, 8), 10, "p.safetensors")
    key = next(k for k, v in state.items() if v.ndim == 4)
    bigger = {**state, key: torch.zeros(*[s + 2 for s in state[key].shape])}
    with pytest.raises(ConfigError, match=r"p\.safetensors.*" + key.replace(".", r"\.")):
        check_parent_state(g, bigger, (1, 8, 8), 10, "p.safetensors")
    with pytest.raises(ConfigError, match="do not match the parent"):
        check_parent_state(g, {k: v for k, v in state.items() if k != key}, (1, 8, 8), 10, "p.safetensors")


def test_export_best_checks_the_weights_file_and_never_leaves_best_without_them(tmp_path):
    from evonas.genome import GENOMES
    from evonas.report import export_best
    from evonas.tensor_io import save_weights_file
    cls = GENOMES.get("nb201")
    a, b = cls.sample(np.random.default_rng(0)), cls.sample(np.random.default_rng(1))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not safetensors at all")
    other = save_weights_file(tmp_path / "other.safetensors", {"w": torch.zeros(2)},
                              {"genome": json.dumps(b.to_dict())})
    for bad, needle in ((junk, "not safetensors"), (other, "another network")):
        with pytest.raises(ConfigError, match=needle):
            export_best(tmp_path / "run", a, bad)
        assert not (tmp_path / "run" / "best" / "genome.json").exists()


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("digits") / "run"
    assert main([*DIGITS, "--evaluations", "6", "--seed", "1", "--run-dir", str(d)]) == 0
    return d


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["bigger", "missing", "copied"])
def test_damaged_parent_weights_stop_the_resume_naming_the_file(digits_run, tmp_path, capsys, damage):
    from safetensors import safe_open
    from evonas.tensor_io import load_weights_file, save_weights_file
    d = tmp_path / "run"
    shutil.copytree(digits_run, d)
    files = sorted((d / "weights").glob("*.safetensors"))
    assert files
    for f in files:
        if damage == "bigger":  # valid safetensors, the recorded genome, larger tensors
            with safe_open(str(f), "pt") as fh:
                meta = fh.metadata()
            state = {k: torch.zeros(*[s + 1 for s in v.shape]) if v.ndim else v
                     for k, v in load_weights_file(f).items()}
            save_weights_file(f, state, meta)
        elif damage == "missing":
            f.unlink()
    original = tree_hash(digits_run)
    rc = main(["--resume", str(d), "--evaluations", "12", "--quiet"])
    if damage == "copied":  # a copy resumes on its own files, the original is untouched
        assert rc == 0 and tree_hash(digits_run) == original
        df = pd.read_csv(d / "lineage.csv")
        assert evaluated(df) == 12 and not df["reason"].str.contains("weights").any()
        return
    assert rc == 2
    one_line(capsys, "parent weights", ".safetensors")
    assert tree_hash(digits_run) == original


# --- 8. stops ------------------------------------------------------------------------------
def test_sigterm_is_a_clean_stop_and_resume_gives_the_uninterrupted_lineage(table, tmp_path):
    ref = tmp_path / "ref"
    assert main(table_argv(table, ref, 120)) == 0
    d, log = tmp_path / "run", tmp_path / "err"
    pid = fork_cli(table_argv(table, d, 120), fault="driver_inflight:1:sleep=0.05", stderr=log)
    deadline = time.monotonic() + 120
    while not (d / "lineage.csv").exists() or len(read_records(d / "lineage.csv")) < 20:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(pid, signal.SIGTERM)
    assert wait_rc(pid) == 143
    one_line(log.read_text(), "stopped by SIGTERM", "--resume")
    no_tmp_files(d)
    assert main(["--resume", str(d), "--quiet"]) == 0
    got, want = (pd.read_csv(x / "lineage.csv").drop(columns=IGNORED) for x in (d, ref))
    pd.testing.assert_frame_equal(got, want)


@pytest.mark.parametrize("body, needle", [
    ("raise SystemExit(0)", "raised SystemExit"),
    ("raise KeyboardInterrupt", "raised KeyboardInterrupt"),
    ("while True:\n        pass", "did not return within 2 s"),
])
def test_a_plugin_operator_that_exits_interrupts_or_hangs_is_a_plugin_error(table, tmp_path, capsys, body, needle):
    name = f"t15_op_{abs(hash(body)) % 10**6}"
    plug = tmp_path / f"{name}.py"
    plug.write_text(f"import evonas\n@evonas.register_mutation('nb201', name='{name}')\n"
                    f"def op(genome, rng):\n    {body}\n")
    d = tmp_path / "run"
    t0 = time.monotonic()
    rc = main([*table_argv(table, d, 40), "--plugin", str(plug), "--mutation", name, "--time-budget", "2"])
    assert rc == 2 and time.monotonic() - t0 < 60
    one_line(capsys, name, needle)


def test_a_plugin_that_exits_while_loading_is_a_plugin_error(table, tmp_path, capsys):
    plug = tmp_path / "t15_exit_on_load.py"
    plug.write_text("raise SystemExit(0)\n")
    assert main([*table_argv(table, tmp_path / "run", 10), "--plugin", str(plug)]) == 2
    one_line(capsys, "t15_exit_on_load", "SystemExit")
    assert not (tmp_path / "run").exists()


# --- 9. data sanity and finite numbers ---------------------------------------------------
def _npz(path, y, n_per=None):
    x = np.random.default_rng(0).random((len(y), 8, 8)).astype(np.float32)
    np.savez(path, x=x, y=np.asarray(y, dtype=np.int64))
    return f"npz:{path}"


@pytest.mark.parametrize("case, needle", [
    ("one class", "at least 2 classes"),
    ("stray label", "stray label"),
    ("gap in labels", "labels must be 0..C-1"),
    ("one image per class", "too few"),
    ("two images per class", "too few"),
])
def test_datasets_without_meaning_are_refused_before_anything_is_written(tmp_path, capsys, case, needle):
    y = {"one class": [0] * 40, "stray label": [0, 1] * 20 + [10**7],
         "gap in labels": [0, 1, 5] * 10, "one image per class": list(range(10)),
         "two images per class": list(range(10)) * 2}[case]
    spec = _npz(tmp_path / "d.npz", y)
    d = tmp_path / "run"
    assert main(["--dataset", spec, "--run-dir", str(d), *DIGITS, "--evaluations", "2"]) == 2
    one_line(capsys, needle)
    assert not d.exists()


@pytest.mark.parametrize("flag, value", [("--time-budget", "1e999"), ("--lr", "inf"), ("--lr", "nan")])
def test_non_finite_numbers_are_refused_before_anything_is_written(tmp_path, capsys, flag, value):
    d = tmp_path / "run"
    assert main([*DIGITS, "--evaluations", "2", flag, value, "--run-dir", str(d)]) == 2
    one_line(capsys, flag.lstrip("-").replace("-", "_"))
    assert not d.exists()
