"""Bad input and load safety at the CLI (``evonas.run.main`` in-process).

Every bad input exits with code 2 and exactly one line on stderr naming the
problem (no traceback), and leaves every file of an existing run directory
byte-for-byte unchanged. Nothing loaded from a run directory executes code: a
malicious pickle planted where a checkpoint or weights file would be is never
unpickled.
"""
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from evonas.run import main
from helpers import tree_hash

TABLE = None  # the synthetic NB201 table (conftest's nb201_table), set by _table: no ../shared needed


@pytest.fixture(scope="module", autouse=True)
def _table(nb201_table):
    global TABLE
    TABLE = nb201_table
SMALL = ["--population", "4", "--sample-size", "2", "--quiet"]
GENOME = {"type": "nb201", "space": {"C": 4, "N": 1},
          "genome": "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|"}


class Evil:
    """Unpickling this creates the marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished small table run."""
    d = tmp_path_factory.mktemp("runs") / "good"
    rc = main(["--genome", "nb201", "--evaluations", "12", "--benchmark-table", str(TABLE),
               "--run-dir", str(d), *SMALL])
    assert rc == 0
    return d


def one_line_error(capsys, rc, *needles):
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error:"), err
    for n in needles:
        assert n.lower() in err.lower(), err
    return err


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def bad_genome_files(tmp: Path) -> list:
    full = json.dumps(GENOME)
    return [
        ("malformed", write(tmp / "malformed.json", "{type: nb201,,}"), "json"),
        ("truncated", write(tmp / "truncated.json", full[: len(full) // 2]), "json"),
        ("unknown type", write(tmp / "type.json", json.dumps({**GENOME, "type": "no-such-genome"})),
         "no-such-genome"),
        ("unknown op", write(tmp / "op.json", json.dumps({**GENOME, "genome": GENOME["genome"].replace(
            "nor_conv_3x3", "warp_conv_9x9")})), "warp_conv_9x9"),
        ("empty", write(tmp / "empty.json", ""), "json"),
        ("missing", str(tmp / "absent.json"), "not found"),
    ]


@pytest.mark.parametrize("case", range(6))
def test_bad_genome_file_exit_2_one_line(tmp_path, capsys, run_dir, case):
    """--seed-genome with a malformed/truncated/foreign/unknown-op/empty/missing file."""
    name, path, needle = bad_genome_files(tmp_path)[case]
    before = tree_hash(run_dir)
    target = tmp_path / "new-run"
    rc = main(["--genome", "nb201", "--space", "C=4", "--space", "N=1", "--seed-genome", path,
               "--evaluations", "3", "--benchmark-table", str(TABLE), "--run-dir", str(target), *SMALL])
    one_line_error(capsys, rc, needle)
    assert not target.exists(), f"{name}: the run directory was created despite bad input"
    assert tree_hash(run_dir) == before


def _config_file(tmp, body):
    return ["--config", write(tmp / "cfg.yaml", body)]


BAD_NEW_RUN = {
    "unknown genome type": (lambda t: ["--genome", "no-such-genome"], "no-such-genome"),
    "wrong type in config": (lambda t: _config_file(t, "population: ten\n"), "population"),
    "wrong list type in config": (lambda t: _config_file(t, "mutations: 3\n"), "mutations"),
    "unknown config key": (lambda t: _config_file(t, "populaton: 10\n"), "populaton"),
    "config not a mapping": (lambda t: _config_file(t, "- a\n- b\n"), "mapping"),
    "missing dataset file": (lambda t: ["--dataset", f"npz:{t / 'none.npz'}"], "not found"),
    "npz wrong keys": (lambda t: ["--dataset", "npz:" + _npz(t, images=np.zeros((8, 8, 8), np.uint8),
                                                             labels=np.zeros(8, np.int64))], "keys"),
    "npz wrong label shape": (lambda t: ["--dataset", "npz:" + _npz(t, x=np.zeros((8, 8, 8), np.uint8),
                                                                    y=np.zeros((8, 2), np.int64))], "y"),
    "npz not an npz": (lambda t: ["--dataset", "npz:" + write(t / "junk.npz", "not a zip")], "npz"),
    "unknown mutation": (lambda t: ["--genome", "nb201", "--mutation", "teleport"], "teleport"),
}


def _npz(tmp, **arrays):
    path = tmp / "data.npz"
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize("case", sorted(BAD_NEW_RUN))
def test_bad_new_run_input_exit_2_nothing_written(tmp_path, capsys, case):
    make, needle = BAD_NEW_RUN[case]
    target = tmp_path / "new-run"
    rc = main([*make(tmp_path), "--evaluations", "2", "--run-dir", str(target), *SMALL])
    one_line_error(capsys, rc, needle)
    assert not target.exists()


def test_unwritable_run_dir(tmp_path, capsys):
    """The parent is a regular file (unwritable even for root): refused before any work."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = main(["--genome", "nb201", "--evaluations", "2", "--run-dir", str(blocker / "run"), *SMALL])
    one_line_error(capsys, rc, "run")
    assert blocker.read_text() == "x"


def test_existing_run_dir_is_not_overwritten(capsys, run_dir):
    before = tree_hash(run_dir)
    rc = main(["--genome", "nb201", "--evaluations", "2", "--benchmark-table", str(TABLE),
               "--run-dir", str(run_dir), *SMALL])
    one_line_error(capsys, rc, "not empty")
    assert tree_hash(run_dir) == before


@pytest.mark.parametrize("flags, needle", [
    (["--population", "7"], "population"),
    (["--seed", "5"], "seed"),
    (["--genome", "tree"], "genome"),
])
def test_resume_with_another_config_refused_untouched(capsys, run_dir, flags, needle):
    before = tree_hash(run_dir)
    one_line_error(capsys, main(["--resume", str(run_dir), *flags, "--quiet"]), needle)
    assert tree_hash(run_dir) == before


@pytest.mark.parametrize("content", ["nothing", "empty", "files", "file"])
def test_resume_of_something_that_is_not_a_run(tmp_path, capsys, content):
    d = tmp_path / "d"
    if content != "nothing":
        d.mkdir()
    if content == "files":
        (d / "config.json").write_text("{}")
        (d / "notes.txt").write_text("hello")
    if content == "file":
        d.rmdir()
        d.write_text("x")
    before = tree_hash(d) if d.is_dir() else None
    one_line_error(capsys, main(["--resume", str(d), "--quiet"]), str(d.name))
    if before is not None:
        assert tree_hash(d) == before


@pytest.mark.parametrize("what", ["state", "config"])
def test_corrupt_json_in_run_refused_untouched(tmp_path, capsys, run_dir, what):
    """A checkpoint/config that is not valid JSON: exit 2, nothing modified."""
    import shutil
    d = tmp_path / "copy"
    shutil.copytree(run_dir, d)
    f = d / f"{what}.json"
    f.write_bytes(f.read_bytes()[:40])
    before = tree_hash(d)
    one_line_error(capsys, main(["--resume", str(d), "--evaluations", "20", "--quiet"]), f"{what}.json")
    assert tree_hash(d) == before


# --- load safety ----------------------------------------------------------------------------

def test_planted_pickle_checkpoint_is_never_executed(tmp_path, capsys, run_dir):
    """state.json (and a state.pt/.pkl next to it) replaced by a malicious pickle: resume
    refuses with exit 2 (not JSON) and the payload never runs."""
    import shutil
    d = tmp_path / "copy"
    shutil.copytree(run_dir, d)
    marker = tmp_path / "PWNED"
    payload = pickle.dumps(Evil(marker))
    for name in ("state.json", "state.pt", "state.pkl", "checkpoint.pt"):
        (d / name).write_bytes(payload)
    rc = main(["--resume", str(d), "--evaluations", "20", "--quiet"])
    one_line_error(capsys, rc, "state.json")
    assert not marker.exists()


def test_planted_pickle_weights_are_never_executed(tmp_path):
    """Where weights would be (.safetensors of the store, a parent's weights of a
    trial): a pickle is refused as not-safetensors / fails the trial, never executed."""
    import torch

    from evonas.errors import ConfigError
    from evonas.evaluate.base import Job
    from evonas.evaluate.data import DataSpec
    from evonas.evaluate.train import TrainConfig, evaluate_job
    from evonas.genome.base import genome_from_dict
    from evonas.tensor_io import load_weights_file
    marker = tmp_path / "PWNED"
    payload = pickle.dumps(Evil(marker))
    planted = tmp_path / "weights" / "3.safetensors"
    planted.parent.mkdir()
    planted.write_bytes(payload)
    with pytest.raises(ConfigError, match="safetensors"):
        load_weights_file(planted)
    torch.save({"x": Evil(marker)}, tmp_path / "w.pt")  # a torch-style pickle too
    g = genome_from_dict(GENOME)
    data = DataSpec("digits", seed=0, max_train=64).load()
    for bad in (planted, tmp_path / "w.pt"):
        job = Job(1, g, (0,), "edge_op", "exact", g, str(bad), None, seed=1)
        res = evaluate_job(job, data, TrainConfig(epochs=1, batch_size=32, threads=1))
        assert res.status == "failed" and ("parent weights" in res.reason or "Safetensor" in res.reason)
    assert not marker.exists()


def test_pickle_sanity_marker_works(tmp_path):
    """Control: the payload really does create the marker when unpickled (so the tests
    above would notice an unpickling)."""
    marker = tmp_path / "PWNED"
    pickle.loads(pickle.dumps(Evil(marker)))
    assert marker.exists()
