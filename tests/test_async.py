"""
The async API: each ``a…`` coroutine of the interactor works, webhooks applied by coroutines
stay exactly once and in order per customer, a slow VIES holds no other coroutine, and the
async webhook view serves through Django's ASGI handler.
"""

import asyncio
import json
import time

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient
from django.urls import path

from django_bob_payments import views
from django_bob_payments.interactors import get_payment_interactor
from django_bob_payments.models import BillingInformation, Customer, ExternalCustomer, Subscription, WebhookEvent
from django_bob_payments.testing import build_event, sign_payload, stripe_objects
from tests.lifecycle import Lifecycle, snapshot

pytestmark = pytest.mark.django_db

SECRET = "whsec_tests"

urlpatterns = [path("hook/", views.async_stripe_webhook)]


def run(coroutine_function, *args, **kwargs):
    """Run a coroutine from this (sync) test, with the ORM's thread-sensitive executor on this thread."""
    return async_to_sync(coroutine_function)(*args, **kwargs)


@pytest.fixture
def fake(settings):
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "PROVIDER": "fake"}


def test_acreate_user_billing_info_checks_vies_and_saves(customer, vies):
    vies.register("DE136695976")
    billing = run(
        get_payment_interactor().acreate_user_billing_info,
        customer,
        {"name": "Ann GmbH", "email": "ann@example.com", "country": "DE", "vat_number": "DE136695976"},
    )
    assert billing.pk and BillingInformation.objects.get().vat_status == "valid"


def test_avalidate_vies(vies):
    vies.register("DE136695976")
    assert run(get_payment_interactor().avalidate_vies, "DE136695976", "DE").status == "valid"


def test_a_slow_vies_does_not_hold_other_coroutines(vies):
    vies.register("DE136695976")
    vies.delay = 1.0

    async def both():
        started = time.monotonic()
        ticks = []

        async def ticker():
            for _ in range(5):
                await asyncio.sleep(0.05)
            ticks.append(time.monotonic() - started)

        verdict, _ = await asyncio.gather(get_payment_interactor().avalidate_vies("DE136695976", "DE"), ticker())
        return verdict, ticks[0], time.monotonic() - started

    verdict, ticker_done, total = run(both)
    assert verdict.status == "valid"
    assert ticker_done < 0.6 < total


def test_checkout_portal_and_subscription_actions_as_coroutines(fake, customer, catalog):
    interactor = get_payment_interactor()
    get_payment_interactor().synchronize()
    attempt, url = run(interactor.astart_checkout, customer, catalog, 1, "https://s.example/ok", "https://s.example/no")
    assert url.startswith("/api/payment/fake/checkout/")
    interactor.get_provider().complete_checkout(attempt.external_id)
    subscription = Subscription.objects.get(customer=customer)
    assert run(interactor.aget_customer_management_portal_link, customer, "https://s.example/back") == (
        "https://s.example/back"
    )
    assert run(interactor.acancel_subscription, subscription).cancel_at_period_end is True
    # The fake provider delivers its webhook at once: the row follows it.
    subscription.refresh_from_db()
    assert subscription.cancel_at_period_end is True
    assert run(interactor.aresume_subscription, subscription).cancel_at_period_end is False
    subscription.refresh_from_db()
    changed = run(interactor.achange_plan, subscription, catalog, 3)
    assert changed.quantity == 3
    assert Subscription.objects.get(pk=changed.pk).quantity == 3


def test_concurrent_coroutines_apply_each_event_once_in_order(catalog, make_user):
    """50 concurrent calls for 10 customers (5 events each, in order per customer, interleaved)."""
    lifecycles = [Lifecycle(Customer.objects.get(user=make_user()), catalog) for _ in range(10)]
    expected = {}
    for lifecycle in lifecycles:
        for event in lifecycle.events[:5]:
            get_payment_interactor().handle_webhook_from_stripe(json.loads(json.dumps(event)))
        expected[lifecycle.customer.pk] = snapshot(lifecycle.customer)
    WebhookEvent.objects.all().delete()
    Subscription.objects.all().delete()
    ExternalCustomer.objects.all().delete()
    for lifecycle in lifecycles:
        lifecycle.order.refresh_from_db()
        lifecycle.order.payment_attempts.all().delete()
        type(lifecycle.order).objects.filter(pk=lifecycle.order.pk).update(status="pending", paid_at=None)

    async def deliver_all():
        interleaved = [lifecycle.events[step] for step in range(5) for lifecycle in lifecycles]
        return await asyncio.gather(
            *(get_payment_interactor().ahandle_webhook_from_stripe(json.loads(json.dumps(e))) for e in interleaved)
        )

    results = run(deliver_all)
    assert len(results) == 50 and not any(result.failed or result.duplicate for result in results)
    assert WebhookEvent.objects.filter(status="processed").count() == 50
    assert {lifecycle.customer.pk: snapshot(lifecycle.customer) for lifecycle in lifecycles} == expected


def test_the_async_webhook_view_serves_through_the_asgi_handler(settings, customer, catalog):
    settings.ROOT_URLCONF = __name__
    lifecycle = Lifecycle(customer, catalog)
    client = AsyncClient()

    async def post(event):
        body = json.dumps(event)
        return await client.post(
            "/hook/",
            data=body,
            content_type="application/json",
            headers={"Stripe-Signature": sign_payload(body, SECRET)},
        )

    responses = [run(post, event) for event in lifecycle.events]
    assert [response.status_code for response in responses] == [200] * 6
    assert run(post, lifecycle.events[0]).json()["duplicate"] is True
    bad = build_event("customer.created", stripe_objects.customer())
    response = run(client.post, "/hook/", data=json.dumps(bad), content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (400, "missing_signature")
    assert Subscription.objects.get().status == "canceled"
