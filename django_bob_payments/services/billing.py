"""
Billing information, its VAT number's verdict, and the tax decision drawn from them.

Owns when a VAT number must be checked again, how a VIES verdict is recorded, and the tax
decision table (reverse charge, domestic, consumer, outside the EU). Asking VIES belongs to
``vies``; pushing the result to the provider belongs to ``sync``.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from django_bob_payments.conf import bob_settings
from django_bob_payments.models import EU_COUNTRIES, BillingInformation, Customer
from django_bob_payments.reports import hide_locals
from django_bob_payments.services.vies import VatCheck, VatValidator

TaxExempt = BillingInformation.TaxExempt
VatStatus = BillingInformation.VatStatus

EDITABLE_FIELDS = (
    "name",
    "email",
    "address_line1",
    "address_line2",
    "postal_code",
    "city",
    "state",
    "country",
    "vat_number",
)


@hide_locals
class BillingService:
    """
    Saves billing information, checks its VAT number and decides the customer's Stripe
    ``tax_exempt`` value from local data only:

    ====================================================  ===========================
    customer                                              tax_exempt
    ====================================================  ===========================
    EU, other member state than the seller, VAT valid      ``reverse`` (reverse charge)
    EU, same member state as the seller                    ``none`` (domestic VAT)
    EU, no VAT number, or one not (yet) confirmed valid    ``none`` (VAT of the
                                                           customer's country, OSS)
    the seller's own country, wherever it is               ``none`` (domestic tax)
    outside the EU                                         ``OUTSIDE_EU_TAX_EXEMPT``
    no country                                             ``none``
    ====================================================  ===========================
    """

    def __init__(self, validator: VatValidator | None = None) -> None:
        self.validator = validator or VatValidator()

    def is_eu_country(self, country: str) -> bool:
        return str(country).upper() in EU_COUNTRIES

    def decide_tax_exempt(self, country: str, vat_status: str) -> str:
        """The ``tax_exempt`` value for a customer in ``country`` whose VAT number has ``vat_status``."""
        country = str(country or "").upper()
        seller_country = (bob_settings.SELLER_COUNTRY or "").upper()
        if not country or country == seller_country:
            # Unknown (never a reason to exempt), or domestic wherever the seller is.
            return TaxExempt.NONE
        if not self.is_eu_country(country):
            return bob_settings.OUTSIDE_EU_TAX_EXEMPT
        if vat_status == VatStatus.VALID:
            return TaxExempt.REVERSE
        return TaxExempt.NONE

    @property
    def reuses_cached_verdicts(self) -> bool:
        """
        Whether a customer's VAT check may reuse a cached VIES verdict. Not with a requester
        (``SELLER_VAT_NUMBER``): a consultation number proves one check for one customer, so
        each customer's check asks VIES for its own.
        """
        return not bob_settings.SELLER_VAT_NUMBER

    def check_vat(self, number: str, country: str, *, use_cache: bool = True) -> VatCheck:
        """The verdict on a number: format and checksum offline, then VIES."""
        return self.validator.validate(number, country, use_cache=use_cache)

    def apply_verdict(self, billing: BillingInformation, verdict: VatCheck) -> None:
        """Record ``verdict`` on ``billing`` (unsaved) and decide its tax status again."""
        if verdict.status == VatStatus.NOT_APPLICABLE:
            billing.vat_number = verdict.number if billing.vat_number else ""
        elif verdict.number:
            billing.vat_number = verdict.number
        billing.vat_status = verdict.status
        if verdict.status in (VatStatus.VALID, VatStatus.INVALID):
            billing.vat_verified_at = verdict.checked_at or timezone.now()
            billing.vies_consultation_number = verdict.consultation_number
        else:
            # No proof for this number: an earlier number's does not carry over.
            billing.vat_verified_at = None
            billing.vies_consultation_number = ""
        billing.tax_exempt = self.decide_tax_exempt(str(billing.country), billing.vat_status)

    def needs_check(self, billing: BillingInformation | None, number: str, country: str) -> bool:
        """Whether the VAT verdict must be made again: new data, a changed number or country, or unverified."""
        if billing is None or billing._state.adding:
            return True
        changed = (number, str(country)) != (billing.vat_number, str(billing.country or ""))
        return changed or billing.vat_status == VatStatus.UNVERIFIED

    def prepare(self, customer: Customer, data: dict[str, Any]) -> tuple[BillingInformation, bool]:
        """
        The customer's billing information with ``data`` (only the editable fields) applied,
        unsaved, and whether its VAT number must be checked before ``save``.
        """
        billing = BillingInformation.objects.filter(customer=customer).first() or BillingInformation(customer=customer)
        number = data.get("vat_number", billing.vat_number) or ""
        country = str(data.get("country", billing.country or ""))
        needs_check = self.needs_check(billing, number, country)
        for name in EDITABLE_FIELDS:
            if name in data:
                setattr(billing, name, data[name] or "")
        return billing, needs_check

    def save(self, billing: BillingInformation, verdict: VatCheck | None) -> BillingInformation:
        """Record the verdict (None: the number's status stands), decide the tax status, save."""
        if verdict is not None:
            self.apply_verdict(billing, verdict)
        else:
            billing.tax_exempt = self.decide_tax_exempt(str(billing.country), billing.vat_status)
        billing.sync_status = BillingInformation.SyncStatus.PENDING
        billing.save()
        return billing
