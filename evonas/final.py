"""The final stage of a real-training run: retrain the search's top networks from
scratch and report what they are worth on their own.

Why: under weight inheritance a child's fitness includes all the training that
its ancestors' weights carry (``lineage_epochs``), so the search's best may be
the best-*trained* network rather than the best architecture. The final stage
takes the ``top`` distinct networks (by ``arch_hash``, best search fitness
first), trains each from a fresh initialisation for the same number of epochs
with a fixed seed recorded in ``final.csv``, chooses one by *validation*
accuracy and reports its *test* accuracy (the only place where the test split is
read during a run).

``final.csv`` (one row per retrained network, appended and fsync'd as each
finishes; a kill loses nothing, ``--resume`` retrains only the missing ones; when
the search was extended since, or the epochs changed, so that the table no longer
belongs to this search, it is kept as ``final-<n>.csv`` and the stage starts afresh)::

    rank, id, arch_hash, genome, search_fitness, lineage_epochs, final_epochs,
    seed, final_val, final_test, params, macs, status, reason, train_seconds

``epochs=0`` (auto) retrains every network for as many epochs as the most
trained of them carries (the largest ``lineage_epochs`` among the chosen,
rounded up, at least 1, at most ``AUTO_MAX_EPOCHS``): then ``final_val`` is
directly comparable with the search fitness, the same amount of training but
from scratch, and all retrained networks get the same budget.
"""
from __future__ import annotations

import csv
import io
import math
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from . import faults
from .errors import ConfigError
from .evaluate.base import Evaluator, Job, Result
from .evolve.matched import matched_scores

FINAL_COLUMNS = ("rank", "id", "arch_hash", "genome", "search_fitness", "lineage_epochs",
                 "final_epochs", "seed", "final_val", "final_test", "params", "macs", "status",
                 "reason", "train_seconds")
AUTO_MAX_EPOCHS = 100
FINAL_FILE = "final.csv"


def select_top(rows: Iterable[dict], top: int, rank_by: str = "fitness") -> list[dict]:
    """The ``top`` best ``ok`` lineage rows with distinct ``arch_hash``, by search
    fitness or by the lineage-matched score over all of them (``rank_by``;
    ``evolve/matched.py``); ties: lower id first. Duplicates share their original's hash."""
    ok = [r for r in rows if r.get("status") == "ok" and _finite(r.get("fitness"))]
    if top <= 0:
        return []
    if rank_by == "matched":
        scores = matched_scores([float(r["fitness"]) for r in ok],
                                [float(r.get("lineage_epochs") or 1.0) for r in ok])
        key = {int(r["id"]): float(s) for r, s in zip(ok, scores)}
    else:
        key = {int(r["id"]): float(r["fitness"]) for r in ok}
    ok.sort(key=lambda r: (-key[int(r["id"])], int(r["id"])))
    out, seen = [], set()
    for r in ok:
        if r["arch_hash"] not in seen:
            seen.add(r["arch_hash"])
            out.append(r)
        if len(out) == top:
            break
    return out


def final_epochs(chosen: Sequence[dict], epochs: int) -> int:
    """``epochs`` if > 0, else the auto rule of the module docstring."""
    if epochs > 0:
        return int(epochs)
    most = max((float(r.get("lineage_epochs") or r.get("trained_epochs") or 1.0) for r in chosen), default=1.0)
    return int(min(AUTO_MAX_EPOCHS, max(1, math.ceil(most - 1e-9))))


def final_seed(run_seed: int, rank: int) -> int:
    """The recorded seed of the rank-th retrained network (init and data order)."""
    return (int(run_seed) * 1_000_003 + 7_919 * (rank + 1)) % 2**31


