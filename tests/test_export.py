"""`python -m evonas.export`: the exported model gives the logits of the best model
loaded with its trained weights (pt2, TorchScript, ONNX), and user mistakes exit 2."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from evonas.compile import compile_graph
from evonas.config import Config
from evonas.export import export, load_best, main
from evonas.genome.tree import TreeGenome
from evonas.report import export_best
from evonas.store.lineage import LineageWriter
from evonas.store.rundir import create_run_dir
from evonas.tensor_io import save_weights_file

SHAPE, CLASSES = (1, 8, 8), 10  # the bundled digits data set


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run directory whose best/ holds a tree genome and weights that differ from
    any fresh initialisation (seed 7, perturbed BN statistics)."""
    root = tmp_path_factory.mktemp("export") / "run"
    p = create_run_dir(root, Config(genome="tree", population=2).resolved("t"))
    g = TreeGenome.sample(np.random.default_rng(3))
    with LineageWriter(p.lineage) as w:
        w.write({"id": 0, "birth": 0, "parent_ids": (), "operator": "init", "genome": g,
                 "status": "ok", "fitness": 50.0})
    model = compile_graph(g.decode(), SHAPE, CLASSES, seed=7)
    gen = torch.Generator().manual_seed(0)
    state = {k: (v + torch.rand(v.shape, generator=gen) if k.endswith("running_var") else v)
             for k, v in model.state_dict().items()}
    save_weights_file(root / "w.safetensors", state)
    export_best(root, g, root / "w.safetensors", 50.0, 0)
    return p


def _reference(run, x):
    model, shape = load_best(run.root)
    assert shape == SHAPE and not model.training
    with torch.no_grad():
        return model(x)


def test_load_best_uses_the_trained_weights(run):
    model, _ = load_best(run.root)
    fresh = compile_graph(TreeGenome.sample(np.random.default_rng(3)).decode(), SHAPE, CLASSES, seed=0).eval()
    x = torch.randn(4, *SHAPE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert not torch.allclose(model(x), fresh(x))  # not a fresh initialisation


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["pt2", "torchscript"])
def test_export_gives_the_same_logits(run, fmt, tmp_path):
    out = export(run.root, fmt, tmp_path / f"model.{fmt}")
    x = torch.randn(5, *SHAPE, generator=torch.Generator().manual_seed(2))  # another batch size than traced
    ref = _reference(run, x)
    if fmt == "pt2":
        got = torch.export.load(str(out)).module()(x)
    else:
        got = torch.jit.load(str(out))(x)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_export_onnx_gives_the_same_logits(run, tmp_path):
    onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
    pytest.importorskip("onnxscript", reason="the onnx extra is not installed")
    from onnx.reference import ReferenceEvaluator  # numpy runtime shipped with onnx: no onnxruntime needed
    out = export(run.root, "onnx", tmp_path / "model.onnx")
    onnx.checker.check_model(str(out))
    x = torch.randn(3, *SHAPE, generator=torch.Generator().manual_seed(3))
    (got,) = ReferenceEvaluator(str(out)).run(None, {"input": x.numpy()})
    np.testing.assert_allclose(got, _reference(run, x).numpy(), rtol=1e-4, atol=1e-4)


def test_export_errors_are_one_line_exit_2(run, tmp_path, capsys):
    assert main([str(tmp_path), "--format", "pt2"]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main([str(run.root), "--format", "pt2", "--output", str(tmp_path / "no" / "m.pt2")]) == 2
    err = capsys.readouterr().err
    assert "output" in err and err.strip().count("\n") == 0
    table = create_run_dir(tmp_path / "table", Config(genome="tree", population=2).resolved("t"))
    export_best(table.root, TreeGenome.sample(np.random.default_rng(0)), None)
    assert main([str(table.root), "--format", "torchscript"]) == 2
    assert "weights.safetensors" in capsys.readouterr().err
    assert not list(table.best.glob("model*"))  # nothing half-written


@pytest.mark.slow
def test_export_cli_bad_format_exits_2(run):
    r = subprocess.run([sys.executable, "-m", "evonas.export", str(run.root), "--format", "tflite"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "tflite" in r.stderr and "Traceback" not in r.stderr
