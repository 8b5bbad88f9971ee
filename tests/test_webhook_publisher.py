"""
WEBHOOK_ENQUEUE "background": the request hands the stored event's key to a thread of the
web process, which sends the tasks in batches after the commit. The real broker and
workers are in test_webhook_queue.py.
"""

import logging
import threading

import pytest
from django.db import transaction

from django_bob_payments import tasks
from django_bob_payments.checks import check_settings
from django_bob_payments.models import Subscription, WebhookEvent
from django_bob_payments.tasks import BackgroundPublisher
from django_bob_payments.testing import post_event
from tests.lifecycle import Lifecycle


class Recorder:
    """A send that records its batches; the first one waits until ``release`` is set."""

    def __init__(self, fail: int = 0, released: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()
        if released:
            self.release.set()
        self.fail = fail

    def __call__(self, batch: list[int]) -> None:
        self.release.wait(5)
        self.batches.append(batch)
        if self.fail:
            self.fail -= 1
            raise ConnectionError("Error 111 connecting to 127.0.0.1:9. Connection refused.")


def test_keys_are_sent_in_order_in_batches():
    send = Recorder()
    publisher = BackgroundPublisher(send, batch_size=50, linger=0.01)
    for pk in range(1, 121):
        publisher.submit(pk)
    send.release.set()
    assert publisher.flush(timeout=5)
    assert [pk for batch in send.batches for pk in batch] == list(range(1, 121))
    assert max(len(batch) for batch in send.batches) == 50
    # Gathered while the first send was busy: far fewer tasks than events.
    assert len(send.batches) <= 4


def test_a_batch_that_cannot_be_sent_is_logged_and_the_next_ones_still_go(caplog):
    send = Recorder(fail=1, released=True)
    publisher = BackgroundPublisher(send, linger=0)
    with caplog.at_level(logging.WARNING, logger="django_bob_payments.webhooks"):
        publisher.submit(1)
        assert publisher.flush(timeout=5)
        publisher.submit(2)
        assert publisher.flush(timeout=5)
    assert send.batches == [[1], [2]]
    assert "1 stored webhook events could not be queued" in caplog.text
    assert "the sweeper will hand them out" in caplog.text


def test_a_forked_process_starts_its_own_thread():
    send = Recorder(released=True)
    publisher = BackgroundPublisher(send, linger=0)
    publisher.submit(1)
    assert publisher.flush(timeout=5)
    first = publisher._thread
    publisher._pid = -1  # as a child of the fork sees it: the thread stayed in the parent
    publisher.submit(2)
    assert publisher.flush(timeout=5)
    assert publisher._thread is not first and publisher._thread.is_alive()
    # The thread left behind (here in the same process) stops instead of competing for keys.
    first.join(timeout=5)
    assert not first.is_alive()
    assert send.batches == [[1], [2]]


@pytest.fixture
def background(settings, monkeypatch):
    """Queued on the Tasks framework's immediate backend, handed over in the background; returns the sends."""
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "WEBHOOK_PROCESSING": "tasks", "WEBHOOK_ENQUEUE": "background"}
    submitted: list[int] = []
    monkeypatch.setattr(tasks.publisher, "submit", submitted.append)
    return submitted


@pytest.mark.django_db
def test_the_request_stores_and_hands_the_key_over_without_sending(
    client, background, customer, catalog, django_capture_on_commit_callbacks
):
    lifecycle = Lifecycle(customer, catalog)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_event(client, lifecycle.customer_created)
    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    stored = WebhookEvent.objects.get()
    assert background == [stored.pk]
    assert stored.status == "pending"
    # What the thread sends is the batch task: it applies the events in order.
    with django_capture_on_commit_callbacks(execute=True):
        for event in lifecycle.events[1:]:
            post_event(client, event)
    assert tasks.apply_webhook_events_task.call(background) == len(lifecycle.events)
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"processed"}
    assert Subscription.objects.get().status == "canceled"


@pytest.mark.django_db(transaction=True)
def test_the_key_is_handed_over_after_the_commit(background, customer, catalog):
    from django_bob_payments.interactors import get_payment_interactor

    event = Lifecycle(customer, catalog).customer_created
    with transaction.atomic():
        get_payment_interactor().handle_webhook_from_stripe(event)
        assert background == []
    assert background == [WebhookEvent.objects.get().pk]


@pytest.mark.django_db
def test_a_redelivery_of_an_applied_event_hands_nothing_over(
    client, background, customer, catalog, django_capture_on_commit_callbacks
):
    event = Lifecycle(customer, catalog).customer_created
    with django_capture_on_commit_callbacks(execute=True):
        post_event(client, event)
    tasks.apply_webhook_events_task.call(background)
    assert WebhookEvent.objects.get().status == "processed"
    with django_capture_on_commit_callbacks(execute=True):
        post_event(client, event)
    assert len(background) == 1


def test_an_unknown_enqueue_mode_is_a_system_check_error(settings):
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "WEBHOOK_PROCESSING": "celery", "WEBHOOK_ENQUEUE": "later"}
    errors = [message for message in check_settings(None) if message.id == "bob_payments.E014"]
    assert len(errors) == 1
    assert "'later'" in errors[0].msg
    assert "request, background" in errors[0].hint


def test_flush_sends_at_once_without_lingering():
    send = Recorder(released=True)
    publisher = BackgroundPublisher(send, linger=30)
    publisher.submit(1)
    assert publisher.flush(timeout=5) and send.batches == [[1]]
