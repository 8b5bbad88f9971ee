"""
Local subscriptions: the queries over a customer's subscriptions, and which actions a
subscription's state allows.

Owns which subscriptions grant their plan now (trialing, active, past due) and the action
rules. The subscriptions themselves are written from provider events by ``events``.
"""

from __future__ import annotations

from django.db.models import QuerySet

from django_bob_payments.exceptions import ActionNotAllowed
from django_bob_payments.models import Customer, Product, Subscription

Status = Subscription.Status

# The actions on a subscription.
ACTIONS = ("cancel_now", "cancel_at_period_end", "resume", "change_plan_now", "change_plan_at_period_end")
# States that allow only an immediate cancel: the first payment is not made (incomplete), or
# a trial ended without a payment method (paused).
ONLY_CANCELABLE = {Status.INCOMPLETE: "subscription_incomplete", Status.PAUSED: "subscription_paused"}


class SubscriptionService:
    """Queries over a customer's subscriptions."""

    def entitled(self, customer: Customer) -> QuerySet[Subscription]:
        """Subscriptions that currently grant their plan (trialing, active, past due)."""
        return customer.subscriptions.filter(status__in=Subscription.ENTITLED_STATUSES)

    def count_entitled_for_product(
        self, customer: Customer, product: Product, *, excluding: Subscription | None = None
    ) -> int:
        held = self.entitled(customer).filter(pricing__product=product)
        if excluding is not None:
            held = held.exclude(pk=excluding.pk)
        return held.count()

    @staticmethod
    def is_canceling(subscription: Subscription) -> bool:
        """Whether the subscription is set to end: at the period end, or at a date."""
        return subscription.cancel_at_period_end or subscription.cancel_at is not None

    def check_action(self, subscription: Subscription, action: str) -> None:
        """
        Raise ActionNotAllowed (a 409 with a code) when the subscription's state does not
        allow ``action``, before any provider call:

        - an ended subscription (canceled, incomplete_expired) allows nothing: ``subscription_ended``;
        - an incomplete or paused one allows only an immediate cancel: ``subscription_incomplete``,
          ``subscription_paused``;
        - resume needs a subscription set to end: ``not_canceling``.
        """
        if action not in ACTIONS:
            raise ValueError(f"Unknown subscription action: {action}")
        if subscription.status in (Status.CANCELED, Status.INCOMPLETE_EXPIRED):
            # Stripe refuses every change but metadata on an ended subscription.
            raise ActionNotAllowed("This subscription has ended.", code="subscription_ended")
        if subscription.status in ONLY_CANCELABLE and action != "cancel_now":
            raise ActionNotAllowed(
                f"A {subscription.status} subscription can only be canceled now.",
                code=ONLY_CANCELABLE[subscription.status],
            )
        if action == "resume" and not self.is_canceling(subscription):
            raise ActionNotAllowed("This subscription is not set to cancel.", code="not_canceling")
