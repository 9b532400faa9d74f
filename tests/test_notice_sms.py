"""An urgent notice also drafts the SMS its notice-triggered programmes send, to its areas only."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import REPO

NOTICE = "Phong tỏa thôn Nà Chú từ 12h hôm nay; gọi 0208 3878 115 khi có triệu chứng."


@pytest.fixture
def notice_cli(cli, sample_config: Path, people):
    with sample_config.open("a", encoding="utf-8") as out:
        out.write(
            f'\n[planner]\nschedules = "{REPO / "schedules"}"\n'
            f'[audio]\nlibrary_dir = "{REPO / "audio"}"\n'
        )
    cli("db", "upgrade")
    cli("subscribers", "import", str(REPO / "examples" / "subscribers.csv"))
    return cli


def test_notice_text_drafts_an_urgent_sms_to_the_notice_areas_for_a_second_operator(
    notice_cli, people
) -> None:
    out = notice_cli("notice", "--area", "05440", "--text", NOTICE, "--by", "Nguyễn Văn A").output
    blast = int(re.search(r"SMS blast #(\d+) drafted", out).group(1))
    status = json.loads(notice_cli("sms", "status", str(blast), "--format", "json").output)
    expected = sum(
        1
        for line in (REPO / "examples" / "subscribers.csv").read_text().splitlines()
        if ",05440," in line
    )
    assert f"{expected} recipients" in out
    assert status["total"] == 0  # a draft: nothing queued until a second operator approves
    refused = notice_cli("sms", "approve", str(blast), "--yes", expect=1)
    assert "approver" in refused.output
    notice_cli("sms", "approve", str(blast), "--yes", *people.as_approver)
    status = json.loads(notice_cli("sms", "status", str(blast), "--format", "json").output)
    assert status["total"] == expected and status["queued"] == expected


def test_notice_from_audio_alone_drafts_no_sms(notice_cli, tmp_path: Path) -> None:
    clip = REPO / "audio" / "thong-bao-khan.vi.ogg"
    out = notice_cli("notice", "--area", "05440", "--audio", str(clip)).output
    assert "SMS blast" not in out
