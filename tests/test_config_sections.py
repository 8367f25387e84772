"""The sectioned config (issue 13.5): files and config.json by section, flat ones still
read, errors naming ``section.key``, dotted flags, and library defaults equal to the CLI's."""
import argparse
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evonas.config import Config
from evonas.config_cli import add_arguments, add_dotted_arguments, overrides_from_args
from evonas.config_sections import SECTIONS, flat_view
from evonas.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SECTIONED_YAML = """\
search: {genome: tree, strategy: es, population: 10}
train: {epochs: 2, lr: 1e-3}
data: {val_fraction: 0.25}
strategy: {es: {lam: 8}}
genome: {tree: {C: 16}}
"""


def parse(*flags):
    p = add_dotted_arguments(add_arguments(argparse.ArgumentParser()))
    return overrides_from_args(p.parse_args(list(flags)))


def write(tmp_path, name, text):
    f = tmp_path / name
    f.write_text(text)
    return f


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_sectioned_files(tmp_path, suffix):
    import yaml
    text = SECTIONED_YAML if suffix == ".yaml" else json.dumps(yaml.safe_load(SECTIONED_YAML))
    c = Config.from_sources(write(tmp_path, "c" + suffix, text))
    assert (c.genome, c.strategy, c.population, c.epochs, c.val_fraction) == ("tree", "es", 10, 2, 0.25)
    assert c.lr == pytest.approx(1e-3)
    assert c.strategy_args == {"lam": 8} and c.space == {"C": 16}


def test_flat_and_mixed_files(tmp_path):
    flat = Config.from_sources(write(tmp_path, "f.yaml", "strategy: es\nstrategy_args: {lam: 3}\nepochs: 2\n"))
    assert (flat.strategy, flat.strategy_args, flat.epochs) == ("es", {"lam": 3}, 2)
    mixed = Config.from_sources(write(tmp_path, "m.yaml", "population: 12\ntrain: {epochs: 4}\n"
                                      "search: {strategy: es}\nstrategy: {es: {tries: 9}}\n"
                                      "strategy_args: {lam: 5}\nspace: {C: 4}\n"))
    assert (mixed.population, mixed.epochs, mixed.strategy) == (12, 4, "es")
    assert mixed.strategy_args == {"lam": 5, "tries": 9} and mixed.space == {"C": 4}
    with pytest.raises(ConfigError, match="search.population.*given twice"):  # flat and sectioned disagree
        Config.from_sources(write(tmp_path, "t.yaml", "population: 12\nsearch: {population: 14}\n"))


def test_flags_override_sections_and_choose_the_section_read(tmp_path):
    f = write(tmp_path, "c.yaml", "strategy: {es: {lam: 8, tries: 5}, generational: {p_cross: 0.5}}\n"
                                  "train: {epochs: 4}\n")
    c = Config.from_sources(f, parse("--strategy", "es", "--strategy.es.lam", "2", "--epochs", "6"))
    assert c.strategy_args == {"lam": 2, "tries": 5} and c.epochs == 6  # the file's strategy.es, flags win
    c = Config.from_sources(f, parse("--strategy", "generational", "--strategy-arg", "population=8"))
    assert c.strategy_args == {"p_cross": 0.5, "population": 8}  # --strategy-arg: the chosen one's section
    assert Config.from_sources(f).strategy_args == {}  # aging chosen: es and generational checked, not applied


@pytest.mark.parametrize("text, named", [
    ("foo: {a: 1}\n", "'foo'"),                                    # unknown section
    ("train: {population: 10}\n", "'train.population'"),          # key in the wrong section
    ("search: {space: {C: 4}}\n", "'search.space'"),              # a registered section's field
    ("train: {epoch: 3}\n", "'train.epoch'"),                     # unknown key in a section
    ("train: 3\n", "'train'"),                                     # not a mapping
    ("strategy: {es: 3}\n", "'strategy.es'"),                      # a sub-section not a mapping
    ("strategy: {es: {lamm: 3}}\n", "'strategy.es.lamm'"),        # another strategy's typo
    ("strategy: {es: {population: 3}}\n", "'strategy.es.population'"),  # set with --population
    ("strategy: {nope: {x: 1}}\n", "'strategy.nope'"),            # no such strategy
    ("genome: {cgp: {colz: 3}}\n", "'genome.cgp.colz'"),          # another genome's typo
])
def test_section_errors_name_section_and_key(tmp_path, text, named):
    with pytest.raises(ConfigError) as e:
        Config.from_sources(write(tmp_path, "c.yaml", text))
    msg = str(e.value)
    assert f"field {named}" in msg and "\n" not in msg, msg


