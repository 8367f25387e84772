"""The notebook API (issue 16 item 4): ``evonas.search`` runs through the CLI's
code path (same run directory, same lineage for the same settings), ``load_run``
reads a CLI run, ``Run.best_model()`` is the model that ``evonas.export``
exports, and bad input raises ``ConfigError`` (never ``SystemExit``) with
nothing written. Real training on the bundled 8x8 digits, tiny tree space."""
from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

import evonas
from evonas.config import Config
from evonas.export import export, load_best
from evonas.run import main as run_main

ROOT = Path(__file__).resolve().parents[1]
TIMING = ["train_seconds", "worker", "started_s", "finished_s"]
# the same tiny search, once as keyword arguments and once as CLI flags
SETTINGS = dict(genome="tree", space={"C": 4}, population=3, sample_size=2, evaluations=5, seed=2,
                epochs=1, batch_size=128, workers=1, devices="cpu", final_top=2)
FLAGS = ["--genome", "tree", "--space", "C=4", "--population", "3", "--sample-size", "2",
         "--evaluations", "5", "--seed", "2", "--epochs", "1", "--batch-size", "128", "--workers", "1",
         "--devices", "cpu", "--final-top", "2", "--quiet"]


@pytest.fixture(autouse=True)
def _passive_openmp(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # spinning OpenMP threads slow shared-core trials


@pytest.fixture(scope="module")
def api_run(tmp_path_factory):
    return evonas.search(**SETTINGS, run_dir=tmp_path_factory.mktemp("api") / "run", progress="lines")


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli") / "run"
    assert run_main([*FLAGS, "--run-dir", str(d)]) == 0
    return d


def test_search_writes_the_cli_run_directory(api_run):
    root = api_run.root
    for name in ("config.json", "manifest.json", "lineage.csv", "journal.jsonl", "final.csv",
                 "best/genome.json", "best/weights.safetensors"):
        assert (root / name).is_file(), name
    from evonas.store.rundir import RunLock
    RunLock(root).release()  # the run released its lock (flock on the directory)
    cfg = api_run.config
    assert cfg.population == 3 and cfg.final_top == 2 and cfg.run_dir == str(root)
    assert json.loads((root / "manifest.json").read_text())["argv"][0] == "evonas.search"


def test_run_lineage_summary_and_best(api_run):
    df = api_run.lineage
    assert isinstance(df, pd.DataFrame)
    assert (df["status"] != "duplicate").sum() == 5  # evaluations counts trained networks
    s = api_run.summary
    assert s["evaluations"] == 5 and s["best fitness"] == df.loc[df["status"] == "ok", "fitness"].max()
    final = api_run.final
    assert len(final) == 2 and s["final best id"] in set(final["id"])
    # best/ holds the final stage's choice, and best_genome is it
    chosen = final.loc[final["id"] == s["final best id"], "genome"].item()
    assert api_run.best_genome.to_string() == chosen == s["final genome"]


def test_load_run_of_a_cli_run_gives_the_same_lineage(api_run, cli_run):
    run = evonas.load_run(cli_run)
    a = run.lineage.drop(columns=TIMING)
    b = api_run.lineage.drop(columns=TIMING)
    assert len(a) >= 5
    pd.testing.assert_frame_equal(a, b)  # same settings, same seed: the same search
    same = {k: v for k, v in Config.load(cli_run / "config.json").to_dict().items() if k not in ("run_dir", "name")}
    assert same == {k: v for k, v in api_run.config.to_dict().items() if k not in ("run_dir", "name")}
    assert run.summary["final best id"] == api_run.summary["final best id"]


def test_best_model_gives_the_exported_logits(api_run, tmp_path):
    model = api_run.best_model()
    assert isinstance(model, torch.nn.Module) and not model.training
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    out = export(api_run.root, "torchscript", tmp_path / "model.ts.pt")
    with torch.no_grad():
        got = model(x)
        torch.testing.assert_close(got, torch.jit.load(str(out))(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(got, load_best(api_run.root)[0](x))
    # the trained weights, not a fresh initialisation
    from evonas.compile import compile_graph
    fresh = compile_graph(api_run.best_genome.decode(), (1, 8, 8), 10, seed=0).eval()
    with torch.no_grad():
        assert not torch.allclose(got, fresh(x))


def test_resume_continues_the_run(tmp_path, api_run):
    part = evonas.search(**{**SETTINGS, "evaluations": 3, "final_top": 0}, run_dir=tmp_path / "part", quiet=True)
    more = evonas.resume(part.root, evaluations=5, quiet=True)
    assert more.root == part.root
    a = more.lineage.drop(columns=TIMING)
    b = api_run.lineage.drop(columns=TIMING)
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("kw, field", [
    ({"population": 1}, "population"),
    ({"popul": 10}, "popul"),
    ({"strategy": "nope"}, "strategy"),
    ({"genome": "nope"}, "genome"),
    ({"lr": "fast"}, "lr"),
    ({"progress": "loud"}, "progress"),
    ({"dataset": "npz:/nonexistent.npz"}, None),
])
def test_bad_input_raises_config_error_and_writes_nothing(tmp_path, kw, field):
    target = tmp_path / "run"
    with pytest.raises(evonas.EvonasError) as e:
        evonas.search(**kw, run_dir=target, quiet=True)
    assert not isinstance(e.value, SystemExit)
    if field is not None:
        assert isinstance(e.value, evonas.ConfigError) and e.value.field == field
    assert list(tmp_path.iterdir()) == []


def test_load_run_of_a_non_run_raises(tmp_path):
    with pytest.raises(evonas.ConfigError):
        evonas.load_run(tmp_path)


def test_search_signature_has_the_config_keys_and_defaults():
    params = inspect.signature(evonas.search).parameters
    defaults = Config()
    for name in Config.__dataclass_fields__:
        want = None if name == "run_dir" else getattr(defaults, name)
        assert params[name].default == want, name
    assert "population" in evonas.search.__doc__


def test_import_evonas_does_not_load_the_api():
    code = "import sys, evonas; print('evonas.api' in sys.modules, 'evonas.run' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert r.stdout.split() == ["False", "False"], r.stderr
