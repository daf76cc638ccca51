"""Settings for the test suite: the real settings with a throwaway secret.

SQLite's test database is a file (not ``:memory:``), so that a second process
started by a test (a qcluster, a simulator) sees the same data. The file and
the media folder are named per test run (``BUREAU_TEST_RUN_ID``, inherited by
the processes a test starts), so two suites running side by side do not
collide.
"""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-not-a-secret")
RUN_ID = os.environ.setdefault("BUREAU_TEST_RUN_ID", str(os.getpid()))

from config.settings import *  # noqa: E402,F403
from config.settings import DATABASES, VAR_DIR  # noqa: E402

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test_bureau_{RUN_ID}.sqlite3")}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SMS_BACKEND = "automation.backends.sms.LocmemBackend"
PUSH_BACKEND = "automation.backends.push.LocmemBackend"
MEDIA_ROOT = VAR_DIR / f"test_media_{RUN_ID}"
# The suite runs with DEBUG off and renders admin pages without running
# collectstatic: plain static URLs instead of the manifest's hashed names.
# (tests/observability start a real production server with the real storage.)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
