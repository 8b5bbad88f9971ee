"""
Subscriptions, mirrored from the provider's state, with the entitlements they grant.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from django_bob_payments.models.base import Provider, TimestampedModel
from django_bob_payments.models.catalog import Pricing
from django_bob_payments.models.customers import Customer


class Subscription(TimestampedModel):
    """
    A customer's recurring purchase, mirrored from the provider's state.

    ``pricing`` and ``quantity`` are the plan's: the item whose product is not an add-on.
    Every item, the plan's and the add-ons', is recorded in ``items``; ``entitlements``
    combines them.
    """

    class Status(models.TextChoices):
        INCOMPLETE = "incomplete", _("Incomplete")
        INCOMPLETE_EXPIRED = "incomplete_expired", _("Incomplete, expired")
        TRIALING = "trialing", _("Trialing")
        ACTIVE = "active", _("Active")
        PAST_DUE = "past_due", _("Past due")
        CANCELED = "canceled", _("Canceled")
        UNPAID = "unpaid", _("Unpaid")
        PAUSED = "paused", _("Paused")

    # Statuses in which the customer keeps the plan's entitlements.
    ENTITLED_STATUSES = (Status.TRIALING, Status.ACTIVE, Status.PAST_DUE)

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="subscriptions", verbose_name=_("customer")
    )
    pricing = models.ForeignKey(
        Pricing, on_delete=models.PROTECT, related_name="subscriptions", verbose_name=_("pricing")
    )
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.INCOMPLETE)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    entitlements = models.JSONField(
        _("entitlements"),
        default=dict,
        blank=True,
        help_text=_("The product's limits and features, as granted to this subscription."),
    )
    current_period_start = models.DateTimeField(_("current period start"), null=True, blank=True)
    current_period_end = models.DateTimeField(_("current period end"), null=True, blank=True)
    cancel_at_period_end = models.BooleanField(_("cancels at period end"), default=False)
    cancel_at = models.DateTimeField(_("cancels at"), null=True, blank=True)
    canceled_at = models.DateTimeField(_("canceled at"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    trial_start = models.DateTimeField(_("trial start"), null=True, blank=True)
    trial_end = models.DateTimeField(_("trial end"), null=True, blank=True)
    scheduled_pricing = models.ForeignKey(
        Pricing,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("scheduled pricing"),
        help_text=_("The plan a pending downgrade switches to at the end of the period."),
    )
    scheduled_quantity = models.PositiveIntegerField(_("scheduled quantity"), null=True, blank=True)
    exceeds_limit = models.BooleanField(
        _("exceeds the product's limit"),
        default=False,
        help_text=_("Set when the customer has more active subscriptions to the product than it allows."),
    )

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["customer", "status"], name="bob_pay_sub_customer_status")]

    def __str__(self) -> str:
        return f"{self.customer} - {self.pricing.product.name} ({self.status})"

    @property
    def is_entitled(self) -> bool:
        return self.status in self.ENTITLED_STATUSES


class SubscriptionItem(TimestampedModel):
    """One line of a subscription at the provider: a pricing and its quantity."""

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="items", verbose_name=_("subscription")
    )
    pricing = models.ForeignKey(
        Pricing, on_delete=models.PROTECT, related_name="subscription_items", verbose_name=_("pricing")
    )
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    provider = models.CharField(_("provider"), max_length=32, choices=Provider.choices)
    external_id = models.CharField(_("external ID"), max_length=255)

    class Meta:
        verbose_name = _("subscription item")
        verbose_name_plural = _("subscription items")
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "external_id"], name="bob_payments_subscriptionitem_unique_external_id"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.pricing_id}"
