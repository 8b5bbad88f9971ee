"""Template filters for billing emails: ``{% load bob_payments %}``."""

from __future__ import annotations

from decimal import Decimal

from django import template
from django.utils.formats import number_format

register = template.Library()

# Currencies Stripe counts in whole units (no minor unit).
ZERO_DECIMAL = {
    "bif",
    "clp",
    "djf",
    "gnf",
    "jpy",
    "kmf",
    "krw",
    "mga",
    "pyg",
    "rwf",
    "ugx",
    "vnd",
    "vuv",
    "xaf",
    "xof",
    "xpf",
}


@register.filter
def money(amount: int | None, currency: str) -> str:
    """Minor units as a formatted amount with its currency: ``1900|money:"eur"`` is ``19.00 EUR``."""
    if amount is None:
        return ""
    currency = (currency or "").lower()
    places = 0 if currency in ZERO_DECIMAL else 2
    value = Decimal(amount).scaleb(-places)
    return f"{number_format(value, decimal_pos=places, use_l10n=True)} {currency.upper()}"
