"""Commands fail with one line and a non-zero exit, never a traceback, also when
the settings themselves are wrong. Run as real processes: a traceback would
show there, not under call_command."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def production_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env["DEBUG"] = "false"
    env.update(overrides)
    return env


@pytest.mark.parametrize("command", [["check"], ["ops_reconcile"], ["seed_demo"], ["migrate"]])
def test_any_command_without_secret_key_in_production_says_so_in_one_line(command):
    # given: production mode, no SECRET_KEY
    env = production_env()

    # when
    result = run_manage(*command, env=env)

    # then: one line naming the problem, non-zero exit, no traceback
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "ImproperlyConfigured: SECRET_KEY is not set. "
        "Set it in the environment (DEBUG=true allows a dev default)."
    ]


def test_a_malformed_setting_is_one_line_too():
    result = run_manage("check", env=production_env(SECRET_KEY="x" * 50, DEBUG="maybe"))

    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "ImproperlyConfigured: DEBUG must be a boolean (true/false), got 'maybe'"
    ]
