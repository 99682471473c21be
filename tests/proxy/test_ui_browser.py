"""The XCom browser in a real headless Chromium (Debian's chromium + chromedriver, Selenium).

Against the real gunicorn proxy over real Redis, with XComs pushed through the real service:
the user logs in with HTTP Basic, clicks from `/` to a run and to a value, sees expiry and who
may read, a 256 KiB value cut at the display cap, and a hostile value as inert text.

Screenshots of the three pages go to build/ui/; with LEOFLOW_UPDATE_SCREENSHOTS=1 also to
docs/ui/ (the README shows one), so a normal run leaves the tree clean.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from leoflow_xcom.core import limits
from leoflow_xcom.testing.paths import ROOT
from tests.fixture_types import ClientFor
from tests.proxy.conftest import Proxy
from tests.proxy.ui_data import HOSTILE, HOSTILE_KEY, RUN, push_ui_data

CHROMIUM = "chromium"
CHROMEDRIVER = "chromedriver"
SHOTS = ROOT / "build" / "ui"
DOC_SHOTS = ROOT / "docs" / "ui"
# Read at import: the suite's autouse fixture hides LEOFLOW_* variables from the tests.
UPDATE_DOC_SHOTS = os.environ.get("LEOFLOW_UPDATE_SCREENSHOTS") == "1"


def _program(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"no {name} on PATH: `make test` installs Debian's chromium and chromium-driver "
            f"(scripts/ensure-chromium.sh); or run `apt-get install chromium chromium-driver`",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="module")
def chrome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = _program(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in CI containers
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Both paths are given, and offline mode is on: Selenium Manager never downloads anything.
    os.environ["SE_OFFLINE"] = "true"
    driver = webdriver.Chrome(options=options, service=Service(_program(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def site(proxy: Proxy, http: httpx.Client, client_for: ClientFor) -> str:
    """The proxy's URL with Basic credentials in it: Chromium answers the prompt with them."""
    push_ui_data(client_for)
    parts = urlsplit(proxy.url)
    return f"{parts.scheme}://{proxy.user}:{proxy.password}@{parts.netloc}"


def open_page(driver: webdriver.Chrome, url: str) -> None:
    driver.get(url)
    assert driver.find_element(By.TAG_NAME, "h1").text, "the page rendered nothing"


