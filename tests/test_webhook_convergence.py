"""
Webhooks converge on Stripe's final state whatever the delivery order, events of the same
second included: Stripe's ``created`` counts whole seconds and delivery order is not
guaranteed, so the payloads themselves (``previous_attributes``, terminal states, the
``*.created`` action) must order events of one second.
"""

import copy
import io
import json

import pytest
from django.core.management import call_command
from django.db import transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from django_bob_payments.interactors import get_payment_interactor
from django_bob_payments.models import (
    Customer,
    ExternalCustomer,
    Invoice,
    Order,
    Subscription,
    WebhookEvent,
)
from django_bob_payments.services.events import EventApplier
from django_bob_payments.testing import build_event, stripe_objects

pytestmark = pytest.mark.django_db

T = 1_800_000_000
EXAMPLES = 200


@pytest.fixture
def customer(user):
    """The user's customer, linked to its Stripe customer (invoices carry no metadata of ours)."""
    customer = Customer.objects.get(user=user)
    ExternalCustomer.objects.create(customer=customer, provider="stripe", external_id=f"cus_same{customer.pk}")
    return customer


def deliver(event):
    """Deliver one event as its JSON would arrive, through the interactor's inbox."""
    return get_payment_interactor().handle_webhook_from_stripe(json.loads(json.dumps(event)))


class SameSecondSubscription:
    """
    A subscription created incomplete, paid (active), set to cancel at the period end, given
    3 seats, then deleted, all within one second, with ``previous_attributes`` as Stripe
    renders them on each update.
    """

    def __init__(self, customer, pricing, created=T):
        price = stripe_objects.price(
            "prod_pro", pricing.amount, id="price_pro_monthly", metadata={"bob_payments_id": str(pricing.pk)}
        )
        metadata = {"bob_payments_customer_id": str(customer.pk)}
        self.customer_id = f"cus_same{customer.pk}"
        state = stripe_objects.subscription(
            self.customer_id,
            price,
            id=f"sub_same{customer.pk}",
            status="incomplete",
            current_period_start=created,
            current_period_end=created + 30 * 86400,
            metadata=metadata,
        )
        self.events = [build_event("customer.subscription.created", copy.deepcopy(state), created=created)]

        def update(previous, **changes):
            for key, value in changes.items():
                if key == "quantity":
                    state["items"]["data"][0]["quantity"] = value
                else:
                    state[key] = value
            event_type = "customer.subscription.deleted" if state["status"] == "canceled" else None
            self.events.append(
                build_event(
                    event_type or "customer.subscription.updated",
                    copy.deepcopy(state),
                    previous_attributes=None if event_type else previous,
                    created=created,
                )
            )

        update({"status": "incomplete"}, status="active")
        update({"cancel_at_period_end": False, "cancel_at": None}, cancel_at_period_end=True, cancel_at=created + 99)
        update({"items": {"data": [{"quantity": 1}]}}, quantity=3)
        update(None, status="canceled", canceled_at=created, ended_at=created)


class SameSecondInvoice:
    """An invoice created (draft), finalized (open), then paid or voided in one second."""

    def __init__(self, customer_id, end="paid", created=T):
        def invoice(status):
            return stripe_objects.invoice(customer_id, id="in_same", total=1900, number="SAME-1", status=status)

        last = ("invoice.paid", "paid") if end == "paid" else ("invoice.voided", "void")
        self.events = [
            build_event("invoice.created", invoice("draft"), created=created),
            build_event("invoice.finalized", invoice("open"), created=created),
            build_event(last[0], invoice(last[1]), created=created),
        ]


class SameSecondCheckout:
    """A checkout completed while its payment is still processing, then settled, in one second."""

    def __init__(self, customer, pricing, end="async_payment_succeeded", created=T):
        self.order = Order.objects.create(
            customer=customer, pricing=pricing, currency="eur", amount_total=pricing.amount
        )
        metadata = {"bob_payments_customer_id": str(customer.pk), "bob_payments_order_id": str(self.order.pk)}

        def session(payment_status):
            return stripe_objects.checkout_session(
                id=f"cs_same{self.order.pk}",
                customer_id=f"cus_same{customer.pk}",
                mode="payment",
                amount_total=pricing.amount,
                status="complete",
                payment_status=payment_status,
                client_reference_id=str(self.order.pk),
                metadata=metadata,
            )

        settled = "paid" if end == "async_payment_succeeded" else "unpaid"
        self.events = [
            build_event("checkout.session.completed", session("unpaid"), created=created),
            build_event(f"checkout.session.{end}", session(settled), created=created),
        ]


def subscription_state(customer):
    return [
        (sub.status, sub.quantity, sub.cancel_at_period_end, sub.cancel_at, sub.canceled_at, sub.ended_at)
        for sub in Subscription.objects.filter(customer=customer).order_by("pk")
    ]


def invoice_state(customer):
    return list(Invoice.objects.filter(customer=customer).values_list("external_id", "status"))


def checkout_state(order):
    order.refresh_from_db()
    return (order.status, [attempt.status for attempt in order.payment_attempts.all()])


def in_order_then_shuffled(build, state, deliveries):
    """The state after delivering in order, and after delivering ``deliveries`` (indexes)."""
    with transaction.atomic():
        lifecycle = build()
        for event in lifecycle.events:
            deliver(event)
        expected = state(lifecycle)
        transaction.set_rollback(True)
    with transaction.atomic():
        lifecycle = build()
        for index in deliveries:
            assert not deliver(lifecycle.events[index]).failed
        actual = state(lifecycle)
        transaction.set_rollback(True)
    return expected, actual


