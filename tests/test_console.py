"""The console's machinery over HTTP: sessions, CSRF, throttling, headers, languages, rules."""

from __future__ import annotations

import re

from sqlalchemy import text

from broadcaster.accounts import Role
from broadcaster.store.levels import load_changes
from tests.console_fixtures import APPROVER, OPERATOR, Site, add_account, csrf_of

PAGES = [
    "/console/",
    "/console/levels",
    "/console/sms",
    "/console/sms/new",
    "/console/notices",
    "/console/timeline",
    "/console/stations",
    "/console/asrun",
    "/console/audit",
]
TEXT = "BCĐ huyện Định Hóa: hạn chế ra khỏi nhà, gọi 1900 9095 khi có triệu chứng."


def _blasts(site: Site) -> list[tuple[int, str]]:
    with site.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT id, state FROM sms_blasts"))]


def _draft(site: Site, client, areas=("167",), **extra) -> int:  # type: ignore[no-untyped-def]
    token = csrf_of(client.get("/console/sms/new").text)
    answer = client.post(
        "/console/sms",
        data={"csrf": token, "text": TEXT, "area": list(areas), "urgent": "1", **extra},
    )
    assert answer.status_code == 303, answer.text
    return int(re.search(r"/sms/(\d+)", answer.headers["location"]).group(1))


def test_without_a_session_every_page_sends_to_the_login(console_site: Site):
    client = console_site.client()
    for page in PAGES:
        answer = client.get(page)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/console/login?next=")


def test_login_sets_a_strict_httponly_cookie_and_logout_ends_the_session(console_site: Site):
    client = console_site.client()
    token = csrf_of(client.get("/console/login").text)
    answer = client.post(
        "/console/login", data={"csrf": token, "name": OPERATOR, "password": "mật khẩu đủ dài 1"}
    )
    cookie = answer.headers["set-cookie"]
    assert "console_session=" in cookie and "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower() and "Path=/console" in cookie
    session = client.cookies["console_session"]
    overview = client.get("/console/")
    assert overview.status_code == 200 and OPERATOR in overview.text
    client.post("/console/logout", data={"csrf": csrf_of(overview.text)})
    stolen = console_site.client()
    stolen.cookies.set("console_session", session, path="/console")
    assert stolen.get("/console/").status_code == 303  # the old cookie opens nothing


def test_a_form_posted_without_its_csrf_token_is_refused_and_writes_nothing(console_site: Site):
    client = console_site.login(OPERATOR)
    answer = client.post("/console/sms", data={"text": TEXT, "area": "167", "urgent": "1"})
    assert answer.status_code == 403
    forged = client.post("/console/sms", data={"csrf": "x" * 43, "text": TEXT, "area": "167"})
    assert forged.status_code == 403
    assert _blasts(console_site) == []
    login = console_site.client()
    login.get("/console/login")
    no_token = login.post("/console/login", data={"name": OPERATOR, "password": "whatever!"})
    assert no_token.status_code == 403


def test_repeated_failures_lock_the_account_even_for_the_right_password(console_site: Site):
    client = console_site.client()
    token = csrf_of(client.get("/console/login").text)
    for _ in range(5):
        wrong = client.post(
            "/console/login", data={"csrf": token, "name": OPERATOR, "password": "sai mật khẩu"}
        )
        assert wrong.status_code == 401
    right = client.post(
        "/console/login", data={"csrf": token, "name": OPERATOR, "password": "mật khẩu đủ dài 1"}
    )
    assert right.status_code == 401  # locked: the same answer as a wrong password
    assert "console_session" not in client.cookies
    assert console_site.login(APPROVER)  # another account is not affected


def test_one_client_trying_many_names_is_made_to_wait(console_site: Site):
    client = console_site.client()
    token = csrf_of(client.get("/console/login").text)
    for i in range(20):
        client.post(
            "/console/login",
            data={"csrf": token, "name": f"Người {i}", "password": "đoán bừa mật khẩu"},
        )
    right = client.post(
        "/console/login", data={"csrf": token, "name": APPROVER, "password": "mật khẩu đủ dài 1"}
    )
    assert right.status_code == 429
    assert "console_session" not in client.cookies


