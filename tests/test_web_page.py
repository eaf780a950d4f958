"""The Loss Weight Tuner page in a real headless browser (Debian's chromium + chromium-driver,
driven by selenium) against a real server: the slider, Train, the verdict, the charts, the
sweep, and a clean browser console. Skips, saying why, only when the browser or its driver
is not installed (`.ci/services` installs them)."""
from __future__ import annotations

import os
import shutil

import pytest

pytest.importorskip("starlette", reason="the page tests need starlette: pip install 'pinncore[test]'")
pytest.importorskip("uvicorn", reason="the page tests need uvicorn: pip install 'pinncore[test]'")
pytest.importorskip("httpx", reason="the page tests need httpx: pip install 'pinncore[test]'")
webdriver = pytest.importorskip("selenium.webdriver", reason="the page tests need selenium: pip install 'pinncore[test]'")

from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from pinncore.web import spec as webspec  # noqa: E402

from _webserver import ServerThread  # noqa: E402


def _find(names, extra=()):
    for n in names:
        path = shutil.which(n)
        if path:
            return path
    return next((p for p in extra if os.path.exists(p)), None)


CHROMIUM = _find(["chromium", "chromium-browser", "google-chrome"])
DRIVER = _find(["chromedriver"], ["/usr/lib/chromium/chromedriver", "/usr/bin/chromedriver"])
if CHROMIUM is None or DRIVER is None:
    pytest.skip(f"the page tests need a headless browser: chromium {'found' if CHROMIUM else 'NOT found'}, "
                f"chromedriver {'found' if DRIVER else 'NOT found'} (install: apt-get install -y chromium "
                f"chromium-driver, as .ci/services does)", allow_module_level=True)


@pytest.fixture(scope="module")
def server():
    with ServerThread(max_fits=2) as s:
        yield s


