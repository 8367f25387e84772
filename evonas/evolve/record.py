"""The record sink: the one place that says what a lineage row is.

``SCHEMA`` lists every lineage column once, in file order, with its kind (how the
CSV writer formats it and how readers type it: ``int``, ``nint`` (integer, may be
empty), ``float``, ``text``) and how its value is read from a finished ``Member``
and its ``Outcome``. Adding a column is one line here: ``store.lineage`` (the CSV),
``evonas.lineage`` (pandas) and the engine all take their columns from ``SCHEMA``.

``RecordSink`` turns (member, outcome) into the row dict and hands it to the
user's ``on_record``. During a journal replay (resume) it stays silent for rows
that are already written (``skip``), and emits the ones the killed run never got
to write, so the lineage ends up exactly as if the run had not been interrupted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .. import faults


@dataclass
class Outcome:
    """What happened to one child besides its fitness: the training columns of its
    row (``extra``: the evaluator's reported-only metrics); ``finished_s`` is when
    its result entered the search (seconds into the run)."""
    trained_epochs: Optional[float] = 0.0
    train_seconds: float = 0.0
    worker: str = ""
    inherited: str = "none"
    attempts: int = 1
    reason: str = ""
    finished_s: Optional[float] = None
    extra: dict[str, Any] = field(default_factory=dict)


def _fitness(m, o):
    return m.value if m.status != "failed" else None


# (column, kind, value of the row from member m and outcome o)
SCHEMA: tuple[tuple[str, str, Callable[[Any, Outcome], Any]], ...] = (
    ("id", "int", lambda m, o: m.id),
    ("parent_ids", "text", lambda m, o: ";".join(map(str, m.parent_ids))),
    ("operator", "text", lambda m, o: m.operator),
    ("genome_type", "text", lambda m, o: m.genome.type_name),
    ("genome", "text", lambda m, o: m.genome.to_string()),
    ("arch_hash", "text", lambda m, o: m.arch_hash),
    ("status", "text", lambda m, o: m.status),
    ("fitness", "float", _fitness),
    ("params", "nint", lambda m, o: m.params),
    ("flops", "nint", lambda m, o: m.flops),
    ("trained_epochs", "float", lambda m, o: o.trained_epochs),
    ("lineage_epochs", "float", lambda m, o: m.lineage_epochs),
    ("inherited", "text", lambda m, o: o.inherited),
    ("train_seconds", "float", lambda m, o: o.train_seconds),
    ("started_s", "float", lambda m, o: m.started_s),
    ("finished_s", "float", lambda m, o: o.finished_s),
    ("attempts", "int", lambda m, o: o.attempts),
    ("worker", "text", lambda m, o: o.worker),
    ("birth", "int", lambda m, o: m.birth),
    ("reason", "text", lambda m, o: o.reason),
)
COLUMNS = tuple(c for c, _, _ in SCHEMA)
KINDS = {c: k for c, k, _ in SCHEMA}


def columns_of(kind: str) -> tuple[str, ...]:
    return tuple(c for c, k, _ in SCHEMA if k == kind)


def build_row(m, o: Outcome) -> dict[str, Any]:
    """The lineage row of a finished member: every ``SCHEMA`` column, then the
    outcome's extra metrics (which never overwrite a column)."""
    row = {c: get(m, o) for c, _, get in SCHEMA}
    for k, v in o.extra.items():
        row.setdefault(k, v)
    return row


class RecordSink:
    """Builds each finished member's row and passes it to ``on_record`` (None: the
    row is only returned). ``skip``: ids whose rows are already written (a replay
    sets it), so they are not handed out twice."""

    def __init__(self, on_record: Optional[Callable[[dict], Any]] = None):
        self.on_record = on_record
        self.skip: set[int] = set()
        self.written = 0  # rows handed to on_record

    def emit(self, m, o: Outcome) -> dict[str, Any]:
        row = build_row(m, o)
        if self.on_record is not None and m.id not in self.skip:
            faults.point("before_lineage_row")
            self.on_record(row)
            self.written += 1
            faults.point("after_lineage_row")
        return row
