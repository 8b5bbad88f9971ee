"""A customer's billing lifecycle as Stripe would deliver it, built with the public test helpers."""

from __future__ import annotations

from django_bob_payments.models import Customer, ExternalPricing, ExternalProduct, Order, Pricing, Subscription
from django_bob_payments.testing import build_event, stripe_objects

T0 = 1_800_000_000


class Lifecycle:
    """
    Events of one customer: customer created, checkout completed, subscription created,
    updated (3 seats), invoice paid, subscription deleted; ``created`` one second apart.
    """

    def __init__(self, customer: Customer, pricing: Pricing, *, index: int = 0, t0: int = T0) -> None:
        self.customer = customer
        self.pricing = pricing
        self.order = Order.objects.create(
            customer=customer, pricing=pricing, currency=pricing.currency, amount_total=pricing.amount
        )
        price_link = ExternalPricing.objects.get(pricing=pricing, provider="stripe")
        product_link = ExternalProduct.objects.get(product=pricing.product, provider="stripe")
        self.price = stripe_objects.price(
            product_link.external_id,
            pricing.amount,
            pricing.currency,
            id=price_link.external_id,
            metadata={"bob_payments_id": str(pricing.pk)},
        )
        self.customer_id = f"cus_life{customer.pk}x{index}"
        self.subscription_id = f"sub_life{customer.pk}x{index}"
        self.session_id = f"cs_test_life{customer.pk}x{index}"
        self.invoice_id = f"in_life{customer.pk}x{index}"
        self.t0 = t0
        metadata = {"bob_payments_customer_id": str(customer.pk), "bob_payments_order_id": str(self.order.pk)}
        start, end = t0 + 2, t0 + 2 + 30 * 86400
        self.customer_created = build_event(
            "customer.created",
            stripe_objects.customer(
                id=self.customer_id, email="c@example.com", metadata={"bob_payments_id": str(customer.pk)}
            ),
            created=t0,
            event_id=f"evt_{index}_{customer.pk}_1",
        )
        self.checkout_completed = build_event(
            "checkout.session.completed",
            stripe_objects.checkout_session(
                id=self.session_id,
                customer_id=self.customer_id,
                amount_total=pricing.amount,
                status="complete",
                payment_status="paid",
                subscription=self.subscription_id,
                client_reference_id=str(self.order.pk),
                metadata=metadata,
            ),
            created=t0 + 1,
            event_id=f"evt_{index}_{customer.pk}_2",
        )
        subscription = stripe_objects.subscription(
            self.customer_id,
            self.price,
            id=self.subscription_id,
            current_period_start=start,
            current_period_end=end,
            metadata=metadata,
        )
        self.subscription_created = build_event(
            "customer.subscription.created", subscription, created=t0 + 2, event_id=f"evt_{index}_{customer.pk}_3"
        )
        updated = stripe_objects.subscription(
            self.customer_id,
            self.price,
            id=self.subscription_id,
            quantity=3,
            current_period_start=start,
            current_period_end=end,
            metadata=metadata,
        )
        self.subscription_updated = build_event(
            "customer.subscription.updated",
            updated,
            previous_attributes={"items": {"data": [{"quantity": 1}]}},
            created=t0 + 3,
            event_id=f"evt_{index}_{customer.pk}_4",
        )
        self.invoice_paid = build_event(
            "invoice.paid",
            stripe_objects.invoice(
                self.customer_id,
                id=self.invoice_id,
                subscription_id=self.subscription_id,
                total=pricing.amount * 3,
                number=f"LIFE-{customer.pk}-{index}",
                subscription_metadata=metadata,
            ),
            created=t0 + 4,
            event_id=f"evt_{index}_{customer.pk}_5",
        )
        deleted = stripe_objects.subscription(
            self.customer_id,
            self.price,
            id=self.subscription_id,
            quantity=3,
            status="canceled",
            current_period_start=start,
            current_period_end=end,
            canceled_at=t0 + 5,
            ended_at=t0 + 5,
            metadata=metadata,
        )
        self.subscription_deleted = build_event(
            "customer.subscription.deleted", deleted, created=t0 + 5, event_id=f"evt_{index}_{customer.pk}_6"
        )

    @property
    def events(self) -> list[dict]:
        return [
            self.customer_created,
            self.checkout_completed,
            self.subscription_created,
            self.subscription_updated,
            self.invoice_paid,
            self.subscription_deleted,
        ]


def snapshot(customer: Customer) -> dict:
    """The billing state of a customer, to compare runs."""
    customer = Customer.objects.get(pk=customer.pk)
    subscriptions = [
        (
            sub.status,
            sub.quantity,
            sub.pricing_id,
            sub.current_period_end,
            sub.canceled_at,
            sub.ended_at,
            sorted(sub.external_ids.values_list("external_id", flat=True)),
        )
        for sub in Subscription.objects.filter(customer=customer).order_by("pk")
    ]
    orders = [
        (order.status, order.subscription is not None, [a.status for a in order.payment_attempts.all()])
        for order in customer.orders.order_by("pk")
    ]
    invoices = [(inv.number, inv.status, inv.total, inv.subscription_id is not None) for inv in customer.invoices.all()]
    links = sorted(customer.external_ids.values_list("external_id", flat=True))
    return {"subscriptions": subscriptions, "orders": orders, "invoices": invoices, "links": links}
