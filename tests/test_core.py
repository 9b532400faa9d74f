"""The pure core (occurrences, programmes, planner, slot layout, clash check, numbers)
loads without the config layer, the store or the network; typed content reads back
from plan.json exactly, and nothing else reads at all."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from broadcaster.occurrence import (
    Clips,
    Relay,
    SmsText,
    Task,
    content_from_json,
    content_to_json,
)

CORE = [
    "broadcaster.occurrence",
    "broadcaster.programmes",
    "broadcaster.planner",
    "broadcaster.audio.playlist",
    "broadcaster.clashes",
    "broadcaster.sms.numbers",
]
SHELL = [
    "broadcaster.config",
    "broadcaster.schedule_files",
    "broadcaster.store",
    "sqlalchemy",
    "httpx",
    "structlog",
]


def test_the_pure_core_imports_neither_the_config_nor_the_store():
    code = (
        f"import sys\nfor m in {CORE!r}: __import__(m)\n"
        f"print(sorted(m for m in {SHELL!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "content",
    [
        Clips(("gian-cach", "ban-tin-5k")),
        Relay("dinh-hoa", "http://127.0.0.1:8000/dinh-hoa.mp3", "ban-tin-huyen-du-phong"),
        SmsText("BCD: {text}"),
        Task(("sh", "-c", "true")),
        Task(url="https://example.org/refresh"),
    ],
)
def test_each_content_variant_survives_plan_json(content):
    assert content_from_json(json.loads(json.dumps(content_to_json(content)))) == content


@pytest.mark.parametrize(
    "raw",
    [
        ["gian-cach"],
        {"kind": "video"},
        {"kind": "clips", "clips": "gian-cach"},
        {"kind": "relay", "name": "x"},
        {"kind": "sms", "text": 3},
    ],
)
def test_content_of_any_other_shape_is_refused_with_what_is_wrong(raw):
    with pytest.raises(ValueError, match="content"):
        content_from_json(raw)
