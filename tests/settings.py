"""Settings for the test suite. BOB_TEST_DB picks the database: sqlite, postgres or mariadb."""

import importlib.util
import os
import tempfile

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
USE_TZ = True
ROOT_URLCONF = "tests.urls"
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "testapp.User"
# A cache every process of a deployment shares (the throttles and VIES state live there);
# one directory per test run.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": tempfile.mkdtemp(prefix="bob-payments-tests-cache-"),
    }
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    "django_countries",
    "django_bob_payments",
    "tests.testapp",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The task engines of the queued webhook modes. Celery: the broker of BOB_TEST_BROKER (the
# queue is chosen per test, so runs sharing a broker never take each other's tasks).
CELERY_BROKER_URL = os.environ.get("BOB_TEST_BROKER", "redis://127.0.0.1:6379/0")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = False
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 1}
CELERY_TASK_PUBLISH_RETRY = False
# Django's Tasks framework: Django's own from 6.0, the django-tasks backport before; the
# database backend of django-tasks-db is installed for the tests that run its worker.
if importlib.util.find_spec("django.tasks") is None:
    INSTALLED_APPS.append("django_tasks")
    TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
else:
    TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
INSTALLED_APPS.append("django_tasks_db")
if os.environ.get("BOB_TEST_TASKS_DB"):
    TASKS = {"default": {"BACKEND": "django_tasks_db.backend.DatabaseBackend"}}

# Worker processes of the concurrency tests write their emails to files, to be counted.
if os.environ.get("BOB_TEST_EMAIL_DIR"):
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = os.environ["BOB_TEST_EMAIL_DIR"]

BOB_PAYMENTS = {
    "STRIPE_SECRET_KEY": "sk_test_tests",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_tests",
    "STRIPE_WEBHOOK_SECRET": "whsec_tests",
    "SELLER_COUNTRY": "FR",
    "SELLER_VAT_NUMBER": "FR40303265045",
    "ORGANIZATION_MODEL": "testapp.Organization",
}


def postgres_database(name=None):
    """The PostgreSQL server of POSTGRES_* (CI defaults), database ``name`` or POSTGRES_DB."""
    return {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("POSTGRES_HOST", "127.0.0.1"),
        "PORT": os.environ.get("POSTGRES_PORT", "5432"),
        "USER": os.environ.get("POSTGRES_USER", "postgres"),
        "PASSWORD": os.environ.get("POSTGRES_PASSWORD", ""),
        "NAME": name or os.environ.get("POSTGRES_DB", "test"),
    }


_DB = os.environ.get("BOB_TEST_DB", "sqlite")
if _DB == "postgres":
    # Prepared from their second run: the statements the app binds on the server (its
    # webhook path) run prepared, and unprepared first.
    DATABASES = {"default": {**postgres_database(), "OPTIONS": {"prepare_threshold": 1}}}
elif _DB == "mariadb":
    # PyMySQL is pure Python, so no client headers are needed to build a driver.
    import pymysql

    pymysql.version_info = (2, 2, 7, "final", 0)
    pymysql.install_as_MySQLdb()
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.mysql",
            "HOST": os.environ.get("MARIADB_HOST", "127.0.0.1"),
            "PORT": os.environ.get("MARIADB_PORT", "3306"),
            "USER": os.environ.get("MARIADB_USER", "root"),
            "PASSWORD": os.environ.get("MARIADB_PASSWORD", ""),
            "NAME": os.environ.get("MARIADB_DB", "test"),
            "OPTIONS": {"charset": "utf8mb4"},
            "TEST": {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"},
        }
    }
elif _DB == "sqlite":
    # As the deployment guide recommends for SQLite: writers wait for each other's lock.
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": ":memory:",
            "OPTIONS": {"transaction_mode": "IMMEDIATE"},
        }
    }
else:
    raise ValueError(f"BOB_TEST_DB must be sqlite, postgres or mariadb, not {_DB!r}")
