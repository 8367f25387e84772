"""report.html in a real browser: headless Chromium (Debian packages chromium +
chromium-driver, installed by .ci/run) driven by selenium. The page loads from a
file with the network off, raises no JavaScript error, draws its plots, and a
click on a point shows that individual's cell, ancestry and learning curve."""
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from evonas.config import Config
from evonas.genome.tree import TreeGenome
from evonas.html_report import write_report
from evonas.store.lineage import LineageWriter
from evonas.store.rundir import create_run_dir

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                 reason="no chromium + chromedriver (apt-get install -y chromium chromium-driver)")]

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1000")


@pytest.fixture
def page(tmp_path):
    """A small trained-genome run: ok, duplicate and failed rows, curves for two."""
    p = create_run_dir(tmp_path / "run", Config(genome="tree", population=3).resolved("t"))
    rng = np.random.default_rng(0)
    genomes = [TreeGenome.sample(rng) for _ in range(4)]
    rows = [(0, (), "init", 40.0, "ok", 0), (1, (0,), "widen", 55.0, "ok", 1), (2, (1,), "widen", None, "failed", 2),
            (3, (1,), "deepen", 55.0, "duplicate", 1), (4, (1,), "deepen", 61.0, "ok", 3)]
    with LineageWriter(p.lineage) as w:
        for i, parents, op, fit, status, gi in rows:
            w.write({"id": i, "birth": i, "parent_ids": parents, "operator": op, "genome": genomes[gi],
                     "status": status, "fitness": fit, "params": 1000 + i, "trained_epochs": 2.0,
                     "started_s": float(i), "finished_s": i + 0.9, "reason": "boom" if status == "failed" else ""})
    (p.root / "curves.jsonl").write_text('{"id": 1, "train_loss": [2.1, 1.7], "val_acc": [30.0, 55.0]}\n'
                                         '{"id": 4, "train_loss": [2.0, 1.2], "val_acc": [45.0, 61.0]}\n')
    return write_report(p.root)


@pytest.fixture
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    opts = Options()
    opts.binary_location = CHROMIUM
    for f in FLAGS:
        opts.add_argument(f)
    profile = tempfile.mkdtemp(prefix="evonas-chromium-")
    opts.add_argument(f"--user-data-dir={profile}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_network_conditions(offline=True, latency=0, download_throughput=0, upload_throughput=0)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def test_report_renders_without_errors(page, browser, tmp_path):
    browser.get(Path(page).as_uri())
    assert browser.execute_script("return window.evonasReady === true")
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    points = browser.find_elements("css selector", "#plot svg .pt")
    assert len(points) == 5  # every row drawn: 3 ok, 1 duplicate, 1 failed
    assert browser.find_elements("css selector", "#plot svg path.best")  # the running best
    # the best (id 4) is shown on load: its cell, ancestry and learning curve
    assert browser.find_element("css selector", "#detail h2").text == "individual 4"
    assert browser.find_elements("css selector", "#detail svg.cell rect")
    assert [a.text for a in browser.find_elements("css selector", "#detail .ancestry a.anc")] == ["0", "1", "4"]
    assert len(browser.find_elements("css selector", "#detail svg.plot polyline")) == 2
    # x axis choices include wall-clock (lineage timestamps)
    options = [o.text for o in browser.find_elements("css selector", "#xaxis option")]
    assert any("wall-clock" in o for o in options)
    browser.save_screenshot(str(tmp_path / "report.png"))
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_hover_and_click_show_an_individual(page, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    browser.get(Path(page).as_uri())
    point = browser.find_element("css selector", '#plot svg .pt[data-id="1"]')
    ActionChains(browser).move_to_element(point).perform()
    tip = browser.find_element("id", "tip").text
    assert "id 1" in tip and "operator widen" in tip and "parent 0" in tip and "params 1001" in tip
    assert "lineage epochs" in tip
    point.click()
    assert browser.find_element("css selector", "#detail h2").text == "individual 1"
    failed = browser.find_element("css selector", '#plot svg .pt[data-id="2"]')
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click'))", failed)
    detail = browser.find_element("id", "detail").text
    assert "individual 2" in detail and "no per-epoch curve" in detail and "boom" in detail
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
