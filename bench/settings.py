"""Settings of the benchmarks: the test settings on a SQLite file, Stripe at the emulator."""

import os

from tests.settings import *  # noqa: F403
from tests.settings import BOB_PAYMENTS

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["BOB_BENCH_DB"]}}
BOB_PAYMENTS = {**BOB_PAYMENTS, "STRIPE_API_BASE": os.environ.get("BOB_BENCH_STRIPE_URL", "")}
