"""Table evaluator: fitness looked up in a benchmark CSV (e.g. NAS-Bench-201).

Any CSV with an ``arch_str`` column (the NB201 string form) and numeric columns
works. ``fitness_column`` (default ``c10_val_12``, percent) becomes
``Result.fitness``; ``report_column`` (default ``c10_test_200``) is reported only,
in ``Result.extra``. An arch missing from the table (or with a non-numeric
value) gives a failed Result with the reason. The lookup is one dict access
(built once from the CSV), so a whole search costs microseconds per child.

With ``cost_input=(C, H, W)`` (and ``num_classes``) each Result also carries the
analytic parameter and MAC counts of the network on that input (``nb201_setting``
reads it from the fitness column's name: CIFAR-10/100 at 32x32, ImageNet16-120 at
16x16 with 120 classes), memoised per architecture: what
``nsga2`` needs as its second objective. Off by default (``None``): computing it
costs ~10 ms per new architecture.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..errors import ConfigError
from .base import FunctionEvaluator, Job, Result


# NAS-Bench-201's data sets by the prefix of a column name: (input C, H, W), classes
NB201_SETTINGS = (("imagenet16", (3, 16, 16), 120), ("imgnet16", (3, 16, 16), 120),
                  ("in16", (3, 16, 16), 120), ("cifar100", (3, 32, 32), 100),
                  ("c100", (3, 32, 32), 100), ("cifar10", (3, 32, 32), 10), ("c10", (3, 32, 32), 10))


def nb201_setting(column: str) -> tuple[tuple[int, int, int], int]:
    """Input shape and class count of the NB201 data set a column is about, from its
    prefix (``c10_``/``cifar10``: 3x32x32, 10; ``c100_``/``cifar100``: 3x32x32, 100;
    ``imgnet16_``/``ImageNet16-120``: 3x16x16, 120); CIFAR-10 for any other name."""
    name = column.lower().replace("-", "").replace("_", "")
    for prefix, shape, classes in NB201_SETTINGS:
        if name.startswith(prefix.replace("_", "")):
            return shape, classes
    return (3, 32, 32), 10


class TableEvaluator(FunctionEvaluator):
    genome_type = "nb201"

    def __init__(self, path: str | Path, fitness_column: str = "c10_val_12",
                 report_column: str = "c10_test_200", slots: int = 1,
                 cost_input: tuple[int, int, int] | None = None, num_classes: int = 10):
        self.cost_input, self.num_classes = cost_input, num_classes
        self._costs: dict[str, tuple[int, int]] = {}
        self.path, self.fitness_column, self.report_column = str(path), fitness_column, report_column
        try:
            df = pd.read_csv(path)
        except FileNotFoundError:
            raise ConfigError("table", "path", str(path), "file not found") from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            raise ConfigError("table", "path", str(path), f"not a readable CSV ({e})") from None
        for field, col in (("arch column", "arch_str"), ("fitness_column", fitness_column),
                           ("report_column", report_column)):
            if col not in df.columns:
                raise ConfigError(f"table {path}", field, col, f"no such column (have: {', '.join(df.columns)})")
        fit = pd.to_numeric(df[fitness_column], errors="coerce")
        rep = pd.to_numeric(df[report_column], errors="coerce")
        self.table: dict[str, tuple[float, float]] = dict(
            zip(df["arch_str"].astype(str), zip(fit.astype(float).tolist(), rep.astype(float).tolist())))
        super().__init__(self.lookup, slots)

    def lookup(self, job: Job) -> Result:
        if job.genome.type_name != self.genome_type:
            return Result(job.id, "failed", reason=f"table {self.path} holds {self.genome_type} "
                                                   f"architectures, not {job.genome.type_name}")
        key = job.genome.to_string()
        row = self.table.get(key)
        if row is None:
            return Result(job.id, "failed", reason=f"arch {key} not in table {self.path}")
        fit, rep = row
        if math.isnan(fit):
            return Result(job.id, "failed", reason=f"arch {key}: {self.fitness_column} is not a number")
        params, macs = self._cost(job.genome, key) if self.cost_input else (None, None)
        return Result(job.id, "ok", fitness=fit, worker="table", params=params, flops=macs,
                      extra={self.report_column: rep})

    def _cost(self, genome, key: str) -> tuple[int, int]:
        if key not in self._costs:
            from ..compile import genome_cost
            c = genome_cost(genome, self.cost_input, self.num_classes)
            self._costs[key] = (c.params, c.macs)
        return self._costs[key]