def test_other_sections_are_not_checked_against_unloaded_plugins(tmp_path):
    # a plug-in registers its strategy only when loaded (after the config is read)
    c = Config.from_sources(write(tmp_path, "c.yaml", "search: {plugins: [p.py]}\nstrategy: {mine: {k: 1}}\n"))
    assert c.strategy_args == {}


def test_dump_is_sectioned_and_load_reads_both(tmp_path):
    c = Config(strategy="es", strategy_args={"lam": 4}, genome="nb201", space={"C": 8}, epochs=2)
    c.dump(tmp_path / "config.json")
    raw = json.loads((tmp_path / "config.json").read_text())
    assert list(raw) == [*SECTIONS, "strategy", "genome", "backend"]
    assert raw["strategy"] == {"es": {"lam": 4}} and raw["genome"] == {"nb201": {"C": 8}}  # the chosen only
    assert raw["search"]["population"] == 100 and raw["train"]["epochs"] == 2 and raw["output"]["name"] == ""
    assert Config.load(tmp_path / "config.json") == c
    (tmp_path / "flat.json").write_text(json.dumps(c.to_dict()))  # a run directory from before sections
    assert Config.load(tmp_path / "flat.json") == c
    assert flat_view(raw) == c.to_dict() == flat_view(c.to_dict())  # what report/plots/export read
    assert c.diff(c.updated({"strategy_args": {"lam": 6}, "epochs": 3})) == {
        "strategy.es.lam": (4, 6), "train.epochs": (2, 3)}


def test_help_groups_flags_by_section():
    from evonas.run import parser
    text = parser().format_help()
    for title in (*SECTIONS, "strategy.<name>", "genome.<name>", "strategy.es", "genome.tree"):
        assert f"\n{title}:" in text, title
    assert "--strategy.es.lam VALUE" in text and "--genome.cgp.levels_back VALUE" in text
    assert "--strategy.aging.population" not in text  # population/sample/selection: their own flags
    assert "plug-in" in text


def test_every_registered_parameter_has_a_dotted_flag():
    from evonas.catalog import registries
    from evonas.config_sections import parameters
    from evonas.run import parser
    flags = {o for a in parser()._actions for o in a.option_strings}
    for section, kind in (("strategy", "strategies"), ("genome", "genomes")):
        for name in registries()[kind].names():
            for key in parameters(section, name):
                assert f"--{section}.{name}.{key}" in flags


def test_dotted_flags_parse_json_else_string():
    assert parse("--strategy.es.lam", "3", "--strategy.es.accept", "ties", "--genome.tree.C", "16") == {
        "strategy.es": {"lam": 3, "accept": "ties"}, "genome.tree": {"C": 16}}
    with pytest.raises(ConfigError, match="'--strategy.es.lam'.*not the run's strategy"):
        Config.from_sources(None, parse("--strategy.es.lam", "3"))  # aging is the run's strategy


