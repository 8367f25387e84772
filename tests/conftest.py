"""Test-suite wide settings.

The fast lane (``python -m pytest -m "not slow" tests``) skips tests marked
``slow``. Besides the tests marked one by one, every test of the modules below is
slow as a whole: they run the CLI with real training in subprocesses, inject real
faults (SIGKILL, full disks), start Ray or a browser.
"""
import sys

import pytest

SLOW_MODULES = {"test_cli", "test_reliability", "test_reliability_input", "test_reliability_stress",
                "test_reliability_trials", "test_reliability_resume", "test_reliability_stops",
                "test_ray", "test_workers", "test_browser", "test_api", "test_export"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


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
