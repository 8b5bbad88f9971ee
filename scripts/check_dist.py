"""
Build the sdist and wheel, check them, install the wheel into the running environment and
run the test suite and the example project's migrations against the installed package
rather than the source tree.

    python scripts/check_dist.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "django_bob_payments"


def run(*args: str, cwd: Path | None = None) -> None:
    print("$", " ".join(args), flush=True)
    subprocess.run(args, cwd=cwd, check=True)


def expected_package_files() -> set[str]:
    """Every file of the package in the source tree, as a wheel would name it."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / PACKAGE).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in {".pyc", ".pyo"}
    }


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        dist = tmp_path / "dist"
        run(sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT))
        artifacts = sorted(str(path) for path in dist.iterdir())
        run(sys.executable, "-m", "twine", "check", "--strict", *artifacts)

        wheel = next(dist.glob("*.whl"))
        names = set(zipfile.ZipFile(wheel).namelist())
        missing = expected_package_files() - names
        if missing:
            print("The wheel lacks:", *sorted(missing), sep="\n  ")
            return 1
        for required in (f"{PACKAGE}/py.typed", f"{PACKAGE}/migrations/0001_initial.py"):
            assert required in names, required

        run(sys.executable, "-m", "pip", "install", "--force-reinstall", f"{wheel}[test]")

        # Run the suite from a folder that holds the tests but not the package's source.
        suite = tmp_path / "suite"
        shutil.copytree(ROOT / "tests", suite / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(ROOT / "pytest.ini", suite / "pytest.ini")
        # The README's Install section is run against the installed wheel too.
        shutil.copy(ROOT / "README.md", suite / "README.md")
        run(
            sys.executable,
            "-c",
            f"import {PACKAGE}, sys; assert 'site-packages' in {PACKAGE}.__file__, {PACKAGE}.__file__; "
            f"print('testing', {PACKAGE}.__file__)",
            cwd=suite,
        )
        run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=suite)

        # A fresh project migrates with the installed wheel.
        project = tmp_path / "project"
        shutil.copytree(ROOT / "example_project", project, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"))
        run(sys.executable, "manage.py", "migrate", "--noinput", cwd=project)
        run(sys.executable, "manage.py", "makemigrations", "--check", "--dry-run", cwd=project)
    print("dist OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
