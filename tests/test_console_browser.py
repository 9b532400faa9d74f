"""Two people, two real browsers, one real daemon: an area-wide SMS needs both of them.

Operator A drafts a district-wide blast in the console and finds no way to
approve it (no button; a forged POST from A's own session is refused);
approver B logs in, reads the LIVE release screen and approves; the daemon's
sender delivers it through the test SMSC. With BROADCASTER_SCREENSHOTS=docs/
the test keeps pictures of the overview, the timeline and the approval page.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from broadcaster.testing.smsc import SmscThread, TestSmsc
from tests.browser_fixtures import needs_browser, screenshot
from tests.conftest import free_port
from tests.console_fixtures import APPROVER, OPERATOR, PASSWORD, add_account, sample_config
from tests.daemon_fixtures import daemon_factory, wait_for
from tests.sms_fixtures import counts, reassemble, seed_subscribers

pytestmark = needs_browser
TEXT = "BCĐ huyện Định Hóa: hạn chế ra khỏi nhà, gọi 1900 9095 khi có triệu chứng sốt, ho."
SUBSCRIBERS = 48


@pytest.fixture
def daemons():
    yield from daemon_factory()


@pytest.fixture
def site(tmp_path: Path, db_url: str, engine: Engine, daemons):  # type: ignore[no-untyped-def]
    """A daemon serving the console on a free port, each carrier bound to its test SMSC."""
    from broadcaster.accounts import Role

    smscs = {name: TestSmsc(free_port()) for name in ("viettel", "vinaphone", "mobifone")}
    config = sample_config(tmp_path, db_url)
    body = config.read_text(encoding="utf-8")
    body, bound = re.subn(
        r"(?m)^(\[carriers\.(\w+)\]\n(?:[^\[\n].*\n)*?port = )\d+$",
        lambda m: f"{m.group(1)}{smscs[m.group(2)].port}",
        body,
    )
    assert bound == len(smscs)
    config.write_text(body, encoding="utf-8")
    bind = re.search(r'bind = "127.0.0.1:(\d+)"', body)
    assert bind is not None
    add_account(engine, OPERATOR, Role.OPERATOR, ["167"])
    add_account(engine, APPROVER, Role.APPROVER, ["167"])
    communes = tuple(f"05{n}" for n in ("437", "440", "443", "446", "449", "452"))
    numbers = seed_subscribers(engine, SUBSCRIBERS, communes=communes)
    with SmscThread(list(smscs.values())):
        daemons(config).start()
        yield f"http://127.0.0.1:{bind.group(1)}/console", smscs["viettel"], numbers


def _login(driver, base: str, name: str) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/login")
    driver.find_element(By.NAME, "name").send_keys(name)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(lambda: driver.current_url.rstrip("/").endswith("/console"), 10, "the overview")


def _text(driver, css: str) -> str:  # type: ignore[no-untyped-def]
    """An element's text, or "" while htmx is swapping it."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        return str(driver.find_element(By.CSS_SELECTOR, css).text)
    except (NoSuchElementException, StaleElementReferenceException):
        return ""


def _post(driver, path: str, csrf: str | None) -> int:  # type: ignore[no-untyped-def]
    """POST a form from the page itself (A's own session cookie); the HTTP status."""
    return driver.execute_async_script(
        """const [path, csrf, done] = arguments;
        const body = new URLSearchParams(csrf === null ? {} : {csrf});
        fetch(path, {method: "POST", body, redirect: "manual"}).then(r => done(r.status));""",
        path,
        csrf,
    )


def _state(engine: Engine, blast: int) -> str:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT state FROM sms_blasts WHERE id = :id"), {"id": blast}
        ).scalar_one()


def test_an_area_wide_blast_needs_a_second_person_and_then_reaches_everyone(
    site, browsers, engine: Engine
):  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    base, smsc, numbers = site
    a = browsers()
    _login(a, base, OPERATOR)
    a.get(f"{base}/sms/new")
    a.find_element(By.NAME, "text").send_keys(TEXT)
    a.find_element(By.CSS_SELECTOR, "input[name=area][value='167']").click()
    a.find_element(By.CSS_SELECTOR, "input[name=urgent]").click()
    wait_for(
        lambda: str(SUBSCRIBERS) in _text(a, "#sms-preview"),
        10,
        "the live preview counting the district's subscribers",
    )
    assert "UCS-2" in _text(a, "#sms-preview")
    a.find_element(By.CSS_SELECTOR, "#draft button[type=submit]").click()
    wait_for(lambda: "done=drafted" in a.current_url, 10, "the drafted blast's page")
    blast = int(re.search(r"/sms/(\d+)", a.current_url).group(1))

    assert a.find_elements(By.ID, "approve") == []  # A sees no approve button
    assert a.find_element(By.ID, "own-draft").is_displayed()
    csrf = a.find_element(By.CSS_SELECTOR, "input[name=csrf]").get_attribute("value")
    assert _post(a, f"/console/sms/{blast}/approve", csrf) == 403  # forged with A's session
    assert _post(a, f"/console/sms/{blast}/cancel", None) == 403  # no CSRF token
    assert _state(engine, blast) == "draft"
    assert smsc.stats.accepted == []

    b = browsers()
    _login(b, base, APPROVER)
    assert b.find_element(By.CSS_SELECTOR, "#approvals").text.count(f"SMS {blast}") == 1
    screenshot(b, "console-overview.png")
    b.get(f"{base}/timeline")
    assert b.find_elements(By.CSS_SELECTOR, "#timeline svg rect.mark")
    screenshot(b, "console-timeline.png")
    b.get(f"{base}/sms/{blast}")
    banner = b.find_element(By.ID, "mode")
    assert "live" in banner.get_attribute("class") and "GỬI THẬT" in banner.text
    assert TEXT in b.find_element(By.CSS_SELECTOR, ".message-text").text
    screenshot(b, "console-approval.png")
    b.find_element(By.CSS_SELECTOR, "#approve button").click()
    wait_for(lambda: "done=approved" in b.current_url, 10, "the approval")

    wait_for(
        lambda: counts(engine, blast).get("delivered") == SUBSCRIBERS,
        60,
        "every subscriber's message delivered",
    )
    received = reassemble(smsc.stats.accepted)
    assert sorted(received) == sorted(numbers)
    assert all(bodies == [TEXT] for bodies in received.values())
    b.refresh()
    delivered = b.find_element(By.CSS_SELECTOR, "#sms-status td[data-state=delivered]")
    assert delivered.text == str(SUBSCRIBERS)


def test_the_console_is_usable_on_a_phone_screen(site, browsers):  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    base, _smsc, _numbers = site
    phone = browsers(390, 844, phone=True)
    _login(phone, base, APPROVER)
    sizes = phone.execute_script(
        "const e = document.documentElement;return [e.scrollWidth, e.clientWidth, innerWidth];"
    )
    assert sizes[2] == 390
    assert sizes[0] <= sizes[1]  # nothing but the timeline (in its own scroller) is wider
    assert phone.find_element(By.CSS_SELECTOR, "nav a[aria-current=page]").is_displayed()
    screenshot(phone, "console-phone.png", full_page=False)
