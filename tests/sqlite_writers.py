"""
SQLite with several writers: worker processes deliver webhook events to one SQLite file at
once, as several gunicorn workers would. Run by ``bench/sqlite_writers.py`` and by
``tests/test_sqlite_writers.py``:

    python bench/sqlite_writers.py                  # 2 workers x 2,000 deliveries
    python bench/sqlite_writers.py --workers 4 --deliveries 1000

The stream runs twice on a fresh file: with Django's default SQLite options, and with the
options the deployment guide recommends (WAL, IMMEDIATE transactions, a busy timeout).
Prints, for each, the answers other than 200 (a 500 is "database is locked") and events
per second. ``processwebhooks`` recovers what was answered 500, but Stripe's customer sees
the errors in the dashboard, and retries come hours later.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_OPTIONS: dict = {}
RECOMMENDED_OPTIONS = {
    # Take the write lock when the transaction begins: a transaction that only read first
    # cannot wait for it later (SQLite answers "database is locked" at once then).
    "transaction_mode": "IMMEDIATE",
    # Seconds a writer waits for another one's lock.
    "timeout": 20,
    # Readers never wait for the writer; a commit syncs the WAL, not the whole file.
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
}


def _setup(path: str, options: dict) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["BOB_TEST_DB"] = "sqlite"
    from django.conf import settings

    settings.DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": path, "OPTIONS": options}}
    # Receipts and other emails are not what is measured.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    import django

    django.setup()


def _seed(path: str, options: dict, customers: int, results) -> None:
    """Migrate the file and seed the catalog and customers; put their events' bodies on ``results``."""
    _setup(path, options)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from django_bob_payments.models import Customer, ExternalPricing, ExternalProduct, Pricing, Product
    from tests.lifecycle import Lifecycle

    call_command("migrate", verbosity=0)
    product = Product.objects.create(slug="pro", name="Pro", max_quantity=100)
    pricing = Pricing.objects.create(product=product, amount=900, currency="eur", type="recurring", interval="month")
    ExternalProduct.objects.create(product=product, provider="stripe", external_id="prod_pro")
    ExternalPricing.objects.create(pricing=pricing, provider="stripe", external_id="price_pro")
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"writer{index}") for index in range(customers)
    )
    lifecycles = [
        Lifecycle(Customer.objects.create(user=user), pricing, index=index) for index, user in enumerate(users)
    ]
    results.put([json.dumps(lifecycle.events[step]) for step in range(6) for lifecycle in lifecycles])


def _deliver(path: str, options: dict, bodies: list[str], start, results) -> None:
    _setup(path, options)
    import logging

    # Each failure is counted from its answer; its log line would only bury the figures.
    logging.disable(logging.CRITICAL)
    from django.test import Client

    from django_bob_payments.testing import post_event

    client = Client()
    start.wait()
    results.put([post_event(client, body, "whsec_tests").status_code for body in bodies])


def _result(results, processes) -> list:
    """The next worker's statuses; an error at once when a worker died without giving them."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            return results.get(timeout=1)
        except queue.Empty:
            dead = [process.exitcode for process in processes if process.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"a writer process died (exit code {dead[0]}); its error is above") from None
    raise TimeoutError("the writers did not finish in 10 minutes")


def run(options: dict, *, deliveries: int = 2000, workers: int = 2) -> dict:
    """Deliver ``deliveries`` events from ``workers`` processes to a new SQLite file with ``options``."""
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "writers.sqlite3")
        results = context.Queue()
        seeder = context.Process(target=_seed, args=(path, options, max(1, deliveries // 6), results))
        seeder.start()
        bodies = results.get(timeout=300)
        seeder.join()
        start = context.Event()
        processes = [
            context.Process(target=_deliver, args=(path, options, bodies[worker::workers], start, results))
            for worker in range(workers)
        ]
        for process in processes:
            process.start()
        time.sleep(2)  # every worker set up, waiting on the start
        began = time.perf_counter()
        start.set()
        statuses: Counter[int] = Counter()
        for _ in processes:
            statuses.update(_result(results, processes))
        elapsed = time.perf_counter() - began
        for process in processes:
            process.join(timeout=60)
    return {
        "deliveries": len(bodies),
        "statuses": dict(statuses),
        "not_200": sum(count for status, count in statuses.items() if status != 200),
        "events_per_second": len(bodies) / elapsed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(f"{'SQLite options':14} {'deliveries':>10} {'not 200':>8} {'events/s':>9}")
    figures = {}
    for name, options in (("default", DEFAULT_OPTIONS), ("recommended", RECOMMENDED_OPTIONS)):
        result = figures[name] = run(options, deliveries=args.deliveries, workers=args.workers)
        print(f"{name:14} {result['deliveries']:>10} {result['not_200']:>8} {result['events_per_second']:>9.0f}")
    ratio = figures["recommended"]["events_per_second"] / figures["default"]["events_per_second"]
    print(f"recommended / default events/s: {ratio:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