def deliveries_of(size):
    """Any order of ``size`` events, each delivered at least once and some twice or more."""
    return st.permutations(range(size)).flatmap(
        lambda order: st.lists(st.sampled_from(order), max_size=size).map(lambda extra: [*order, *extra])
    )


# Findings, one by one


def test_a_deleted_subscription_is_not_revived_by_an_update_of_the_same_second(customer, catalog):
    lifecycle = SameSecondSubscription(customer, catalog)
    deliver(lifecycle.events[0])
    deliver(lifecycle.events[-1])  # deleted
    deliver(lifecycle.events[1])  # updated to active, same second, delivered late
    subscription = Subscription.objects.get(customer=customer)
    assert subscription.status == Subscription.Status.CANCELED
    assert not Customer.objects.get(pk=customer.pk).has_active_subscription()


def test_a_created_event_does_not_overwrite_an_update_of_the_same_second(customer, catalog):
    lifecycle = SameSecondSubscription(customer, catalog)
    deliver(lifecycle.events[1])  # updated: active
    deliver(lifecycle.events[0])  # created: incomplete
    assert Subscription.objects.get(customer=customer).status == Subscription.Status.ACTIVE
    assert "stale" in WebhookEvent.objects.get(event_id=lifecycle.events[0]["id"]).outcome


def test_an_update_whose_previous_values_are_not_held_is_stale(customer, catalog):
    lifecycle = SameSecondSubscription(customer, catalog)
    deliver(lifecycle.events[0])
    deliver(lifecycle.events[2])  # set to cancel: its previous values (not canceling) are held
    deliver(lifecycle.events[1])  # incomplete -> active: but we hold active already
    subscription = Subscription.objects.get(customer=customer)
    assert (subscription.status, subscription.cancel_at_period_end) == ("active", True)


def test_a_paid_invoice_does_not_go_back_to_open_in_the_same_second(customer, catalog):
    lifecycle = SameSecondInvoice(f"cus_same{customer.pk}")
    deliver(lifecycle.events[2])  # paid
    deliver(lifecycle.events[1])  # finalized, same second
    assert invoice_state(customer) == [("in_same", "paid")]


def test_a_replayed_finalized_event_does_not_reopen_a_paid_invoice(customer, catalog, monkeypatch):
    lifecycle = SameSecondInvoice(f"cus_same{customer.pk}")
    deliver(lifecycle.events[0])
    original = EventApplier.handle_invoice
    monkeypatch.setattr(EventApplier, "handle_invoice", lambda self, context: 1 / 0)
    assert deliver(lifecycle.events[1]).failed
    monkeypatch.setattr(EventApplier, "handle_invoice", original)
    deliver(lifecycle.events[2])
    call_command("processwebhooks", lifecycle.events[1]["id"], stdout=io.StringIO())
    assert WebhookEvent.objects.get(event_id=lifecycle.events[1]["id"]).status == WebhookEvent.Status.PROCESSED
    assert invoice_state(customer) == [("in_same", "paid")]


def test_voided_and_uncollectible_invoices_are_recorded(customer, catalog):
    voided = SameSecondInvoice(f"cus_same{customer.pk}", end="void")
    for event in voided.events:
        deliver(event)
    assert invoice_state(customer) == [("in_same", "void")]
    uncollectible = build_event(
        "invoice.marked_uncollectible",
        stripe_objects.invoice(f"cus_same{customer.pk}", id="in_bad", total=500, status="uncollectible"),
        created=T + 5,
    )
    deliver(uncollectible)
    assert Invoice.objects.get(external_id="in_bad").status == Invoice.Status.UNCOLLECTIBLE


# Every order, every duplication


SETTINGS = hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(deliveries=deliveries_of(5))
def test_a_same_second_subscription_lifecycle_converges(customer, catalog, deliveries):
    expected, actual = in_order_then_shuffled(
        lambda: SameSecondSubscription(customer, catalog), lambda _: subscription_state(customer), deliveries
    )
    assert expected[0][0] == "canceled" and expected[0][1] == 3
    assert actual == expected


@SETTINGS
@given(deliveries=deliveries_of(4))
def test_a_same_second_subscription_that_stays_alive_converges(customer, catalog, deliveries):
    """Without the deletion: the last update must win, whatever arrives last."""

    def build():
        lifecycle = SameSecondSubscription(customer, catalog)
        lifecycle.events = lifecycle.events[:4]
        return lifecycle

    expected, actual = in_order_then_shuffled(build, lambda _: subscription_state(customer), deliveries)
    assert expected[0][:3] == ("active", 3, True)
    assert actual == expected


@SETTINGS
@given(deliveries=deliveries_of(3), end=st.sampled_from(["paid", "void"]))
def test_a_same_second_invoice_lifecycle_converges(customer, catalog, deliveries, end):
    expected, actual = in_order_then_shuffled(
        lambda: SameSecondInvoice(f"cus_same{customer.pk}", end=end),
        lambda _: invoice_state(customer),
        deliveries,
    )
    assert expected == [("in_same", end)]
    assert actual == expected


@SETTINGS
@given(deliveries=deliveries_of(2), end=st.sampled_from(["async_payment_succeeded", "async_payment_failed"]))
def test_a_same_second_checkout_lifecycle_converges(customer, catalog, deliveries, end):
    expected, actual = in_order_then_shuffled(
        lambda: SameSecondCheckout(customer, catalog, end=end),
        lambda lifecycle: checkout_state(lifecycle.order),
        deliveries,
    )
    assert expected[0] == ("paid" if end == "async_payment_succeeded" else "failed")
    assert actual == expected