def test_pages_send_security_headers_and_hold_no_inline_script_or_style(console_site: Site):
    client = console_site.login(APPROVER)
    for page in PAGES:
        answer = client.get(page)
        assert answer.status_code == 200, page
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert not re.search(r"<script(?![^>]*\bsrc=)", answer.text), page
        assert " style=" not in answer.text, page
        assert 'name="viewport"' in answer.text


def test_vietnamese_by_default_and_english_on_request(console_site: Site):
    client = console_site.login(OPERATOR)
    assert "Tổng quan" in client.get("/console/").text
    chosen = client.get("/console/lang/en?next=/console/sms")
    assert chosen.headers["location"] == "/console/sms"
    page = client.get("/console/sms").text
    assert "SMS blasts" in page and '<html lang="en">' in page
    assert (
        client.get("/console/lang/en?next=https://evil.example/").headers["location"] == "/console/"
    )


def test_the_drafter_sees_no_approve_button_and_a_forged_approval_is_refused(console_site: Site):
    operator = console_site.login(OPERATOR)
    blast = _draft(console_site, operator)
    page = operator.get(f"/console/sms/{blast}").text
    assert 'id="approve"' not in page and 'id="own-draft"' in page
    forged = operator.post(f"/console/sms/{blast}/approve", data={"csrf": csrf_of(page)})
    assert forged.status_code == 403
    assert _blasts(console_site) == [(blast, "draft")]
    approver = console_site.login(APPROVER)
    page = approver.get(f"/console/sms/{blast}").text
    assert 'id="approve"' in page and "banner live" in page
    assert (
        approver.post(f"/console/sms/{blast}/approve", data={"csrf": csrf_of(page)}).status_code
        == 303
    )
    assert _blasts(console_site) == [(blast, "approved")]


def test_an_operator_of_one_commune_cannot_set_another_communes_level(console_site: Site):
    add_account(console_site.engine, "Lê Văn Chợ Chu", Role.OPERATOR, ["05437"])
    client = console_site.login("Lê Văn Chợ Chu")
    token = csrf_of(client.get("/console/levels").text)
    refused = client.post(
        "/console/levels/set",
        data={"csrf": token, "area": "05440", "level": "5.3", "reason": "thử"},
    )
    assert refused.status_code == 403
    assert "05440" in refused.text
    assert load_changes(console_site.engine) == []
    allowed = client.post(
        "/console/levels/set",
        data={"csrf": token, "area": "05437", "level": "5.3", "reason": "thử"},
    )
    assert allowed.status_code == 303
    assert [(c.area, c.level) for c in load_changes(console_site.engine)] == [("05437", "5.3")]


def test_the_level_preview_shows_what_the_next_day_gains_before_anything_changes(
    console_site: Site,
):
    client = console_site.login(OPERATOR)
    token = csrf_of(client.get("/console/levels").text)
    page = client.post(
        "/console/levels/preview", data={"csrf": token, "area": "167", "level": "5.3"}
    )
    assert page.status_code == 200
    impact = re.search(r'<table id="impact">(.*?)</table>', page.text, re.S).group(1)
    van = re.search(r"Xe lưu động</td><td[^>]*>(\d+)</td><td[^>]*>(\d+)</td>", impact)
    assert van is not None and int(van.group(2)) > int(van.group(1))
    assert load_changes(console_site.engine) == []  # a preview writes nothing


def test_the_sms_preview_names_the_characters_that_force_ucs2(console_site: Site):
    client = console_site.login(OPERATOR)
    token = csrf_of(client.get("/console/sms/new").text)
    answer = client.post(
        "/console/sms/preview",
        data={"csrf": token, "text": "Dinh Hóa ạ", "area": "167"},
        headers={"HX-Request": "true"},
    )
    assert answer.status_code == 200
    assert re.findall(r'<span class="ucs2">(.)</span>', answer.text) == ["ó", "ạ"]
    assert "UCS-2" in answer.text
    plain = client.post(
        "/console/sms/preview", data={"csrf": token, "text": "Dinh Hoa", "area": "167"}
    )
    assert "GSM 7-bit" in plain.text and 'class="ucs2"' not in plain.text


