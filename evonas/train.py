"""``python -m evonas.train GENOME.json --epochs N``: final evaluation of one genome.

Retrains the genome from scratch (fresh initialisation from ``--seed``, no
inheritance) on the training split and reports, once, the accuracy on the
validation split (the search's fitness) and on the *test* split (never used by
the search). ``GENOME.json`` is a ``genomes/`` file or a run's
``best/genome.json``. Writes ``--out`` (default ``runs/train-<file stem>-s<seed>``,
or the first free ``-2``, ``-3``, ... after it: earlier results are never
overwritten; a given ``--out`` that is not empty exits 2):

* ``weights.safetensors``: the trained state dict (metadata: genome, fitness);
* ``result.json``: genome, dataset, training settings, ``val_accuracy`` and
  ``test_accuracy`` (percent, 0..100), ``params``, ``macs`` (multiply-accumulates
  of one forward pass of one image), ``train_seconds``, ``status`` and ``reason``.

Bad input (missing file, bad genome, bad flag values, unknown dataset) exits with
code 2 and one line on stderr, before anything is written. A genome that cannot
be trained (over budget, NaN loss) writes ``result.json`` with status ``failed``
and exits 1.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from .config import Config
from .config_cli import add_arguments, overrides_from_args
from .errors import ConfigError, cli_exit_code


# the settings of evonas.run that a retraining takes, from the same schema (Config)
TRAIN_KEYS = ("epochs", "dataset", "data_root", "val_fraction", "batch_size", "lr", "optimizer", "seed",
              "precision", "memory_format")
TRAIN_EPOCHS = 10  # a final retraining trains longer than a search's evaluation


def train_defaults() -> Config:
    return Config(epochs=TRAIN_EPOCHS)


def parser() -> argparse.ArgumentParser:
    from .run import OneLineParser
    p = OneLineParser(prog="python -m evonas.train",
                                description="Retrain a genome from scratch and evaluate it on the test split.")
    p.add_argument("genome", metavar="GENOME.json", help="genome file (genomes/ schema, e.g. RUN/best/genome.json)")
    add_arguments(p, only=TRAIN_KEYS, defaults=train_defaults())  # the run's flags, help and checks
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0 (default: cpu)")
    p.add_argument("--out", metavar="DIR", help="output directory, new or empty (default: "
                   "runs/train-<stem>-s<seed>, or its first free -2, -3, ... suffix)")
    return p


def retrain(genome_file: str | Path, epochs: int, dataset: str = "digits", data_root: str = "data",
            val_fraction: float = 0.2, batch_size: int = 64, lr: float = 0.05, optimizer: str = "sgd",
            seed: int = 0, device: str = "cpu", out: Optional[str | Path] = None,
            precision: str = "auto", memory_format: str = "auto") -> dict[str, Any]:
    """Train ``genome_file`` for ``epochs`` and return the result dict (also
    written to ``out/result.json``, with the weights next to it). Raises an
    ``EvonasError`` for bad input before writing anything."""
    from .evaluate.base import Job
    from .evaluate.data import DataSpec
    from .evaluate.train import TrainConfig, evaluate_job
    from .genome import load_genome
    if seed < 0:
        raise ConfigError("train", "seed", seed, "must be >= 0")
    if not 0 < val_fraction < 1:
        raise ConfigError("train", "val_fraction", val_fraction, "must be strictly between 0 and 1")
    genome = load_genome(genome_file)
    tc = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, test=True,
                     precision=precision, memory_format=memory_format)
    device = _device(device)
    data = DataSpec(dataset, data_root, seed, val_fraction).load().to(device)
    out = _out_dir(out, genome_file, seed)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / "weights.safetensors"
    res = evaluate_job(Job(0, genome, seed=seed, weights_out=str(weights)), data, tc, device)
    result = {"genome_file": str(genome_file), "type": genome.type_name, "genome": genome.to_string(),
              "space": genome.to_dict().get("space"), "arch_hash": genome.arch_hash(),
              "dataset": dataset, "seed": seed, "epochs": epochs, "batch_size": batch_size, "lr": lr,
              "optimizer": optimizer, "val_fraction": val_fraction, "device": device,
              "precision": precision, "memory_format": memory_format,
              "train_samples": len(data.y_train), "val_samples": len(data.y_val),
              "test_samples": len(data.y_test), "status": res.status, "reason": res.reason,
              "val_accuracy": res.fitness, "test_accuracy": res.extra.get("test_accuracy"),
              "params": res.params, "macs": res.flops, "train_seconds": round(res.train_seconds, 3),
              "weights": str(weights) if res.weights else None, "out": str(out)}
    from .io import atomic_write_text
    atomic_write_text(out / "result.json", json.dumps(result, indent=2) + "\n")
    return result


def _out_dir(out: Optional[str | Path], genome_file: str | Path, seed: int) -> Path:
    """Where the results go; never over earlier ones. A given ``out`` must be new or
    empty (ConfigError otherwise); the default ``runs/train-<stem>-s<seed>`` takes
    the next free ``-2``, ``-3``, ... suffix when taken (retraining one genome with
    other settings keeps both results)."""
    def taken(p: Path) -> bool:
        return p.exists() and (not p.is_dir() or any(p.iterdir()))
    if out:
        out = Path(out)
        if taken(out):
            raise ConfigError("train", "out", str(out), "exists and is not an empty directory "
                              "(earlier results are never overwritten; choose another --out)")
        return out
    base = Path("runs") / f"train-{Path(genome_file).stem}-s{seed}"
    n, candidate = 1, base
    while taken(candidate):
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def _device(device: str) -> str:
    import torch
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError("train", "device", device, "not a torch device (e.g. cpu, cuda, cuda:0)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train", "device", device, "CUDA is not available on this machine")
    return str(dev)


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parser().parse_args(argv)
    return cli_exit_code(lambda: _main(args))


def _main(args) -> int:
    c = train_defaults().updated(overrides_from_args(args), "flags")  # validated as evonas.run's
    r = retrain(args.genome, c.epochs, c.dataset, c.data_root, c.val_fraction, c.batch_size, c.lr,
                c.optimizer, c.seed, args.device, args.out, c.precision, c.memory_format)
    print(f"genome         {r['type']} {r['genome']}")
    print(f"dataset        {r['dataset']} ({r['train_samples']} train / {r['val_samples']} val / "
          f"{r['test_samples']} test), {r['epochs']} epochs, seed {r['seed']}")
    print(f"val accuracy   {_fmt(r['val_accuracy'], '.2f')} %")
    print(f"test accuracy  {_fmt(r['test_accuracy'], '.2f')} %")
    print(f"params         {_fmt(r['params'], ',')}")
    print(f"MACs           {_fmt(r['macs'], ',')}")
    print(f"train time     {r['train_seconds']:.1f} s")
    print(f"wrote          {Path(r['out']) / 'result.json'}" + (f", {r['weights']}" if r["weights"] else ""))
    if r["status"] != "ok":
        print(f"error: training failed: {r['reason']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
