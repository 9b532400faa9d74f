"""A non-editable install (`pip install .`) and scripts/install, as a server gets them.

The package is built from a copy of the tracked files and installed into a
fresh venv with `--no-deps --no-build-isolation`; the venv reaches this test
run's dependencies (and setuptools) through a `.pth` line rather than
downloading them, so the tests stay fast and offline. The copy, not the
checkout, is built: nothing lands in the work tree, and a file missing from
the package data cannot be found in the checkout instead.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO

# Offline and quick: take dependencies and setuptools from this interpreter's site.
# (pip reads PIP_NO_BUILD_ISOLATION inverted: "0" turns build isolation off.)
PIP_OFFLINE = {"PIP_NO_DEPS": "1", "PIP_NO_BUILD_ISOLATION": "0", "PIP_NO_INDEX": "1"}
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return [name for name in listed if (REPO / name).is_file()]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """The checkout's tracked files, copied: what a clean clone holds."""
    target = tmp_path / "src"
    for name in tracked_files():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target / name)
    return target


def venv_over_this_site(path: Path) -> Path:
    """A new venv without pip that sees this run's packages after its own."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(purelib) / "_outer_site.pth").write_text("\n".join(sorted(ours)) + "\n")
    return python


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without BROADCASTER_* or PYTHONPATH, plus `extra`."""
    kept = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {k: v for k, v in kept.items() if not k.startswith("BROADCASTER_")} | extra


def run(args: list[str | Path], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done


def verify_unit(text: str, tmp_path: Path) -> None:
    """systemd's own check of a unit: every key known, every command executable."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / "verify" / "broadcaster.service"
    unit.parent.mkdir()
    unit.write_text(text)
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_non_editable_install_ships_every_package_file_and_runs_from_etc(
    tmp_path: Path, source: Path
) -> None:
    python = venv_over_this_site(tmp_path / "venv")
    env = clean_env(**PIP_OFFLINE)
    run([python, "-m", "pip", "install", "-q", source], cwd=tmp_path, env=env)

    shown = run(
        [python, "-c", "import broadcaster; print(broadcaster.__version__, broadcaster.__file__)"],
        cwd=tmp_path,
        env=env,
    ).stdout.split()
    assert shown[0] == VERSION
    installed = Path(shown[1]).parent
    assert installed.is_relative_to(tmp_path / "venv"), installed  # not the checkout
    wanted = {
        name.removeprefix("broadcaster/")
        for name in tracked_files()
        if name.startswith("broadcaster/") and "__pycache__" not in name
    }
    present = {str(p.relative_to(installed)) for p in installed.rglob("*") if p.is_file()}
    assert wanted <= present, f"missing from the wheel: {sorted(wanted - present)}"

    etc = tmp_path / "etc" / "broadcaster"
    etc.mkdir(parents=True)
    data = tmp_path / "var" / "lib" / "broadcaster"
    body = (source / "config.toml").read_text(encoding="utf-8")
    body = re.sub(r'(?m)^data_dir = ".*"$', f'data_dir = "{data}"', body)
    (etc / "config.toml").write_text(
        body + f'\n[audio]\nlibrary_dir = "{source / "audio"}"\n', encoding="utf-8"
    )
    shutil.copytree(source / "schedules", etc / "schedules")
    command = tmp_path / "venv" / "bin" / "broadcaster"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = clean_env(BROADCASTER_CONFIG=str(etc / "config.toml"))
    checked = run([command, "config", "check"], cwd=elsewhere, env=env).stdout
    assert f"{etc / 'config.toml'}: OK" in checked
    assert f"data dir    {data}" in checked
    run([command, "db", "upgrade"], cwd=elsewhere, env=env)  # migrations came in the wheel
    assert (data / "broadcaster.db").is_file()
    assert list(elsewhere.iterdir()) == []


def test_install_script_lays_out_a_server_under_a_root_and_keeps_edits(
    tmp_path: Path, source: Path
) -> None:
    root = tmp_path / "root"
    venv_over_this_site(root / "opt" / "broadcaster")  # as a fresh venv, minus the download
    env = clean_env(**PIP_OFFLINE)
    run([source / "scripts" / "install", "--root", root], cwd=tmp_path, env=env)

    etc = root / "etc" / "broadcaster"
    config = (etc / "config.toml").read_text(encoding="utf-8")
    assert 'data_dir = "/var/lib/broadcaster"' in config
    assert 'file = "/var/log/broadcaster/broadcaster.log"' in config
    assert 'library_dir = "/var/lib/broadcaster/audio"' in config
    assert (etc / "schedules" / "van-rounds.toml").is_file()
    assert (root / "var" / "lib" / "broadcaster" / "audio" / "library.toml").is_file()
    assert (root / "var" / "log" / "broadcaster").is_dir()
    assert (root / "opt" / "broadcaster" / "bin" / "broadcaster").is_file()
    assert (root / "usr" / "share" / "doc" / "broadcaster" / "LICENSE").is_file()

    unit = (root / "etc" / "systemd" / "system" / "broadcaster.service").read_text()
    assert "ExecStart=/opt/broadcaster/bin/broadcaster run" in unit
    verify_unit(unit.replace("/opt/broadcaster/", f"{root}/opt/broadcaster/"), tmp_path)
    credentials = etc / "credentials"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o700
    named = re.findall(r"(?m)^LoadCredential=([^:]+):/etc/broadcaster/credentials/\1$", unit)
    assert "audio.token_secret" in named and "carriers.viettel.password" in named
    for key in named:  # systemd refuses to start the unit if one is missing
        assert stat.S_IMODE((credentials / key).stat().st_mode) == 0o600, key
    secret = (credentials / "audio.token_secret").read_text().strip()
    assert re.fullmatch(r"[0-9a-f]{64}", secret)
    assert (credentials / "carriers.viettel.password").read_text() == "test\n"

    staged = clean_env(
        BROADCASTER_DATA_DIR=str(root / "var" / "lib" / "broadcaster"),
        BROADCASTER_LOGGING_FILE=str(root / "var" / "log" / "broadcaster" / "broadcaster.log"),
    )
    command = root / "opt" / "broadcaster" / "bin" / "broadcaster"
    checked = run([command, "--config", etc / "config.toml", "config", "check"], tmp_path, staged)
    assert "OK" in checked.stdout
    # The files the unit names are the ones the loader reads: a bad one is blamed on it.
    staged["CREDENTIALS_DIRECTORY"] = str(credentials)
    run([command, "--config", etc / "config.toml", "config", "check"], tmp_path, staged)
    (credentials / "carriers.viettel.password").write_text("far-too-long\n")
    refused = subprocess.run(
        [command, "--config", etc / "config.toml", "config", "check"],
        env=staged,
        capture_output=True,
        text=True,
        timeout=120,
    )
    blamed = f"credential {credentials / 'carriers.viettel.password'}: carriers.viettel.password"
    assert refused.returncode == 1 and blamed in refused.stdout + refused.stderr, refused

    edited = config.replace('level = "info"', 'level = "debug"')
    (etc / "config.toml").write_text(edited, encoding="utf-8")
    run([source / "scripts" / "install", "--root", root], cwd=tmp_path, env=env)
    assert (etc / "config.toml").read_text(encoding="utf-8") == edited
    assert (credentials / "audio.token_secret").read_text().strip() == secret
