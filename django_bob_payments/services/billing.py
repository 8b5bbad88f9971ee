"""Billing information and the tax decision drawn from it."""

from __future__ import annotations

from django_bob_payments.conf import bob_settings
from django_bob_payments.models import EU_COUNTRIES, BillingInformation

TaxExempt = BillingInformation.TaxExempt
VatStatus = BillingInformation.VatStatus


class BillingService:
    """
    Decides the customer's Stripe ``tax_exempt`` value from local data only.

    ====================================================  ===========================
    customer                                              tax_exempt
    ====================================================  ===========================
    EU, other member state than the seller, VAT valid      ``reverse`` (reverse charge)
    EU, same member state as the seller                    ``none`` (domestic VAT)
    EU, no VAT number, or one not (yet) confirmed valid    ``none`` (VAT of the
                                                           customer's country, OSS)
    outside the EU                                         ``OUTSIDE_EU_TAX_EXEMPT``
    ====================================================  ===========================
    """

    def is_eu_country(self, country: str) -> bool:
        return str(country).upper() in EU_COUNTRIES

    def decide_tax_exempt(self, country: str, vat_status: str) -> str:
        """The ``tax_exempt`` value for a customer in ``country`` whose VAT number has ``vat_status``."""
        country = str(country).upper()
        if not self.is_eu_country(country):
            return bob_settings.OUTSIDE_EU_TAX_EXEMPT
        seller_country = (bob_settings.SELLER_COUNTRY or "").upper()
        if vat_status == VatStatus.VALID and country != seller_country:
            return TaxExempt.REVERSE
        return TaxExempt.NONE
