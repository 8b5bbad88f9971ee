"""
Local subscriptions: the queries over a customer's subscriptions.

Owns which subscriptions grant their plan now (trialing, active, past due). The
subscriptions themselves are written from provider events by ``events``.
"""

from __future__ import annotations

from django.db.models import QuerySet

from django_bob_payments.models import Customer, Product, Subscription


class SubscriptionService:
    """Queries over a customer's subscriptions."""

    def entitled(self, customer: Customer) -> QuerySet[Subscription]:
        """Subscriptions that currently grant their plan (trialing, active, past due)."""
        return customer.subscriptions.filter(status__in=Subscription.ENTITLED_STATUSES)

    def count_entitled_for_product(self, customer: Customer, product: Product) -> int:
        return self.entitled(customer).filter(pricing__product=product).count()
