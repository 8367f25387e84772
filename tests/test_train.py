"""Training one candidate: real learning on digits, failures as Results, weights."""
import json

import pytest
import torch
from safetensors.torch import load_file, safe_open

from evonas.errors import ConfigError
from evonas.evaluate.base import Job
from evonas.evaluate.data import load_dataset
from evonas.evaluate.train import TrainConfig, evaluate_job
from evonas.genome.nb201 import NB201Genome, NB201Space

TINY = NB201Genome(("nor_conv_3x3", "skip_connect", "nor_conv_1x1", "skip_connect", "avg_pool_3x3",
                    "nor_conv_3x3"), NB201Space(C=4, N=1))
CFG = TrainConfig(epochs=1, batch_size=32, lr=0.05)


@pytest.fixture(scope="module")
def digits():
    torch.set_num_threads(1)
    return load_dataset("digits", seed=0, max_train=500)


def test_one_epoch_learns_well_above_chance(digits):
    r = evaluate_job(Job(1, TINY, seed=0), digits, CFG)
    assert r.status == "ok", r.reason
    assert r.fitness > 30.0  # chance is 10%
    assert r.params > 0 and r.flops > 0 and r.epochs == 1.0 and r.train_seconds > 0
    assert "test_accuracy" not in r.extra  # the test split is for the final report only


def test_same_seed_same_fitness_on_cpu_and_test_only_when_asked(digits):
    cfg = TrainConfig(epochs=1, batch_size=32, lr=0.05, test=True)
    a = evaluate_job(Job(1, TINY, seed=5), digits, cfg)
    b = evaluate_job(Job(2, TINY, seed=5), digits, cfg)
    assert a.fitness == b.fitness and a.extra["test_accuracy"] == b.extra["test_accuracy"]


def test_nan_loss_fails_with_reason(digits):
    r = evaluate_job(Job(3, TINY, seed=0), digits, TrainConfig(epochs=1, batch_size=32, lr=1e6))
    assert r.status == "failed" and r.fitness is None and "non-finite" in r.reason


def test_budget_precheck_rejects_without_training(digits, tmp_path):
    out = tmp_path / "w.safetensors"
    r = evaluate_job(Job(4, TINY, seed=0, weights_out=str(out)), digits, TrainConfig(max_params=1000))
    assert r.status == "failed" and "max_params" in r.reason and r.params > 1000
    assert not out.exists() and r.train_seconds < 1.0
    r = evaluate_job(Job(4, TINY, seed=0), digits, TrainConfig(max_macs=10))
    assert r.status == "failed" and "max_macs" in r.reason


def test_soft_timeout(digits):
    r = evaluate_job(Job(5, TINY, seed=0), digits, TrainConfig(epochs=50, batch_size=8, timeout_s=0.2))
    assert r.status == "failed" and r.reason.startswith("timeout")


def test_weights_saved_atomically_and_inherited(digits, tmp_path):
    path = tmp_path / "parent.safetensors"
    p = evaluate_job(Job(6, TINY, seed=0, weights_out=str(path)), digits, CFG)
    assert p.status == "ok" and p.weights == str(path)
    assert [f.name for f in tmp_path.iterdir()] == ["parent.safetensors"]  # no temp file left
    state = load_file(path)
    assert any(k.startswith("nodes.") for k in state) and "head.weight" in state
    with safe_open(str(path), "pt") as f:
        assert json.loads(f.metadata()["genome"])["genome"] == TINY.to_string()
    child = Job(7, TINY, parent_ids=(6,), operator="edge_op", inherit="shape", parent_genome=TINY,
                parent_weights=str(path), seed=1)
    c = evaluate_job(child, digits, TrainConfig(epochs=1, batch_size=32, lr=1e-9))
    assert c.status == "ok" and c.inherited == "shape" and " 0 fresh" in c.extra["inherit"]
    fresh = evaluate_job(Job(7, TINY, seed=1), digits, TrainConfig(epochs=1, batch_size=32, lr=1e-9))
    # lr ~ 0: the inheriting child is (up to BN statistics) its trained parent, the fresh one is not
    assert abs(c.fitness - p.fitness) < 10.0 and c.fitness > fresh.fitness + 10.0
    missing = Job(8, TINY, inherit="shape", parent_genome=TINY, parent_weights=str(tmp_path / "nope"))
    m = evaluate_job(missing, digits, CFG)
    assert m.status == "failed" and "parent weights" in m.reason


