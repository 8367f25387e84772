"""The lineage CSV: one row per evaluated individual, appended as each completes.

Columns, in this fixed order (then the optional extra metric columns declared
when the file is created, e.g. a lookup table's test accuracy)::

    id, parent_ids, operator, genome_type, genome, arch_hash, status, fitness,
    params, flops, trained_epochs, lineage_epochs, inherited, train_seconds,
    started_s, finished_s, attempts, worker, birth, reason

What the training columns mean (a child's fitness under weight inheritance
includes all the training its inherited weights carry):

* ``trained_epochs``: the epochs this individual trained itself (0 for a duplicate).
* ``lineage_epochs``: all the training its final weights carry: the parent's
  ``lineage_epochs`` plus its own when it inherited weights (``inherited`` is not
  ``none``), its own alone when it trained from scratch; a duplicate carries the
  value of the individual whose result it reuses.
* ``started_s`` / ``finished_s``: seconds since the run began (continued across
  resume) when its trial was submitted and when its result entered the search.
* ``attempts``: 1 plus the retries of its trial (a worker that died mid-trial).

Format, chosen so that a plain ``pd.read_csv(path)`` infers the right dtypes:

* ``id``, ``birth`` (completion order, 0-based), ``attempts``: always present -> int64.
* ``fitness``, the epoch and seconds columns and extra metrics: written as Python
  floats (``90.0``, never ``90``), empty when unknown -> float64 (NaN).
* ``params``, ``flops``: integers, empty when unknown (a trial that failed before
  its cost was known) -> int64, or float64 with NaN as soon as one is missing.
  ``evonas.lineage.load_lineage`` returns them as nullable ``Int64``.
* ``parent_ids``: the parents' ids separated by ``;`` inside brackets: ``[12]``,
  ``[3;7]``, ``[]`` for an initial individual. The brackets keep the column a
  string column: a bare ``12`` would turn it into int64, an empty cell into NaN.
* Text columns (``operator``, ``genome_type``, ``genome``, ``arch_hash``,
  ``status``, ``inherited``, ``worker``, ``reason``) are never empty: ``-`` stands
  for "none" (``worker`` of a duplicate, ``reason`` of an ok row). A worker name
  made only of digits is written as ``w<digits>`` for the same reason. Newlines
  in any value are replaced by spaces, so one record is exactly one line.
  ``genome`` is the genome's ``to_string()``; a genome string made only of digits
  (possible for the smallest Genetic CNN spaces) would be read as a number by a
  plain ``read_csv`` — ``load_lineage`` always reads text columns as strings.

Durability: each row is written with one ``write`` call, then flushed and
fsync'd, so a finished evaluation survives a crash of the driver or the machine.
On reopening (resume), a torn last line (no trailing newline, wrong field count,
NUL bytes) is cut off; good rows are never rewritten, whatever their length (the
csv module's field-size limit is lifted). ``write`` is idempotent by
``id``: a row whose id is already in the file is not written again, so an
individual re-queued on resume cannot appear twice.
"""
from __future__ import annotations

import csv
import io
import math
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .. import faults
from ..errors import ConfigError

from ..evolve.record import COLUMNS, KINDS, columns_of  # the schema is defined once, there

INT_COLUMNS = columns_of("int")
NULLABLE_INT_COLUMNS = columns_of("nint")
FLOAT_COLUMNS = columns_of("float")
TEXT_COLUMNS = columns_of("text")
NONE = "-"  # "no value" in text columns

# A row is as long as its genome string (a 10 x 1000 CGP genome is > 131,072
# characters, the csv module's default field limit): never take a long valid row
# for a torn one. The limit is a C long; sys.maxsize overflows it on some platforms.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


# --- formatting ---------------------------------------------------------------------------
def format_parent_ids(ids: Iterable[int] | str) -> str:
    if isinstance(ids, str):  # "36" or "3;7" (the engine's form): never iterate characters
        ids = parse_parent_ids(ids)
    return "[" + ";".join(str(int(i)) for i in ids) + "]"


