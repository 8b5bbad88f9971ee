"""
Every provider customer's fate is known: events for a Stripe customer we have not linked
yet resolve it by our metadata (read once from Stripe when the event lacks it), never by
guessing; a deleted Stripe customer is a tombstone that late events never bring back; and
events that change nothing create nothing.
"""

import io

import pytest
from django.core.management import call_command
from django.test import Client

from django_bob_payments.models import (
    BillingInformation,
    Customer,
    ExternalCustomer,
    ExternalPricing,
    Order,
    Subscription,
    WebhookEvent,
)
from django_bob_payments.providers.stripe import StripeProvider
from django_bob_payments.testing import build_event, post_event, stripe_objects

pytestmark = pytest.mark.django_db


def sync():
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("synchronizepayments", stdout=stdout, stderr=stderr, verbosity=1)
    return stdout.getvalue()


@pytest.fixture
def payer(user):
    customer = Customer.objects.get(user=user)
    BillingInformation.objects.create(
        customer=customer, name="Payer GmbH", email="pay@example.com", country="DE", vat_number="DE123456789"
    )
    return customer


def subscription_created(customer_id, pricing, payer, **fields):
    price_id = ExternalPricing.objects.get(pricing=pricing).external_id
    price = stripe_objects.price("prod_pro", pricing.amount, id=price_id, metadata={"bob_payments_id": str(pricing.pk)})
    subscription = stripe_objects.subscription(
        customer_id, price, metadata={"bob_payments_customer_id": str(payer.pk)}, **fields
    )
    return build_event("customer.subscription.created", subscription)


def test_events_during_the_sync_leave_no_ghost(stripe_emulator, monkeypatch, catalog, payer):
    """A tax-ID event and a subscription event arrive while the sync is creating the customer."""
    original = StripeProvider.create_customer
    client = Client()

    def create_then_events_arrive(self, local_id, fields, idempotency_key):
        remote = original(self, local_id, fields, idempotency_key)
        tax_id = stripe_objects.tax_id(remote.external_id, "DE123456789", status="verified")
        assert post_event(client, build_event("customer.tax_id.created", tax_id)).status_code == 200
        assert post_event(client, subscription_created(remote.external_id, catalog, payer)).status_code == 200
        return remote

    monkeypatch.setattr(StripeProvider, "create_customer", create_then_events_arrive)
    sync()
    monkeypatch.undo()
    assert Customer.objects.count() == 1
    assert Subscription.objects.get().customer == payer
    assert BillingInformation.objects.get().provider_vat_status == "verified"
    # The Stripe customer was read once, to learn whose it is.
    assert stripe_emulator.count("GET", "/v1/customers/:id") == 1
    # A second run has nothing to do.
    writes = stripe_emulator.write_calls
    sync()
    assert stripe_emulator.write_calls == writes


def test_a_dashboard_customer_is_not_cloned_by_the_sync(stripe_emulator, client, catalog):
    """A customer made in Stripe's dashboard (no metadata of ours) who subscribes stays one customer."""
    sync()
    remote = StripeProvider().build_client().v1.customers.create({"email": "walkin@example.com"})
    event = subscription_created(remote.id, catalog, Customer(pk=0))
    event["data"]["object"]["metadata"] = {}
    assert post_event(client, event).status_code == 200
    ghost = Customer.objects.get(external_ids__external_id=remote.id)
    assert ghost.user is None and Subscription.objects.get().customer == ghost
    creates = stripe_emulator.count("POST", "/v1/customers")
    sync()
    assert stripe_emulator.count("POST", "/v1/customers") == creates
    assert ExternalCustomer.objects.get(customer=ghost).external_id == remote.id


def test_an_event_of_an_unknown_customer_that_changes_nothing_creates_nothing(stripe_emulator, client):
    tax_id = stripe_objects.tax_id("cus_nobody", "DE123456789")
    assert post_event(client, build_event("customer.tax_id.created", tax_id)).status_code == 200
    session = stripe_objects.checkout_session(customer_id="cus_nobody", status="complete", payment_status="paid")
    assert post_event(client, build_event("checkout.session.completed", session)).status_code == 200
    assert not Customer.objects.exists()
    assert not ExternalCustomer.objects.exists()


