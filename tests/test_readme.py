"""
The README's Install section, run as written: its code blocks are applied verbatim to a
project made by ``startproject`` in a temporary folder, with the installed package, in
subprocesses; then a checkout runs on the fake provider.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"

CHECKOUT = """
from django.test.utils import setup_test_environment

setup_test_environment()

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from django_bob_payments.models import Pricing, Product, Subscription

product = Product.objects.create(slug="pro", name="Pro")
pricing = Pricing.objects.create(product=product, amount=900, currency="eur", interval="month")
call_command("synchronizepayments", verbosity=0)
client = Client()
client.force_login(get_user_model().objects.create_user("reader", password="pw"))
response = client.post("/api/payment/checkout/", {"pricing": pricing.pk}, content_type="application/json")
assert response.status_code == 201, response.content
url = response.json()["url"]
assert url.startswith("http://testserver/api/payment/fake/checkout/"), url
paid = client.post(url, {"action": "pay"})
assert paid.status_code == 302, paid.status_code
assert paid["Location"].startswith("http://testserver/?checkout=success&session_id=fake_cs_"), paid["Location"]
assert Subscription.objects.get().status == "active"
print("checkout ok")
"""


def install_blocks() -> list[tuple[str, str]]:
    """The (language, code) of each fenced block of the Install section."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Install\n")
    section = text[start : text.index("\n## ", start + 1)]
    return re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)


def run(args: list[str], cwd: Path) -> str:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "BOB_", "STRIPE_"))}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.mark.skipif(not README.exists(), reason="the README is not beside the tests")
def test_the_install_section_works_as_written(tmp_path):
    blocks = install_blocks()
    assert [language for language, _ in blocks] == ["sh", "python", "python", "sh"]
    project = tmp_path / "site"
    project.mkdir()
    run([sys.executable, "-m", "django", "startproject", "mysite", str(project)], cwd=tmp_path)
    commands = []
    for language, code in blocks:
        if language == "python":
            first_line = code.splitlines()[0]
            target = {"# settings.py": "settings.py", "# urls.py": "urls.py"}[first_line]
            with open(project / "mysite" / target, "a", encoding="utf-8") as file:
                file.write("\n" + code)
            continue
        for line in code.strip().splitlines():
            if line.startswith("pip install django-bob-payments"):
                continue  # installed already: the package under test
            assert line.startswith("python manage.py "), f"the test does not know how to run {line!r}"
            commands.append(line.split()[1:])
    assert [command[1] for command in commands] == ["migrate", "synchronizepayments"]
    output = run([sys.executable, "manage.py", "check"], cwd=project)
    assert "no issues" in output
    for command in commands:
        run([sys.executable, *command], cwd=project)
    assert "checkout ok" in run([sys.executable, "manage.py", "shell", "-c", CHECKOUT], cwd=project)