def console_log(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """Console entries since the last call (chromedriver hands each entry out once)."""
    return list(driver.get_log("browser"))  # type: ignore[no-untyped-call]


def console_errors(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    return [e for e in console_log(driver) if e["level"] in ("SEVERE", "ERROR")]


def no_alert(driver: webdriver.Chrome) -> bool:
    try:
        driver.switch_to.alert.dismiss()
    except NoAlertPresentException:
        return True
    return False


def screenshot(driver: webdriver.Chrome, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    assert driver.save_screenshot(str(path))
    if UPDATE_DOC_SHOTS:
        DOC_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOC_SHOTS / path.name)


def body_text(driver: webdriver.Chrome) -> str:
    return " ".join(driver.find_element(By.TAG_NAME, "body").text.split())


def test_from_the_index_to_a_run_to_a_value_with_expiry_and_readers(
    chrome: webdriver.Chrome, site: str
) -> None:
    open_page(chrome, site + "/")
    assert chrome.title == "DAGs · Leoflow XCom"
    assert "2 runs · 7 XComs" in body_text(chrome)
    screenshot(chrome, "index")

    dag = chrome.find_element(By.XPATH, "//section[h2/code='etl_daily']")
    dag.find_element(By.LINK_TEXT, RUN).click()
    assert chrome.find_element(By.TAG_NAME, "h1").text == f"Run {RUN}"
    text = body_text(chrome)
    # config/dags/etl_daily.json: TTL 2 d; transform and load declare extract in depends_on.
    assert "TTL 2 d" in text
    assert "May read: extract itself, transform, load" in text
    extract = chrome.find_element(By.XPATH, "//details[summary//code='extract']")
    row = " ".join(extract.find_element(By.XPATH, ".//tr[td//code='output']").text.split())
    assert row.endswith("in 2 d JSON Schema"), row
    assert console_errors(chrome) == []
    screenshot(chrome, "run")

    extract.find_element(By.LINK_TEXT, "output").click()
    assert chrome.find_element(By.TAG_NAME, "h1").text == "XCom output"
    value = chrome.find_element(By.CSS_SELECTOR, "pre.value")
    assert '"rows": 42' in value.text and '"uri": "s3://bucket/etl/part-0.parquet"' in value.text
    assert value.find_element(By.CSS_SELECTOR, "span.n").text == "42"  # highlighted by the server
    facts = chrome.find_element(By.CLASS_NAME, "facts-table").text
    assert "may read extract itself, transform, load" in " ".join(facts.split())
    assert "in 2 d" in chrome.find_element(By.CLASS_NAME, "expires").text
    assert chrome.find_element(By.CSS_SELECTOR, "pre.schema").text.startswith("{")
    assert console_errors(chrome) == []
    screenshot(chrome, "value")


def test_a_value_over_the_display_cap_shows_its_size_and_a_link_to_all_of_it(
    chrome: webdriver.Chrome, site: str
) -> None:
    open_page(chrome, f"{site}/dags/etl_daily/dagRuns/{RUN}/taskInstances/load/xcomEntries/big")
    notice = chrome.find_element(By.CSS_SELECTOR, ".notice.truncated")
    assert "Showing the first 16.0 KiB of 256.0 KiB (262,144 bytes)" in notice.text
    shown = chrome.find_element(By.CSS_SELECTOR, "pre.value").text
    assert shown.count("a") == limits.UI_VALUE_DISPLAY_BYTES - 1  # the cap less the quote
    link = notice.find_element(By.LINK_TEXT, "raw JSON from the API")
    assert str(link.get_attribute("href")).endswith(
        f"/api/v2/dags/etl_daily/dagRuns/{RUN}/taskInstances/load/xcomEntries/big"
    )
    link.click()
    assert '"value":"aaaa' in chrome.find_element(By.TAG_NAME, "body").text
    assert console_errors(chrome) == []


def test_a_hostile_value_shows_as_text_and_runs_nothing(
    chrome: webdriver.Chrome, site: str
) -> None:
    console_log(chrome)  # start from an empty console
    open_page(chrome, f"{site}/dags/etl_daily/dagRuns/{RUN}/taskInstances/load/xcomEntries/hostile")
    assert no_alert(chrome)
    value = chrome.find_element(By.CSS_SELECTOR, "pre.value")
    assert HOSTILE.replace('"', '\\"') in value.text  # shown exactly, JSON-escaped quotes
    assert chrome.find_elements(By.TAG_NAME, "script") == []
    assert value.find_elements(By.TAG_NAME, "b") == []
    assert console_errors(chrome) == []  # also no CSP violation: nothing tried to run
    # A hostile key: shown as text on the run page, and its link leads to its value.
    open_page(chrome, f"{site}/dags/etl_daily/dagRuns/{RUN}")
    assert chrome.find_elements(By.TAG_NAME, "img") == [] and no_alert(chrome)
    chrome.find_element(By.LINK_TEXT, HOSTILE_KEY).click()
    assert chrome.find_element(By.TAG_NAME, "h1").text == f"XCom {HOSTILE_KEY}"
    assert chrome.find_elements(By.TAG_NAME, "img") == [] and no_alert(chrome)
    assert console_errors(chrome) == []
    long_page = f"{site}/dags/etl_daily/dagRuns/{RUN}/taskInstances/load/xcomEntries/long"
    open_page(chrome, long_page)
    width = chrome.execute_script("return document.documentElement.scrollWidth")
    assert width <= 1280  # a 5,000-character line wraps instead of widening the page
    assert no_alert(chrome) and console_errors(chrome) == []


def test_the_screenshots_exist() -> None:
    """Kept in docs/ for the README; refreshed with LEOFLOW_UPDATE_SCREENSHOTS=1."""
    for name in ("index", "run", "value"):
        assert (DOC_SHOTS / f"{name}.png").stat().st_size > 10_000, name
