"""
The package's layers: each module imports only its own layer and the ones below it, and
only the Stripe provider package imports the stripe SDK.

Imports are read with ``ast`` from the source, including imports inside functions, so a
late import that runs up the floors is caught as well.
"""

import ast
from pathlib import Path

import pytest

import django_bob_payments

PACKAGE = Path(django_bob_payments.__file__).parent

# The first part of a module's name below django_bob_payments, and its floor: 1 is the top.
LAYERS = {
    **dict.fromkeys(
        ("admin", "apps", "checks", "management", "permissions", "receivers", "templatetags", "testing", "urls"), 1
    ),
    "views": 1,
    "interactors": 2,
    "tasks": 2,
    "serializers": 2,
    "parsers": 2,
    "services": 3,
    "providers": 4,
    **dict.fromkeys(
        ("models", "conf", "signals", "exceptions", "money", "bounds", "reports", "prepared", "__init__"), 5
    ),
}


def package_modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if "migrations" not in path.relative_to(PACKAGE).parts)


def floor_of(module_part: str) -> int:
    return LAYERS[module_part]


def imported_parts(source: str) -> set[tuple[str, int]]:
    """(first part below the package, line) of every import of the package in ``source``."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.level:
                raise AssertionError(f"relative import at line {node.lineno}: the package uses absolute ones")
            if node.module == "django_bob_payments":
                names = [f"django_bob_payments.{alias.name}" for alias in node.names]
            else:
                names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "django_bob_payments" and len(parts) > 1:
                found.add((parts[1], node.lineno))
    return found


def upward_imports(relative: Path, source: str) -> list[str]:
    """What ``source``, the module at ``relative`` inside the package, imports from floors above its own."""
    own = relative.parts[0].removesuffix(".py")
    problems = []
    for part, line in sorted(imported_parts(source)):
        if part != "__version__" and floor_of(part) < floor_of(own):
            problems.append(f"{relative}:{line} imports {part} (floor {floor_of(part)}) from floor {floor_of(own)}")
    return problems


def test_every_module_has_a_floor():
    unknown = {path.relative_to(PACKAGE).parts[0].removesuffix(".py") for path in package_modules()} - set(LAYERS)
    assert not unknown, f"give these a floor in LAYERS: {sorted(unknown)}"


def test_no_module_imports_a_layer_above_it():
    problems = [
        problem
        for path in package_modules()
        for problem in upward_imports(path.relative_to(PACKAGE), path.read_text(encoding="utf-8"))
    ]
    assert problems == []


@pytest.mark.parametrize("upper", ["interactors", "views", "services"])
def test_the_providers_import_nothing_above_them(upper):
    providers = [path for path in package_modules() if path.relative_to(PACKAGE).parts[0] == "providers"]
    assert len(providers) >= 6
    offenders = [
        f"{path.relative_to(PACKAGE)}:{line}"
        for path in providers
        for part, line in imported_parts(path.read_text(encoding="utf-8"))
        if part == upper
    ]
    assert offenders == []


def test_an_upward_import_is_caught():
    """The check can fail: the fake provider with a late import of the interactor is reported."""
    relative = Path("providers/fake.py")
    source = (PACKAGE / relative).read_text(encoding="utf-8")
    assert upward_imports(relative, source) == []
    source += "\n\ndef late():\n    from django_bob_payments.interactors import get_payment_interactor\n"
    assert upward_imports(relative, source) == [
        f"providers/fake.py:{source.count(chr(10))} imports interactors (floor 2) from floor 4"
    ]


def test_only_the_stripe_provider_imports_the_sdk():
    """The test helpers read the SDK's pinned API version; nothing imports them at run time."""
    importers = []
    for path in package_modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(name == "stripe" or name.startswith("stripe.") for name in modules):
                importers.append(path.relative_to(PACKAGE).as_posix())
    assert importers
    assert all(name.startswith(("providers/stripe/", "testing/")) for name in importers), importers
