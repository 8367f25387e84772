"""Train one candidate and measure its fitness: ``evaluate_job(job, data, cfg, device)``.

Fitness is the validation accuracy in percent after ``cfg.epochs`` epochs (the test
split is only touched when ``cfg.test`` is set, for the final report). The loop
trains from in-memory tensors: batches are index slices of a ``torch.randperm``
drawn from a generator seeded by ``job.seed``, so there is no DataLoader and, on
CUDA, no host transfer per batch (the data lives on the device; bf16 autocast).
Activations and conv weights are channels_last on every device: on CPU too it
trains 1.05-2.1x faster than NCHW-contiguous (``benchmarks/memory_format.py``).
``TrainConfig.precision`` and ``TrainConfig.memory_format`` force either choice,
which is also how the CPU tests run the GPU code path (bf16). On CPU in fp32 a
fixed seed gives the same fitness bit for bit.

Failures come back as ``Result(status="failed", reason=...)``: over the parameter
or MAC budget (checked before building anything), NaN/inf loss, timeout, CUDA
out-of-memory after halving the micro-batch ``oom_retries`` times (the effective
batch is kept by gradient accumulation; an OOM while scoring halves the evaluation
batch instead, keeping the trained model). A CUDA fault other than OOM is raised as
``CudaFault``: it poisons the process, so the worker pool replaces the worker.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..compile import compile_graph, cost
from .. import faults
from ..errors import ConfigError, EvonasError
from .base import MEMORY_FORMATS, OPTIMIZERS, PRECISIONS, Job, Result  # noqa: F401  (the option lists)
from .data import Data

SCHEDULES = ("cosine", "constant")
_NAN_CHECK_EVERY = 16  # steps between host syncs for the non-finite-loss check


@dataclass(frozen=True)
class TrainConfig:
    """Training of one candidate. ``lr`` is the peak learning rate, decayed to 0 by
    the cosine schedule over all steps; ``weight_decay`` is L2 (decoupled for adamw);
    ``max_params``/``max_macs`` reject bigger children before training (None: no
    limit; MACs of one forward pass of one sample); ``timeout_s``: wall seconds per
    trial (None: none); ``test``: also measure test accuracy (final report only);
    ``threads``: torch CPU threads (None: leave as is); ``oom_retries``: CUDA OOM
    halvings of the micro-batch before giving up; ``precision``: ``bf16`` autocast
    or ``fp32`` (``auto``: bf16 on CUDA, fp32 elsewhere); ``memory_format`` of
    activations and conv weights (``auto``: channels_last, on every device)."""
    epochs: int = 1
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    optimizer: str = "sgd"
    schedule: str = "cosine"
    label_smoothing: float = 0.0
    max_params: Optional[int] = None
    max_macs: Optional[int] = None
    timeout_s: Optional[float] = None
    eval_batch_size: int = 1024
    test: bool = False
    threads: Optional[int] = None
    oom_retries: int = 3
    precision: str = "auto"
    memory_format: str = "auto"

    def modes(self, device: str) -> tuple[bool, bool]:
        """(bf16 autocast on?, channels_last on?) on ``device``."""
        cuda = torch.device(device).type == "cuda"
        amp = self.precision == "bf16" or (self.precision == "auto" and cuda)
        cl = self.memory_format != "contiguous"
        return amp, cl

    def __post_init__(self) -> None:
        def bad(field, why):
            raise ConfigError("train", field, getattr(self, field), why)
        for f in ("epochs", "batch_size", "eval_batch_size"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                bad(f, "must be an integer >= 1")
        for f in ("lr", "weight_decay", "label_smoothing", "momentum"):
            v = getattr(self, f)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                bad(f, "must be a finite number >= 0")
        if self.lr == 0:
            bad("lr", "must be > 0")
        if self.label_smoothing >= 1:
            bad("label_smoothing", "must be in [0, 1)")
        if self.optimizer not in OPTIMIZERS:
            bad("optimizer", f"must be one of {', '.join(OPTIMIZERS)}")
        for f, allowed in (("schedule", SCHEDULES), ("precision", PRECISIONS),
                           ("memory_format", MEMORY_FORMATS)):
            if getattr(self, f) not in allowed:
                bad(f, f"must be one of {', '.join(allowed)}")
        for f in ("max_params", "max_macs", "threads"):
            v = getattr(self, f)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                bad(f, "must be a positive integer or None")
        if self.timeout_s is not None and not (isinstance(self.timeout_s, (int, float)) and self.timeout_s > 0):
            bad("timeout_s", "must be > 0 seconds or None")
        if not isinstance(self.oom_retries, int) or self.oom_retries < 0:
            bad("oom_retries", "must be an integer >= 0")


class TrialFailed(Exception):
    """A trial ended without fitness; the message is the Result's reason."""


class CudaFault(EvonasError):
    """A CUDA error other than OOM: the process' CUDA context may be unusable."""


