"""
The queued webhook modes end to end: a live server stores and answers, real workers apply.

Celery runs as its own worker processes on a real broker (Redis); Django's Tasks framework
runs django-tasks-db's ``db_worker``. Both share the test database with the server, so they
need a database server (PostgreSQL or MariaDB). Events of 50 customers are posted
interleaved, with duplicates; every event must be applied once, each customer's in the
order they came. Then a worker is killed with SIGKILL in the middle of a batch: once a new
worker and the sweeper have run, nothing is lost and nothing applied twice.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from django.core.management import call_command
from django.db import connection
from django.db.models import Count

from django_bob_payments.models import Customer, ExternalPricing, ExternalProduct, Pricing, Product, WebhookEvent
from django_bob_payments.testing import sign_payload
from tests.lifecycle import Lifecycle

ROOT = Path(__file__).resolve().parent.parent
URL = "/api/payment/stripe/webhook/"
CUSTOMERS = 50
REDIS = os.environ.get("BOB_TEST_BROKER", "redis://127.0.0.1:6379/0")
RABBITMQ = os.environ.get("BOB_TEST_AMQP_BROKER", "amqp://guest:guest@127.0.0.1:5672//")


def _reachable(url: str) -> bool:
    host_port = url.split("//", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, _, port = host_port.partition(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return False
    return True


pytestmark = [
    pytest.mark.skipif(
        os.environ.get("BOB_TEST_DB", "sqlite") == "sqlite",
        reason="the workers share the database with the server: needs BOB_TEST_DB=postgres or mariadb",
    ),
    pytest.mark.django_db(transaction=True),
]
needs_redis = pytest.mark.skipif(not _reachable(REDIS), reason=f"no Redis broker at {REDIS} (BOB_TEST_BROKER)")
BROKERS = [
    pytest.param(REDIS, id="redis", marks=needs_redis),
    pytest.param(
        RABBITMQ,
        id="rabbitmq",
        marks=pytest.mark.skipif(
            not _reachable(RABBITMQ), reason=f"no RabbitMQ broker at {RABBITMQ} (BOB_TEST_AMQP_BROKER)"
        ),
    ),
]


@pytest.fixture
def celery_on(settings):
    """Queued on Celery: the server sends to ``broker`` on a queue of this test's own; returns the queue."""
    from tests.celery_app import app

    def use(broker: str, enqueue: str = "request") -> str:
        queue = f"bob-tests-{uuid.uuid4().hex[:12]}"
        settings.BOB_PAYMENTS = {
            **settings.BOB_PAYMENTS,
            "WEBHOOK_PROCESSING": "celery",
            "WEBHOOK_QUEUE": queue,
            "WEBHOOK_ENQUEUE": enqueue,
        }
        app.conf.broker_url = broker
        # Connections to the previous broker are dropped (as after a fork).
        app._after_fork()
        app.set_current()
        return queue

    yield use
    app.conf.broker_url = REDIS
    app._after_fork()


class Worker:
    """A worker in its own process group, on the test database; ``kill()`` is SIGKILL to all of it."""

    def __init__(self, command: list[str], **env: str) -> None:
        name = connection.settings_dict["NAME"]
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "POSTGRES_DB": name,
            "MARIADB_DB": name,
            "PYTHONPATH": str(ROOT),
            # Billing emails go to files, not to an SMTP server.
            "BOB_TEST_EMAIL_DIR": tempfile.mkdtemp(prefix="bob-queue-mail-"),
            **env,
        }
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=environment, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> str:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.stdout.read().decode(errors="replace")[-3000:]


def celery_worker(queue: str, broker: str) -> Worker:
    return Worker(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.celery_app",
            "worker",
            "-Q",
            queue,
            "-c",
            "2",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "warning",
        ],
        BOB_TEST_BROKER=broker,
    )


def tasks_worker() -> Worker:
    return Worker(
        [sys.executable, "-m", "django", "db_worker", "--interval", "0.1", "--no-startup-delay"],
        BOB_TEST_TASKS_DB="1",
    )


