"""Export the best model of a run: ``python -m evonas.export RUN --format pt2|torchscript|onnx``.

* ``pt2``: ``torch.export`` program (``torch.export.load`` reads it back, no evonas needed);
* ``torchscript``: ``torch.jit.trace`` (``torch.jit.load``; loadable from C++ too);
* ``onnx``: ``torch.onnx.export`` (needs the optional extra: ``pip install evonas[onnx]``).

``load_best(run_dir)`` is the model behind all three: the genome of
``best/genome.json`` compiled for the run's input shape and class count, with the
trained weights of ``best/weights.safetensors``, in eval mode (BN uses its running
statistics). The batch dimension is exported as dynamic where the format allows.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Optional, Sequence

import torch

from .config_sections import flat_view
from .errors import ConfigError, cli_exit_code
from .io import read_json
from .store.rundir import BEST, RunPaths, is_run_dir

FORMATS = {"pt2": ".pt2", "torchscript": ".ts.pt", "onnx": ".onnx"}


def input_setting(cfg: dict) -> tuple[tuple[int, int, int], int]:
    """(C, H, W) and class count the run's networks were built for."""
    if cfg.get("benchmark_table"):
        from .evaluate.table import nb201_setting
        return nb201_setting(cfg.get("fitness_column", ""))
    from .evaluate.data import DataSpec
    # the data set itself says its shape: loading it is the one source of truth
    data = DataSpec(cfg.get("dataset", "digits"), cfg.get("data_root", "data"), int(cfg.get("seed", 0)),
                    float(cfg.get("val_fraction", 0.1))).load()
    return data.input_shape, data.num_classes


def load_best(run_dir: str | Path) -> tuple[torch.nn.Module, tuple[int, int, int]]:
    """-> (the best network with its trained weights, in eval mode; its input shape)."""
    from .compile import compile_graph
    from .genome import load_genome
    from .tensor_io import load_weights_file
    root = Path(run_dir)
    if not is_run_dir(root):
        raise ConfigError("export", "run_dir", str(root), "not a run directory (needs config.json and lineage.csv)")
    best = RunPaths(root).best
    if not (best / "genome.json").exists():
        raise ConfigError("export", "run_dir", str(root), "has no best/genome.json (the run found no best yet)")
    if not (best / "weights.safetensors").exists():
        raise ConfigError("export", "run_dir", str(root), "has no best/weights.safetensors "
                          "(table-lookup runs train nothing; train the genome with python -m evonas.train)")
    cfg = flat_view(read_json(RunPaths(root).config, str(root)))
    shape, classes = input_setting(cfg)
    genome = load_genome(best / "genome.json")
    model = compile_graph(genome.decode(), shape, classes, seed=0)
    state = load_weights_file(best / "weights.safetensors", "best weights")
    model.load_state_dict(state)  # strict: a genome/weights mismatch must fail loudly
    return model.eval(), shape


def export(run_dir: str | Path, fmt: str, output: Optional[str | Path] = None) -> Path:
    """Write the best model of ``run_dir`` in ``fmt``; returns the file written
    (default ``RUN/best/model<suffix>``)."""
    if fmt not in FORMATS:
        raise ConfigError("export", "format", fmt, f"must be one of {', '.join(FORMATS)}")
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401  (torch.onnx needs it; fail before any work)
            import onnxscript  # noqa: F401
        except ImportError:
            raise ConfigError("export", "format", fmt, "needs the onnx extra: pip install 'evonas[onnx]'") from None
    out = Path(output) if output else RunPaths(Path(run_dir)).best / f"model{FORMATS[fmt]}"
    if output and not out.parent.is_dir():  # checked before the (slow) model build
        raise ConfigError("export", "output", str(out), "its directory does not exist")
    model, shape = load_best(run_dir)
    example = torch.zeros(2, *shape)  # batch 2: a batch of 1 would let export specialise the batch to 1
    tmp = out.with_name(out.stem + ".tmp" + out.suffix)  # torch.export insists on the suffix
    with torch.no_grad():
        if fmt == "pt2":
            batch = torch.export.Dim("batch", min=1)
            torch.export.save(torch.export.export(model, (example,), dynamic_shapes=({0: batch},)), tmp)
        elif fmt == "torchscript":
            with warnings.catch_warnings():  # chosen on purpose: C++ and older runtimes load it
                warnings.simplefilter("ignore", FutureWarning)
                torch.jit.save(torch.jit.trace(model, example), str(tmp))
        else:
            batch = torch.export.Dim("batch", min=1)
            torch.onnx.export(model, (example,), str(tmp), input_names=["input"], output_names=["logits"],
                              dynamic_shapes=({0: batch},), dynamo=True, external_data=False,
                              verbose=False)
    tmp.replace(out)  # nothing half-written under the final name
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evonas.export",
                                description="Export the best model of a run (with its trained weights, eval mode).")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory with best/genome.json and best/weights.safetensors")
    p.add_argument("--format", required=True, choices=sorted(FORMATS),
                   help="pt2 (torch.export), torchscript (torch.jit.trace) or onnx (needs evonas[onnx])")
    p.add_argument("--output", metavar="FILE", help="where to write (default: RUN_DIR/best/model.<format suffix>)")
    args = p.parse_args(argv)

    def run() -> int:
        print(export(args.run_dir, args.format, args.output))
        return 0
    return cli_exit_code(run)


if __name__ == "__main__":
    sys.exit(main())
