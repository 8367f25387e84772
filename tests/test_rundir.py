"""Run directory: atomic creation, refusals that leave everything untouched,
resume checks against the stored config, JSON-only checkpoints."""
import json
import os

import pytest

from evonas.config import Config
from evonas.errors import ConfigError
from evonas.store.lineage import LineageWriter
from evonas.io import atomic_write_json
from evonas.reopen import open_for_resume
from evonas.store.rundir import RunPaths, create_run_dir, is_run_dir, load_state, record_resume, save_state


def snapshot(root):
    """Bytes and mtimes of every file under root (to prove nothing changed)."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.stat(p)
            out[p] = (st.st_mtime_ns, open(p, "rb").read() if os.path.isfile(p) else None)
    return out


@pytest.fixture
def cfg():
    return Config(genome="nb201", population=10, evaluations=20).resolved("t")


def test_create_layout(tmp_path, cfg):
    p = create_run_dir(tmp_path / "runs" / "a", cfg, argv=["evonas.run"], plugins=["my_ops"],
                       lineage_columns=["test_acc"])
    assert is_run_dir(p.root) and p.weights.is_dir() and p.best.is_dir()
    assert Config.load(p.config) == cfg.updated({"run_dir": str(p.root)})
    man = json.loads(p.manifest.read_text())
    assert man["seed"] == cfg.seed and man["plugins"] == ["my_ops"] and man["argv"] == ["evonas.run"]
    assert {"evonas", "torch", "cuda", "python", "start_time"} <= set(man)
    assert p.lineage.read_text().startswith("id,parent_ids,") and "test_acc" in p.lineage.read_text()
    assert [x.name for x in (tmp_path / "runs").iterdir()] == ["a"]  # no temp sibling left


def test_existing_empty_dir_is_fine(tmp_path, cfg):
    (tmp_path / "a").mkdir()
    assert is_run_dir(create_run_dir(tmp_path / "a", cfg).root)


def test_non_empty_dir_refused_untouched(tmp_path, cfg):
    root = tmp_path / "a"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    with pytest.raises(ConfigError, match="not empty"):
        create_run_dir(root, cfg)
    assert snapshot(tmp_path) == before


def test_unwritable_parent_refused(tmp_path, cfg):
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where a parent directory should be: works as root too
    with pytest.raises(ConfigError, match="run_dir"):
        create_run_dir(blocker / "run", cfg)
    assert blocker.read_text() == "x"


def test_readonly_parent_refused(tmp_path, cfg):
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as root: chmod does not make a directory unwritable")
        with pytest.raises(ConfigError, match="not writable"):
            create_run_dir(ro / "run", cfg)
        assert list(ro.iterdir()) == []
    finally:
        os.chmod(ro, 0o755)


def test_resume_accepts_same_and_resumable_changes(tmp_path, cfg):
    p = create_run_dir(tmp_path / "a", cfg)
    before = snapshot(tmp_path)
    c, paths = open_for_resume(p.root, {"population": 10, "evaluations": 50, "workers": 2})
    assert c.evaluations == 50 and c.workers == 2 and c.population == 10 and paths.root == p.root
    assert c.run_dir == str(p.root) and c.name == cfg.name
    assert snapshot(tmp_path) == before  # checking wrote nothing
    record_resume(paths, c, argv=["resume"])
    assert Config.load(p.config).evaluations == 50
    assert json.loads(p.manifest.read_text())["resumes"][0]["argv"] == ["resume"]


def test_resume_conflict_refused_untouched(tmp_path, cfg):
    p = create_run_dir(tmp_path / "a", cfg)
    with LineageWriter(p.lineage) as w:
        w.write({"id": 0, "birth": 0, "status": "ok", "fitness": 1.0})
    save_state(p, {"next_id": 1})
    before = snapshot(p.root)
    with pytest.raises(ConfigError) as e:
        open_for_resume(p.root, {"population": 12, "seed": 5, "evaluations": 99})
    msg = str(e.value)
    assert "population" in msg and "seed" in msg and "evaluations" not in msg.split(":")[1]
    assert "\n" not in msg
    cfile = tmp_path / "c.yaml"
    cfile.write_text("inherit: exact\n")
    with pytest.raises(ConfigError, match="inherit"):
        open_for_resume(p.root, {}, file=cfile)
    assert snapshot(p.root) == before


@pytest.mark.parametrize("make", ["missing", "file", "empty_dir", "no_lineage", "bad_config", "bad_state"])
def test_resume_not_a_run(tmp_path, cfg, make):
    root = tmp_path / "r"
    if make == "file":
        root.write_text("x")
    elif make == "empty_dir":
        root.mkdir()
    elif make == "no_lineage":
        root.mkdir()
        cfg.dump(root / "config.json")
    elif make in ("bad_config", "bad_state"):
        create_run_dir(root, cfg)
        target = root / ("config.json" if make == "bad_config" else "state.json")
        target.write_text('{"truncated": ')
    before = snapshot(tmp_path)
    with pytest.raises(ConfigError):
        open_for_resume(root, {})
    assert snapshot(tmp_path) == before


def test_state_roundtrip_atomic(tmp_path, cfg):
    p = create_run_dir(tmp_path / "a", cfg)
    assert load_state(p) is None
    big = {"rng": {"state": {"state": 2 ** 127 + 3, "inc": 5}}, "alive": [1, 2], "x": float("inf")}
    save_state(p, big)
    assert load_state(p) == big
    assert not list(p.root.glob("*.tmp"))


def test_planted_pickle_is_never_loaded(tmp_path, cfg):
    """A pickle planted as the checkpoint is rejected as non-JSON, never unpickled."""
    import pickle

    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    p = create_run_dir(tmp_path / "a", cfg)
    p.state.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(ConfigError, match="state.json"):
        open_for_resume(p.root, {})
    with pytest.raises(ConfigError):
        load_state(RunPaths(p.root))
    assert not (tmp_path / "pwned").exists()


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "s.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"a": object()})  # fails while serialising
    assert json.loads(target.read_text()) == {"a": 1}


def test_resume_with_auto_sample_size_stored(tmp_path):
    p = create_run_dir(tmp_path / "a", Config(population=8, name="x"))  # sample_size 0 stored
    c, _ = open_for_resume(p.root, {"population": 8})
    assert c.sample_size == 2
    with pytest.raises(ConfigError, match="sample_size"):
        open_for_resume(p.root, {"sample_size": 5})
