"""
Settings of the benchmarks: the test settings on a benchmark database, Stripe at the emulator.

BOB_BENCH_ENGINE picks sqlite (the file BOB_BENCH_DB) or postgres (the database BOB_BENCH_DB
on the test server).
"""

import os

from tests.settings import *  # noqa: F403
from tests.settings import BOB_PAYMENTS, postgres_database

ROOT_URLCONF = "bench.urls"

if os.environ.get("BOB_BENCH_ENGINE", "sqlite") == "postgres":
    # Connections kept between requests and tasks, as the deployment guide recommends
    # (Celery's Django fixup otherwise closes the connection after every task).
    # psycopg prepares the statements run often (the deployment guide's advice where no
    # PgBouncer in transaction mode stands between); BOB_BENCH_PREPARE=none keeps Django's
    # default, which prepares none.
    prepare = os.environ.get("BOB_BENCH_PREPARE", "5")
    DATABASES = {
        "default": {
            **postgres_database(os.environ["BOB_BENCH_DB"]),
            "CONN_MAX_AGE": 600,
            "OPTIONS": {"prepare_threshold": None if prepare == "none" else int(prepare)},
        }
    }
else:
    # The options the deployment guide recommends for SQLite (see bench/sqlite_writers.py).
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ["BOB_BENCH_DB"],
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
            },
        }
    }
# The webhook benchmark measures verify + store + apply; emails (receipts after invoice.paid)
# are side effects after the commit, so they are off here.
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
BOB_PAYMENTS = {
    **BOB_PAYMENTS,
    "STRIPE_API_BASE": os.environ.get("BOB_BENCH_STRIPE_URL", ""),
    "EMAILS_ENABLED": {},
    # Queued runs: the view stores and sends to Celery; workers apply (BOB_BENCH_QUEUE).
    "WEBHOOK_PROCESSING": "celery" if os.environ.get("BOB_BENCH_QUEUE") else "inline",
    "WEBHOOK_QUEUE": os.environ.get("BOB_BENCH_QUEUE") or None,
    "WEBHOOK_ENQUEUE": os.environ.get("BOB_BENCH_ENQUEUE") or "request",
}
