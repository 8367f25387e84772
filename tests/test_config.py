"""Config: defaults < file < flags, strict keys/types/choices, dump/load/diff, argparse."""
import argparse
import json

import pytest

from evonas.config import RESUMABLE, Config, check_names
from evonas.config_cli import add_arguments, overrides_from_args
from evonas.errors import ConfigError


def parse(*flags):
    return overrides_from_args(add_arguments(argparse.ArgumentParser()).parse_args(list(flags)))


def test_defaults_are_valid_and_resolve():
    c = Config()
    assert (c.genome, c.population, c.epochs, c.dataset) == ("tree", 100, 3, "digits")
    r = Config(population=10).resolved("20240101-000000")
    assert r.sample_size == 3 and r.name == "tree-aging-s0-20240101-000000"
    assert r.run_dir.endswith("runs/tree-aging-s0-20240101-000000")
    assert Config().resolved("x").sample_size == 25


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_file_then_flags_precedence(tmp_path, suffix):
    f = tmp_path / ("c" + suffix)
    data = {"population": 20, "epochs": 5, "lr": "1e-3", "space": {"C": 8, "N": 1}, "plugins": ["a"]}
    f.write_text(json.dumps(data) if suffix == ".json" else
                 "population: 20\nepochs: 5\nlr: 1e-3\nspace: {C: 8, N: 1}\nplugins: [a]\n")
    c = Config.from_sources(f, parse("--population", "30", "--space", "N=2", "--plugin", "b"))
    assert c.population == 30          # flag beats file
    assert c.epochs == 5               # file beats default
    assert c.lr == pytest.approx(1e-3) # YAML 1.1 reads 1e-3 as a string: accepted
    assert c.space == {"C": 8, "N": 2} # space merges key by key
    assert c.plugins == ("b",)         # lists are replaced
    assert c.batch_size == Config().batch_size


def test_flags_not_given_do_not_override_file(tmp_path):
    f = tmp_path / "c.json"
    f.write_text('{"epochs": 4}')
    assert Config.from_sources(f, parse()).epochs == 4


