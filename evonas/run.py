"""``python -m evonas.run``: run (or resume) a search and write its run directory.

Order of work, so that bad input loses nothing: parse flags -> read the config
file -> load plug-ins -> check every name, file, dataset and device -> only then
create (or, on resume, touch) the run directory -> search -> export ``best/``.
User mistakes exit with code 2 and one line on stderr; Ctrl-C exits 130 and
SIGTERM 143, each with one line, the workers ended and the last checkpoint intact
(continue with ``--resume RUN_DIR``). The run directory is locked for the run's
life (``store.rundir.RunLock``); on resume every file read from it is checked
before anything is written to it (``store.resume``). A full disk stops the run
with one line and exit 2.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from .config import Config, check_names
from .config_cli import add_arguments, add_dotted_arguments, overrides_from_args
from .errors import ConfigError, cli_exit_code
from .checks import (base_args, check_backend_args, check_finite, check_space, check_strategy_args,
                     check_surrogate_args, surrogate_args)
from .progress import Progress

EPILOG = """examples:
  python -m evonas.run --genome tree --population 100
  python -m evonas.run --genome nb201 --population 10 --sample-size 3 --evaluations 100 \\
      --benchmark-table ../shared/data/nb201_cifar10.csv
  python -m evonas.run --genome cgp --strategy es --dataset npz:data.npz --epochs 2
  python -m evonas.run --resume runs/<name> --evaluations 500
