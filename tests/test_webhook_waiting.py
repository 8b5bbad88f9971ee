"""
No verified event is final without being applied: events that cannot apply yet (an API
version the handlers cannot read, a price missing from the catalog, a customer missing from
the payload) wait, are answered 2xx so Stripe stops retrying, are made loud, and apply once
they can; transient failures answer 500 so Stripe retries.
"""

import io
import logging

import pytest
from django.core.management import call_command

from django_bob_payments import signals
from django_bob_payments.models import (
    ExternalPricing,
    Subscription,
    WebhookEvent,
)
from django_bob_payments.services.events import EventApplier
from django_bob_payments.testing import build_event, post_event, stripe_objects
from tests.lifecycle import Lifecycle

pytestmark = pytest.mark.django_db


@pytest.fixture
def lifecycle(customer, catalog):
    return Lifecycle(customer, catalog)


def stored(event):
    return WebhookEvent.objects.get(event_id=event["id"])


def test_an_event_of_the_previous_month_of_the_same_release_is_applied(client, lifecycle):
    event = dict(lifecycle.subscription_created, api_version="2026-09-30.endive")
    response = post_event(client, event)
    assert (response.status_code, response.json()["status"]) == (200, "processed")
    assert Subscription.objects.get().status == "active"


def test_an_unreadable_version_waits_then_applies_once_the_setting_accepts_it(client, lifecycle, settings, caplog):
    event = dict(lifecycle.subscription_created, api_version="2025-03-31.basil")
    with caplog.at_level(logging.ERROR, logger="django_bob_payments.webhooks"):
        response = post_event(client, event)
    assert (response.status_code, response.json()["status"]) == (200, "waiting")
    assert "2025-03-31.basil" in stored(event).last_error
    assert not Subscription.objects.exists()
    assert any("waiting" in record.getMessage() for record in caplog.records)
    # Stripe's "Resend" is a duplicate: still waiting, still not applied.
    assert post_event(client, event).json() == {"id": event["id"], "status": "waiting", "duplicate": True}
    call_command("processwebhooks", event["id"], stdout=io.StringIO(), stderr=io.StringIO())
    assert stored(event).status == "waiting"
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "STRIPE_ACCEPTED_API_VERSIONS": ["2025-03-31.basil"]}
    call_command("processwebhooks", event["id"], stdout=io.StringIO())
    assert stored(event).status == "processed"
    assert Subscription.objects.get().status == "active"


def test_a_price_missing_from_the_catalog_waits_and_applies_after_the_sync(
    client,
    lifecycle,
    catalog,
    stripe_emulator,
    received,
):
    call_command("synchronizepayments", stdout=io.StringIO(), stderr=io.StringIO())
    price_id = ExternalPricing.objects.get(pricing=catalog).external_id
    # The link is lost (a restored backup, say), and the event's price carries no metadata.
    ExternalPricing.objects.all().delete()
    price = stripe_objects.price("prod_pro", 1900, id=price_id)
    subscription = stripe_objects.subscription(
        lifecycle.customer_id,
        price,
        id="sub_unknown_price",
        metadata={"bob_payments_customer_id": str(lifecycle.customer.pk)},
    )
    event = build_event("customer.subscription.created", subscription)
    response = post_event(client, event)
    assert (response.status_code, response.json()["status"]) == (200, "waiting")
    row = stored(event)
    assert price_id in row.last_error and row.attempts == 1
    assert received == ["webhook_event_failed"]
    assert not Subscription.objects.exists()
    # The sync links the price again (it carries our metadata at Stripe), then applies what waited.
    call_command("synchronizepayments", stdout=io.StringIO(), stderr=io.StringIO())
    assert stored(event).status == "processed"
    assert Subscription.objects.get().pricing == catalog


def test_an_invoice_without_a_customer_waits_with_a_2xx(client):
    invoice = stripe_objects.invoice(None, id="in_v2", total=100)
    event = build_event("invoice.paid", invoice)
    response = post_event(client, event)
    assert (response.status_code, response.json()["status"]) == (200, "waiting")
    assert "customer" in stored(event).last_error


def test_a_transient_failure_answers_500_and_is_retried(client, lifecycle, monkeypatch):
    def database_down(self, context):
        raise ConnectionError("database went away")

    monkeypatch.setattr(EventApplier, "handle_customer", database_down)
    assert post_event(client, lifecycle.customer_created).status_code == 500
    assert stored(lifecycle.customer_created).status == "failed"


def test_the_summary_counts_what_waits_and_what_failed(client, lifecycle):
    post_event(client, lifecycle.customer_created)
    post_event(client, dict(lifecycle.subscription_created, api_version="2025-03-31.basil"))
    out = io.StringIO()
    call_command("processwebhooks", "--summary", stdout=out)
    text = out.getvalue()
    assert "processed: 1" in text and "waiting: 1" in text and "failed: 0" in text
    assert "oldest waiting" in text


@pytest.fixture
def received():
    names = []

    def receiver(signal, **kwargs):
        names.append(signal_names[signal])

    signal_names = {signals.webhook_event_failed: "webhook_event_failed"}
    for signal in signal_names:
        signal.connect(receiver, weak=False)
    yield names
    for signal in signal_names:
        signal.disconnect(receiver)


@pytest.mark.parametrize("value", ["²", "١٢", "1.0", " 1", "-1", "99999999999999999999", "0"])
def test_metadata_ids_are_parsed_strictly(client, lifecycle, value):
    """A metadata ID that is not a plain positive integer names no local row: never an exception."""
    post_event(client, lifecycle.customer_created)
    event = lifecycle.subscription_created
    event["data"]["object"]["metadata"] = {"bob_payments_customer_id": value, "bob_payments_order_id": value}
    event["data"]["object"]["items"]["data"][0]["price"]["metadata"] = {"bob_payments_id": value}
    response = post_event(client, event)
    assert response.status_code == 200, response.content
    assert stored(event).status == "processed"
    assert Subscription.objects.get().pricing_id == ExternalPricing.objects.get().pricing_id


def test_local_pk_accepts_only_plain_positive_integers():
    from django_bob_payments.services.events import local_pk

    assert [local_pk(value) for value in ("7", 7, "0", "²", "07", "9" * 19, "", None, True)] == [
        7,
        7,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
    ]
