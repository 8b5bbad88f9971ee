"""The example project's settings for its browser tests: the fake provider, and the database BOB_TEST_DB names."""

import os

from example_project.settings import *  # noqa: F403
from example_project.settings import BOB_PAYMENTS

BOB_PAYMENTS = {**BOB_PAYMENTS, "PROVIDER": "fake", "FAKE_PROVIDER_ALLOWED": True, "STRIPE_SECRET_KEY": ""}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

_DB = os.environ.get("BOB_TEST_DB", "sqlite")
if _DB == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ.get("POSTGRES_HOST", "127.0.0.1"),
            "PORT": os.environ.get("POSTGRES_PORT", "5432"),
            "USER": os.environ.get("POSTGRES_USER", "postgres"),
            "PASSWORD": os.environ.get("POSTGRES_PASSWORD", ""),
            "NAME": os.environ.get("POSTGRES_DB", "test"),
            # Not the app's suite's test database: both may run at once.
            "TEST": {"NAME": "test_bob_example"},
        }
    }
elif _DB == "sqlite":
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
else:
    raise ValueError(f"The browser tests run on sqlite or postgres, not BOB_TEST_DB={_DB!r}")
