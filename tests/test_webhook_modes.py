"""
WEBHOOK_PROCESSING: inline, or stored and handed to a task engine. These run on any
database, with Django's Tasks framework's immediate backend or a broker that is down; the
real workers are in test_webhook_queue.py.
"""

import datetime
import importlib.util
import logging

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from django_bob_payments.checks import check_settings
from django_bob_payments.exceptions import BobPaymentsImproperlyConfigured
from django_bob_payments.interactors import get_payment_interactor, webhook_processing
from django_bob_payments.models import Subscription, WebhookEvent
from django_bob_payments.testing import post_event
from tests.lifecycle import Lifecycle

pytestmark = pytest.mark.django_db


@pytest.fixture
def lifecycle(customer, catalog):
    return Lifecycle(customer, catalog)


@pytest.fixture
def mode(settings):
    def use(processing, **more):
        settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "WEBHOOK_PROCESSING": processing, **more}

    return use


@pytest.fixture
def broker_down(mode, settings):
    """Celery mode, its broker a port where nothing listens."""
    from tests.celery_app import app

    mode("celery")
    app.conf.broker_url = "redis://127.0.0.1:9/0"
    app._after_fork()
    app.set_current()
    yield
    app.conf.broker_url = settings.CELERY_BROKER_URL
    app._after_fork()


def test_tasks_mode_stores_then_the_task_applies(client, mode, lifecycle):
    mode("tasks")
    for event in lifecycle.events:
        response = post_event(client, event)
        assert response.status_code == 200
        # The answer is given once the event is stored: what the worker did is not waited for.
        assert response.json()["status"] == "pending"
    # The immediate backend ran each task as it was enqueued.
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert Subscription.objects.get().status == "canceled"


def test_a_redelivery_of_an_applied_event_enqueues_nothing(client, mode, lifecycle, monkeypatch):
    mode("tasks")
    post_event(client, lifecycle.customer_created)
    handed = []
    monkeypatch.setattr(type(get_payment_interactor()), "enqueue_webhook_event", lambda self, e: handed.append(e))
    response = post_event(client, lifecycle.customer_created)
    assert response.json() == {"id": lifecycle.customer_created["id"], "status": "processed", "duplicate": True}
    assert handed == []


def test_with_the_broker_down_the_event_is_stored_and_the_sweeper_applies_it(client, broker_down, lifecycle, caplog):
    with caplog.at_level(logging.WARNING, logger="django_bob_payments.interactors"):
        response = post_event(client, lifecycle.customer_created)
    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert "stored but could not be queued" in caplog.text
    assert WebhookEvent.objects.get().status == "pending"
    # The sweeper cannot hand it out either while the broker is down, and says so.
    assert get_payment_interactor().sweep_webhook_events(datetime.timedelta(0)) == 0
    assert WebhookEvent.objects.get().status == "pending"


def test_the_sweeper_takes_only_what_is_old_enough(client, mode, lifecycle, settings):
    mode("tasks")
    inbox = get_payment_interactor().get_webhook_inbox("stripe")
    old = inbox.store(lifecycle.customer_created).event
    new = inbox.store(lifecycle.subscription_created).event
    WebhookEvent.objects.filter(pk=old.pk).update(received_at=timezone.now() - datetime.timedelta(minutes=11))
    call_command("processwebhooks", "--sweep", verbosity=0)  # WEBHOOK_SWEEP_AFTER: 10 minutes
    assert dict(WebhookEvent.objects.values_list("pk", "status")) == {old.pk: "processed", new.pk: "pending"}
    call_command("processwebhooks", "--sweep", "--older-than", "0", verbosity=0)
    assert WebhookEvent.objects.get(pk=new.pk).status == "processed"


def test_inline_the_sweeper_applies_in_place(mode, lifecycle):
    mode("inline")
    stored = get_payment_interactor().get_webhook_inbox("stripe").store(lifecycle.customer_created).event
    assert get_payment_interactor().sweep_webhook_events(datetime.timedelta(0)) == 1
    assert WebhookEvent.objects.get(pk=stored.pk).status == "processed"


def test_a_worker_applies_the_customers_earlier_events_first(lifecycle):
    inbox = get_payment_interactor().get_webhook_inbox("stripe")
    stored = [inbox.store(event).event for event in lifecycle.events[:4]]
    # The task of the fourth event runs first (another worker is slow, a message was lost).
    applied = get_payment_interactor().apply_queued_webhook_event(stored[3].pk)
    assert applied.status == "processed"
    rows = list(WebhookEvent.objects.order_by("pk"))
    assert [row.status for row in rows] == ["processed"] * 4
    assert [row.processed_at for row in rows] == sorted(row.processed_at for row in rows)
    # The tasks of the others find their event applied and do nothing.
    for row in stored[:3]:
        assert get_payment_interactor().apply_queued_webhook_event(row.pk).attempts == 1
    assert get_payment_interactor().apply_queued_webhook_event(10**9) is None


