"""
Orders: a customer's intent to buy a pricing.

Owns the creation of pending orders, after the plan's limits allow the purchase, with the
amount the local catalog states. Payment attempts on them belong to ``payments``; moving
them forward from provider events belongs to ``events``.
"""

from __future__ import annotations

from django_bob_payments.models import Customer, Order, Pricing
from django_bob_payments.services.plans import PlanService


class OrderService:
    """Creates orders once the purchase passes the plan's limits."""

    def __init__(self, plans: PlanService | None = None) -> None:
        self.plans = plans or PlanService()

    def create(self, customer: Customer, pricing: Pricing, quantity: int = 1) -> Order:
        """A pending order for ``quantity`` of ``pricing``; raises PurchaseNotAllowed."""
        self.plans.check_purchase(customer, pricing, quantity)
        return Order.objects.create(
            customer=customer,
            pricing=pricing,
            quantity=quantity,
            currency=pricing.currency,
            amount_total=pricing.amount * quantity,
        )
