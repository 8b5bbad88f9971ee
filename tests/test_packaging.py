"""The package says what tox tests: Django classifiers, and the environments the README names."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not (ROOT / "setup.py").exists(), reason="runs from a source checkout only")


def test_the_django_classifiers_match_the_versions_tox_tests():
    tox = (ROOT / "tox.ini").read_text(encoding="utf-8")
    tested = {f"{match[0]}.{match[1]}" for match in re.findall(r"django(\d)(\d)\b", tox)}
    classified = set(re.findall(r'"Framework :: Django :: ([\d.]+)"', (ROOT / "setup.py").read_text(encoding="utf-8")))
    assert tested and classified == tested


def test_tox_lists_every_environment_the_readme_runs():
    tox = (ROOT / "tox.ini").read_text(encoding="utf-8")
    envlist = tox.split("envlist =", 1)[1].split("\n[", 1)[0]
    named = set(re.findall(r"tox -e (\w+)", (ROOT / "README.md").read_text(encoding="utf-8")))
    assert named and all(re.search(rf"^\s*{name}\s*$", envlist, flags=re.M) for name in named)
