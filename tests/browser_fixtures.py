"""A real browser for console tests: Debian's chromium through its chromedriver.

Selenium is told where both live, and runs offline, so selenium-manager never
downloads a browser or a driver. Each browser gets its own profile folder, so
two browsers are two people with separate cookies.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--lang=vi",
)
SCREENSHOTS = os.environ.get("BROADCASTER_SCREENSHOTS")  # e.g. docs/: where to keep pictures


def have_browser() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


needs_browser = pytest.mark.skipif(
    not have_browser(), reason="needs Debian's chromium and chromium-driver"
)


def open_browser(
    profile: Path,
    width: int = 1366,
    height: int = 900,  # type: ignore[no-untyped-def]
    phone: bool = False,
):
    """Start headless chromium with its own profile; the caller quits it. A `phone`
    emulates a touch screen of that size (a headless window cannot be narrower
    than 500 px)."""
    os.environ["SE_OFFLINE"] = "true"  # never let selenium-manager fetch anything
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    if phone:
        options.add_experimental_option(
            "mobileEmulation",
            {"deviceMetrics": {"width": width, "height": height, "pixelRatio": 2, "touch": True}},
        )
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


@pytest.fixture
def browsers(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    """Open browsers on demand (`browsers()` → a new one); all are quit at the end."""
    opened = []

    def make(width: int = 1366, height: int = 900, phone: bool = False):  # type: ignore[no-untyped-def]
        driver = open_browser(tmp_path / f"profile-{len(opened)}", width, height, phone)
        opened.append(driver)
        return driver

    yield make
    for driver in opened:
        driver.quit()


def screenshot(driver, name: str, full_page: bool = True) -> None:  # type: ignore[no-untyped-def]
    """Keep a picture of the page in $BROADCASTER_SCREENSHOTS, when it is set."""
    if not SCREENSHOTS:
        return
    folder = Path(SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    if full_page:
        width = driver.get_window_size()["width"]
        driver.set_window_size(width, 600)
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(width, min(height + 140, 4000))
    target = folder / name
    driver.save_screenshot(str(target.with_suffix(".tmp.png")))
    shutil.move(target.with_suffix(".tmp.png"), target)