@pytest.mark.parametrize("content, key", [
    ('{"populaton": 10}', "populaton"),          # unknown key
    ('{"population": "ten"}', "population"),     # wrong type
    ('{"population": true}', "population"),      # bool is not an int
    ('{"population": 1}', "population"),         # range
    ('{"inherit": "copy"}', "inherit"),          # choice
    ('{"sample_size": 50, "population": 10}', "sample_size"),
    ('{"plugins": "a.py"}', "plugins"),          # list expected
    ('{"mutations": ["op:-1"]}', "mutations"),
    ('{"val_fraction": 1.5}', "val_fraction"),
])
def test_bad_file_values_name_the_key(tmp_path, content, key):
    f = tmp_path / "c.json"
    f.write_text(content)
    with pytest.raises(ConfigError) as e:
        Config.from_sources(f)
    msg = str(e.value)
    assert key in msg and "\n" not in msg


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        Config.from_sources(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.json"
    bad.write_text('{"population": ')
    with pytest.raises(ConfigError, match="not valid"):
        Config.from_sources(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        Config.from_sources(lst)


def test_bad_flag_value_is_config_error():
    with pytest.raises(ConfigError, match="batch_size"):
        Config.from_sources(None, parse("--batch-size", "0"))


def test_dump_load_roundtrip_and_diff(tmp_path):
    c = Config(population=12, mutations=("a:2", "b"), space={"C": 8}, seed=3)
    c.dump(tmp_path / "config.json")
    assert not list(tmp_path.glob("*.tmp"))
    back = Config.load(tmp_path / "config.json")
    assert back == c and back.diff(c) == {}
    d = c.diff(back.updated({"seed": 4, "evaluations": 9}))
    assert d == {"search.seed": (3, 4), "search.evaluations": (c.evaluations, 9)}  # section.key
    assert "evaluations" in RESUMABLE and "seed" not in RESUMABLE
    assert c.mutation_weights() == {"a": 2.0, "b": None}


def test_help_states_every_default(capsys):
    p = add_arguments(argparse.ArgumentParser())
    text = p.format_help()
    for flag in ("--population", "--sample-size", "--inherit", "--mutation", "--seed-genome",
                 "--time-budget", "--benchmark-table", "--trial-timeout"):
        assert flag in text
    assert text.count("(default:") == len(Config.__dataclass_fields__)


def test_check_names_against_registries():
    import evonas.evolve.aging  # noqa: F401  registers 'aging' even without evolve/__init__
    check_names(Config(genome="nb201"))
    with pytest.raises(ConfigError, match="genome"):
        check_names(Config(genome="nope"))
    with pytest.raises(ConfigError, match="strategy"):
        check_names(Config(genome="nb201", strategy="nope"))
    with pytest.raises(ConfigError, match="mutations"):
        check_names(Config(genome="nb201", mutations=("no_such_op",)))


def test_named_errors_survive_pickling():
    """Workers and Ray actors send errors back by pickle: a FieldError must arrive whole."""
    import pickle

    from evonas.errors import FieldError, GenomeError, GraphError
    for cls in (FieldError, GenomeError, GraphError, ConfigError):
        e = pickle.loads(pickle.dumps(cls("where", "field", [1, 2], "why")))
        assert type(e) is cls and str(e) == "where: field 'field' = [1, 2]: why"
        assert (e.where, e.field, e.value, e.why) == ("where", "field", [1, 2], "why")


# --- the discoverable CLI (issue 16 item 6): --list, --help, the start line, progress ----------


def _registered():
    from evonas.catalog import registries
    from evonas.operators import operators
    reg = registries()
    ops = {g: operators(g).names() for g in reg["genomes"].names()}
    return reg, ops


def test_list_prints_every_registered_choice(capsys):
    from evonas.run import main
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    reg, ops = _registered()
    lines = out.splitlines()
    for kind, r in reg.items():
        for name in r.names():
            row = next((ln for ln in lines if ln.split()[:1] == [name]), None)
            assert row is not None and len(row.split()) > 1, (kind, name)  # named, with a one-line doc
    for g, names in ops.items():
        for name in names:
            assert any(ln.split()[:1] == [name] and "weight" in ln for ln in lines), (g, name)
    assert "lam=2" in out and "greedy=1.0" in out and "p_cross=0.2" in out  # strategy defaults
    assert "C=8" in out  # the tree space default


def test_list_includes_plugins(tmp_path, capsys):
    plug = tmp_path / "plug_list.py"
    plug.write_text("from evonas import register_mutation\n"
                    "@register_mutation('tree', name='listed_op', weight=0.25)\n"
                    "def listed_op(g, rng):\n    '''Listed by --list.'''\n    return g\n")
    from evonas.operators import operators
    from evonas.run import main
    try:
        assert main(["--list", "--plugin", str(plug)]) == 0
        out = capsys.readouterr().out
        assert any("listed_op" in ln and "weight 0.25" in ln and "Listed by --list." in ln
                   for ln in out.splitlines())
    finally:
        operators("tree").unregister("listed_op")


def test_help_names_every_registered_choice():
    from evonas.run import parser
    text = " ".join(parser().format_help().split())
    reg, ops = _registered()
    for kind in ("genomes", "strategies", "surrogates", "backends"):
        for name in reg[kind].names():
            assert name in text, (kind, name)
    for names in ops.values():
        for name in names:
            assert name in text, name
    assert "built-in" not in text  # no hand-kept list


def test_start_line_names_every_budget():
    from evonas.run import Plan, _where
    plan = Plan(Config(evaluations=50).resolved("t"), [], None, None, (), None, ["cpu"], ())
    line = _where(plan)
    assert "50 trained networks" in line and "up to 600 reused duplicates" in line
    assert "600 s wall clock" in line and "final stage retraining the top 3" in line and "auto epochs" in line
    plan = Plan(Config(time_budget=0, final_top=0, max_duplicates=7).resolved("t"), [], None, None, (), None,
                ["cpu"], ())
    line = _where(plan)
    assert "no time limit" in line and "final stage off" in line and "up to 7 reused" in line


class _Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_progress_lines_show_elapsed_and_eta(capsys):
    from evonas.progress import Progress
    clock = _Clock()
    p = Progress(4, quiet=False, bar=False, heartbeat_s=0, clock=clock)
    for i in range(1, 5):
        clock.t = 10.0 * i
        p.update({"status": "ok", "fitness": float(i)}, i)
    p.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "[evonas] 1/4 trained networks, best 1, failed 0, duplicates 0, elapsed 10s, ETA 30s"
    assert lines[-1].startswith("[evonas] 4/4 trained networks") and lines[-1].endswith("elapsed 40s")


def test_progress_heartbeat_while_no_trial_finishes(capsys):
    import time
    from evonas.progress import Progress
    p = Progress(10, quiet=False, bar=False, heartbeat_s=0.1)
    time.sleep(0.45)
    p.close()
    beats = [ln for ln in capsys.readouterr().err.splitlines() if "still running" in ln]
    assert 2 <= len(beats) <= 5 and "0/10 trained networks" in beats[0] and "elapsed" in beats[0]
    q = Progress(10, quiet=True, bar=False, heartbeat_s=0.1)  # --quiet: silent
    time.sleep(0.25)
    q.close()
    assert capsys.readouterr().err == ""


# --- strategy parameters (issue 13 item 5): --strategy-arg / strategy_args ------------------------
def test_strategy_args_from_flags_and_file(tmp_path):
    assert parse("--strategy-arg", "lam=8", "--strategy-arg", "accept=\"ties\"") == {
        "strategy_args": {"lam": 8, "accept": "ties"}}
    f = tmp_path / "c.yaml"
    f.write_text("strategy: es\nstrategy_args: {lam: 4, tries: 7}\n")
    c = Config.from_sources(f, parse("--strategy-arg", "lam=6"))
    assert c.strategy_args == {"lam": 6, "tries": 7}  # flags override the file key by key
    assert "strategy_args" not in RESUMABLE  # other parameters: another search


@pytest.mark.parametrize("argv, field", [
    (["--strategy", "es", "--strategy-arg", "lam=0"], "strategy.es.lam"),
    (["--strategy", "es", "--strategy-arg", "bogus=1"], "strategy.es.bogus"),
    (["--strategy", "aging", "--strategy-arg", "population=3"], "strategy.aging.population"),
    (["--strategy", "generational", "--strategy-arg", "p_cross=\"x\""], "strategy.generational"),
    (["--strategy", "es", "--strategy.es.lam", "0"], "strategy.es.lam"),
])
def test_bad_strategy_args_exit_2_and_write_nothing(tmp_path, capsys, argv, field):
    from evonas.run import main
    assert main([*argv, "--run-dir", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"field '{field}" in err, err
    assert list(tmp_path.iterdir()) == []


def test_strategy_args_reach_the_strategy(tmp_path, monkeypatch, capsys):
    from evonas.evolve.es import OnePlusLambda
    from evonas.run import main
    seen = []
    import functools
    init = OnePlusLambda.__init__

    @functools.wraps(init)  # keeps the signature the parameters are checked against
    def spy(self, variation, **kw):
        seen.append(kw)
        init(self, variation, **kw)
    monkeypatch.setattr(OnePlusLambda, "__init__", spy)
    run = tmp_path / "run"
    assert main(["--genome", "cgp", "--strategy", "es", "--strategy-arg", "lam=3", "--space", "rows=1",
                 "--space", "cols=4", "--space", "levels_back=2", "--evaluations", "2", "--final-top", "0",
                 "--epochs", "1", "--batch-size", "128", "--workers", "1", "--devices", "cpu",
                 "--max-macs", "2000000", "--quiet", "--run-dir", str(run)]) == 0
    assert len(seen) == 2 and all(kw["lam"] == 3 for kw in seen)  # the check, then the search
    assert json.loads((run / "config.json").read_text())["strategy"] == {"es": {"lam": 3}}


def test_train_flags_come_from_the_config_schema():
    from evonas import run, train
    def flags(p):
        return {a.dest: (a.option_strings, a.type, a.choices) for a in p._actions if a.dest in train.TRAIN_KEYS}
    got, want = flags(train.parser()), flags(run.parser())
    assert set(got) == set(train.TRAIN_KEYS) and got == want  # same flags, types and choices as evonas.run
    assert "(default: 10)" in " ".join(train.parser().format_help().split())  # train's own epochs default