@pytest.fixture
def stream(make_user):
    """The events of 50 customers' lifecycles, interleaved, each customer's in order, with duplicates."""
    product = Product.objects.create(slug="pro", name="Pro", max_quantity=100)
    pricing = Pricing.objects.create(product=product, amount=900, currency="eur", type="recurring", interval="month")
    ExternalProduct.objects.create(product=product, provider="stripe", external_id="prod_pro")
    ExternalPricing.objects.create(pricing=pricing, provider="stripe", external_id="price_pro")
    lifecycles = [Lifecycle(Customer.objects.get(user=make_user()), pricing, index=index) for index in range(CUSTOMERS)]
    rng = random.Random(16)
    queues = [list(lifecycle.events) for lifecycle in lifecycles]
    events = []
    while any(queues):
        # Interleaved: a random customer's next event each time.
        pending = [queue for queue in queues if queue]
        events.append(rng.choice(pending).pop(0))
    # Redeliveries of one event in ten, some time after the first delivery.
    for event in rng.sample(events, len(events) // 10):
        events.insert(min(len(events), events.index(event) + rng.randint(1, 40)), event)
    return lifecycles, events


def post_all(base_url: str, events: list[dict]) -> list[int]:
    session = requests.Session()
    statuses = []
    for event in events:
        body = json.dumps(event)
        response = session.post(
            base_url + URL,
            data=body,
            headers={"Stripe-Signature": sign_payload(body, "whsec_tests"), "Content-Type": "application/json"},
            timeout=30,
        )
        statuses.append(response.status_code)
    return statuses


def wait_until_applied(expected: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if WebhookEvent.objects.filter(status="processed").count() >= expected:
            return
        time.sleep(0.2)
    counts = dict(WebhookEvent.objects.values_list("status").annotate(n=Count("pk")).order_by())
    raise AssertionError(f"not all applied in {timeout} s: {counts}")


def kill_mid_batch(base_url: str, events: list[dict], worker: Worker) -> None:
    """Post the events while ``worker`` applies them; SIGKILL it once a fifth are applied."""
    posted: list[int] = []
    poster = threading.Thread(target=lambda: posted.extend(post_all(base_url, events)))
    poster.start()
    unique = len({event["id"] for event in events})
    deadline = time.monotonic() + 60
    while WebhookEvent.objects.filter(status="processed").count() < unique // 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    worker.kill()
    poster.join(timeout=120)
    assert posted == [200] * len(events)
    assert WebhookEvent.objects.exclude(status="processed").exists(), "the worker was done before it was killed"


def kill_then_recover(base_url: str, lifecycles, events: list[dict], start_worker) -> None:
    """A worker killed mid-batch, then a new one and the sweeper: every event applied once, in order."""
    kill_mid_batch(base_url, events, start_worker())
    replacement = start_worker()
    try:
        call_command("processwebhooks", "--sweep", "--older-than", "0")
        wait_until_applied(len({event["id"] for event in events}))
    finally:
        replacement.stop()
    assert_applied_once_in_order(lifecycles, events)


def assert_applied_once_in_order(lifecycles, events) -> None:
    unique = {event["id"] for event in events}
    stored = list(WebhookEvent.objects.order_by("pk"))
    assert len(stored) == len(unique)
    assert {row.status for row in stored} == {"processed"}
    # Applied once: a redelivery, a second task or a swept event found it done.
    assert {row.attempts for row in stored} == {1}
    # Each customer's events were applied in the order they came.
    by_customer: dict[str, list] = {}
    for row in stored:
        by_customer.setdefault(row.customer_key, []).append(row.processed_at)
    for times in by_customer.values():
        assert times == sorted(times)
    for lifecycle in lifecycles:
        customer = Customer.objects.get(pk=lifecycle.customer.pk)
        subscription = customer.subscriptions.get()
        assert (subscription.status, subscription.quantity) == ("canceled", 3)
        order = customer.orders.get()
        assert (order.status, order.subscription_id) == ("paid", subscription.pk)
        assert customer.invoices.get().subscription_id == subscription.pk


# Each broker with the request sending each task; Redis with the background publisher too.
CELERY_RUNS = [
    *(pytest.param(*param.values, "request", id=param.id, marks=param.marks) for param in BROKERS),
    pytest.param(REDIS, "background", id="redis-background", marks=needs_redis),
]


@pytest.mark.parametrize("broker,enqueue", CELERY_RUNS)
def test_celery_workers_apply_every_event_once_in_order(live_server, celery_on, stream, broker, enqueue):
    lifecycles, events = stream
    queue = celery_on(broker, enqueue)
    worker = celery_worker(queue, broker)
    try:
        statuses = post_all(live_server.url, events)
        assert statuses == [200] * len(events)
        wait_until_applied(len({event["id"] for event in events}))
    finally:
        output = worker.stop()
    try:
        assert_applied_once_in_order(lifecycles, events)
    except AssertionError:
        print(output)
        raise


@needs_redis
def test_a_celery_worker_killed_mid_batch_loses_nothing(live_server, celery_on, stream):
    lifecycles, events = stream
    queue = celery_on(REDIS)
    kill_then_recover(live_server.url, lifecycles, events, lambda: celery_worker(queue, REDIS))


@pytest.mark.parametrize("enqueue", ["request", "background"])
def test_django_tasks_database_workers_apply_every_event_once(live_server, settings, stream, enqueue):
    lifecycles, events = stream
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "WEBHOOK_PROCESSING": "tasks", "WEBHOOK_ENQUEUE": enqueue}
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.backend.DatabaseBackend"}}
    kill_then_recover(live_server.url, lifecycles, events, tasks_worker)