@pytest.fixture(scope="module")
def browser():
    opts = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1440,1000", "--force-device-scale-factor=1"):
        opts.add_argument(arg)
    opts.binary_location = CHROMIUM
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(DRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def attr(driver, id_, name):
    return driver.find_element(By.ID, id_).get_attribute(name)


def set_slider(driver, id_, value):
    """Move a range input with the keyboard (Home, then → in steps of 0.25), as a person would."""
    slider = driver.find_element(By.ID, id_)
    slider.send_keys(Keys.HOME)
    for _ in range(round((value - float(slider.get_attribute("min"))) / 0.25)):
        slider.send_keys(Keys.ARROW_RIGHT)
    assert float(slider.get_attribute("value")) == value


def train(driver, timeout=90):
    driver.find_element(By.ID, "train").click()
    WebDriverWait(driver, 10).until(lambda d: attr(d, "verdict", "data-state") in ("running", "done"))
    WebDriverWait(driver, timeout).until(lambda d: attr(d, "verdict", "data-state") == "done")
    return driver.find_element(By.ID, "verdict")


def severe_logs(driver):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.fixture(scope="module")
def page(server, browser):
    browser.get(server.url)
    WebDriverWait(browser, 20).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    return browser


def test_lambda_100_gives_a_clean_fit(page, tmp_path):
    set_slider(page, "lam-ic", 2.0)
    assert page.find_element(By.ID, "lam-ic-out").text == "λ = 100"
    verdict = train(page)
    rel = float(verdict.get_attribute("data-rel-l2"))
    shown = page.find_element(By.ID, "rel-l2").text
    assert shown.endswith(" %") and float(shown[:-2]) < 5.0 and rel < 0.05
    assert verdict.get_attribute("data-verdict") == "clean"
    assert page.find_element(By.ID, "verdict-text").text == "clean fit"
    assert attr(page, "balance", "data-crisis") == "false"
    # The charts drew the 21 logged rows (2 terms + rel-L2 on the losses; 2 × 2 norms) and the solution.
    WebDriverWait(page, 10).until(lambda d: attr(d, "chart-solution", "data-points") == "402")
    assert int(attr(page, "chart-loss", "data-points")) == 3 * 21
    assert int(attr(page, "chart-grad", "data-points")) == 4 * 21
    shot = tmp_path / "tuner.png"
    assert page.save_screenshot(str(shot)) and shot.stat().st_size > 10000
    print(f"screenshot of the page after a fit: {shot}")
    assert severe_logs(page) == []


def test_lambda_1_gives_the_wrong_steady_state(page):
    set_slider(page, "lam-ic", 0.0)
    assert page.find_element(By.ID, "lam-ic-out").text == "λ = 1"
    verdict = train(page)
    assert verdict.get_attribute("data-verdict") == "wrong steady state"
    assert page.find_element(By.ID, "verdict-text").text == "wrong steady state"
    assert float(verdict.get_attribute("data-rel-l2")) >= 0.30
    assert attr(page, "balance", "data-crisis") == "true"
    assert "crisis" in page.find_element(By.ID, "balance-text").text
    assert severe_logs(page) == []


def test_a_short_sweep_fills_every_point(page):
    n = page.find_element(By.ID, "sweep-n")
    n.clear()
    n.send_keys("5")
    steps = page.find_element(By.ID, "steps")
    page.find_element(By.CSS_SELECTOR, "details.more summary").click()
    steps.clear()
    steps.send_keys("1000")
    # Side by side: Levenberg–Marquardt when this pinncore has it (the page's default), else Adam alone.
    second = page.find_element(By.ID, "sweep-second").get_attribute("value")
    assert second == ("lm" if webspec.lm_available() else "none")
    n_fits = 5 * (1 if second == "none" else 2)
    page.find_element(By.ID, "sweep").click()
    # While the sweep runs, Train and Sweep are disabled (one thing at a time).
    WebDriverWait(page, 10).until(lambda d: attr(d, "sweep", "disabled") == "true")
    assert attr(page, "train", "disabled") == "true"
    WebDriverWait(page, 90).until(lambda d: attr(d, "chart-sweep", "data-done") == "true")
    WebDriverWait(page, 10).until(lambda d: attr(d, "sweep", "disabled") is None)
    assert attr(page, "train", "disabled") is None
    assert attr(page, "chart-sweep", "data-points") == str(n_fits)
    legend = page.find_element(By.ID, "sweep-legend").text
    assert "clean" in legend and "shading" in legend and "(bar)" in legend
    assert ("hatching" in legend) == (second != "none")
    rows = page.find_elements(By.CSS_SELECTOR, "#sweep-table tbody tr")
    assert len(rows) == n_fits
    lambdas = sorted({float(r.find_elements(By.TAG_NAME, "td")[0].get_attribute("textContent")) for r in rows})
    assert lambdas == pytest.approx([1e-3, 1e-1, 1e1, 1e3, 1e5])
    assert f"{n_fits} of {n_fits} fits" in page.find_element(By.ID, "sweep-caption").text
    assert "Goldilocks" in page.find_element(By.ID, "goldilocks").text
    assert severe_logs(page) == []


def test_other_problems_draw_heat_maps(page):
    from selenium.webdriver.support.select import Select

    Select(page.find_element(By.ID, "problem")).select_by_value("helmholtz2d")
    Select(page.find_element(By.ID, "scheme")).select_by_value("ntk")
    steps = page.find_element(By.ID, "steps")
    steps.clear()
    steps.send_keys("30")
    verdict = train(page)
    assert verdict.get_attribute("data-state") == "done"
    WebDriverWait(page, 10).until(lambda d: attr(d, "heat-err", "data-points") == str(64 * 64))
    assert attr(page, "heat-pred", "data-points") == attr(page, "heat-exact", "data-points") == str(64 * 64)
    assert page.find_element(By.ID, "chart-solution").is_displayed() is False
    assert severe_logs(page) == []


def test_menus_come_from_the_registries_and_a_problem_change_resets_the_sweep(page):
    from selenium.webdriver.support.select import Select

    from pinncore import registry

    schemes = [o.get_attribute("value") for o in Select(page.find_element(By.ID, "scheme")).options]
    assert schemes == [*registry.schemes.names(), "hard"] and "balanced" in schemes
    opts = [o.get_attribute("value") for o in Select(page.find_element(By.ID, "optimizer")).options]
    assert opts == list(webspec.optimizers())
    Select(page.find_element(By.ID, "optimizer")).select_by_value("lm")
    assert page.find_element(By.ID, "steps-label").get_attribute("textContent") == "LM iterations"
    assert attr(page, "steps", "value") == "200"
    Select(page.find_element(By.ID, "optimizer")).select_by_value("adam")
    Select(page.find_element(By.ID, "problem")).select_by_value("poisson1d")
    assert page.find_element(By.ID, "sweep-caption").text == "λ sweep: rel-L2 against λ (press Sweep)"
    assert page.find_element(By.ID, "goldilocks").text == ""
    assert "Goldilocks" not in page.find_element(By.ID, "sweep-legend").text
    assert attr(page, "chart-sweep", "data-points") == "0"
    assert severe_logs(page) == []
