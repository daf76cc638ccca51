"""How the browser tests find (or, in CI, install) their Chromium."""

import os
import stat
import subprocess

from tests.console.browser import ROOT, chromium_path

SCRIPT = ROOT / "scripts" / "ensure-chromium.sh"


def _run(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _fake_browser(tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return fake


def test_a_configured_browser_that_is_not_there_is_an_error_even_in_ci(tmp_path):
    # given: BUREAU_CHROMIUM names nothing (so nothing is installed, even with CI=true)
    missing = tmp_path / "no-such-chromium"

    # when
    result = _run(BUREAU_CHROMIUM=str(missing), CI="true")

    # then
    assert result.returncode == 1
    assert f"BUREAU_CHROMIUM={missing} is not an executable" in result.stderr
    assert "installing" not in result.stderr


def test_a_configured_browser_is_used(tmp_path, monkeypatch):
    # given
    fake = _fake_browser(tmp_path)

    # when
    result = _run(BUREAU_CHROMIUM=str(fake))
    monkeypatch.setenv("BUREAU_CHROMIUM", str(fake))

    # then: the script and the test fixtures agree on it
    assert result.returncode == 0, result.stderr
    assert f"using {fake}" in result.stderr
    assert chromium_path() == str(fake)


def test_without_a_browser_outside_ci_nothing_is_installed(tmp_path):
    # given: an empty PATH but for the shell's basics, CI not set
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "BUREAU_CHROMIUM")}
    env["PATH"] = str(bin_dir) + ":/usr/bin/nonexistent"

    # when
    result = subprocess.run(
        ["/bin/bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60
    )

    # then
    assert result.returncode == 1
    assert "no Chromium found; install the Debian package chromium" in result.stderr
    assert "installing" not in result.stderr
