"""knox_simulator refuses bad arguments with one line and a non-zero exit, as a
real process (where a traceback would show)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_simulator(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings"}
    return subprocess.run(
        [sys.executable, "manage.py", "knox_simulator", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "args, line",
    [
        (["--port", "99999"], "CommandError: --port must be between 0 and 65535, got 99999"),
        (["--port", "-1"], "CommandError: --port must be between 0 and 65535, got -1"),
        (["--port", "0", "--data-file", "{tmp}"], "CommandError: --data-file {tmp} is a directory"),
        (["--port", "0", "--fault", "submit=explode"], "CommandError: --fault submit=explode"),
    ],
)
def test_bad_arguments_are_one_line_and_a_non_zero_exit(tmp_path, args, line):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]

    result = run_simulator(*args)

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(line.replace("{tmp}", str(tmp_path)))


def test_an_unreadable_data_file_is_one_line(tmp_path):
    data_file = tmp_path / "documents.json"
    data_file.write_text("{}")
    data_file.chmod(0)
    if os.access(data_file, os.R_OK):  # root reads anything: make it unreadable another way
        data_file.chmod(0o644)
        data_file.write_bytes(b"\xff\xfe not json")

    result = run_simulator("--port", "0", "--data-file", str(data_file))

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("CommandError: ")
