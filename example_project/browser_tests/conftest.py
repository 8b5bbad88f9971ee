"""
Fixtures of the browser tests: the example site on a live server, a local VIES, and
Chromium driven by Playwright. Chromium is the system's (``/usr/bin/chromium`` or
``BOB_CHROMIUM``); no browser is downloaded. Each step's screenshot lands in
``artifacts/screenshots/`` (git ignores it), and a failing test keeps a screenshot of where it
stopped.
"""

import io
import os
import re
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command

from django_bob_payments.testing.vies import ViesEmulator

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
# between browser steps are synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
# Without the background-networking flags Chromium keeps calling Google's hosts, which a
# closed network refuses; as root it needs --no-sandbox.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    for candidate in (os.environ.get("BOB_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="session")
def browser():
    executable = chromium_path()
    required = os.environ.get("BOB_BROWSER_REQUIRED") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            raise
        pytest.skip("Playwright is not installed: pip install playwright (no browser download needed)")
    if executable is None:
        message = "No Chromium: install Debian's chromium (apt-get install chromium) or set BOB_CHROMIUM"
        if required:
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Shots:
    """Numbered screenshots of one test's steps."""

    def __init__(self, page, test_name: str) -> None:
        self.page = page
        self.prefix = re.sub(r"[^A-Za-z0-9_.-]+", "-", test_name)
        self.count = 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for old in [*SCREENSHOTS.glob(f"{self.prefix}-*.png"), SCREENSHOTS / f"FAILED-{test_name}.png"]:
            old.unlink(missing_ok=True)

    def __call__(self, step: str) -> None:
        self.count += 1
        self.page.screenshot(path=SCREENSHOTS / f"{self.prefix}-{self.count:02d}-{step}.png", full_page=True)


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    request.node.bob_page = page
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the pages: {errors}"


@pytest.fixture
def shot(page, request):
    return Shots(page, request.node.name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    page = getattr(item, "bob_page", None)
    if report.when == "call" and report.failed and page is not None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        try:
            page.screenshot(path=SCREENSHOTS / f"FAILED-{item.name}.png", full_page=True)
        except Exception as err:  # the page may be gone; the failure itself matters more
            report.sections.append(("screenshot", f"no screenshot: {err}"))
    return report


@pytest.fixture(scope="session")
def vies_server():
    server = ViesEmulator()
    server.url = server.start()
    yield server
    server.stop()


@pytest.fixture
def vies(vies_server, settings):
    from django.core.cache import cache

    vies_server.reset()
    cache.clear()
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "VIES_API_URL": vies_server.url, "VIES_TIMEOUT": 2}
    return vies_server


@pytest.fixture
def site(live_server, transactional_db, vies):
    """The example site, seeded as ``rundemo`` seeds it, with its address."""
    call_command("seeddemo", verbosity=0, stdout=io.StringIO())
    return live_server.url