def test_a_deleted_stripe_customer_is_a_tombstone(stripe_emulator, client, catalog, payer):
    sync()
    link = ExternalCustomer.objects.get(customer=payer)
    old_id = link.external_id
    subscription = subscription_created(old_id, catalog, payer, created=1_800_000_000)
    post_event(client, subscription)
    StripeProvider().delete_customer(old_id)  # in the dashboard
    deleted = stripe_objects.customer(id=old_id, metadata={"bob_payments_id": str(payer.pk)})
    post_event(client, build_event("customer.deleted", deleted, created=1_800_000_100))
    link.refresh_from_db()
    assert link.deleted_at is not None and link.last_event_created == 1_800_000_100
    # Stripe cancels the deleted customer's subscriptions: those events still apply.
    canceled = dict(subscription["data"]["object"], status="canceled", ended_at=1_800_000_100)
    post_event(client, build_event("customer.subscription.deleted", canceled, created=1_800_000_100))
    assert Subscription.objects.get().status == "canceled"
    # A late, older event never brings the deleted customer back.
    post_event(client, build_event("customer.updated", deleted, created=1_800_000_050))
    link.refresh_from_db()
    assert link.deleted_at is not None
    # The next checkout or sync makes a fresh Stripe customer, and late events of the old one
    # neither re-link it nor make a new local customer.
    sync()
    link.refresh_from_db()
    assert link.external_id != old_id and link.deleted_at is None
    tax_id = stripe_objects.tax_id(old_id, "DE123456789")
    post_event(client, build_event("customer.tax_id.updated", tax_id, created=1_800_000_200))
    assert Customer.objects.count() == 1
    assert ExternalCustomer.objects.get().external_id == link.external_id


def test_a_checkout_for_a_customer_whose_stripe_customer_was_deleted_makes_a_fresh_one(
    stripe_emulator, catalog, payer, client, settings
):
    settings.BOB_PAYMENTS = {
        **settings.BOB_PAYMENTS,
        "CHECKOUT_SUCCESS_URL": "https://shop.example/ok",
        "CHECKOUT_CANCEL_URL": "https://shop.example/cancel",
    }
    sync()
    old_id = ExternalCustomer.objects.get(customer=payer).external_id
    StripeProvider().delete_customer(old_id)
    deleted = stripe_objects.customer(id=old_id, metadata={"bob_payments_id": str(payer.pk)})
    post_event(client, build_event("customer.deleted", deleted))
    client.force_login(payer.user)
    response = client.post("/api/payment/checkout/", {"pricing": catalog.pk}, content_type="application/json")
    assert response.status_code == 201, response.content
    assert ExternalCustomer.objects.get(customer=payer).external_id != old_id
    assert Order.objects.get().customer == payer
    assert WebhookEvent.objects.get().status == "processed"


def test_tax_id_events_have_a_watermark(client, payer):
    ExternalCustomer.objects.create(customer=payer, provider="stripe", external_id="cus_tax")
    tax_id = stripe_objects.tax_id("cus_tax", "DE123456789", id="txi_1", status="pending")
    created = build_event("customer.tax_id.created", tax_id, created=1_800_000_000)
    verified = build_event(
        "customer.tax_id.updated", dict(tax_id, verification={"status": "verified"}), created=1_800_000_090
    )
    post_event(client, verified)
    post_event(client, created)  # late, and older
    assert BillingInformation.objects.get().provider_vat_status == "verified"
    # Same second: a created event never overwrites an update of its second.
    same = build_event("customer.tax_id.created", tax_id, created=1_800_000_090)
    post_event(client, same)
    assert BillingInformation.objects.get().provider_vat_status == "verified"
    # A deletion is final for that tax ID; a new tax ID of the same number starts afresh.
    post_event(client, build_event("customer.tax_id.deleted", tax_id, created=1_800_000_100))
    post_event(client, verified)
    assert BillingInformation.objects.get().provider_vat_status == ""
    replacement = stripe_objects.tax_id("cus_tax", "DE123456789", id="txi_2", status="verified")
    post_event(client, build_event("customer.tax_id.created", replacement, created=1_800_000_200))
    assert BillingInformation.objects.get().provider_vat_status == "verified"
    # A late event of the replaced tax ID is older: it changes nothing.
    post_event(client, build_event("customer.tax_id.updated", dict(tax_id, id="txi_1"), created=1_800_000_150))
    assert BillingInformation.objects.get().provider_vat_status == "verified"


def test_the_first_event_of_a_stripe_customer_links_it_with_its_watermark(client, payer):
    """customer.created for a customer the sync made: linked by our metadata, the event recorded on the link."""
    remote = stripe_objects.customer(metadata={"bob_payments_id": str(payer.pk)})
    created = build_event("customer.created", remote, created=1_800_000_100)
    assert post_event(client, created).status_code == 200
    link = ExternalCustomer.objects.get(customer=payer)
    assert (link.external_id, link.last_event_id) == (remote["id"], created["id"])
    assert link.last_event_created == 1_800_000_100
    assert link.deleted_at is None
    # An older update, delivered late, is stale against that watermark; a newer one applies.
    older = build_event("customer.updated", remote, created=1_800_000_050)
    assert "stale" in WebhookEvent.objects.get(event_id=post_event(client, older).json()["id"]).outcome
    newer = build_event("customer.updated", remote, created=1_800_000_200)
    post_event(client, newer)
    link.refresh_from_db()
    assert (link.last_event_id, link.last_event_created) == (newer["id"], 1_800_000_200)
    assert ExternalCustomer.objects.count() == 1
