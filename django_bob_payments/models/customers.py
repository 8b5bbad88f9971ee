"""
Customers (a user or an organization) and their billing information, with the tax verdict
drawn from it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django_countries.fields import CountryField

from django_bob_payments.models.base import EU_COUNTRIES, TimestampedModel


class Customer(TimestampedModel):
    """
    Whoever pays: a user, or an organization when the project bills teams.

    An organization is any model of the project, named by ``BOB_PAYMENTS["ORGANIZATION_MODEL"]``
    and held through a generic relation, so the app's migrations never depend on it. When
    the owning user is deleted the customer stays, ownerless, with its billing history.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="payment_customers",
        verbose_name=_("user"),
    )
    organization_type = models.ForeignKey(
        ContentType,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("organization type"),
    )
    organization_id = models.CharField(_("organization ID"), max_length=64, blank=True, default="")
    organization = GenericForeignKey("organization_type", "organization_id")
    preferred_locale = models.CharField(_("preferred locale"), max_length=16, blank=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        constraints = [
            # NULLs are distinct in unique constraints on every supported database, so
            # ownerless customers and organization customers (user NULL) do not collide,
            # and no partial index is needed (MariaDB has none).
            models.UniqueConstraint(fields=["user"], name="bob_payments_customer_one_per_user"),
            models.UniqueConstraint(
                fields=["organization_type", "organization_id"],
                name="bob_payments_customer_one_per_organization",
            ),
            models.CheckConstraint(
                condition=(Q(organization_type__isnull=True) & Q(organization_id=""))
                | (Q(organization_type__isnull=False) & ~Q(organization_id="")),
                name="bob_payments_customer_organization_complete",
            ),
        ]

    def __str__(self) -> str:
        if self.organization_type_id:
            return f"{self.organization_type.model} {self.organization_id}"
        if self.user_id:
            return str(self.user)
        return f"customer {self.pk}"

    @property
    def is_organization(self) -> bool:
        return self.organization_type_id is not None

    @property
    def entitlements(self) -> list[dict[str, Any]]:
        """The entitlements of the subscriptions that grant their plan now (one query, then cached)."""
        cached = self.__dict__.get("_entitlements")
        if cached is None:
            cached = list(
                self.subscriptions.filter(status__in=self.subscriptions.model.ENTITLED_STATUSES).values_list(
                    "entitlements", flat=True
                )
            )
            self.__dict__["_entitlements"] = cached
        return cached

    def has_active_subscription(self) -> bool:
        """Whether a subscription grants its plan now (trialing, active or past due)."""
        return bool(self.entitlements)

    def has_feature(self, name: str) -> bool:
        """Whether a current subscription's plan grants the feature ``name``. No API call."""
        return any(name in (granted or {}).get("features", []) for granted in self.entitlements)

    def limit(self, name: str) -> int | None:
        """The highest limit ``name`` that current subscriptions grant, or None when none grants it."""
        values = [
            (granted or {}).get("limits", {}).get(name)
            for granted in self.entitlements
            if isinstance((granted or {}).get("limits", {}).get(name), (int, float))
        ]
        return max(values) if values else None


class BillingInformation(TimestampedModel):
    """The customer's invoicing details and the tax verdict drawn from them."""

    class VatStatus(models.TextChoices):
        VALID = "valid", _("Valid")
        INVALID = "invalid", _("Invalid")
        UNVERIFIED = "unverified", _("Not verified yet")
        NOT_APPLICABLE = "not_applicable", _("Not applicable")

    class TaxExempt(models.TextChoices):
        NONE = "none", _("Taxable")
        EXEMPT = "exempt", _("Exempt")
        REVERSE = "reverse", _("Reverse charge")

    class SyncStatus(models.TextChoices):
        PENDING = "pending", _("Pending")
        SYNCED = "synced", _("Synced")
        FAILED = "failed", _("Failed")

    customer = models.OneToOneField(
        Customer,
        on_delete=models.CASCADE,
        related_name="billing_information",
        verbose_name=_("customer"),
    )
    name = models.CharField(_("name"), max_length=255)
    email = models.EmailField(_("email"))
    address_line1 = models.CharField(_("address line 1"), max_length=255, blank=True)
    address_line2 = models.CharField(_("address line 2"), max_length=255, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=32, blank=True)
    city = models.CharField(_("city"), max_length=128, blank=True)
    state = models.CharField(_("state"), max_length=128, blank=True)
    country = CountryField(_("country"))
    is_from_eu = models.BooleanField(_("in the EU"), default=False, editable=False)
    vat_number = models.CharField(_("VAT number"), max_length=32, blank=True)
    vat_status = models.CharField(
        _("VAT number status"),
        max_length=16,
        choices=VatStatus.choices,
        default=VatStatus.NOT_APPLICABLE,
    )
    vat_verified_at = models.DateTimeField(_("VAT number verified at"), null=True, blank=True)
    vies_consultation_number = models.CharField(_("VIES consultation number"), max_length=64, blank=True)
    provider_vat_status = models.CharField(
        _("provider's VAT number check"),
        max_length=16,
        blank=True,
        help_text=_("The provider's own verification of the VAT number: pending, verified, unverified, unavailable."),
    )
    provider_tax_id = models.CharField(
        _("provider's tax ID"), max_length=255, blank=True, editable=False, help_text=_("Whose check is recorded.")
    )
    provider_tax_id_event = models.BigIntegerField(
        _("last applied tax ID event time"), null=True, blank=True, editable=False
    )
    provider_tax_id_deleted = models.BooleanField(_("provider's tax ID deleted"), default=False, editable=False)
    tax_exempt = models.CharField(_("tax status"), max_length=8, choices=TaxExempt.choices, default=TaxExempt.NONE)
    sync_status = models.CharField(
        _("provider sync"), max_length=8, choices=SyncStatus.choices, default=SyncStatus.PENDING
    )
    synced_at = models.DateTimeField(_("synced at"), null=True, blank=True)

    class Meta:
        verbose_name = _("billing information")
        verbose_name_plural = _("billing information")

    def __str__(self) -> str:
        return f"{self.name} ({self.country})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.is_from_eu = str(self.country) in EU_COUNTRIES
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "country" in update_fields:
            kwargs["update_fields"] = {*update_fields, "is_from_eu"}
        super().save(*args, **kwargs)