def is_cuda_fault(e: BaseException) -> bool:
    if isinstance(e, torch.cuda.OutOfMemoryError):
        return False
    acc = getattr(torch, "AcceleratorError", None)
    return (acc is not None and isinstance(e, acc)) or (
        isinstance(e, RuntimeError) and ("CUDA error" in str(e) or "cuDNN error" in str(e)))


def evaluate_job(job: Job, data: Data, cfg: TrainConfig, device: str = "cpu", worker: str = "") -> Result:
    """Build, (inherit,) train and score ``job.genome`` on ``data`` (already on
    ``device``). Never raises for a bad candidate: returns a failed Result with the
    reason; raises ``CudaFault`` when the device itself misbehaved."""
    t0 = time.monotonic()
    res = Result(job.id, "failed", worker=worker or device)
    try:
        g = job.genome.decode()
        c = cost(g, data.input_shape, data.num_classes)
        res.params, res.flops = c.params, c.macs
        over = _over_budget(c, cfg)
        if over:
            res.reason = over
            return res
        if cfg.threads and torch.device(device).type == "cpu":
            torch.set_num_threads(cfg.threads)
        micro = cfg.batch_size
        for attempt in range(cfg.oom_retries + 1):
            try:
                model, report = _build(job, g, data, device, cfg)
                curve = _train(model, data, cfg, job.seed, device, micro, t0)
                break
            except torch.cuda.OutOfMemoryError:
                pass  # recover below: inside `except` the traceback still holds the activations
            model = None
            _free(device)
            if attempt == cfg.oom_retries or micro == 1:
                raise TrialFailed(f"CUDA out of memory at micro-batch {micro} "
                                  f"(batch {cfg.batch_size}, {attempt} halvings)")
            micro = max(1, micro // 2)
        res.fitness = _score(model, data.x_val, data.y_val, device, cfg)
        curve["val_acc"].append(res.fitness)  # the last epoch's validation is the fitness itself
        res.extra["curve"] = curve
        if cfg.test:
            res.extra["test_accuracy"] = _score(model, data.x_test, data.y_test, device, cfg)
        if micro != cfg.batch_size:  # an ok row's reason says so in the lineage
            res.extra["micro_batch"] = micro
            res.reason = (f"CUDA out of memory at micro-batch {micro * 2}: trained at micro-batch "
                          f"{micro} x gradient accumulation (batch {cfg.batch_size})")
        if report is not None:  # 'none' when nothing matched (fresh initialisation)
            res.inherited = report.mode if (report.copied or report.transformed) else "none"
            res.extra["inherit"] = report.summary()
        if job.weights_out:  # before "ok": a full disk makes a failed trial, never an ok one without weights
            save_weights(model, job.weights_out, {"genome": json.dumps(job.genome.to_dict()),
                                                  "fitness": repr(res.fitness), "job": str(job.id)})
            res.weights = job.weights_out
        res.status, res.epochs = "ok", float(cfg.epochs)
    except TrialFailed as e:
        res.reason = str(e)
    except Exception as e:
        if is_cuda_fault(e):
            raise CudaFault(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
        res.reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    res.train_seconds = time.monotonic() - t0
    return res


def _over_budget(c, cfg: TrainConfig) -> str:
    if cfg.max_params is not None and c.params > cfg.max_params:
        return f"over budget: {c.params} params > max_params {cfg.max_params}"
    if cfg.max_macs is not None and c.macs > cfg.max_macs:
        return f"over budget: {c.macs} MACs > max_macs {cfg.max_macs}"
    return ""


def _build(job: Job, g, data: Data, device: str, cfg: TrainConfig):
    """Compile from ``job.seed`` and apply weight inheritance; -> (module, report or None)."""
    model = compile_graph(g, data.input_shape, data.num_classes, seed=job.seed)
    report = None
    if job.inherit != "none" and job.parent_weights and job.parent_genome is not None:
        report = _inherit(job, model, data)
    model = model.to(device)
    if cfg.modes(device)[1]:
        model = model.to(memory_format=torch.channels_last)
    return model, report


def _inherit(job: Job, model, data: Data):
    """Load the parent's safetensors and apply ``evonas.inherit.inherit`` (in place);
    -> its ``InheritReport``."""
    from ..errors import ConfigError, RegistryError
    from ..inherit import check_parent_state, inherit
    from ..tensor_io import load_weights_file
    try:  # missing, corrupt or another network's file: the driver stops the run naming it
        state = load_weights_file(job.parent_weights, "parent weights")
        check_parent_state(job.parent_genome, state, data.input_shape, data.num_classes, job.parent_weights)
    except ConfigError as e:
        raise TrialFailed(str(e)) from None
    rng = np.random.default_rng([job.seed, job.id])
    args = (job.parent_genome, state, job.genome, model, job.inherit)
    try:
        report = inherit(*args, operator=job.operator, rng=rng)
    except RegistryError:  # an operator without a registry entry (e.g. 'init'): shape rule
        report = inherit(*args, operator=None, rng=rng)
    return report


def _train(model, data: Data, cfg: TrainConfig, seed: int, device: str, micro: int, t0: float) -> dict:
    """SGD/Adam over ``cfg.epochs`` epochs of ``cfg.batch_size`` (as ``micro``-sized
    chunks with gradient accumulation). Raises TrialFailed on non-finite loss/timeout.
    Returns the learning curve: mean training loss of every epoch, validation accuracy
    after every epoch but the last (the caller's fitness is the last one). Validation
    runs in eval mode without drawing random numbers, so the fitness is unchanged."""
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    amp, cl = cfg.modes(device)
    n = len(data.y_train)
    bs = min(cfg.batch_size, n)
    steps_per_epoch = max(1, n // bs)  # drop the ragged last batch (BN needs > 1 sample)
    total = steps_per_epoch * cfg.epochs
    opt = _optimizer(model, cfg)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total) if cfg.schedule == "cosine"
             else torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0))
    gen = torch.Generator(device=dev if cuda else "cpu").manual_seed(int(seed))
    bad = torch.zeros((), dtype=torch.bool, device=dev)
    model.train()
    step = 0
    curve: dict = {"train_loss": [], "val_acc": []}
    for epoch in range(cfg.epochs):
        loss_sum = torch.zeros((), dtype=torch.float32, device=dev)  # summed on device: no sync per step
        perm = torch.randperm(n, generator=gen, device=dev)
        for s in range(steps_per_epoch):
            idx = perm[s * bs:(s + 1) * bs]
            opt.zero_grad(set_to_none=True)
            for chunk in idx.split(micro):
                x, y = data.x_train[chunk], data.y_train[chunk]
                if cl:
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                    loss = F.cross_entropy(model(x), y, label_smoothing=cfg.label_smoothing)
                bad |= ~torch.isfinite(loss.detach())
                loss_sum += loss.detach().float() * (len(chunk) / len(idx))
                (loss * (len(chunk) / len(idx))).backward()
            opt.step()
            sched.step()
            step += 1
            faults.point("worker_trial")
            if step % _NAN_CHECK_EVERY == 0 or step == total:
                _check(bad, epoch, step, cfg, t0)
            elif cfg.timeout_s is not None and time.monotonic() - t0 > cfg.timeout_s:
                _check(bad, epoch, step, cfg, t0)
        curve["train_loss"].append(float(loss_sum) / steps_per_epoch)
        if epoch + 1 < cfg.epochs:
            curve["val_acc"].append(_score(model, data.x_val, data.y_val, device, cfg))
            model.train()
    return curve


