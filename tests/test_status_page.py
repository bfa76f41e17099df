"""The status page in headless Chromium (Debian's chromium + chromium-driver, driven by Selenium)
against a real daemon ingesting the sample package plus a large generated tracking log."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api_daemon import TOKEN, Daemon, copy_sample, wait_for
from tests.conftest import REPO
from tests.test_daemon_process import write_large_log

ARTIFACTS = REPO / "test-artifacts"


def _driver(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(options=options, service=service)


@pytest.fixture
def browser() -> Iterator[object]:
    if not shutil.which("chromedriver"):
        pytest.fail("chromium-driver is not installed: run scripts/install_chromium.sh")
    driver = _driver(1280, 1000)
    try:
        yield driver
    finally:
        driver.quit()


# Everything the test checks on the page, read in one script: the page swaps its content in one
# synchronous step (and counts the swaps in main's data-generation), so one read sees one version of
# the page and no element reference outlives the call (a refresh cannot make it stale).
PAGE_STATE = """
const main = document.getElementById("main");
const head = document.querySelector("#services thead");
return {
  generation: Number(main.getAttribute("data-generation")),
  services: Array.from(document.querySelectorAll("#services tbody tr[data-service]")).map((tr) => {
    const bar = tr.querySelector("[role=progressbar]");
    const queued = tr.querySelector("td[data-label=Queued]");
    return {
      name: tr.getAttribute("data-service"),
      text: tr.innerText,
      progress: bar ? Number(bar.getAttribute("aria-valuenow")) : null,
      queued: queued ? queued.innerText.trim() : null,
    };
  }),
  failures: Array.from(document.querySelectorAll("#failures tr[data-file]")).map((tr) => ({
    id: Number(tr.getAttribute("data-file")),
    text: tr.innerText,
    button: tr.querySelector("button.retry") !== null,
  })),
  notice: document.getElementById("notice").innerText,
  chart_lines: document.querySelectorAll("#chart svg polyline").length,
  head_shown: head !== null && getComputedStyle(head).display !== "none",
  overflow: document.documentElement.scrollWidth - window.innerWidth,
};
"""


def page(driver) -> dict:
    return dict(driver.execute_script(PAGE_STATE))


def click_retry(driver, file_id: int) -> None:
    """A real click on the file's retry button. The page may swap its content between finding the
    button and clicking it: WebDriver then refuses the click (stale element) without clicking, and
    the button is looked up again in the new content."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def attempt() -> bool:
        try:
            driver.find_element(By.CSS_SELECTOR, f"button.retry[data-id='{file_id}']").click()
        except (StaleElementReferenceException, NoSuchElementException):
            return False
        return True

    wait_for(attempt, timeout=30, what=f"the retry button of file {file_id} to be clicked")


def answer_prompt(driver, text: str) -> None:
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 60).until(expected_conditions.alert_is_present())
    prompt = driver.switch_to.alert
    prompt.send_keys(text)
    prompt.accept()


def save(driver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    driver.save_screenshot(str(path))
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(path, ARTIFACTS / name)
    return path


@pytest.mark.slow
def test_status_page_shows_progress_then_every_file_done_a_failure_and_a_retry_that_needs_the_token(
    tmp_path: Path, browser
) -> None:
    data = copy_sample(tmp_path / "data")
    logs = (data / "clickstream_logs" / "latest").resolve()
    # Large enough that it is still being read several page refreshes (3 s) after its first
    # heartbeat, on a fast machine too (a loaded one only makes it longer): since the compiled
    # first pass 150,000 events could load within one refresh.
    write_large_log(logs / "uqx-edx-events-2015-05-29.log.gz", 400_000)
    daemon = Daemon(
        data,
        tmp_path / "var",
        {"CLICKSTREAM_HOLD_NEWEST": "0", "CLICKSTREAM_BATCH": "1000"},
    ).start()
    driver = browser
    try:
        driver.get(daemon.base + "/ui")
        assert driver.title == "Optimus Ingestor status"

        def progress_shown() -> object:
            # The large log's: the sample's other services, and its small logs (which may load
            # first), may show a progress of their own before it
            services = page(driver)["services"]
            running = [
                s
                for s in services
                if s["name"] == "Clickstream"
                and s["progress"] is not None
                and "2015-05-29.log.gz" in s["text"]
            ]
            return running[0] if running and running[0]["progress"] > 0 else False

        running = wait_for(progress_shown, timeout=300, what="a running file's progress bar on the page")
        assert running["name"] == "Clickstream"
        assert "2015-05-29.log.gz" in running["text"] and "%" in running["text"]
        save(driver, tmp_path, "status-page-running.png")

        wait_for(daemon.settled, timeout=900, what="every file to be done")

        def all_done_on_page() -> dict | bool:
            state = page(driver)
            services = state["services"]
            done = bool(services) and all(s["progress"] is None and s["queued"] == "0" for s in services)
            return done and state

        done = wait_for(all_done_on_page, timeout=90, what="the page to refresh to every file done")
        assert done["generation"] >= 1  # the page refreshed itself to get there
        failures = wait_for(lambda: page(driver)["failures"], timeout=30, what="the failure on the page")
        failed = failures[0]
        assert "exporter failed for this table" in failed["text"]
        assert "student_languageproficiency" in failed["text"]
        assert failed["button"]
        failed_id = failed["id"]
        save(driver, tmp_path, "status-page-done.png")

        before = daemon.get(f"/api/v1/files/{failed_id}").json()
        assert before["state"] == "failed"

        # A wrong token: refused by the server, and nothing is queued.
        click_retry(driver, failed_id)
        answer_prompt(driver, "not-the-token")
        wait_for(
            lambda: "Retry refused (401)" in page(driver)["notice"],
            timeout=30,
            what="the refusal on the page",
        )
        assert daemon.get(f"/api/v1/files/{failed_id}").json()["state"] == "failed"

        # The configured token: accepted, and the daemon ingests the file again.
        click_retry(driver, failed_id)
        answer_prompt(driver, TOKEN)
        wait_for(
            lambda: f"File {failed_id} queued again" in page(driver)["notice"],
            timeout=30,
            what="the retry accepted",
        )
        again = wait_for(
            lambda: (
                (f := daemon.get(f"/api/v1/files/{failed_id}").json())["state"] == "failed"
                and f["started"] is not None
                and f
            ),
            timeout=120,
            what="the retried file to be taken again",
        )
        assert again["attempts"] == 1 and before["attempts"] == 1
        assert page(driver)["chart_lines"] == 2  # events and rows loaded over time
        save(driver, tmp_path, "status-page-retried.png")

        # A narrow screen: no sideways scrolling of the page, the services as stacked cards.
        driver.set_window_size(390, 844)
        driver.get(daemon.base + "/ui")
        narrow = page(driver)
        assert narrow["overflow"] <= 1
        assert narrow["services"] and not narrow["head_shown"]
        save(driver, tmp_path, "status-page-narrow.png")
    finally:
        daemon.stop()
