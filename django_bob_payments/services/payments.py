"""
Payment attempts on orders.

Owns the record of each try at paying an order (a checkout session at the provider),
created before the provider is called, so that a failure has a row to land on.
"""

from __future__ import annotations

from django.utils import timezone

from django_bob_payments.models import Order, PaymentAttempt


class PaymentService:
    """Records each try at paying an order."""

    def start_attempt(self, order: Order, provider: str) -> PaymentAttempt:
        """A new attempt for the order's full amount, before the provider is called."""
        return PaymentAttempt.objects.create(
            order=order, provider=provider, amount=order.amount_total, currency=order.currency
        )

    def close(self, attempt: PaymentAttempt, attempt_status: str, order_status: str, **fields: object) -> None:
        """
        Record that the provider closed (or never made) the attempt's session: the attempt
        and its order, if still open, take the given statuses. Two conditional updates, so a
        webhook that moved them on meanwhile is not undone.
        """
        now = timezone.now()
        open_statuses = (PaymentAttempt.Status.CREATED, PaymentAttempt.Status.PENDING)
        PaymentAttempt.objects.filter(pk=attempt.pk, status__in=open_statuses).update(
            status=attempt_status, updated_at=now, **fields
        )
        Order.objects.filter(pk=attempt.order_id, status=Order.Status.PENDING).update(
            status=order_status, updated_at=now
        )