@pytest.mark.parametrize("field, value", [("epochs", 0), ("lr", -1.0), ("optimizer", "rmsprop"),
                                          ("max_params", 0), ("timeout_s", 0), ("label_smoothing", 1.0)])
def test_config_validation(field, value):
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**{field: value})


def test_other_optimizers(digits):
    for opt in ("adam", "adamw"):
        r = evaluate_job(Job(9, TINY, seed=0), digits, TrainConfig(optimizer=opt, lr=3e-3, batch_size=64,
                                                                  schedule="constant", label_smoothing=0.1))
        assert r.status == "ok" and r.fitness > 15.0


def test_oom_halves_micro_batch_then_gives_up(digits, monkeypatch):
    import evonas.evaluate.train as tr
    real = tr._train

    def fake(model, data, cfg, seed, device, micro, t0):  # a GPU that fits 8 samples
        if micro > 8:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(model, data, cfg, seed, device, micro, t0)
    monkeypatch.setattr(tr, "_train", fake)
    r = evaluate_job(Job(10, TINY, seed=0), digits, TrainConfig(batch_size=32))
    assert r.status == "ok" and r.extra["micro_batch"] == 8  # 32 -> 16 -> 8, same effective batch
    r = evaluate_job(Job(11, TINY, seed=0), digits, TrainConfig(batch_size=32, oom_retries=1))
    assert r.status == "failed" and "out of memory at micro-batch 16" in r.reason


def test_ok_row_reason_names_the_reduced_micro_batch(digits, monkeypatch):
    import evonas.evaluate.train as tr
    real = tr._train

    def fake(model, data, cfg, seed, device, micro, t0):
        if micro > 16:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(model, data, cfg, seed, device, micro, t0)
    monkeypatch.setattr(tr, "_train", fake)
    r = evaluate_job(Job(12, TINY, seed=0), digits, TrainConfig(batch_size=32))
    assert r.status == "ok" and "micro-batch 16" in r.reason and "batch 32" in r.reason


def test_modes_auto_follow_the_device_without_cuda():
    assert TrainConfig().modes("cpu") == (False, True)  # channels_last is faster on CPU too
    assert TrainConfig().modes("cuda:1") == (True, True)  # torch.device needs no GPU
    assert TrainConfig(precision="fp32", memory_format="contiguous").modes("cuda") == (False, False)
    assert TrainConfig(precision="bf16", memory_format="channels_last").modes("cpu") == (True, True)
    for field, value in (("precision", "fp16"), ("memory_format", "nhwc")):
        with pytest.raises(ConfigError, match=field):
            TrainConfig(**{field: value})


