from pathlib import Path

from setuptools import find_namespace_packages, setup

HERE = Path(__file__).parent


def read_version() -> str:
    for line in (HERE / "django_bob_payments" / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise RuntimeError("__version__ not found")


setup(
    name="django-bob-payments",
    version=read_version(),
    description="Billing on Stripe for Django: your catalog and customers as the truth, "
    "EU VAT checked with VIES, webhooks applied exactly once.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    license_files=["LICENSE"],
    # Namespace packages: the template and locale folders are data, carried by package_data.
    packages=find_namespace_packages(include=["django_bob_payments", "django_bob_payments.*"]),
    include_package_data=True,
    package_data={"django_bob_payments": ["py.typed", "templates/**/*", "locale/**/*"]},
    zip_safe=False,
    python_requires=">=3.10",
    install_requires=[
        "Django>=5.2",
        "djangorestframework>=3.15",
        "django-countries>=7.6",
        "stripe>=16.0,<17",
        "requests>=2.31",
        "python-stdnum>=1.20",
        "drf-spectacular>=0.27",
        "babel>=2.12",
    ],
    extras_require={
        # Queued webhook processing (BOB_PAYMENTS["WEBHOOK_PROCESSING"]).
        "celery": ["celery>=5.3"],
        # Django's Tasks framework before Django 6.0, where it is built in.
        "tasks": ["django-tasks>=0.8"],
        "test": [
            "pytest>=8",
            "pytest-django>=4.9",
            "hypothesis>=6.100",
            "psycopg[binary]>=3.1",
            "PyMySQL>=1.1",
            "schemathesis>=4,<5",
            "celery[redis]>=5.3",
            "django-tasks>=0.8",
            "django-tasks-db>=0.12",
        ],
    },
    classifiers=[
        "Development Status :: 3 - Alpha",
        "Environment :: Web Environment",
        "Framework :: Django",
        "Framework :: Django :: 5.2",
        "Framework :: Django :: 6.0",
        "Framework :: Django :: 6.1",
        "Intended Audience :: Developers",
        "Operating System :: OS Independent",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Topic :: Office/Business :: Financial",
        "Typing :: Typed",
    ],
)