def parse_parent_ids(text: str) -> tuple[int, ...]:
    """``"[3;7]"`` -> ``(3, 7)``; also accepts the bare form ``"3;7"``."""
    body = str(text).strip().strip("[]").strip()
    return tuple(int(p) for p in body.split(";") if p.strip()) if body else ()


def _text(v: Any) -> str:
    s = "" if v is None else " ".join(str(v).splitlines()).replace("\x00", "")
    return s if s.strip() else NONE


def _float(v: Any) -> str:
    if v is None:
        return ""
    x = float(v)
    return "" if math.isnan(x) else repr(x)


def _int(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(int(v))


def _worker(v: Any) -> str:
    w = _text(v)
    return "w" + w if w.isdigit() else w


_BY_KIND = {"int": _int, "nint": _int, "float": _float, "text": _text}
# columns whose empty value means something (else the kind's formatter alone)
_SPECIAL = {"parent_ids": lambda v: format_parent_ids(v or ()), "worker": _worker,
            "inherited": lambda v: _text(v or "none"), "train_seconds": lambda v: _float(v or 0.0),
            "attempts": lambda v: _int(v or 1)}


def format_row(record: Mapping[str, Any], extra_columns: Sequence[str] = ()) -> list[str]:
    """One record dict -> the CSV fields in column order. ``id``, ``birth`` and
    ``status`` are required; ``genome`` may be a Genome (its type and string are
    used); extra metrics come from ``record[name]`` or ``record["extra"][name]``;
    other keys are ignored."""
    for key in ("id", "birth", "status"):
        if record.get(key) is None:
            raise ValueError(f"lineage record needs {key!r}: {dict(record)!r:.200}")
    rec = dict(record)
    genome = rec.get("genome")
    rec["genome_type"] = rec.get("genome_type") or getattr(genome, "type_name", None)
    rec["genome"] = genome.to_string() if hasattr(genome, "to_string") else genome
    row = [_SPECIAL.get(c, _BY_KIND[KINDS[c]])(rec.get(c)) for c in COLUMNS]
    extra = rec.get("extra") or {}
    return row + [_float(rec.get(c, extra.get(c))) for c in extra_columns]


def _line(fields: Sequence[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(fields)
    return buf.getvalue()


# --- scanning (shared by the writer and the readers) ------------------------------------
def scan(data: bytes) -> tuple[list[str] | None, int, list[list[str]]]:
    """Parse the bytes of a lineage file. Returns (header or None, length of the
    good prefix in bytes, good rows). The good prefix ends after the last row that
    is complete (newline-terminated), has the header's field count and an integer
    id and birth; anything after it is a torn tail."""
    lines = data.split(b"\n")
    complete = lines[:-1]  # the last element is what follows the final newline
    if not complete:
        return None, 0, []
    header = _parse(complete[0])
    if header is None or tuple(header[:len(COLUMNS)]) != COLUMNS:
        return None, 0, []
    rows: list[tuple[int, list[str]]] = []
    offset = len(complete[0]) + 1
    for raw in complete[1:]:
        fields = _parse(raw)
        end = offset + len(raw) + 1
        rows.append((end, fields if _good(fields, len(header)) else None))
        offset = end
    while rows and rows[-1][1] is None:  # cut only the tail; bad rows inside stay
        rows.pop()
    good_end = rows[-1][0] if rows else len(complete[0]) + 1
    return header, good_end, [r for _, r in rows if r is not None]


def _parse(raw: bytes) -> list[str] | None:
    if b"\x00" in raw:
        return None
    try:
        rows = list(csv.reader([raw.decode("utf-8")]))
    except (UnicodeDecodeError, csv.Error):
        return None
    return rows[0] if len(rows) == 1 else None


def _good(fields: list[str] | None, n: int) -> bool:
    if fields is None or len(fields) != n:
        return False
    try:
        int(fields[0]), int(fields[COLUMNS.index("birth")])
    except ValueError:
        return False
    return True


# --- writer -------------------------------------------------------------------------------
class SyncedAppend:
    """What the lineage writer and the journal share: an append-mode ``_fh`` whose
    writes are flushed at once and fsync'd on ``sync()`` (``_unsynced`` marks them)."""
    _fh: Any
    _unsynced: bool

    def sync(self) -> None:
        """fsync what was written since the last sync (no-op if nothing)."""
        if self._unsynced and not self._fh.closed:
            os.fsync(self._fh.fileno())
            self._unsynced = False

    def close(self) -> None:
        if not self._fh.closed:
            self.sync()
            self._fh.close()


class LineageWriter(SyncedAppend):
    """Append-only lineage CSV. ``extra_columns``: metric columns after the fixed
    ones (float). On an existing file they must match its header; None adopts the
    file's. ``ids`` holds the ids already in the file."""

    def __init__(self, path: str | Path, extra_columns: Sequence[str] | None = None):
        self.path = Path(path)
        data = self.path.read_bytes() if self.path.exists() else b""
        header, good_end, rows = scan(data)
        if header is None:
            torn_header = b"\n" not in data and _line(COLUMNS).encode().startswith(data)
            if data.strip() and not torn_header:
                raise ConfigError(str(self.path), "header", data[:60].decode("utf-8", "replace"),
                                  f"not a lineage CSV (expected columns {', '.join(COLUMNS)})")
            header = [*COLUMNS, *_check_extra(extra_columns or ())]
            good_end, data = 0, b""
            with open(self.path, "wb") as fh:  # a new (or empty / torn-header) file
                fh.write(_line(header).encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
        elif extra_columns is not None and list(header[len(COLUMNS):]) != list(extra_columns):
            raise ConfigError(str(self.path), "extra columns", header[len(COLUMNS):],
                              f"the file's metric columns differ from {list(extra_columns)}")
        if data and good_end < len(data):
            with open(self.path, "rb+") as fh:  # repair: drop the torn tail only
                fh.truncate(good_end)
                os.fsync(fh.fileno())
        self.extra_columns = tuple(header[len(COLUMNS):])
        self.ids = {int(r[0]) for r in rows}
        self.repaired_bytes = len(data) - good_end if data else 0
        self._fh = open(self.path, "a", newline="", encoding="utf-8")
        self._unsynced = False

    def write(self, record: Mapping[str, Any], sync: bool = True) -> bool:
        """Append one record, flush and (``sync``) fsync. Returns False (and writes
        nothing) if a row with this id is already in the file. ``sync=False``: the
        row is in the OS (it survives the process being killed) but reaches the
        disk only at the next ``sync()``: call that before a checkpoint, so the
        checkpoint is never ahead of the lineage on disk."""
        rid = int(record["id"])
        if rid in self.ids:
            return False
        try:  # an OSError (full disk) propagates, naming this file: the caller stops the run
            faults.point("disk_write")
            self._fh.write(_line(format_row(record, self.extra_columns)))
            self._fh.flush()
        except OSError as e:
            raise OSError(e.errno, e.strerror, str(self.path)) from None
        self._unsynced = True
        if sync:
            self.sync()
        self.ids.add(rid)
        return True

    __call__ = write  # usable directly as the engine's on_record callback


    def __enter__(self) -> "LineageWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check_extra(names: Sequence[str]) -> tuple[str, ...]:
    for n in names:
        if not isinstance(n, str) or not n.isidentifier() or n in COLUMNS:
            raise ConfigError("lineage", "extra column", n, "must be an identifier not among the fixed columns")
    if len(set(names)) != len(names):
        raise ConfigError("lineage", "extra columns", list(names), "must be distinct")
    return tuple(names)


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The good rows of a lineage file as typed dicts (without pandas), in file
    order: ints, floats or None, ``parent_ids`` as a tuple, ``-`` as ''. For the
    engine to reconcile its checkpoint with rows written after it."""
    header, _, rows = scan(Path(path).read_bytes())
    if header is None:
        return []
    out = []
    for fields in rows:
        rec: dict[str, Any] = {}
        for name, v in zip(header, fields):
            if name in INT_COLUMNS:
                rec[name] = int(v)
            elif name in NULLABLE_INT_COLUMNS:
                rec[name] = int(v) if v else None
            elif name == "parent_ids":
                rec[name] = parse_parent_ids(v)
            elif name in TEXT_COLUMNS:
                rec[name] = "" if v == NONE else v
            else:
                rec[name] = float(v) if v else None
        out.append(rec)
    return out
