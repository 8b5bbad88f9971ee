"""
Plan limits and features, and the checks a purchase must pass.

Owns the entitlements snapshot a subscription to a product grants, the product's quantity
range, and the number of active subscriptions to a product a customer may hold.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from django_bob_payments.exceptions import PurchaseNotAllowed
from django_bob_payments.models import Customer, Order, PaymentAttempt, Pricing, Product, Subscription
from django_bob_payments.services.subscriptions import SubscriptionService


class PlanService:
    """Turns a product's limits into entitlements and enforces them before a purchase."""

    def __init__(self, subscriptions: SubscriptionService | None = None) -> None:
        self.subscriptions = subscriptions or SubscriptionService()

    def entitlements_for(self, product: Product, quantity: int = 1) -> dict[str, Any]:
        """The snapshot a subscription to ``quantity`` of ``product`` grants."""
        return self.combined_entitlements([(product, quantity)])

    def combined_entitlements(self, items: list[tuple[Product, int]]) -> dict[str, Any]:
        """
        What a subscription of several items (a plan and its add-ons, each a product and a
        quantity) grants: the union of their features, and their numeric limits added up,
        each times the item's quantity where its product grants that limit per unit (seats).
        """
        limits: dict[str, Any] = {}
        features: list[str] = []
        for product, quantity in items:
            per_unit = set(product.per_unit_limits or [])
            for name, value in (product.limits or {}).items():
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    limits.setdefault(name, value)
                    continue
                granted = value * quantity if name in per_unit else value
                previous = limits.get(name)
                limits[name] = granted + previous if isinstance(previous, (int, float)) else granted
            features.extend(feature for feature in product.features or [] if feature not in features)
        return {"limits": limits, "features": features}

    def check_quantity(self, product: Product, quantity: int) -> None:
        """Raise PurchaseNotAllowed when ``quantity`` is outside the product's range."""
        if quantity < product.min_quantity or (product.max_quantity is not None and quantity > product.max_quantity):
            upper = product.max_quantity if product.max_quantity is not None else "any"
            raise PurchaseNotAllowed(
                f"Quantity must be between {product.min_quantity} and {upper} for {product.name}.",
                code="quantity_out_of_range",
            )

    def check_purchase(
        self,
        customer: Customer,
        pricing: Pricing,
        quantity: int,
        *,
        replacing: Subscription | None = None,
        open_checkouts: bool = True,
    ) -> None:
        """
        Raise PurchaseNotAllowed when buying ``quantity`` of ``pricing`` breaks a limit: the
        product's quantity range, and its subscriptions per customer, counting the entitled
        ones and (unless ``open_checkouts`` is False) the checkouts still open. ``replacing``,
        on a plan change, is the subscription that moves to ``pricing``: it does not count
        against itself.
        """
        product = pricing.product
        self.check_quantity(product, quantity)
        allowed = product.max_subscriptions_per_customer
        if pricing.is_recurring and allowed is not None:
            held = self.subscriptions.count_entitled_for_product(customer, product, excluding=replacing)
            if open_checkouts:
                held += self.open_checkouts(customer, product).count()
            if held >= allowed:
                raise PurchaseNotAllowed(
                    f"This customer already has the maximum of {allowed} active subscription(s) to {product.name}.",
                    code="subscription_limit_reached",
                )

    def open_checkouts(self, customer: Customer, product: Product) -> QuerySet[PaymentAttempt]:
        """The customer's checkout sessions for ``product`` still open at the provider (not paid, not expired)."""
        return PaymentAttempt.objects.filter(
            order__customer=customer,
            order__pricing__product=product,
            order__status=Order.Status.PENDING,
            status=PaymentAttempt.Status.PENDING,
        )
