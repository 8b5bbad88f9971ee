"""Payment attempts on orders."""

from __future__ import annotations

from django_bob_payments.models import Order, PaymentAttempt


class PaymentService:
    """Records each try at paying an order."""

    def start_attempt(self, order: Order, provider: str) -> PaymentAttempt:
        """A new attempt for the order's full amount, before the provider is called."""
        return PaymentAttempt.objects.create(
            order=order, provider=provider, amount=order.amount_total, currency=order.currency
        )