def _cli(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "evonas.run", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _table_argv(table, run_dir, evals):
    return ["--genome", "nb201", "--population", "4", "--sample-size", "2", "--evaluations", str(evals),
            "--benchmark-table", str(table), "--run-dir", str(run_dir), "--quiet"]


def test_dotted_flags_end_to_end(nb201_table, tmp_path):
    run = tmp_path / "run"
    r = _cli(*_table_argv(nb201_table, run, 6), "--strategy", "es", "--strategy.es.lam", "2",
             "--genome.nb201.N", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    raw = json.loads((run / "config.json").read_text())
    assert raw["strategy"] == {"es": {"lam": 2}} and raw["genome"] == {"nb201": {"N": 1}}
    bad = tmp_path / "bad"
    r = _cli(*_table_argv(nb201_table, bad, 6), "--strategy", "es", "--strategy.generational.p_cross", "0.5",
             cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--strategy.generational.p_cross" in r.stderr
    assert not bad.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_flat_config_json_resumes(nb201_table, tmp_path, capsys):
    from evonas.run import main
    run = tmp_path / "run"
    assert main(_table_argv(nb201_table, run, 8) + ["--strategy", "es", "--strategy-arg", "lam=2"]) == 0
    flat = Config.load(run / "config.json").to_dict()
    (run / "config.json").write_text(json.dumps(flat, indent=2))  # as every run dir before sections
    assert main(["--resume", str(run), "--evaluations", "12", "--quiet"]) == 0
    resumed = Config.load(run / "config.json")
    assert resumed.evaluations == 12 and resumed.strategy_args == {"lam": 2}
    assert "search" in json.loads((run / "config.json").read_text())  # rewritten by section
    assert main(["--resume", str(run), "--evaluations", "12", "--population", "5", "--quiet"]) == 2
    assert "search.population" in capsys.readouterr().err  # the conflict names section.key


def test_engine_defaults_are_the_cli_defaults():
    """``Search``'s defaults against ``Config()``, through the mapping ``evonas.run``
    applies (engine_settings: 0 = auto/no limit -> None, result_order -> ordered)."""
    from evonas.evolve import Search
    from evonas.evolve.base import STRATEGIES
    from evonas.run import engine_settings
    names = {"genome": "genome_type", "strategy": "strategy", "seed": "seed", "evaluations": "max_evaluations",
             "max_duplicates": "max_duplicates", "time_budget": "max_seconds", "dedup": "dedup",
             "inherit": "inherit", "mutations": "mutation", "result_order": "ordered",
             "seed_genomes": "seed_genomes", "space": "space"}
    sig = inspect.signature(Search).parameters
    cli = {**engine_settings(Config()), "strategy": Config().strategy, "seed_genomes": Config().seed_genomes,
           "space": None}  # run.py: space {} -> the genome's default Space (None)
    for key, param in names.items():
        assert sig[param].default == cli[param], (key, param, sig[param].default, cli[param])
    # the default strategy's own defaults are the CLI's population, sample size and selection
    aging = inspect.signature(STRATEGIES.get(Config().strategy).__init__).parameters
    resolved = Config().resolved("t")
    assert (aging["population"].default, aging["sample"].default, aging["selection"].default) == (
        resolved.population, resolved.sample_size, resolved.selection)


def test_api_search_takes_the_config_defaults():
    import evonas
    sig = inspect.signature(evonas.search).parameters
    for name, value in Config().__dict__.items():
        assert sig[name].default == (None if name == "run_dir" else value), name


# --- backend.<name>: the backends' options (issue 13 item 5) ------------------------------------
def test_backend_section_from_a_file_flags_and_the_old_ray_address(tmp_path):
    f = write(tmp_path, "c.yaml", "execution: {backend: ray}\nbackend: {ray: {address: 'head:6379'}, "
                                  "local: {max_retries: 3}}\n")
    c = Config.from_sources(f)
    assert c.backend_args == {"address": "head:6379"}  # the other backend's section: checked, not applied
    assert c.to_sections()["backend"] == {"ray": {"address": "head:6379"}}
    assert Config.from_sources(f, parse("--backend", "local")).backend_args == {"max_retries": 3}
    assert parse("--backend.ray.max_retries", "4") == {"backend.ray": {"max_retries": 4}}
    # every run directory before sections stored a flat ray_address (default '')
    old = Config.from_dict({"backend": "ray", "ray_address": "10.0.0.1:6379"})
    assert old.backend_args == {"address": "10.0.0.1:6379"}
    assert Config.from_dict({"backend": "local", "ray_address": ""}).backend_args == {}
    assert Config.from_dict({"execution": {"backend": "ray", "ray_address": "h:1"}}).backend_args == {"address": "h:1"}
    assert flat_view({"backend": "ray", "ray_address": "h:1"})["backend_args"] == {"address": "h:1"}
    with pytest.raises(ConfigError, match=r"backend\.ray\.port.*not an option of backend ray"):
        Config.from_dict({"backend": {"ray": {"port": 1}}})


def test_every_backend_option_has_a_dotted_flag():
    from evonas.config_sections import parameters
    from evonas.evaluate.backends import BACKENDS
    from evonas.run import parser
    flags = {o for a in parser()._actions for o in a.option_strings}
    for name in BACKENDS.names():
        for key in parameters("backend", name):
            assert f"--backend.{name}.{key}" in flags
    assert parameters("backend", "ray") == ["address", "max_retries", "startup_timeout_s"]
    assert parameters("backend", "local") == ["max_retries"]


@pytest.mark.parametrize("flags, named", [
    (["--backend.local.max_retries", "11"], "backend.local"),
    (["--backend-arg", "colour=1"], "backend.local.colour"),
    (["--backend", "ray", "--backend.ray.startup_timeout_s", "-1"], "backend.ray"),
])
def test_bad_backend_options_exit_2_and_write_nothing(tmp_path, capsys, flags, named):
    from evonas.run import main
    run = tmp_path / "run"
    assert main(["--evaluations", "1", "--run-dir", str(run), "--quiet", *flags]) == 2
    err = capsys.readouterr().err
    assert named in err and err.count("\n") == 1 and not run.exists()


def test_backend_options_may_change_on_resume(nb201_table, tmp_path):
    from evonas.reopen import open_for_resume
    from evonas.run import main
    run = tmp_path / "run"
    assert main(_table_argv(nb201_table, run, 4)) == 0
    cfg, _ = open_for_resume(run, parse("--backend.local.max_retries", "5"))
    assert cfg.backend_args == {"max_retries": 5}