def test_a_notice_issued_in_the_console_airs_only_after_a_second_account_approves(
    console_site: Site,
):
    operator = console_site.login(OPERATOR)
    token = csrf_of(operator.get("/console/notices").text)
    issued = operator.post(
        "/console/notices", data={"csrf": token, "area": "05440", "text": "Mất điện từ 14 giờ"}
    )
    assert issued.status_code == 303, issued.text
    page = operator.get("/console/notices").text
    assert "Mất điện từ 14 giờ" in page and "/approve" not in page
    [(notice_id, state)] = _notices(console_site)
    assert state == "pending"
    assert (
        operator.post(f"/console/notices/{notice_id}/approve", data={"csrf": token}).status_code
        == 403
    )
    approver = console_site.login(APPROVER)
    page = approver.get("/console/notices").text
    assert f"/console/notices/{notice_id}/approve" in page
    assert (
        approver.post(
            f"/console/notices/{notice_id}/approve", data={"csrf": csrf_of(page)}
        ).status_code
        == 303
    )
    assert _notices(console_site) == [(notice_id, "live")]


def _notices(site: Site) -> list[tuple[int, str]]:
    with site.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT id, state FROM audio_notices"))]


def test_a_schedule_edit_adding_sms_waits_for_an_approver_in_the_console(
    console_site: Site, tmp_path
):
    import shutil

    from tests.conftest import REPO

    folder = tmp_path / "schedules"
    shutil.copytree(REPO / "schedules", folder)
    config = console_site.settings.path
    body = config.read_text(encoding="utf-8").replace(
        f'schedules = "{REPO / "schedules"}"', f'schedules = "{folder}"'
    )
    config.write_text(body, encoding="utf-8")
    from broadcaster.config import load_settings

    console_site.settings = load_settings(config)
    approver = console_site.login(APPROVER)
    first = approver.get("/console/schedules").text
    if 'id="approve-schedules"' in first:  # the samples themselves were never accepted
        approver.post(
            "/console/schedules/approve",
            data={
                "csrf": csrf_of(first),
                "sha256": re.search(r'name="sha256" value="(\w+)"', first).group(1),
            },
        )
    (folder / "daily-sms.toml").write_text(
        '[[programme]]\nid = "daily-sms"\nchannel = "sms"\nareas = ["167"]\n'
        'content = { text = "Đeo khẩu trang khi ra ngoài" }\n'
        '[programme.levels."5.1"]\ntimes = ["10:00"]\n',
        encoding="utf-8",
    )
    operator = console_site.login(OPERATOR)
    assert "daily-sms" in operator.get("/console/").text
    page = operator.get("/console/schedules").text
    assert "daily-sms" in page and 'id="approve-schedules"' not in page
    page = approver.get("/console/schedules").text
    digest = re.search(r'name="sha256" value="(\w+)"', page).group(1)
    accepted = approver.post(
        "/console/schedules/approve", data={"csrf": csrf_of(page), "sha256": digest}
    )
    assert accepted.status_code == 303
    assert 'id="approve-schedules"' not in approver.get("/console/schedules").text


def test_an_account_with_a_second_factor_needs_its_current_code(console_site: Site):
    import pyotp

    from broadcaster.store import accounts as store

    uri = store.set_password(
        console_site.engine, console_site.approver.id, "mật khẩu đủ dài 1", totp=True
    )
    secret = pyotp.parse_uri(uri).secret
    client = console_site.client()
    token = csrf_of(client.get("/console/login").text)
    form = {"csrf": token, "name": APPROVER, "password": "mật khẩu đủ dài 1"}
    assert client.post("/console/login", data=form).status_code == 401
    assert client.post("/console/login", data={**form, "code": "000000"}).status_code == 401
    good = client.post("/console/login", data={**form, "code": pyotp.TOTP(secret).now()})
    assert good.status_code == 303


def test_the_timeline_downloads_as_the_same_svg_picture(console_site: Site):
    import xml.etree.ElementTree as ET

    client = console_site.login(OPERATOR)
    answer = client.get("/console/timeline.svg?day=2026-12-01&area=05440")
    assert answer.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(answer.text)
    areas = {
        m.get("data-area")
        for m in root.iter("{http://www.w3.org/2000/svg}rect")
        if m.get("data-area")
    }
    assert areas == {"05440", "167"}
    assert client.get("/console/timeline?day=1-12-2026").status_code == 400
