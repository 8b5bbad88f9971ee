"""
Payment attempts on orders.

Owns the record of each try at paying an order (a checkout session at the provider),
created before the provider is called, so that a failure has a row to land on.
"""

from __future__ import annotations

from django_bob_payments.models import Order, PaymentAttempt


class PaymentService:
    """Records each try at paying an order."""

    def start_attempt(self, order: Order, provider: str) -> PaymentAttempt:
        """A new attempt for the order's full amount, before the provider is called."""
        return PaymentAttempt.objects.create(
            order=order, provider=provider, amount=order.amount_total, currency=order.currency
        )