"""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag prints one line (not the long usage) and exits 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    # the usage line would list every dotted flag: the groups below show them
    p = OneLineParser(prog="python -m evonas.run", epilog=EPILOG,
                      usage="%(prog)s [--config FILE] [--resume RUN_DIR] [--list] [--quiet] [FLAG VALUE ...]",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                description="Evolutionary neural architecture search. The default budget "
                                            f"is {Config().evaluations} evaluations of {Config().epochs} epoch "
                                            f"each, capped at {Config().time_budget:g} s, on the bundled "
                                            "8x8 digits: minutes on a 2-core CPU.")
    p.add_argument("--config", metavar="FILE", help="YAML/JSON file with config keys, by section (search: "
                   "{population: 10}, train: {epochs: 3}, strategy: {es: {lam: 8}}, ...) or flat; flags "
                   "override it")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR exactly where it stopped "
                   "(only budget, hardware and data-path flags may change)")
    p.add_argument("--quiet", action="store_true", help="no progress output, only the final summary")
    p.add_argument("--list", action="store_true", help="print the registered genomes (with their space), "
                   "strategies (with their parameters), operators per genome, backends and surrogates, "
                   "each with a one-line doc, and exit (--plugin ones too)")
    from .catalog import choices
    return add_dotted_arguments(add_arguments(p, choices()))


@dataclass
class Plan:
    """Everything checked before the run directory is touched."""
    cfg: Config
    plugins: list
    genome_cls: Any
    space: Any
    seeds: tuple
    data: Any  # DataSpec, or None for table lookups
    slots: list
    extra_columns: tuple
    table: Any = None  # the TableEvaluator, loaded (and so checked) by _plan


def preload_plugins(argv: Sequence[str]) -> None:
    """Load the ``--plugin`` modules named in ``argv`` before the parser is built, so
    that their strategies, genomes and backends get ``--SECTION.NAME.KEY`` flags
    (and ``--help`` shows them). Loading again later is a no-op."""
    from .catalog import registries
    from .plugins import load_plugin
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--plugin", action="append", default=[])
    for spec in pre.parse_known_args(list(argv))[0].plugin:
        load_plugin(spec, also=registries())


def main(argv: Optional[Sequence[str]] = None) -> int:
    from . import stops
    given = sys.argv[1:] if argv is None else list(argv)
    code = cli_exit_code(lambda: preload_plugins(given) or 0)  # a bad plug-in: one line, exit 2
    if code:
        return code
    args = parser().parse_args(argv)  # argparse itself exits 2 on malformed flags
    restore = stops.install()
    try:
        return cli_exit_code(lambda: _guarded(args, list(sys.argv if argv is None else argv)),
                             "interrupted: the last checkpoint is kept; continue with --resume")
    finally:
        restore()


def _guarded(args: argparse.Namespace, argv: list) -> int:
    """``_run`` with the two ways a run stops that are no user mistake: a stop
    signal (one line, 130/143) and a full disk (one line naming the file, 2)."""
    from .stops import Stop
    from .io import DISK_FULL, storage_error
    try:
        return _run(args, argv)
    except Stop as e:
        print(f"\nstopped by {e}: workers ended, the last checkpoint is kept; continue with --resume",
              file=sys.stderr)
        return e.exit_code
    except OSError as e:
        if e.errno not in DISK_FULL:
            raise
        print(f"error: {storage_error(e)}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, argv: list) -> int:
    if args.list:
        return _list(args)
    execute(overrides_from_args(args), args.config, args.resume, argv, args.quiet)
    return 0


def _list(args: argparse.Namespace) -> int:
    """``--list``: what the registries hold, the ``--plugin`` modules' entries
    included (``main`` loaded them before parsing)."""
    from .catalog import listing
    print(listing())
    return 0


def execute(overrides: dict, config_file: Optional[str] = None, resume: Optional[str] = None,
            argv: Optional[list] = None, quiet: bool = False, bar: Optional[bool] = None,
            where: str = "flags"):
    """Run (or, with ``resume``, continue) a search and return its run directory
    (a ``Path``). The one code path of the CLI and of ``evonas.search``: bad input
    raises an ``EvonasError`` before anything is written. ``bar``: a tqdm bar
    (``tqdm.auto``: a widget in Jupyter) instead of plain lines; None = on a terminal.
    ``where`` names ``overrides`` in error messages."""
    from .store.rundir import RunLock, create_run_dir, utc_now
    argv = list(sys.argv) if argv is None else argv
    if resume:
        lock = _lock(resume)  # before reading: another process may be writing it
        try:
            return _resume(resume, config_file, argv, overrides, quiet, bar)
        finally:
            lock.release()
    cfg = Config.from_sources(config_file, overrides, where).resolved(utc_now().replace(":", "").replace("-", "")[:15])
    plan = _plan(cfg)
    paths = create_run_dir(cfg.run_dir, cfg, argv, plan.plugins, plan.extra_columns)
    lock = RunLock(paths.root)
    try:
        _search(plan, paths, quiet, bar=bar)
    finally:
        lock.release()
    return paths.root


def _resume(resume: str, config_file, argv: list, overrides: dict, quiet: bool, bar):
    from .reopen import open_for_resume
    from .store.rundir import record_resume
    cfg, paths = open_for_resume(resume, overrides, config_file)
    plan = _plan(cfg)
    # the resume is recorded (config.json, manifest.json) once the journal has been replayed and checked
    _search(plan, paths, quiet, lambda: record_resume(paths, cfg, argv), bar=bar)
    return paths.root


def _lock(path: str):
    """Lock a run directory to resume (a missing one is reported by open_for_resume)."""
    from .store.rundir import RunLock

    class NoLock:
        def release(self):
            pass
    return RunLock(path) if os.path.isdir(path) else NoLock()


def _plan(cfg: Config) -> Plan:
    from .evaluate.data import DataSpec
    from .genome import GENOMES, load_genome
    from .genome.base import space_from_dict
    from .plugins import load_plugin
    from . import plugins as plugin_mod
    check_finite(cfg)
    # a plug-in call may run as long as the whole search, no longer
    plugin_mod.CALL_LIMIT_S = cfg.time_budget or plugin_mod.CALL_LIMIT_S
    from .catalog import registries
    plugins = [load_plugin(spec, also=registries()) and spec for spec in cfg.plugins]
    check_names(cfg)
    cls = GENOMES.get(cfg.genome)
    space = space_from_dict(cls, dict(cfg.space))
    check_space(cls, space, cfg)
    seeds = tuple(load_genome(f) for f in cfg.seed_genomes)
    for f, g in zip(cfg.seed_genomes, seeds):
        if g.type_name != cfg.genome or g.space != space:
            raise ConfigError("config", "seed_genomes", f, f"is a {g.type_name} genome of space {g.space}, "
                              f"the run searches {cfg.genome} in {space}")
    check_strategy_args(cfg, cls, space, seeds)
    check_surrogate_args(cfg, cls, space, seeds)
    check_backend_args(cfg)
    if cfg.benchmark_table:
        from .evaluate.table import TableEvaluator, nb201_setting
        # loading checks the file and columns; --workers N keeps N lookups in flight (the
        # asynchronous path, as with real workers); params/MACs on the fitness column's data set
        shape, classes = nb201_setting(cfg.fitness_column)
        table = TableEvaluator(cfg.benchmark_table, cfg.fitness_column, cfg.report_column or None,
                               slots=max(1, cfg.workers), cost_input=shape, num_classes=classes,
                               genome_type=cfg.genome)
        report = (cfg.report_column,) if cfg.report_column else ()
        return Plan(cfg, plugins, cls, space, seeds, None, ["table"], report, table)
    data = DataSpec(cfg.dataset, cfg.data_root, cfg.seed, cfg.val_fraction)
    data.load()  # a missing file, bad npz or offline download fails here, before any write
    from .evaluate.backends import backend  # each backend places its own slots (Ray: the cluster's)
    slots = backend(cfg.backend).placement(cfg.devices, cfg.workers, cfg.trials_per_device, **cfg.backend_args)
    return Plan(cfg, plugins, cls, space, seeds, data, slots, ())


def _evaluator(plan: Plan, **train):
    """The search's evaluator; ``train`` overrides training settings (the final
    stage: more epochs, test scoring)."""
    cfg = plan.cfg
    if plan.table is not None:
        return plan.table
    from .evaluate.train import TrainConfig
    settings = dict(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, optimizer=cfg.optimizer,
                    max_params=cfg.max_params or None, max_macs=cfg.max_macs or None,
                    timeout_s=cfg.trial_timeout or None, precision=cfg.precision,
                    memory_format=cfg.memory_format)
    if train.get("epochs") and settings["timeout_s"]:  # the per-trial limit scales with the epochs
        settings["timeout_s"] *= max(1.0, train["epochs"] / cfg.epochs)
    tc = TrainConfig(**{**settings, **train})
    from .evaluate.backends import backend
    return backend(cfg.backend).open(plan.data, tc, plan.slots, **cfg.backend_args)


def engine_settings(cfg: Config) -> dict:
    """The ``Search`` keywords that are config keys, in the engine's terms (0 = auto
    or no limit -> None; result_order -> ordered). Its defaults equal these of
    ``Config()`` (tests/test_config_sections.py)."""
    return dict(genome_type=cfg.genome, mutation=list(cfg.mutations) or None, seed=cfg.seed,
                max_evaluations=cfg.evaluations, max_duplicates=cfg.max_duplicates or None,
                max_seconds=cfg.time_budget or None, dedup=cfg.dedup, inherit=cfg.inherit,
                ordered=cfg.result_order == "submission")


def _strategy_args(cfg: Config, plan: Plan) -> dict:
    """The strategy's arguments; with ``--surrogate NAME``, the surrogate
    middleware's, wrapping ``--strategy``."""
    args = base_args(cfg)
    return surrogate_args(cfg, args, plan.data) if cfg.surrogate else args


