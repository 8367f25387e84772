"""The contract between the search engine and whatever computes fitness.

The engine ``submit``s ``Job``s (at most ``slots`` in flight) and ``poll``s for
``Result``s as they complete, in any order: that is what makes aging evolution
asynchronous. Implementations: ``FunctionEvaluator`` (in-process, synchronous;
tests and lookup tables), the local worker pool, the Ray backend.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol

from ..genome.base import Genome

INHERIT = ("exact", "shape", "none")  # Job.inherit: how a child gets its parent's weights
# the training options' names (torch-free, so the config layer reads them without torch)
OPTIMIZERS = ("sgd", "adam", "adamw")
PRECISIONS = ("auto", "bf16", "fp32")
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")


@dataclass(frozen=True)
class Job:
    """One evaluation. ``parent_genome``/``parent_weights`` (a safetensors path of
    the parent's trained weights) are what the child inherits from (None: nothing);
    ``inherit`` is exact|shape|none; ``operator`` names the operator that made the
    child (its transfer rule is looked up by name); ``weights_out`` is where the
    worker saves the trained weights (None: don't keep them); ``seed`` seeds weight
    init and data order of this trial."""
    id: int
    genome: Genome
    parent_ids: tuple[int, ...] = ()
    operator: str = "init"
    inherit: str = "none"
    parent_genome: Optional[Genome] = None
    parent_weights: Optional[str] = None
    weights_out: Optional[str] = None
    seed: int = 0


@dataclass
class Result:
    """Outcome of one job. ``status`` is ok|failed; ``fitness`` is None when failed
    (higher is better, e.g. validation accuracy in percent); ``reason`` says why a
    trial failed; ``weights`` is the safetensors path of the trained weights, if kept;
    ``extra`` carries reported-only metrics (e.g. a table's test accuracy);
    ``attempts`` is 1 plus the retries of a trial whose worker died."""
    id: int
    status: str
    fitness: Optional[float] = None
    reason: str = ""
    params: Optional[int] = None
    flops: Optional[int] = None
    epochs: Optional[float] = None
    train_seconds: float = 0.0
    worker: str = ""
    inherited: str = "none"
    weights: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict)
    attempts: int = 1


class Evaluator(Protocol):
    slots: int  # how many jobs may be in flight at once

    def submit(self, job: Job) -> None: ...

    def poll(self, timeout: float | None = None) -> list[Result]:
        """Completed results (possibly several); blocks up to ``timeout`` seconds
        (None: until at least one completes) and returns [] if none did."""

    def cancel_all(self) -> list[int]:
        """Drop queued/in-flight jobs; return their ids."""

    def close(self) -> None: ...


class FunctionEvaluator:
    """Runs ``fn(job) -> Result`` in-process when polled. ``slots`` > 1 lets the
    engine keep several jobs pending, which exercises the asynchronous code path
    deterministically (results come back in submission order)."""

    def __init__(self, fn: Callable[[Job], Result], slots: int = 1):
        self.fn, self.slots = fn, slots
        self._pending: deque[Job] = deque()

    def submit(self, job: Job) -> None:
        self._pending.append(job)

    def poll(self, timeout: float | None = None) -> list[Result]:
        return [self.fn(self._pending.popleft())] if self._pending else []

    def cancel_all(self) -> list[int]:
        ids = [j.id for j in self._pending]
        self._pending.clear()
        return ids

    def close(self) -> None:
        self._pending.clear()
