"""
Provider links: the identity of a local row at a payment provider. External* rows hold only
the ID the provider gave the local row (and the watermark of the newest event applied to
it), so another provider can sit beside Stripe.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from django_bob_payments.models.base import Provider, TimestampedModel
from django_bob_payments.models.catalog import Pricing, Product
from django_bob_payments.models.customers import Customer
from django_bob_payments.models.subscriptions import Subscription


class ExternalPaymentProvider(TimestampedModel):
    """
    The identity of an object at a payment provider.

    ``last_event_created`` and ``last_event_id`` are the watermark of the newest provider
    event applied to the object, so an older event delivered late never overwrites newer
    state.
    """

    provider = models.CharField(_("provider"), max_length=32, choices=Provider.choices)
    external_id = models.CharField(_("external ID"), max_length=255)
    last_event_created = models.BigIntegerField(_("last applied event time"), null=True, blank=True, editable=False)
    last_event_id = models.CharField(_("last applied event"), max_length=255, blank=True, default="", editable=False)

    class Meta:
        abstract = True
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "external_id"],
                name="%(app_label)s_%(class)s_unique_external_id",
            ),
        ]

    # The filter that keeps only links of objects that still exist at the provider.
    live_filter: dict[str, object] = {}

    def __str__(self) -> str:
        return f"{self.provider}:{self.external_id}"


def one_link_per_provider(owner_field: str) -> list[models.BaseConstraint]:
    """A link model's constraints: one provider ID per object, one object per provider ID."""
    return [
        *ExternalPaymentProvider.Meta.constraints,
        models.UniqueConstraint(fields=[owner_field, "provider"], name="%(app_label)s_%(class)s_one_per_provider"),
    ]


class ExternalCustomer(ExternalPaymentProvider):
    """
    The provider's ID of a customer.

    A customer deleted at the provider stays as a tombstone (``deleted_at`` and the watermark
    of its last event), so that late events of it still reach the local customer and never
    link it again; the next push of the local customer replaces it with a new provider
    customer.
    """

    # The field that points at the local row.
    owner_field = "customer"
    live_filter = {"deleted_at__isnull": True}

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="external_ids", verbose_name=_("customer")
    )
    deleted_at = models.DateTimeField(_("deleted at the provider"), null=True, blank=True, editable=False)

    class Meta(ExternalPaymentProvider.Meta):
        verbose_name = _("external customer")
        verbose_name_plural = _("external customers")
        constraints = one_link_per_provider("customer")


class ExternalProduct(ExternalPaymentProvider):
    """The provider's ID of a product."""

    # The field that points at the local row.
    owner_field = "product"

    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="external_ids", verbose_name=_("product")
    )

    class Meta(ExternalPaymentProvider.Meta):
        verbose_name = _("external product")
        verbose_name_plural = _("external products")
        constraints = one_link_per_provider("product")


class ExternalPricing(ExternalPaymentProvider):
    """The provider's ID of a pricing (a Stripe price)."""

    # The field that points at the local row.
    owner_field = "pricing"

    pricing = models.ForeignKey(
        Pricing, on_delete=models.CASCADE, related_name="external_ids", verbose_name=_("pricing")
    )
    terms = models.CharField(
        _("terms pushed"),
        max_length=64,
        blank=True,
        default="",
        editable=False,
        help_text=_("A digest of the amount, currency and interval the provider's price has; empty when unknown."),
    )

    class Meta(ExternalPaymentProvider.Meta):
        verbose_name = _("external pricing")
        verbose_name_plural = _("external pricings")
        constraints = one_link_per_provider("pricing")


class ExternalSubscription(ExternalPaymentProvider):
    """The provider's ID of a subscription."""

    # The field that points at the local row.
    owner_field = "subscription"

    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.CASCADE,
        related_name="external_ids",
        verbose_name=_("subscription"),
    )

    class Meta(ExternalPaymentProvider.Meta):
        verbose_name = _("external subscription")
        verbose_name_plural = _("external subscriptions")
        constraints = one_link_per_provider("subscription")