def test_gpu_code_path_runs_on_cpu_bf16_channels_last(digits, monkeypatch, tmp_path):
    """precision=bf16 + memory_format=channels_last is what a CUDA device gets by
    default: the same loop really computes in bf16 on channels_last inputs, and
    still learns."""
    import evonas.evaluate.train as tr
    seen = []
    real_build = tr._build

    def spy(*a):
        model, report = real_build(*a)
        # a cell conv: its input has C > 1 channels (a 1-channel NCHW tensor is trivially channels_last)
        conv = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        conv.register_forward_hook(lambda m, inp, out: seen.append(
            (out.dtype, inp[0].is_contiguous(memory_format=torch.channels_last))))
        return model, report
    monkeypatch.setattr(tr, "_build", spy)
    cfg = TrainConfig(epochs=2, batch_size=32, precision="bf16", memory_format="channels_last")
    path = tmp_path / "parent.safetensors"
    r = evaluate_job(Job(13, TINY, seed=0, weights_out=str(path)), digits, cfg)
    assert r.status == "ok" and r.fitness > 30.0, r.reason
    assert seen and all(s == (torch.bfloat16, True) for s in seen), set(seen)
    assert load_file(path)["head.weight"].dtype == torch.float32  # bf16 is autocast only
    child = Job(15, TINY, parent_ids=(13,), operator="edge_op", inherit="exact", parent_genome=TINY,
                parent_weights=str(path), seed=1)  # channels_last weights saved, loaded, inherited
    c = evaluate_job(child, digits, TrainConfig(batch_size=32, lr=1e-9, precision="bf16",
                                                memory_format="channels_last"))
    assert c.status == "ok" and c.inherited == "exact" and abs(c.fitness - r.fitness) < 10.0
    seen.clear()
    evaluate_job(Job(14, TINY, seed=0), digits, TrainConfig(batch_size=32, memory_format="contiguous"))
    assert seen and all(s == (torch.float32, False) for s in seen), set(seen)  # CPU default: fp32


def _live_tensor_bytes() -> int:
    import gc
    import warnings
    gc.collect()
    with warnings.catch_warnings():  # isinstance() touches deprecated torch module attributes
        warnings.simplefilter("ignore")
        return sum(o.untyped_storage().nbytes() for o in gc.get_objects()
                   if isinstance(o, torch.Tensor) and o.device.type != "meta")


def test_trials_release_their_memory(digits):
    """What the worker relies on to free GPU memory between trials: nothing of a
    finished trial (module, optimizer state, activations) stays reachable, so the
    live tensor bytes after 6 trials equal those after 2."""
    for i in range(2):
        assert evaluate_job(Job(20 + i, TINY, seed=i), digits, CFG).status == "ok"
    before = _live_tensor_bytes()
    for i in range(4):
        evaluate_job(Job(30 + i, TINY, seed=i), digits, CFG)
    assert _live_tensor_bytes() == before


def test_oom_recovery_frees_the_failed_attempt_before_emptying_the_cache(digits, monkeypatch):
    """torch's allocator can only hand memory back once nothing references it: the
    failed attempt's module must already be garbage when ``_free`` runs (recovering
    inside the ``except`` block would keep it alive through the traceback)."""
    import weakref

    import evonas.evaluate.train as tr
    real_train, real_free, refs, alive_at_free = tr._train, tr._free, [], []

    def fake(model, data, cfg, seed, device, micro, t0):
        refs.append(weakref.ref(model))
        if micro > 16:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_train(model, data, cfg, seed, device, micro, t0)

    def free(device):
        real_free(device)
        alive_at_free.append(refs[-1]() is not None)
    monkeypatch.setattr(tr, "_train", fake)
    monkeypatch.setattr(tr, "_free", free)
    assert evaluate_job(Job(40, TINY, seed=0), digits, TrainConfig(batch_size=32)).status == "ok"
    assert alive_at_free == [False]


def test_oom_while_scoring_halves_the_eval_batch_and_keeps_the_model(digits, monkeypatch):
    import evonas.evaluate.train as tr
    real, batches = tr.accuracy, []

    def fake(model, x, y, batch=1024, device="cpu", cfg=None):  # fits 64 images at a time
        batches.append(batch)
        if batch > 64:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(model, x, y, batch, device, cfg)
    monkeypatch.setattr(tr, "accuracy", fake)
    r = evaluate_job(Job(41, TINY, seed=0), digits, TrainConfig(batch_size=32, eval_batch_size=256))
    assert r.status == "ok" and batches == [256, 128, 64]
    assert r.fitness == evaluate_job(Job(41, TINY, seed=0), digits, TrainConfig(batch_size=32)).fitness