def _search(plan: Plan, paths, quiet: bool, on_start=None, bar: Optional[bool] = None) -> int:
    """Run the search into ``paths``. On resume the journal is replayed and checked
    against the lineage and the weights files before anything is written
    (``store.resume``); only then are the files opened (repairing a torn tail) and
    ``on_start`` (recording the resume) run."""
    from .evolve import Search
    from .report import export_best, format_summary, summarize
    from .lineage import load_lineage
    from .store.resume import Sink, read_run_files, replay
    from .store.rundir import save_state
    cfg = plan.cfg
    events, rows = read_run_files(paths)  # a corrupt journal or lineage fails here, before any write
    sink = Sink(paths, plan.extra_columns)
    progress = curves = None
    evaluator = _evaluator(plan)
    try:
        search = Search(evaluator, **engine_settings(cfg), space=plan.space,
                        strategy="surrogate" if cfg.surrogate else cfg.strategy,
                        strategy_args=_strategy_args(cfg, plan),
                        weights_dir=str(paths.weights.resolve()) if _keeps_weights(plan) else None,
                        on_record=sink.record, on_event=sink.event, on_checkpoint=sink.checkpoint,
                        checkpoint_every_s=CHECKPOINT_EVERY_S, seed_genomes=plan.seeds)
        replay(search, events, rows, paths)  # resume: the journal rebuilds the search, checked
        from .html_report import CurveWriter, Refresher
        curves, refresh = CurveWriter(paths.root), Refresher(paths.root, REPORT_EVERY_S)
        progress = Progress(cfg.evaluations, quiet, already=search.evaluated, bar=bar)
        sink.open(lambda r: (curves(r), progress.update(r, search.evaluated), refresh()))
        if on_start is not None:
            on_start()
        if not quiet:
            print(f"[evonas] {paths.root}: {_where(plan)}", file=sys.stderr, flush=True)
        summary = search.run()
        sink.sync()
        save_state(paths, search.snapshot())
    finally:
        if progress is not None:
            progress.close()
        evaluator.close()
        sink.close()
        if curves is not None:
            curves.close()
    best = summary.get("best")
    if best:
        genome = plan.genome_cls.from_string(best["genome"], plan.space)
        export_best(paths.root, genome, best.get("weights"), best["fitness"], best["id"])
    from .final import final_summary, run_final_stage
    stage = run_final_stage(plan, paths, quiet, lambda epochs: _evaluator(plan, epochs=epochs, test=True))
    refresh(force=True)  # after the final stage: the page shows final.csv
    df = load_lineage(paths.lineage)
    print(format_summary({"run": str(paths.root), "stopped by": summary["stop_reason"],
                          **summarize(df, search.elapsed),
                          **({} if stage is None else final_summary(stage.rows(), bool(stage.chosen)))}))
    if "pareto_front" in summary:
        print("Pareto front (fitness vs " + search.strategy.objective + "):")
        for p in summary["pareto_front"]:
            print(f"  id {p['id']}: fitness {p['fitness']:.4g}, {search.strategy.objective} "
                  f"{p[search.strategy.objective]:.4g}  {p['genome']}")
    return 0


