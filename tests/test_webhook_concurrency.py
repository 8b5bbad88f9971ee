"""
Several processes deliver interleaved events of many customers at once, on a database with
row locks (PostgreSQL, MariaDB): nothing is lost, nothing deadlocks, and every customer ends
in the state of its events applied in order.
"""

import json
import multiprocessing
import os
import random

import pytest
from django.db import connection

from django_bob_payments.models import Customer, ExternalPricing, ExternalProduct, Pricing, Product, WebhookEvent
from django_bob_payments.testing import build_event
from tests.lifecycle import Lifecycle
from tests.webhook_worker import deliver

WORKERS = 4
CUSTOMERS = 50
UPDATES = 4


@pytest.mark.skipif(
    os.environ.get("BOB_TEST_DB", "sqlite") == "sqlite",
    reason="needs a database server with row locks shared by several processes (BOB_TEST_DB=postgres or mariadb)",
)
@pytest.mark.django_db(transaction=True)
def test_four_processes_fifty_customers(make_user):
    product = Product.objects.create(slug="pro", name="Pro", max_quantity=100, max_subscriptions_per_customer=None)
    pricing = Pricing.objects.create(product=product, amount=900, currency="eur", type="recurring", interval="month")
    ExternalProduct.objects.create(product=product, provider="stripe", external_id="prod_pro")
    ExternalPricing.objects.create(pricing=pricing, provider="stripe", external_id="price_pro")

    lifecycles = []
    events = []
    for index in range(CUSTOMERS):
        customer = Customer.objects.get(user=make_user())
        lifecycle = Lifecycle(customer, pricing, index=index)
        lifecycles.append(lifecycle)
        # Between "updated" (3 seats) and "deleted", more updates: 4, 5, ... seats.
        extra = []
        for step in range(UPDATES):
            obj = json.loads(json.dumps(lifecycle.subscription_updated["data"]["object"]))
            obj["items"]["data"][0]["quantity"] = 4 + step
            extra.append(
                build_event(
                    "customer.subscription.updated",
                    obj,
                    created=lifecycle.t0 + 4,
                    event_id=f"evt_{index}_{customer.pk}_4_{step}",
                )
            )
        events.extend(lifecycle.events + extra)
    random.Random(7).shuffle(events)
    bodies = [json.dumps(event) for event in events]

    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [
        context.Process(target=deliver, args=(connection.settings_dict["NAME"], bodies[worker::WORKERS], results))
        for worker in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    statuses = [status for _ in workers for status in results.get(timeout=600)]
    for worker in workers:
        worker.join(timeout=60)

    assert statuses.count(200) == len(events), sorted(set(statuses))
    assert WebhookEvent.objects.count() == len(events)
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"processed"}
    for lifecycle in lifecycles:
        customer = Customer.objects.get(pk=lifecycle.customer.pk)
        subscription = customer.subscriptions.get()
        # The deleted event is the newest: its snapshot (3 seats, canceled) wins over every update.
        assert (subscription.status, subscription.quantity) == ("canceled", 3)
        order = customer.orders.get()
        assert (order.status, order.subscription_id) == ("paid", subscription.pk)
        assert customer.invoices.get().subscription_id == subscription.pk
        assert list(customer.external_ids.values_list("external_id", flat=True)) == [lifecycle.customer_id]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the lookups are prefetched on PostgreSQL only")
@pytest.mark.django_db(transaction=True)
def test_lookups_read_before_the_customer_was_linked_are_read_again_under_its_lock(catalog, customer, monkeypatch):
    import threading

    from django_bob_payments.interactors import get_payment_interactor
    from django_bob_payments.models import Subscription
    from django_bob_payments.services.webhooks import WebhookInbox

    lifecycle = Lifecycle(customer, catalog)
    link_customer = WebhookInbox._link_customer

    def meanwhile(self, event, hint):
        # This delivery found the customer unlinked, so it read its lookups under no lock.
        # Another one applies the customer's first events and the subscription's creation.
        monkeypatch.setattr(WebhookInbox, "_link_customer", link_customer)

        def other_delivery():
            try:
                other = get_payment_interactor().get_webhook_inbox("stripe")
                for event in (lifecycle.customer_created, lifecycle.subscription_created):
                    assert other.receive(event).event.status == "processed"
            finally:
                connection.close()

        thread = threading.Thread(target=other_delivery)
        thread.start()
        thread.join()
        return link_customer(self, event, hint)

    monkeypatch.setattr(WebhookInbox, "_link_customer", meanwhile)
    result = get_payment_interactor().get_webhook_inbox("stripe").receive(lifecycle.subscription_updated)
    assert result.event.status == "processed", result.event.last_error
    assert Subscription.objects.get().quantity == 3
