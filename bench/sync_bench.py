"""
Benchmark of ``synchronizepayments`` against the local Stripe emulator.

    python bench/sync_bench.py                      # 1,000 products, 2,000 prices, 10,000 customers
    python bench/sync_bench.py --customers 50000 --products 0 --prices 0

Seeds a fresh SQLite database, starts the emulator in its own process, then runs the command
twice, each time in a fresh process, and prints per run: API calls by endpoint, wall time and
the command's peak memory (maximum resident set size of its process).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EU_VAT_NUMBERS = ["DE123456789", "FR40303265045", "IT00743110157", "NL004495445B01", "ATU12345678"]


def django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()


def seed(products: int, prices: int, customers: int) -> None:
    django_setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import transaction

    from django_bob_payments.models import BillingInformation, Customer, Pricing, Product

    call_command("migrate", verbosity=0)
    with transaction.atomic():
        Product.objects.bulk_create(
            Product(slug=f"product-{index}", name=f"Product {index}", description=f"Plan number {index}")
            for index in range(products)
        )
        product_ids = list(Product.objects.values_list("pk", flat=True))
        Pricing.objects.bulk_create(
            Pricing(
                product_id=product_ids[index % len(product_ids)],
                amount=100 + index,
                currency="eur",
                type="recurring",
                interval="month" if index % 2 else "year",
            )
            for index in range(prices if product_ids else 0)
        )
        User = get_user_model()
        batch = 2000
        for start in range(0, customers, batch):
            users = User.objects.bulk_create(
                User(username=f"user{index}", email=f"user{index}@example.com", first_name="User", last_name=str(index))
                for index in range(start, min(start + batch, customers))
            )
            created = Customer.objects.bulk_create(Customer(user=user) for user in users)
            BillingInformation.objects.bulk_create(
                BillingInformation(
                    customer=customer,
                    name=f"Company {customer.user_id}",
                    email=f"billing{customer.user_id}@example.com",
                    address_line1=f"{customer.user_id} Main Street",
                    postal_code="10115",
                    city="Berlin",
                    country="DE",
                    is_from_eu=True,
                    vat_number=EU_VAT_NUMBERS[index % len(EU_VAT_NUMBERS)],
                )
                for index, customer in enumerate(created)
                if index % 2 == 0
            )


def run_sync() -> None:
    """Run the command in this process and print its peak memory as JSON on the last line."""
    django_setup()
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("synchronizepayments", verbosity=1)
    elapsed = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": elapsed, "peak_mib": peak_kib / 1024}))


def emulator_json(url: str, path: str, method: str = "GET") -> dict:
    request = urllib.request.Request(url + path, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--prices", type=int, default=2000)
    parser.add_argument("--customers", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--seed-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sync-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed_only:
        seed(args.products, args.prices, args.customers)
        return 0
    if args.sync_only:
        run_sync()
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "BOB_BENCH_DB": str(Path(tmp) / "bench.sqlite3"), "PYTHONPATH": str(ROOT)}
        emulator = subprocess.Popen(
            [sys.executable, "-m", "tests.stripe_emulator"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            url = emulator.stdout.readline().strip()
            env["BOB_BENCH_STRIPE_URL"] = url
            started = time.perf_counter()
            subprocess.run([sys.executable, __file__, "--seed-only", *_counts(args)], cwd=ROOT, env=env, check=True)
            print(
                f"seeded {args.products} products, {args.prices} prices, {args.customers} customers "
                f"in {time.perf_counter() - started:.1f} s"
            )
            for run in range(1, args.runs + 1):
                emulator_json(url, "/_emulator/calls/clear", "POST")
                result = subprocess.run(
                    [sys.executable, __file__, "--sync-only"],
                    cwd=ROOT,
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                )
                figures = json.loads(result.stdout.strip().splitlines()[-1])
                calls = emulator_json(url, "/_emulator/calls")
                print(f"\nrun {run}: {figures['seconds']:.1f} s, peak memory {figures['peak_mib']:.0f} MiB")
                print("\n".join(result.stdout.strip().splitlines()[:-1]))
                for endpoint, number in sorted(calls.items()):
                    print(f"  {endpoint:45} {number:>7}")
                print(f"  {'total':45} {sum(calls.values()):>7}")
        finally:
            emulator.terminate()
            emulator.wait()
    return 0


def _counts(args: argparse.Namespace) -> list[str]:
    return ["--products", str(args.products), "--prices", str(args.prices), "--customers", str(args.customers)]


if __name__ == "__main__":
    sys.exit(main())