def _keeps_weights(plan: Plan) -> bool:
    """Whether search trials save their weights (issue 19: a save is two fsyncs per
    trial). Only a child inheriting from its parent, or the search's best exported
    to ``best/`` when no final stage retrains it (``--final-top 0``), reads them;
    table runs train nothing."""
    cfg = plan.cfg
    return plan.data is not None and (cfg.inherit != "none" or cfg.final_top == 0)


def _where(plan: Plan) -> str:
    """One line on what runs where: genome, strategy, evaluator and its slots."""
    cfg, slots = plan.cfg, plan.slots
    if plan.table is not None:
        how = f"table lookups ({cfg.fitness_column})"
    else:
        places = ", ".join(f"{d} x{slots.count(d)}" for d in dict.fromkeys(slots))
        how = f"{len(slots)} {cfg.backend} worker(s) on {places}, {cfg.epochs} epoch(s) on {cfg.dataset}"
    return f"{cfg.genome}, {cfg.strategy}; budgets: {_budgets(plan)}; {how}; results in {cfg.result_order} order"


def _budgets(plan: Plan) -> str:
    """Every limit that can end the run, defaults spelled out (a default 600 s cap
    that nobody named would end a long run by surprise)."""
    cfg = plan.cfg
    dups = cfg.max_duplicates or 10 * cfg.evaluations + 100
    time = f"{cfg.time_budget:g} s wall clock" if cfg.time_budget else "no time limit"
    if plan.table is not None:
        final = "no final stage (table lookups)"
    elif cfg.final_top == 0:
        final = "final stage off"
    else:
        epochs = f"{cfg.final_epochs} epoch(s)" if cfg.final_epochs else "auto epochs"
        final = f"then a final stage retraining the top {cfg.final_top} from scratch ({epochs})"
    return (f"{cfg.evaluations} trained networks, up to {dups} reused duplicates, {time} "
            f"(whichever ends first), {final}")


REPORT_EVERY_S = 30.0  # seconds between rewrites of report.html during a run (watch it in a browser)
CHECKPOINT_EVERY_S = 1.0  # seconds between checkpoints (0: after every individual)


if __name__ == "__main__":
    sys.exit(main())
