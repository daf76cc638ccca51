"""The operator console in a real browser: Playwright driving Debian's
Chromium against pytest-django's live server (a thread of this process, on
this run's test database, SQLite file or PostgreSQL).

Without Chromium the tests are skipped with the reason, except when
``CI=true``: there they fail (``scripts/test.sh`` installs the browser first).
A failed test leaves a screenshot of the page as it was at the failing step in
``SCREENSHOT_DIR``; the failure report names the file."""

from __future__ import annotations

import re

import pytest
from django.db import connections

from tests.console.browser import MISSING, MISSING_IN_CI, SCREENSHOT_DIR, chromium_path, in_ci
from tests.operations.factories import UserFactory

PASSWORD = "correct horse battery staple"


@pytest.fixture
def chromium_executable() -> str:
    path = chromium_path()
    if path is None:
        if in_ci():
            pytest.fail(MISSING_IN_CI, pytrace=False)
        pytest.skip(MISSING)
    return path


@pytest.fixture
def browser(chromium_executable, monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread, and
    # Django refuses ORM calls from a thread with a running loop. The test's
    # own ORM calls (given/then) are plain synchronous code between browser
    # steps, so the check is lifted for the browser tests only.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_executable, headless=True)
        try:
            yield browser
        finally:
            browser.close()
            # With Playwright's loop running, Django's connections are per
            # context (asgiref's Local), not per thread: the ones the test
            # opened in here are closed in here, or the test database could
            # not be dropped at the end of the run.
            connections.close_all()


class Steps:
    """The test's current step, named in its failure screenshot."""

    def __init__(self) -> None:
        self.current = "start"

    def __call__(self, name: str) -> None:
        self.current = name


@pytest.fixture
def step() -> Steps:
    return Steps()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def console_user(transactional_db):
    """An operator who may do everything in the console."""
    return UserFactory(username="oncall", is_staff=True, is_superuser=True)


@pytest.fixture
def logged_in(page, console_user, step):
    step("log in")
    page.goto("/admin/login/")
    page.fill("#id_username", console_user.get_username())
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r"/admin/$"))
    return page


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    page = item.funcargs.get("page")
    if page is None or page.is_closed():
        return
    steps = item.funcargs.get("step")
    name = steps.current if steps is not None else "failure"
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{item.name}--{name}")
    path = SCREENSHOT_DIR / f"{slug}.png"
    try:
        page.screenshot(path=str(path), full_page=True)
    except Exception as error:  # the browser itself may be what failed
        report.sections.append(("browser screenshot", f"could not be taken: {error}"))
        return
    report.sections.append(
        ("browser screenshot", f"step {name!r} failed; screenshot in {SCREENSHOT_DIR}: {path.name}")
    )
