"""
Orders, their payment attempts, and the invoices the provider issues.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from django_bob_payments.models.base import Provider, TimestampedModel, currency_validator
from django_bob_payments.models.catalog import Pricing
from django_bob_payments.models.customers import Customer
from django_bob_payments.models.links import ExternalPaymentProvider
from django_bob_payments.models.subscriptions import Subscription


class Order(TimestampedModel):
    """A customer's intent to buy a pricing, paid through one or more payment attempts."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PAID = "paid", _("Paid")
        FAILED = "failed", _("Failed")
        CANCELED = "canceled", _("Canceled")
        EXPIRED = "expired", _("Expired")

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders", verbose_name=_("customer"))
    pricing = models.ForeignKey(Pricing, on_delete=models.PROTECT, related_name="orders", verbose_name=_("pricing"))
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    amount_total = models.PositiveBigIntegerField(_("total (minor units)"), null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, validators=[currency_validator])
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="orders",
        verbose_name=_("subscription"),
    )
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"order {self.pk} ({self.status})"


class PaymentAttempt(TimestampedModel):
    """One try at paying an order, such as a checkout session at the provider."""

    class Status(models.TextChoices):
        CREATED = "created", _("Created")
        PENDING = "pending", _("Awaiting payment")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired")

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="payment_attempts", verbose_name=_("order"))
    provider = models.CharField(_("provider"), max_length=32, choices=Provider.choices)
    external_id = models.CharField(
        _("external ID"),
        max_length=255,
        null=True,
        blank=True,
        help_text=_("Empty until the provider has created its side, such as a checkout session."),
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.CREATED)
    amount = models.PositiveBigIntegerField(_("amount (minor units)"), null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, validators=[currency_validator])
    failure_code = models.CharField(_("failure code"), max_length=64, blank=True)
    failure_message = models.TextField(_("failure message"), blank=True)

    class Meta:
        verbose_name = _("payment attempt")
        verbose_name_plural = _("payment attempts")
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "external_id"],
                name="bob_payments_paymentattempt_unique_external_id",
            ),
        ]

    def __str__(self) -> str:
        return f"payment attempt {self.pk} ({self.status})"


class Invoice(ExternalPaymentProvider):
    """An invoice issued by the provider, recorded from its webhooks."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        OPEN = "open", _("Open")
        PAID = "paid", _("Paid")
        UNCOLLECTIBLE = "uncollectible", _("Uncollectible")
        VOID = "void", _("Void")

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="invoices", verbose_name=_("customer")
    )
    subscription = models.ForeignKey(
        Subscription,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="invoices",
        verbose_name=_("subscription"),
    )
    provider_subscription_id = models.CharField(
        _("provider's subscription ID"),
        max_length=255,
        blank=True,
        help_text=_("Kept so the invoice finds its subscription when the two arrive out of order."),
    )
    number = models.CharField(_("number"), max_length=64, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    currency = models.CharField(_("currency"), max_length=3, validators=[currency_validator])
    subtotal = models.BigIntegerField(_("subtotal (minor units)"), default=0)
    tax = models.BigIntegerField(_("tax (minor units)"), default=0)
    customer_tax_exempt = models.CharField(
        _("customer's tax status on the invoice"),
        max_length=8,
        blank=True,
        help_text=_("none, exempt or reverse, as the provider applied it to this invoice."),
    )
    total = models.BigIntegerField(_("total (minor units)"), default=0)
    amount_paid = models.BigIntegerField(_("amount paid (minor units)"), default=0)
    amount_due = models.BigIntegerField(_("amount due (minor units)"), default=0)
    hosted_invoice_url = models.URLField(_("hosted invoice URL"), max_length=2048, blank=True)
    invoice_pdf = models.URLField(_("PDF URL"), max_length=2048, blank=True)
    period_start = models.DateTimeField(_("period start"), null=True, blank=True)
    period_end = models.DateTimeField(_("period end"), null=True, blank=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)

    class Meta(ExternalPaymentProvider.Meta):
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        ordering = ["-created_at", "-pk"]
