"""Test-suite wide settings.

The fast lane (``python -m pytest -m "not slow" tests``) skips tests marked
``slow``. Besides the tests marked one by one, every test of the modules below is
slow as a whole: they run the CLI with real training in subprocesses, inject real
faults (SIGKILL, full disks), start Ray or a browser.
"""
import pytest

SLOW_MODULES = {"test_cli", "test_reliability", "test_reliability_input", "test_reliability_stress",
                "test_reliability_trials", "test_reliability_resume", "test_reliability_stops",
                "test_ray", "test_workers", "test_browser", "test_api", "test_export"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
