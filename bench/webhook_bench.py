"""
Benchmark of the Stripe webhook endpoint: verify + store + apply, against a baseline view
that only verifies the signature and inserts the raw event (the ceiling).

    python bench/webhook_bench.py                       # SQLite and PostgreSQL, in-process and HTTP
    python bench/webhook_bench.py --engines sqlite --modes inprocess --customers 100
    python bench/webhook_bench.py --processing queued --engines postgres --workers 1,2,4

Each customer goes through a realistic lifecycle (customer created, checkout completed,
subscription created and updated, invoice paid, subscription deleted); the events of all
customers are interleaved. Prints events per second, p50 / p99 latency and outbound Stripe
API calls per event (Stripe is the test emulator, counting every request) for the app and
for the baseline, on the same database. The two are posted in alternating runs after a
warm-up (the whole lifecycles of two customers, so that every kind of event has run once),
so that a change of the host's speed during the run falls on both; events per second count
the time spent answering. After the warm-up the serving process moves what it holds to
the garbage collector's permanent generation (``gc.freeze()``, as servers that preload do
before they fork): otherwise a full collection of the start-up's objects, 50 to 130 ms,
falls on whichever side happens to trigger it and moves the ratio by ten points.

``--rounds`` sets the number of alternating runs of each side (20); ``--rounds 1200``
alternates event by event. In-process, the CPU time of the process per event (the app
and the test client, not the database) is printed too, as a multiple of the baseline's:
it moves less than the events per second when the host's speed changes.

``--modes gunicorn`` serves the same stream with gunicorn (one threaded worker) over
keep-alive connections (pip install gunicorn).

On PostgreSQL the connection has ``prepare_threshold`` 5 (``--prepare-threshold``; ``none``
is Django's default, which prepares nothing): psycopg prepares the statements the app runs
with the server binding their values, as the deployment guide advises where no PgBouncer in
transaction mode stands between.

``--processing queued`` runs the app with WEBHOOK_PROCESSING "celery" (Redis at
BOB_TEST_BROKER): the request stores the event and sends its task, which is the intake
compared with the baseline; then a Celery worker with 1, 2, 4 ... processes applies the
stored events, timed from its start until the last one is applied. ``--enqueue
request,background`` measures both ways of handing events to Celery (WEBHOOK_ENQUEUE): the
request sends each task before answering, or a background thread sends them in batches
(its work for the app's run is finished before the baseline's run and counted in the
app's time).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEBHOOK_URL = "/api/payment/stripe/webhook/"
BASELINE_URL = "/baseline/webhook/"
FLUSH_URL = "/bench/flush/"
FREEZE_URL = "/bench/freeze/"
# Customers whose events are the warm-up: not counted.
WARM_CUSTOMERS = 2


def setup_django(stripe_url: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["BOB_BENCH_STRIPE_URL"] = stripe_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()


def build_bodies(customers: int) -> tuple[list[str], list[str]]:
    """Seed the catalog and customers; return the app's event bodies and the baseline's."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from django_bob_payments.models import Customer, ExternalPricing, ExternalProduct, Pricing, Product
    from tests.lifecycle import Lifecycle

    call_command("migrate", verbosity=0)
    product = Product.objects.create(slug="pro", name="Pro", max_quantity=100)
    pricing = Pricing.objects.create(product=product, amount=900, currency="eur", type="recurring", interval="month")
    ExternalProduct.objects.create(product=product, provider="stripe", external_id="prod_pro")
    ExternalPricing.objects.create(pricing=pricing, provider="stripe", external_id="price_pro")
    User = get_user_model()
    users = User.objects.bulk_create(User(username=f"bench{index}") for index in range(customers))
    lifecycles = [
        Lifecycle(Customer.objects.create(user=user), pricing, index=index) for index, user in enumerate(users)
    ]
    # The warm-up (WARM_CUSTOMERS) goes through whole lifecycles, so that every kind of event
    # has run once before the count starts; then the others, interleaved: step by step
    # across customers, each customer's events in order.
    events = [event for lifecycle in lifecycles[:WARM_CUSTOMERS] for event in lifecycle.events]
    events += [lifecycle.events[step] for step in range(6) for lifecycle in lifecycles[WARM_CUSTOMERS:]]
    bodies = [json.dumps(event) for event in events]
    baseline = [json.dumps({**event, "id": event["id"] + "_base"}) for event in events]
    return bodies, baseline


