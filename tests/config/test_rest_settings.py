"""DRF's settings load in a fresh process whichever module asks first."""

import subprocess
import sys

from tests.live_server import ROOT, subprocess_env

LOAD_SETTINGS = (
    "import django; django.setup(); "
    "from rest_framework.settings import api_settings; "
    "api_settings.DEFAULT_PAGINATION_CLASS; api_settings.DEFAULT_RENDERER_CLASSES; "
    "print('loaded')"
)


def test_the_rest_settings_load_before_any_view_is_imported():
    # given: a fresh process in which nothing has imported rest_framework.views
    # (as when DRF's pagination system check runs before the URL checks: their
    # order is a set's, so it changes from one start to the next)

    # when: the settings that name config.api's classes are read
    result = subprocess.run(
        [sys.executable, "-c", LOAD_SETTINGS],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )

    # then: they load, rather than find config.api half-imported
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "loaded"
