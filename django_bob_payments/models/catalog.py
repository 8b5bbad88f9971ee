"""
The catalog: products and their pricings, the local truth that ``synchronizepayments``
pushes to the provider. Money is stored as integer minor units next to a lower-case ISO
4217 currency, as Stripe does.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from django_bob_payments.models.base import TimestampedModel, currency_validator
from django_bob_payments.money import format_money


class Product(TimestampedModel):
    """
    Something a customer can buy: a plan or a one-off item, with the limits and features
    its subscriptions grant.
    """

    slug = models.SlugField(_("slug"), max_length=100, unique=True)
    name = models.CharField(_("name"), max_length=255)
    description = models.TextField(_("description"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    limits = models.JSONField(
        _("limits"),
        default=dict,
        blank=True,
        help_text=_('Numeric plan limits by name, for example {"projects": 10, "seats": 5}.'),
    )
    features = models.JSONField(
        _("features"),
        default=list,
        blank=True,
        help_text=_('Names of the features the plan grants, for example ["api", "sso"].'),
    )
    is_addon = models.BooleanField(
        _("add-on"),
        default=False,
        help_text=_("Bought beside a plan in the same subscription, not as the plan itself."),
    )
    per_unit_limits = models.JSONField(
        _("limits per unit"),
        default=list,
        blank=True,
        help_text=_('Names of the limits granted per unit bought, multiplied by the quantity, for example ["seats"].'),
    )
    max_subscriptions_per_customer = models.PositiveIntegerField(
        _("active subscriptions allowed per customer"),
        null=True,
        blank=True,
        default=1,
        help_text=_("Empty means no limit."),
    )
    min_quantity = models.PositiveIntegerField(_("minimum quantity"), default=1)
    max_quantity = models.PositiveIntegerField(
        _("maximum quantity"), null=True, blank=True, help_text=_("Empty means no limit.")
    )
    sort_order = models.IntegerField(_("sort order"), default=0)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["sort_order", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_quantity__isnull=True) | Q(max_quantity__gte=models.F("min_quantity")),
                name="bob_payments_product_quantity_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Pricing(TimestampedModel):
    """A price of a product: an amount in minor units, once or every interval."""

    class Type(models.TextChoices):
        ONE_TIME = "one_time", _("One-off")
        RECURRING = "recurring", _("Recurring")

    class Interval(models.TextChoices):
        DAY = "day", _("Day")
        WEEK = "week", _("Week")
        MONTH = "month", _("Month")
        YEAR = "year", _("Year")

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="pricings", verbose_name=_("product"))
    nickname = models.CharField(_("nickname"), max_length=255, blank=True)
    amount = models.PositiveBigIntegerField(_("amount (minor units)"))
    currency = models.CharField(
        _("currency"), max_length=3, validators=[currency_validator], help_text=_("ISO 4217, lower case.")
    )
    type = models.CharField(_("type"), max_length=16, choices=Type.choices, default=Type.RECURRING)
    interval = models.CharField(_("interval"), max_length=8, choices=Interval.choices, blank=True, default="")
    interval_count = models.PositiveSmallIntegerField(_("interval count"), default=1)
    trial_period_days = models.PositiveSmallIntegerField(_("trial days"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("pricing")
        verbose_name_plural = _("pricings")
        ordering = ["product", "amount", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(type="recurring") & ~Q(interval="")) | (Q(type="one_time") & Q(interval="")),
                name="bob_payments_pricing_interval_matches_type",
            ),
            models.CheckConstraint(condition=Q(interval_count__gte=1), name="bob_payments_pricing_interval_count"),
        ]

    def __str__(self) -> str:
        label = f"{self.product.name}: {format_money(self.amount, self.currency)}"
        if self.type == self.Type.RECURRING:
            per = self.interval if self.interval_count == 1 else f"{self.interval_count} {self.interval}s"
            label += f" / {per}"
        return label

    @property
    def is_recurring(self) -> bool:
        return self.type == self.Type.RECURRING