def _check(bad: torch.Tensor, epoch: int, step: int, cfg: TrainConfig, t0: float) -> None:
    if bool(bad):
        raise TrialFailed(f"non-finite loss (NaN/inf) by step {step} (epoch {epoch + 1}, lr {cfg.lr:g})")
    if cfg.timeout_s is not None and time.monotonic() - t0 > cfg.timeout_s:
        raise TrialFailed(f"timeout: over {cfg.timeout_s:g} s at step {step} (epoch {epoch + 1})")


def _optimizer(model, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                               nesterov=cfg.nesterov and cfg.momentum > 0, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


@torch.no_grad()
def accuracy(model, x: torch.Tensor, y: torch.Tensor, batch: int = 1024, device: str = "cpu",
             cfg: Optional[TrainConfig] = None) -> float:
    """Top-1 accuracy in percent (0..100) in eval mode (BN running statistics),
    in ``cfg``'s precision and memory format (default: ``auto`` for ``device``)."""
    dev = torch.device(device)
    amp, cl = (cfg or TrainConfig()).modes(device)
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=dev)
    for i in range(0, len(y), batch):
        xb = x[i:i + batch]
        if cl:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            correct += (model(xb).argmax(1) == y[i:i + batch]).sum()
    return 100.0 * int(correct) / max(1, len(y))


def _score(model, x: torch.Tensor, y: torch.Tensor, device: str, cfg: TrainConfig) -> float:
    """``accuracy`` at ``cfg.eval_batch_size``, halved on CUDA OOM down to 1 (the
    trained model is kept: only the evaluation batch is too big)."""
    batch = cfg.eval_batch_size
    while True:
        try:
            return accuracy(model, x, y, batch, device, cfg)
        except torch.cuda.OutOfMemoryError:
            if batch == 1:
                raise TrialFailed("CUDA out of memory evaluating at batch 1") from None
        _free(device)  # outside `except`: the traceback no longer pins the activations
        batch = max(1, batch // 2)


def save_weights(model, path: str, metadata: dict[str, str] | None = None) -> None:
    """Write the state dict as safetensors atomically (temp file + os.replace)."""
    from ..tensor_io import save_weights_file
    save_weights_file(path, model.state_dict(), metadata)


def _free(device: str) -> None:
    import gc
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()