def test_a_batch_applies_each_customers_events_in_order_with_two_queries_more(
    make_user, catalog, django_assert_num_queries
):
    from django_bob_payments.models import Customer

    inbox = get_payment_interactor().get_webhook_inbox("stripe")
    first, second = (Lifecycle(Customer.objects.get(user=make_user()), catalog, index=index) for index in (1, 2))
    stored = [inbox.store(event).event.pk for pair in zip(first.events, second.events, strict=True) for event in pair]
    # A batch of the first customer's last event and the second's first three, given out of
    # order and with a key twice; the first customer's earlier events are in another batch.
    batch = [stored[10], stored[5], stored[1], stored[3], stored[5], 10**9]
    rows = get_payment_interactor().apply_queued_webhook_events(batch)
    assert [row.pk for row in rows] == batch[:5]
    assert {row.status for row in rows} == {"processed"}
    by_pk = dict(WebhookEvent.objects.values_list("pk", "processed_at"))
    applied = [pk for pk in stored if by_pk[pk] is not None]
    assert set(applied) == {*stored[0:11:2], stored[1], stored[3], stored[5]}
    for events in (stored[0::2], stored[1::2]):
        times = [by_pk[pk] for pk in events if by_pk[pk] is not None]
        assert times == sorted(times)
    assert Subscription.objects.get(customer=first.customer).status == "canceled"
    # A batch applied already is read once (the events' heads), and nothing else.
    with django_assert_num_queries(1):
        rows = get_payment_interactor().apply_queued_webhook_events(stored[:4])
    assert {row.attempts for row in rows} == {1}


def test_a_celery_task_that_fails_is_tried_again_later(lifecycle, monkeypatch):
    from celery.exceptions import Retry

    from django_bob_payments import tasks
    from django_bob_payments.services.events import EventApplier

    inbox = get_payment_interactor().get_webhook_inbox("stripe")
    stored = inbox.store(lifecycle.customer_created).event

    def down(self, context):
        raise ConnectionError("database restarting")

    monkeypatch.setattr(EventApplier, "apply", down)
    with pytest.raises(Retry):
        tasks.apply_webhook_event.apply(args=[stored.pk], throw=True)
    assert WebhookEvent.objects.get(pk=stored.pk).status == "failed"
    monkeypatch.undo()
    assert tasks.apply_webhook_event.apply(args=[stored.pk]).get() == "processed"


def test_the_failed_events_of_a_celery_batch_are_tried_again_one_by_one(lifecycle, monkeypatch, settings):
    from django_bob_payments import tasks
    from django_bob_payments.services.events import EventApplier

    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "WEBHOOK_QUEUE": "bob-retries"}
    inbox = get_payment_interactor().get_webhook_inbox("stripe")
    stored = [inbox.store(event).event.pk for event in lifecycle.events[:2]]
    applier = EventApplier.apply

    def customer_events_fail(self, context):
        if context.event.kind == "customer":
            raise ConnectionError("database restarting")
        applier(self, context)

    sent = []
    monkeypatch.setattr(EventApplier, "apply", customer_events_fail)
    monkeypatch.setattr(tasks.apply_webhook_event, "apply_async", lambda **options: sent.append(options))
    assert tasks.apply_webhook_events.apply(args=[stored]).get() == 1
    assert dict(WebhookEvent.objects.values_list("pk", "status")) == {stored[0]: "failed", stored[1]: "processed"}
    assert sent == [{"args": [stored[0]], "countdown": tasks.RETRY_DELAYS[0], "queue": "bob-retries"}]


def test_an_unknown_mode_is_a_system_check_error(settings, mode):
    mode("threads")
    assert [message.id for message in check_settings()] == ["bob_payments.E012"]
    with pytest.raises(BobPaymentsImproperlyConfigured, match="one of inline, celery, tasks"):
        webhook_processing()


@pytest.mark.parametrize(
    ("processing", "module", "extra"),
    [("celery", "celery", "django-bob-payments[celery]"), ("tasks", "django.tasks", "django-bob-payments[tasks]")],
)
def test_a_missing_engine_names_the_extra_to_install(mode, monkeypatch, processing, module, extra):
    mode(processing)
    real = importlib.util.find_spec
    hidden = {module, "django_tasks"} if processing == "tasks" else {module}
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in hidden else real(name, *a))
    (message,) = check_settings()
    assert message.id == "bob_payments.E013"
    assert extra in message.msg
    with pytest.raises(BobPaymentsImproperlyConfigured, match=extra.replace("[", r"\[")):
        webhook_processing()


def test_the_sweep_options_are_checked():
    with pytest.raises(CommandError, match="goes with --sweep"):
        call_command("processwebhooks", "--older-than", "5")
    with pytest.raises(CommandError, match="0 or more"):
        call_command("processwebhooks", "--sweep", "--older-than", "-1")


def test_a_delivery_while_the_engine_is_missing_is_a_json_500(client, mode, monkeypatch, lifecycle):
    mode("celery")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "celery" else real(name, *a))
    response = post_event(client, lifecycle.customer_created)
    # Our configuration, not Stripe's mistake: a 500, so that Stripe delivers it again once fixed.
    assert response.status_code == 500
    assert response.json() == {"error": "Webhooks are not configured correctly on this site.", "code": "not_configured"}
