"""The classes the REST_FRAMEWORK settings name import in any order. DRF's
APIView reads the renderer classes from the settings when it is defined: a
module that defined them and also imported rest_framework.views broke the
process that imported it first (a system check did, at random: the knox
simulator then exited at start)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "module", ["config.api", "config.exception_handler", "config.parsers", "config.schema"]
)
def test_a_module_the_rest_settings_name_can_be_imported_first(module):
    # given: a fresh process with Django set up and no DRF view imported yet
    code = (
        "import django, sys; django.setup(); "
        "assert 'rest_framework.views' not in sys.modules; "
        f"import {module}; "
        "from rest_framework.settings import api_settings; "
        "api_settings.DEFAULT_RENDERER_CLASSES; api_settings.DEFAULT_PAGINATION_CLASS; "
        "api_settings.EXCEPTION_HANDLER"
    )

    # when
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )

    # then
    assert result.returncode == 0, result.stderr[-2000:]
