"""Plug-ins: loading from a file, a module and failures that name the plug-in."""
import json
import sys
import textwrap

import pytest

from evonas.errors import PluginError
from evonas.evaluate.base import FunctionEvaluator, Result
from evonas.evolve import Search
from evonas.operators import operators
from evonas.plugins import load_plugin

HEAD = "import numpy as np\nimport evonas\nfrom evonas.genome.nb201 import NB201Genome\n"


def write(tmp_path, name, body):
    p = tmp_path / f"{name}.py"
    p.write_text(HEAD + textwrap.dedent(body))
    return p


@pytest.fixture
def clean():
    names = []
    yield names
    for n in names:
        operators("nb201").unregister(n)


def fit(job):
    return Result(job.id, "ok", fitness=float(sum(o == "nor_conv_3x3" for o in job.genome.ops)))


def test_file_plugin_is_used_and_named_in_lineage(tmp_path, clean):
    p = write(tmp_path, "all_conv", '''
        @evonas.register_mutation("nb201", name="t_all_conv")
        def all_conv(genome, rng):
            i = int(rng.integers(6))
            ops = list(genome.ops); ops[i] = "nor_conv_3x3"
            return NB201Genome(tuple(ops), genome.space)
    ''')
    clean.append("t_all_conv")
    assert load_plugin(str(p)) == ["nb201/t_all_conv"]
    assert load_plugin(str(p)) == ["nb201/t_all_conv"]  # second load: no-op
    rows = []
    Search(FunctionEvaluator(fit), "nb201", mutation=["t_all_conv"], max_evaluations=20, confirm_hash=False,
           strategy_args={"population": 4, "sample": 2}, on_record=rows.append).run()
    assert {r["operator"] for r in rows} == {"init", "t_all_conv"}


def test_module_plugin(tmp_path, clean, monkeypatch):
    write(tmp_path, "t_mod_plugin", '''
        @evonas.register_mutation("nb201", name="t_mod_op", weight=2.0)
        def op(genome, rng, strength=1):
            return genome
    ''')
    clean.append("t_mod_op")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_plugin("t_mod_plugin") == ["nb201/t_mod_op"]
    sys.modules.pop("t_mod_plugin", None)


@pytest.mark.parametrize("name,body,match", [
    ("t_broken_import", "import no_such_module_xyz\n", "ModuleNotFoundError"),
    ("t_syntax", "def f(:\n", "SyntaxError"),
    ("t_empty", "x = 1\n", "registered nothing"),
    ("t_wrong_sig", '''
        @evonas.register_mutation("nb201", name="t_wrong_sig_op")
        def op(genome):
            return genome
     ''', "t_wrong_sig_op must be a function"),
    ("t_dup", '''
        @evonas.register_mutation("nb201", name="edge_op")
        def op(genome, rng):
            return genome
     ''', "already registered"),
])
def test_load_failures_name_the_plugin(tmp_path, name, body, match):
    p = write(tmp_path, name, body)
    with pytest.raises(PluginError, match=match) as e:
        load_plugin(str(p))
    assert name in str(e.value)
    assert "t_wrong_sig_op" not in operators("nb201")  # rolled back


def test_missing_file_and_module():
    with pytest.raises(PluginError, match="nope.py.*file not found"):
        load_plugin("nope.py")
    with pytest.raises(PluginError, match="'no_such_plugin_mod'"):
        load_plugin("no_such_plugin_mod")


@pytest.mark.parametrize("body,match", [
    ("raise RuntimeError('boom')", "t_bad_op raised RuntimeError: boom"),
    ("return 'not a genome'", "t_bad_op must return a NB201Genome, got str"),
    ("g = NB201Genome(genome.ops, genome.space); object.__setattr__(g, 'ops', ('bad',) * 6); return g",
     "t_bad_op returned an invalid genome"),
])
def test_misbehaving_operator_raises_plugin_error(tmp_path, clean, body, match):
    p = write(tmp_path, f"t_bad_{abs(hash(body))}", f'''
        @evonas.register_mutation("nb201", name="t_bad_op")
        def op(genome, rng):
            {body}
    ''')
    clean.append("t_bad_op")
    load_plugin(str(p))
    s = Search(FunctionEvaluator(fit), "nb201", mutation=["t_bad_op"], max_evaluations=20, confirm_hash=False,
               strategy_args={"population": 2, "sample": 2})
    with pytest.raises(PluginError, match=match):
        s.run()


