"""Test-suite wide settings.

The fast lane (``python -m pytest -m "not slow" tests``) skips tests marked
``slow``. Besides the tests marked one by one, every test of the modules below is
slow as a whole: they run the CLI with real training in subprocesses, inject real
faults (SIGKILL, full disks), start Ray or a browser.

Real data: a clone has no ``../shared/data``, so the suite does not need it. Tests
that check a figure of the real data (the paper's results, the real table's best
cell) ask for ``real_nb201_table`` or ``shared_data``, or carry
``@pytest.mark.shared_data``: these are the data tests. Without the files they are
deselected, not skipped, and the summary counts them; ``-m shared_data`` runs only
them. Everything else runs on the synthetic stand-ins of ``synthetic.py``
(``nb201_table``: all 15,625 cells in the real table's format).
"""
import sys

import pytest

from helpers import REAL_NB201, SHARED_DATA
from synthetic import write_nb201_table, write_npz_like_shared

SLOW_MODULES = {"test_cli", "test_reliability", "test_reliability_input", "test_reliability_stress",
                "test_reliability_trials", "test_reliability_resume", "test_reliability_stops",
                "test_ray", "test_workers", "test_browser", "test_api", "test_export"}


DATA_FIXTURES = {"real_nb201_table", "shared_data"}
_absent_data: list[str] = []


def pytest_configure(config):
    config.addinivalue_line("markers", "shared_data(*files): a data test, it checks figures of the real "
                                       "files in ../shared/data (default nb201_cifar10.csv); deselected "
                                       "when one is absent")


def _has_data(marker) -> bool:
    return all((SHARED_DATA / f).exists() for f in (marker.args or (REAL_NB201.name,)))


def pytest_collection_modifyitems(config, items):
    keep, absent = [], []
    for item in items:
        if item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
        if DATA_FIXTURES & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker("shared_data"):
            item.add_marker(pytest.mark.shared_data)
        marker = item.get_closest_marker("shared_data")
        (absent if marker and not _has_data(marker) else keep).append(item)
    if absent:
        config.hook.pytest_deselected(items=absent)
        items[:] = keep
        _absent_data[:] = [i.nodeid for i in absent]


def pytest_terminal_summary(terminalreporter):
    if _absent_data:
        terminalreporter.write_line(f"{len(_absent_data)} data tests (marked shared_data) not run: "
                                    f"{SHARED_DATA} is absent")


@pytest.fixture(scope="session")
def shared_data():
    """../shared/data (real data sets); a test asking for it is a data test."""
    return SHARED_DATA


@pytest.fixture(scope="session")
def real_nb201_table():
    """The real NAS-Bench-201 CIFAR-10 table; a test asking for it is a data test."""
    return REAL_NB201


@pytest.fixture(scope="session")
def nb201_table(tmp_path_factory):
    """A synthetic NAS-Bench-201 table (``synthetic.py``): every cell, the real columns."""
    return write_nb201_table(tmp_path_factory.mktemp("nb201") / "nb201_synthetic.csv")


@pytest.fixture(scope="session")
def npz_like_shared(tmp_path_factory):
    """-> make(layout, per_class): a small synthetic npz in a shared data set's layout."""
    def make(layout, per_class):
        return write_npz_like_shared(tmp_path_factory.mktemp("npz") / f"{layout}.npz", layout, per_class)
    return make




@pytest.fixture(autouse=True)
def _registries_as_before():
    """Every test leaves the registries as it found them. A plug-in loaded in-process
    (``main([... "--plugin", p])``) registers its operators for good, and they join the
    default mutation mix of every later search in that process: without this, one
    test's operator that raises KeyboardInterrupt ran inside later tests."""
    from evonas import operators, plugins
    from evonas.evaluate.pool import BACKENDS
    from evonas.evolve.base import STRATEGIES
    from evonas.genome.base import GENOMES
    from evonas.ops import OPS
    from evonas.transfer import TRANSFERS
    regs = [*operators._REGISTRIES.values(), GENOMES, STRATEGIES, OPS, BACKENDS, TRANSFERS]
    before = ({id(r): dict(r._items) for r in regs}, dict(operators._REGISTRIES),
              dict(plugins._LOADED), plugins.CALL_LIMIT_S, set(sys.modules))
    yield
    items, op_regs, loaded, limit, modules = before
    for r in regs + [reg for name, reg in operators._REGISTRIES.items() if name not in op_regs]:
        for name in set(r._items) - set(items.get(id(r), ())):
            if not _built_in(r._items[name]):
                r.unregister(name)  # a plug-in's or a test's own; a lazily imported built-in stays
        for name, obj in items.get(id(r), {}).items():
            r._items.setdefault(name, obj)  # one a test unregistered
    plugins._LOADED.clear()
    plugins._LOADED.update(loaded)
    plugins.CALL_LIMIT_S = limit
    for name in set(sys.modules) - modules:
        if name.startswith("evonas_plugin_"):
            del sys.modules[name]


def _built_in(obj) -> bool:
    """Registered by evonas itself (imported lazily during a test, it would not
    register again if removed: its module stays imported)."""
    module = getattr(getattr(obj, "fn", obj), "__module__", "") or ""
    return module == "evonas" or module.startswith("evonas.")


@pytest.fixture(params=["synthetic", pytest.param("real", marks=pytest.mark.shared_data)])
def any_nb201_table(request):
    """Both tables: the synthetic one always, the real one where ../shared/data has it."""
    return request.getfixturevalue("nb201_table" if request.param == "synthetic" else "real_nb201_table")