class FinalStage:
    """Retrain ``top`` networks of a finished search; rows go to ``path``.

    ``rows`` are the lineage records (``store.lineage.read_records``); ``genome_of``
    turns a genome string into a Genome of the run's space; ``weights_dir`` holds
    the from-scratch weights (``final-<id>.safetensors``)."""

    def __init__(self, path: str | Path, rows: Sequence[dict], top: int, epochs: int, seed: int,
                 genome_of, weights_dir: str | Path, rank_by: str = "fitness"):
        for field, v in (("final_top", top), ("final_epochs", epochs)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError("final", field, v, "must be an integer >= 0")
        self.path, self.weights_dir = Path(path), Path(weights_dir)
        self.chosen = select_top(rows, top, rank_by)
        self.epochs = final_epochs(self.chosen, epochs) if self.chosen else 0
        self.seed, self.genome_of = int(seed), genome_of
        self.done: dict[int, dict] = {int(r["id"]): r for r in read_final(self.path)}
        ids = {int(r["id"]) for r in self.chosen}
        if any(i not in ids or int(r["final_epochs"]) != self.epochs for i, r in self.done.items()):
            self.archived = self._archive()  # the search went on (or E changed): start afresh
        else:
            self.archived = None

    def _archive(self) -> Path:
        """Keep a stale table as ``final-<n>.csv`` (never overwritten) and start empty."""
        n = 1
        while self.path.with_name(f"{self.path.stem}-{n}.csv").exists():
            n += 1
        target = self.path.with_name(f"{self.path.stem}-{n}.csv")
        os.replace(self.path, target)
        self.done = {}
        return target

    def jobs(self) -> list[Job]:
        """The retrainings still to do (resume skips the rows already written)."""
        out = []
        for rank, r in enumerate(self.chosen):
            if int(r["id"]) in self.done:
                continue
            out.append(Job(int(r["id"]), self.genome_of(r["genome"]), operator="final", inherit="none",
                           weights_out=str(self.weights_dir / f"final-{int(r['id'])}.safetensors"),
                           seed=final_seed(self.seed, rank)))
        return out

    def run(self, evaluator: Evaluator, on_row=None) -> list[dict]:
        """Retrain what is missing on ``evaluator`` (trained with test scoring on);
        return every row, in rank order."""
        todo = {j.id: j for j in self.jobs()}
        if todo:
            self.weights_dir.mkdir(parents=True, exist_ok=True)
        for job in todo.values():
            evaluator.submit(job)
        while todo:
            for res in evaluator.poll(None):
                job = todo.pop(res.id, None)
                if job is not None:
                    row = self._row(job, res)
                    append_final(self.path, row)
                    faults.point("after_final_row")
                    self.done[job.id] = row
                    if on_row is not None:
                        on_row(row)
        return self.rows()

    def rows(self) -> list[dict]:
        return [self.done[int(r["id"])] for r in self.chosen if int(r["id"]) in self.done]

    def weights_of(self, row: dict) -> Optional[Path]:
        """The from-scratch weights of a retrained network, if on disk."""
        p = self.weights_dir / f"final-{int(row['id'])}.safetensors"
        return p if row["status"] == "ok" and p.exists() else None

    def best(self) -> Optional[dict]:
        """The retrained network with the best validation accuracy (ties: rank)."""
        return best_row(self.rows())

    def _row(self, job: Job, res: Result) -> dict[str, Any]:
        rank = next(i for i, r in enumerate(self.chosen) if int(r["id"]) == job.id)
        src = self.chosen[rank]
        ok = res.status == "ok" and _finite(res.fitness)
        return {"rank": rank, "id": job.id, "arch_hash": src["arch_hash"], "genome": src["genome"],
                "search_fitness": float(src["fitness"]),
                "lineage_epochs": float(src.get("lineage_epochs") or 0.0), "final_epochs": self.epochs,
                "seed": job.seed, "final_val": res.fitness if ok else None,
                "final_test": res.extra.get("test_accuracy") if ok else None,
                "params": res.params, "macs": res.flops, "status": "ok" if ok else "failed",
                "reason": res.reason or "", "train_seconds": round(float(res.train_seconds), 3)}


# --- final.csv --------------------------------------------------------------------------
def best_row(rows: Iterable[dict]) -> Optional[dict]:
    """Of ``final.csv`` rows, the ok one with the best validation accuracy (ties: rank)."""
    ok = [r for r in rows if r["status"] == "ok" and _finite(r["final_val"])]
    return min(ok, key=lambda r: (-float(r["final_val"]), int(r["rank"]))) if ok else None


def append_final(path: Path, row: dict) -> None:
    """Append one row with one write, then fsync (the header first, for a new file)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if not path.exists() or path.stat().st_size == 0:
        w.writerow(FINAL_COLUMNS)
    w.writerow(["" if row.get(c) is None else _cell(row[c]) for c in FINAL_COLUMNS])
    with open(path, "a", newline="", encoding="utf-8") as fh:
        fh.write(buf.getvalue())
        fh.flush()
        os.fsync(fh.fileno())


def read_final(path: str | Path) -> list[dict]:
    """The complete rows of ``final.csv`` (a torn last line, from a kill mid-write,
    is cut off so that the next append starts on a fresh line)."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "rb+") as fh:
            fh.truncate(data.rfind(b"\n") + 1)
            os.fsync(fh.fileno())
        data = data[:data.rfind(b"\n") + 1]
    lines = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    if not lines:
        return []
    if tuple(lines[0]) != FINAL_COLUMNS:
        raise ConfigError(str(path), "header", ",".join(lines[0])[:80],
                          f"not a final-stage table (expected {', '.join(FINAL_COLUMNS)})")
    out = []
    for fields in lines[1:]:
        if len(fields) != len(FINAL_COLUMNS):
            raise ConfigError(str(path), "row", ",".join(fields)[:80], "has the wrong number of fields")
        out.append(_typed(dict(zip(FINAL_COLUMNS, fields)), path))
    return out


def _typed(r: dict, path: Path) -> dict:
    try:
        for c in ("rank", "id", "final_epochs", "seed"):
            r[c] = int(r[c])
        for c in ("params", "macs"):
            r[c] = int(r[c]) if r[c] else None
        for c in ("search_fitness", "lineage_epochs", "final_val", "final_test", "train_seconds"):
            r[c] = float(r[c]) if r[c] else None
    except ValueError as e:
        raise ConfigError(str(path), "row", r.get("id"), f"bad number: {e}") from None
    return r


def _cell(v: Any) -> str:
    return repr(float(v)) if isinstance(v, float) else str(v)


def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def print_final_row(r: dict) -> None:
    """One line on stderr per retrained network (the CLI's progress)."""
    got = (f"val {r['final_val']:.2f}, test {r['final_test']:.2f}" if r["status"] == "ok"
           else f"failed: {r['reason']}")
    print(f"[evonas] final #{r['rank'] + 1}: id {r['id']} (search fitness {r['search_fitness']:.2f} after "
          f"{r['lineage_epochs']:g} lineage epochs) -> {got}", file=sys.stderr, flush=True)


def final_summary(rows: list, chosen: bool = True) -> dict:
    """The final stage's lines of the summary table, from its ``final.csv`` rows."""
    best = best_row(rows)
    if not chosen:
        return {"final stage": "nothing to retrain (no evaluated network)"}
    if best is None:
        return {"final stage": "no network retrained successfully"}
    return {"final best id": best["id"], "final epochs (from scratch)": best["final_epochs"],
            "final val accuracy": best["final_val"], "final test accuracy": best["final_test"],
            "final genome": best["genome"]}


def run_final_stage(plan, paths, quiet: bool, evaluator_for) -> Optional[FinalStage]:
    """The CLI's final stage of a finished search: retrain the top networks from
    scratch on ``evaluator_for(epochs)`` and export the one chosen by validation
    accuracy into ``best/``. None for table runs or K=0. ``plan``: the run's
    ``run.Plan``; ``paths``: its ``RunPaths``."""
    cfg = plan.cfg
    if plan.table is not None or cfg.final_top == 0:
        return None
    from .report import export_best
    from .store.lineage import read_records
    stage = FinalStage(paths.root / FINAL_FILE, read_records(paths.lineage), cfg.final_top,
                       cfg.final_epochs, cfg.seed, lambda s: plan.genome_cls.from_string(s, plan.space),
                       paths.root / "final", rank_by=cfg.selection)
    jobs = stage.jobs()
    if jobs:
        if not quiet:
            print(f"[evonas] final stage: retraining {len(jobs)} of the top {len(stage.chosen)} networks "
                  f"from scratch, {stage.epochs} epoch(s) each", file=sys.stderr, flush=True)
        evaluator = evaluator_for(stage.epochs)
        try:
            stage.run(evaluator, on_row=None if quiet else print_final_row)
        finally:
            evaluator.close()
    best = stage.best()
    if best is not None:
        genome = plan.genome_cls.from_string(best["genome"], plan.space)
        export_best(paths.root, genome, stage.weights_of(best), best["final_val"], best["id"])
    return stage
