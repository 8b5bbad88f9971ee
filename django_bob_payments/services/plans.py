"""
Plan limits and features, and the checks a purchase must pass.

Owns the entitlements snapshot a subscription to a product grants, the product's quantity
range, and the number of active subscriptions to a product a customer may hold.
"""

from __future__ import annotations

from typing import Any

from django_bob_payments.exceptions import PurchaseNotAllowed
from django_bob_payments.models import Customer, Pricing, Product
from django_bob_payments.services.subscriptions import SubscriptionService


class PlanService:
    """Turns a product's limits into entitlements and enforces them before a purchase."""

    def __init__(self, subscriptions: SubscriptionService | None = None) -> None:
        self.subscriptions = subscriptions or SubscriptionService()

    def entitlements_for(self, product: Product) -> dict[str, Any]:
        """The snapshot a subscription to ``product`` grants."""
        return {"limits": dict(product.limits or {}), "features": list(product.features or [])}

    def check_quantity(self, product: Product, quantity: int) -> None:
        """Raise PurchaseNotAllowed when ``quantity`` is outside the product's range."""
        if quantity < product.min_quantity or (product.max_quantity is not None and quantity > product.max_quantity):
            upper = product.max_quantity if product.max_quantity is not None else "any"
            raise PurchaseNotAllowed(
                f"Quantity must be between {product.min_quantity} and {upper} for {product.name}.",
                code="quantity_out_of_range",
            )

    def check_purchase(self, customer: Customer, pricing: Pricing, quantity: int) -> None:
        """Raise PurchaseNotAllowed when buying ``quantity`` of ``pricing`` breaks a limit."""
        product = pricing.product
        self.check_quantity(product, quantity)
        allowed = product.max_subscriptions_per_customer
        if pricing.is_recurring and allowed is not None:
            if self.subscriptions.count_entitled_for_product(customer, product) >= allowed:
                raise PurchaseNotAllowed(
                    f"This customer already has the maximum of {allowed} active subscription(s) to {product.name}.",
                    code="subscription_limit_reached",
                )