def test_example_plugin_file(clean):
    from pathlib import Path
    ex = Path(__file__).resolve().parents[1] / "examples" / "my_mutation.py"
    clean.append("swap_edges")
    assert load_plugin(str(ex)) == ["nb201/swap_edges"]


PLUGIN_BACKEND = """
import os
from evonas.evaluate.pool import BACKENDS
from evonas.evaluate.workers import LocalPool


from evonas.evolve.base import register_strategy
from evonas.evolve.random_search import RandomSearch


@register_strategy("t-tagged")
class Tagged(RandomSearch):
    \"\"\"Random search that writes its ``tag`` when built (a parameter set by --strategy-arg).\"\"\"

    def __init__(self, variation, tag: str = "none"):
        super().__init__(variation)
        open(os.environ["T_MARK"], "a").write(f"strategy {tag}\\n")


@BACKENDS.class_decorator("t-marked", "backend_name")
class Marked(LocalPool):
    \"\"\"The local pool under another name; leaves a mark when opened.\"\"\"

    @classmethod
    def open(cls, data, cfg, slots, max_retries: int = 2, colour: str = "none"):
        open(os.environ["T_MARK"], "a").write(f"backend {len(slots)} {colour}\\n")
        return super().open(data, cfg, slots, max_retries)
"""


@pytest.mark.slow
def test_plugin_backend_through_the_cli(tmp_path, monkeypatch):
    """A backend and a strategy registered by ``--plugin`` are chosen by ``--backend``
    and ``--strategy`` (no hand-kept list of names in the config), their own
    parameters set by their dotted flags (the CLI loads ``--plugin`` before it builds
    the parser); an unknown backend exits 2, writing nothing."""
    from evonas.evaluate.pool import BACKENDS
    from evonas.run import main as run_main
    p = tmp_path / "marked.py"
    p.write_text(PLUGIN_BACKEND)
    mark = tmp_path / "mark.txt"
    monkeypatch.setenv("T_MARK", str(mark))
    args = ["--genome", "nb201", "--space", "C=4", "--space", "N=1", "--evaluations", "2", "--population", "2",
            "--epochs", "1", "--workers", "1", "--devices", "cpu", "--final-top", "0", "--quiet"]
    try:
        assert run_main([*args, "--plugin", str(p), "--backend", "t-marked", "--strategy", "t-tagged",
                         "--strategy.t-tagged.tag", "blue", "--backend.t-marked.colour", "red",
                         "--run-dir", str(tmp_path / "run")]) == 0
        # the strategy is built to check its arguments, then for the search
        assert set(mark.read_text().splitlines()) == {"strategy blue", "backend 1 red"}
        raw = json.loads((tmp_path / "run" / "config.json").read_text())
        assert raw["backend"] == {"t-marked": {"colour": "red"}} and raw["strategy"] == {"t-tagged": {"tag": "blue"}}
        assert load_plugin(str(p)) == ["backends/t-marked", "strategies/t-tagged"]  # loaded once
        lines = (tmp_path / "run" / "lineage.csv").read_text().splitlines()
        assert len(lines) == 3
    finally:
        from evonas.evolve.base import STRATEGIES
        for reg, name in ((BACKENDS, "t-marked"), (STRATEGIES, "t-tagged")):
            if name in reg:
                reg.unregister(name)
    assert run_main([*args, "--backend", "t-marked", "--run-dir", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()


def test_cli_plugins_load_before_the_parser_so_theirs_have_dotted_flags(tmp_path, monkeypatch, capsys):
    """``--plugin FILE --help`` lists the plug-in strategy's and backend's own flags;
    a plug-in that fails to load exits 2 with one line before any parsing."""
    from evonas.evaluate.pool import BACKENDS
    from evonas.evolve.base import STRATEGIES
    from evonas.run import main as run_main
    p = tmp_path / "marked_help.py"
    p.write_text(PLUGIN_BACKEND)
    monkeypatch.setenv("T_MARK", str(tmp_path / "mark.txt"))
    try:
        with pytest.raises(SystemExit) as done:
            run_main(["--plugin", str(p), "--help"])
        assert done.value.code == 0
        text = capsys.readouterr().out
        assert "--strategy.t-tagged.tag VALUE" in text and "--backend.t-marked.colour VALUE" in text
    finally:
        for reg, name in ((BACKENDS, "t-marked"), (STRATEGIES, "t-tagged")):
            if name in reg:
                reg.unregister(name)
    bad = tmp_path / "broken.py"
    bad.write_text("raise RuntimeError('no')\n")
    assert run_main(["--plugin", str(bad), "--evaluations", "1", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "broken.py" in err and not (tmp_path / "r").exists()
