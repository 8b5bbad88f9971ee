"""
``python manage.py rundemo``, as the README tells a new user to run it: a fresh SQLite
database, the demo data, a free port, the logins printed, and a site that works end to end
with its local VIES stand-in (no live-server fixture: the command's own server).
"""

import os
import queue
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect

EXAMPLE = Path(__file__).resolve().parent.parent


@pytest.fixture
def rundemo(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("STRIPE_", "BOB_PAYMENTS_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="example_project.settings",
        EXAMPLE_DATABASE_PATH=str(tmp_path / "demo.sqlite3"),
        PYTHONUNBUFFERED="1",
    )
    process = subprocess.Popen(
        [sys.executable, "manage.py", "rundemo"],
        cwd=EXAMPLE,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    output = []
    url = None
    try:
        while True:
            try:
                line = lines.get(timeout=60)
            except queue.Empty:
                break
            output.append(line)
            if found := re.match(r"Open (http://\S+/)", line):
                url = found.group(1)
            if "Quit the server" in line:
                break
        assert url and process.poll() is None, "".join(output)
        yield url, "".join(output)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_rundemo_serves_a_working_site(rundemo, page, shot):
    url, output = rundemo
    for login in ("alice / alice", "bob / bob", "demo / demo"):
        assert login in output
    assert "no money moves" in output
    page.goto(url)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Projects for you and your team")
    page.get_by_role("link", name="Log in").click()
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("alice")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Billing").click()
    page.get_by_label("Name or company").fill("Alice")
    page.get_by_label("Billing email").fill("alice@example.com")
    page.get_by_label("Country").select_option("DE")
    page.get_by_label("VAT number").fill("DE136695976")
    status = page.locator("#vat-status")
    expect(status).to_have_attribute("data-state", "valid")
    page.get_by_label("Country").select_option("IT")
    page.get_by_label("VAT number").fill("IT00743110157")
    expect(status).to_have_attribute("data-state", "unverified")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#billing-saved")).to_contain_text("Saved.")
    shot("billing")
    page.get_by_role("link", name="Pricing").click()
    page.get_by_role("button", name="Choose Starter").click()
    page.get_by_role("button", name=re.compile("^Pay")).click()
    expect(page.locator("#checkout-state")).to_contain_text("Your Starter plan is active.")
    shot("success")