def measure(
    post, bodies: list[str], baseline: list[str], *, warm: int = 6 * WARM_CUSTOMERS, rounds: int = 20
) -> tuple[dict, dict]:
    """
    Post the app's events and the baseline's in alternating runs (``rounds`` runs each), so
    that both meet the same machine: a drift of the host's speed during the run falls on
    both sides. The first ``warm`` of each (imports, first compilations, connections) are
    posted but not counted.
    """
    from django_bob_payments.testing import sign_payload

    sides = {WEBHOOK_URL: (bodies, []), BASELINE_URL: (baseline, [])}
    # This thread's CPU time on each side (in-process, the server's work too; not the database's).
    cpu = {WEBHOOK_URL: 0.0, BASELINE_URL: 0.0}
    # A background publisher's work for the app's run is done before the baseline's starts,
    # and counted in the app's time (its first batch, which connects to the broker, is part
    # of the warm-up).
    settling = os.environ.get("BOB_BENCH_ENQUEUE") == "background"
    for url, (stream, _) in sides.items():
        for body in stream[:warm]:
            if post(url, body, sign_payload(body, "whsec_tests")) != 200:
                raise SystemExit(f"{url} refused a warm-up event")
        if settling and url == WEBHOOK_URL:
            post(FLUSH_URL, "", "")
    if post(FREEZE_URL, "", "") != 204:
        raise SystemExit("the server did not freeze its start-up objects")
    size = max(1, (len(bodies) - warm + rounds - 1) // rounds)
    settled = 0.0
    for start in range(warm, len(bodies), size):
        for url, (stream, latencies) in sides.items():
            for body in stream[start : start + size]:
                signature = sign_payload(body, "whsec_tests")
                begin, used = time.perf_counter(), time.thread_time()
                status = post(url, body, signature)
                latencies.append(time.perf_counter() - begin)
                cpu[url] += time.thread_time() - used
                if status != 200:
                    raise SystemExit(f"{url} answered {status}")
            if settling and url == WEBHOOK_URL:
                begin = time.perf_counter()
                post(FLUSH_URL, "", "")
                settled += time.perf_counter() - begin
    app, ceiling = _figures(sides[WEBHOOK_URL][1], settled), _figures(sides[BASELINE_URL][1])
    app["cpu_ms"] = cpu[WEBHOOK_URL] / len(sides[WEBHOOK_URL][1]) * 1000
    ceiling["cpu_ms"] = cpu[BASELINE_URL] / len(sides[BASELINE_URL][1]) * 1000
    return app, ceiling


def _figures(latencies: list[float], extra: float = 0.0) -> dict[str, float]:
    """Events per second (of the time spent answering, plus ``extra``) and the p50 / p99 latency."""
    ordered = sorted(latencies)
    return {
        "events_per_second": len(ordered) / (sum(ordered) + extra),
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000,
    }


def apply_with_workers(workers: int, events: int) -> float:
    """
    Start a Celery worker of ``workers`` processes on the queued events; applied events per
    second, from the first event applied to the last (the worker's start-up is not counted).
    """
    from django.db.models import Max, Min

    from django_bob_payments.models import WebhookEvent

    command = [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker", "-Q", os.environ["BOB_BENCH_QUEUE"]]
    command += ["-c", str(workers), "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "error"]
    started = time.perf_counter()
    worker = subprocess.Popen(command, cwd=ROOT, env=dict(os.environ), start_new_session=True)
    try:
        while WebhookEvent.objects.filter(status="processed").count() < events:
            if time.perf_counter() - started > 600:
                raise SystemExit("the worker did not apply every event in 10 minutes")
            time.sleep(0.05)
        span = WebhookEvent.objects.aggregate(first=Min("processed_at"), last=Max("processed_at"))
        return (events - 1) / (span["last"] - span["first"]).total_seconds()
    finally:
        os.killpg(worker.pid, 15)
        worker.wait()


def run(mode: str, customers: int) -> dict:
    """In this process: seed, then post every event to the app and to the baseline."""
    from tests.stripe_emulator import StripeEmulator

    emulator = StripeEmulator()
    setup_django(emulator.start())
    if os.environ.get("BOB_BENCH_QUEUE"):
        import tests.celery_app  # noqa: F401  (the project's Celery app, as its __init__ would load it)
    bodies, baseline = build_bodies(customers)
    if mode == "inprocess":
        from django.test import Client

        client = Client()

        def post(url, body, signature):
            return client.post(
                url, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
            ).status_code

        server = None
    else:
        import requests

        port = 18000 + os.getpid() % 1000
        if mode == "gunicorn":
            server = _gunicorn(port)
        else:
            server = subprocess.Popen(
                [sys.executable, __file__, "--serve", str(port)], cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE
            )
            server.stdout.readline()
        base = f"http://127.0.0.1:{port}"
        # gunicorn's threaded worker keeps the connection open between requests; the
        # wsgiref server of "http" closes it after each answer.
        session = requests.Session()

        def post(url, body, signature):
            return session.post(
                base + url,
                data=body,
                headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
                timeout=30,
            ).status_code

    try:
        emulator.calls.clear()
        app, ceiling = measure(post, bodies, baseline, rounds=int(os.environ.get("BOB_BENCH_ROUNDS", "20")))
        app["stripe_calls_per_event"] = emulator.count() / len(bodies)
    finally:
        if server is not None:
            server.terminate()
            server.wait()
        emulator.stop()
    from django_bob_payments.models import WebhookEvent

    if os.environ.get("BOB_BENCH_QUEUE") and server is None:
        from django_bob_payments import tasks

        tasks.publisher.flush(timeout=60)  # this process is the web process
    if os.environ.get("BOB_BENCH_WORKERS"):
        app["applied_per_second"] = apply_with_workers(int(os.environ["BOB_BENCH_WORKERS"]), len(bodies))
    processed = WebhookEvent.objects.filter(provider="stripe", status="processed").count()
    return {"events": len(bodies), "processed": processed, "app": app, "baseline": ceiling}


def _gunicorn(port: int) -> subprocess.Popen:
    """gunicorn with one threaded worker (keep-alive connections) on ``port``, once it answers."""
    import socket

    if importlib.util.find_spec("gunicorn") is None:
        raise SystemExit("--modes gunicorn needs gunicorn: pip install gunicorn")
    command = [sys.executable, "-m", "gunicorn", "bench.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    command += ["--worker-class", "gthread", "--threads", "2", "--keep-alive", "30", "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=ROOT, env=dict(os.environ))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("gunicorn did not start in 30 seconds")


def serve(port: int) -> None:
    """Serve the project over HTTP with a threaded WSGI server that answers without Nagle delays."""
    import signal
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    # Stopped by SIGTERM, the server exits as a web server does: what its background
    # publisher holds is sent first (atexit).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    setup_django(os.environ.get("BOB_BENCH_STRIPE_URL", ""))
    if os.environ.get("BOB_BENCH_QUEUE"):
        import tests.celery_app  # noqa: F401  (the project's Celery app, as its __init__ would load it)
    from django.core.wsgi import get_wsgi_application

    class Handler(WSGIRequestHandler):
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    httpd = make_server("127.0.0.1", port, get_wsgi_application(), server_class=Server, handler_class=Handler)
    print("ready", flush=True)
    httpd.serve_forever()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--modes", default="inprocess,http", help="inprocess, http (wsgiref), gunicorn (keep-alive)")
    parser.add_argument("--processing", default="inline", help="inline, queued, or both: inline,queued")
    parser.add_argument("--workers", default="1", help="queued: Celery worker processes, e.g. 1,2,4")
    parser.add_argument("--enqueue", default="request", help="queued: WEBHOOK_ENQUEUE, request and/or background")
    parser.add_argument(
        "--prepare-threshold",
        default="5",
        help="PostgreSQL: the prepare_threshold OPTION (runs before psycopg prepares); none: Django's default",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=20,
        help="runs of each side, alternating (default 20); the number of events alternates event by event",
    )
    parser.add_argument("--run", nargs=2, metavar=("MODE", "CUSTOMERS"), help=argparse.SUPPRESS)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    if args.run:
        print(json.dumps(run(args.run[0], int(args.run[1]))))
        return 0

    print(f"{'database':10} {'mode':22} {'':9} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'Stripe calls/event':>19}")
    configurations = [
        (engine, mode, processing, workers, enqueue)
        for engine in args.engines.split(",")
        for mode in args.modes.split(",")
        for processing in args.processing.split(",")
        for enqueue in (args.enqueue.split(",") if processing == "queued" else [""])
        for workers in (args.workers.split(",") if processing == "queued" else [""])
    ]
    for engine, mode, processing, workers, enqueue in configurations:
        if True:
            with tempfile.TemporaryDirectory() as tmp:
                env = {
                    **os.environ,
                    "BOB_BENCH_ENGINE": engine,
                    "BOB_BENCH_PREPARE": args.prepare_threshold,
                    "BOB_BENCH_ROUNDS": str(args.rounds),
                    "PYTHONPATH": str(ROOT),
                }
                if processing == "queued":
                    env["BOB_BENCH_QUEUE"] = f"bob-bench-{os.getpid()}-{engine}-{mode}-{workers}"
                    env["BOB_BENCH_WORKERS"] = workers
                    env["BOB_BENCH_ENQUEUE"] = enqueue
                if engine == "postgres":
                    env["BOB_BENCH_DB"] = "bob_payments_bench"
                    _postgres(f"DROP DATABASE IF EXISTS {env['BOB_BENCH_DB']}")
                    _postgres(f"CREATE DATABASE {env['BOB_BENCH_DB']}")
                else:
                    env["BOB_BENCH_DB"] = str(Path(tmp) / "bench.sqlite3")
                try:
                    output = subprocess.run(
                        [sys.executable, __file__, "--run", mode, str(args.customers)],
                        cwd=ROOT,
                        env=env,
                        check=True,
                        capture_output=True,
                        text=True,
                    ).stdout
                finally:
                    if engine == "postgres":
                        _postgres(f"DROP DATABASE IF EXISTS {env['BOB_BENCH_DB']}")
            result = json.loads(output.strip().splitlines()[-1])
            app, base = result["app"], result["baseline"]
            label_mode = f"{mode} {processing}" + (f" {enqueue[:4]}" if enqueue else "")
            for label, figures in (("app", app), ("baseline", base)):
                calls = f"{figures['stripe_calls_per_event']:.2f}" if "stripe_calls_per_event" in figures else ""
                print(
                    f"{engine:10} {label_mode:22} {label:9} {figures['events_per_second']:9.0f} "
                    f"{figures['p50_ms']:8.2f} {figures['p99_ms']:8.2f} {calls:>19}"
                )
            ratio = app["events_per_second"] / base["events_per_second"]
            print(f"{'':33} app / baseline: {ratio:.0%} ({result['processed']}/{result['events']} events applied)")
            if mode == "inprocess":
                cpu = app["cpu_ms"] / base["cpu_ms"]
                print(f"{'':33} CPU per event of this process: app {app['cpu_ms']:.2f} ms, {cpu:.2f}x the baseline's")
            if "applied_per_second" in app:
                print(f"{'':33} applied by {workers} worker process(es): {app['applied_per_second']:.0f} events/s")
    return 0


def _postgres(sql: str) -> None:
    """Run ``sql`` on the server's maintenance database (creating or dropping the bench one)."""
    import psycopg

    sys.path.insert(0, str(ROOT))
    from tests.settings import postgres_database

    server = postgres_database("postgres")
    with psycopg.connect(
        host=server["HOST"],
        port=server["PORT"],
        user=server["USER"],
        password=server["PASSWORD"],
        dbname=server["NAME"],
        autocommit=True,
    ) as connection:
        connection.execute(sql)


if __name__ == "__main__":
    sys.exit(main())
