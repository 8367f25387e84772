"""Table evaluator: fitness looked up in a benchmark CSV (e.g. NAS-Bench-201).

Any CSV with a key column (``key_column``, default ``arch_str``) holding the
``to_string()`` form of a registered genome type (``genome_type``, default
``nb201``) and numeric columns works. ``fitness_column`` (default ``c10_val_12``,
percent) becomes ``Result.fitness``; ``report_column`` (optional, default none) is
reported only, in ``Result.extra``. A column named but absent raises ConfigError.
An arch missing from the table (or with a non-numeric fitness) gives a failed
Result with the reason. The lookup is one dict access (built once from the CSV),
so a whole search costs microseconds per child.

With ``cost_input=(C, H, W)`` (and ``num_classes``) each Result also carries the
analytic parameter and MAC counts of the network on that input (``nb201_setting``
reads it from the fitness column's name: CIFAR-10/100 at 32x32, ImageNet16-120 at
16x16 with 120 classes), memoised per architecture: what ``nsga2`` needs as its
second objective. Off by default (``None``); NB201 costs are additive over edges
(``NB201Genome.cost_terms``), so they take microseconds, other genomes a decode.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..errors import ConfigError
from ..genome.base import GENOMES
from .base import FunctionEvaluator, Job, Result


# NAS-Bench-201's data sets by the prefix of a column name: name, (input C, H, W), classes
NB201_SETTINGS = (("imagenet16", "ImageNet16-120", (3, 16, 16), 120),
                  ("imgnet16", "ImageNet16-120", (3, 16, 16), 120), ("in16", "ImageNet16-120", (3, 16, 16), 120),
                  ("cifar100", "cifar100", (3, 32, 32), 100), ("c100", "cifar100", (3, 32, 32), 100),
                  ("cifar10", "cifar10", (3, 32, 32), 10), ("c10", "cifar10", (3, 32, 32), 10))
NB201_DATASETS = ("cifar10", "cifar100", "ImageNet16-120")


def _setting(column: str):
    name = column.lower().replace("-", "").replace("_", "")
    for prefix, *rest in NB201_SETTINGS:
        if name.startswith(prefix.replace("_", "")):
            return rest
    return None


def nb201_dataset(column: str) -> str | None:
    """The NB201 data set a column is about, from its prefix (``c10_``/``cifar10``,
    ``c100_``/``cifar100``, ``imgnet16_``/``ImageNet16-120``); None when unknown."""
    found = _setting(column)
    return found[0] if found else None


def nb201_setting(column: str) -> tuple[tuple[int, int, int], int]:
    """Input shape and class count of the column's data set (``nb201_dataset``):
    3x32x32 with 10 or 100 classes, 3x16x16 with 120; CIFAR-10 for any other name."""
    found = _setting(column)
    return (found[1], found[2]) if found else ((3, 32, 32), 10)


class TableEvaluator(FunctionEvaluator):
    def __init__(self, path: str | Path, fitness_column: str = "c10_val_12",
                 report_column: str | None = None, slots: int = 1,
                 cost_input: tuple[int, int, int] | None = None, num_classes: int = 10,
                 genome_type: str = "nb201", key_column: str = "arch_str"):
        if genome_type not in GENOMES:
            raise ConfigError("table", "genome_type", genome_type,
                              f"unknown genome type (known: {', '.join(GENOMES.names())})")
        self.genome_type, self.key_column = genome_type, key_column
        self.cost_input, self.num_classes = cost_input, num_classes
        self._costs: dict[str, tuple[int, int]] = {}
        self.path, self.fitness_column, self.report_column = str(path), fitness_column, report_column or None
        df = _read(path)
        for field, col in (("key_column", key_column), ("fitness_column", fitness_column),
                           ("report_column", self.report_column)):
            if col is not None and col not in df.columns:
                raise ConfigError(f"table {path}", field, col, f"no such column (have: {', '.join(df.columns)})")
        fit = pd.to_numeric(df[fitness_column], errors="coerce").astype(float).tolist()
        rep = (pd.to_numeric(df[self.report_column], errors="coerce").astype(float).tolist()
               if self.report_column else [None] * len(df))
        self.table: dict[str, tuple[float, float | None]] = dict(zip(df[key_column].astype(str), zip(fit, rep)))
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
        extra = {self.report_column: rep} if self.report_column else {}
        return Result(job.id, "ok", fitness=fit, worker="table", params=params, flops=macs, extra=extra)

    def _cost(self, genome, key: str) -> tuple[int, int]:
        if key not in self._costs:
            from ..compile import genome_cost
            c = genome_cost(genome, self.cost_input, self.num_classes)
            self._costs[key] = (c.params, c.macs)
        return self._costs[key]


def _read(path: str | Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise ConfigError("table", "path", str(path), "file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ConfigError("table", "path", str(path), f"not a readable CSV ({e})") from None
