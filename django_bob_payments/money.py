"""
Amounts as people read them. The app stores money as integer minor units beside a
lower-case ISO 4217 currency, as Stripe does; this turns them into "19.00 EUR".
"""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import get_currency_precision
from django.utils.formats import number_format

# Two tables. How many minor units an amount counts is Stripe's API convention, which no
# currency library holds (Stripe counts ISK and HUF in hundredths, where ISO and CLDR give
# them no decimals): the lists below are Stripe's. How many decimals people read is the
# currency's own, from CLDR through babel.

# Currencies Stripe counts in whole units (no minor unit).
ZERO_DECIMAL = frozenset(
    ("bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf")
)


# Currencies Stripe counts in thousandths.
THREE_DECIMAL = frozenset(("bhd", "jod", "kwd", "omr", "tnd"))


def decimal_places(currency: str) -> int:
    """How many decimals an amount of ``currency`` has in Stripe's minor units."""
    currency = (currency or "").lower()
    return 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2


def display_places(currency: str) -> int:
    """How many decimals people read in an amount of ``currency`` (CLDR's, 2 for an unknown code)."""
    return get_currency_precision((currency or "").upper()) if currency else 2


def format_money(amount: int | None, currency: str) -> str:
    """Minor units as a formatted amount with its currency, in the active language: ``19.00 EUR``."""
    if amount is None:
        return ""
    places = decimal_places(currency)
    value = Decimal(amount).scaleb(-places)
    shown = display_places(currency)
    if value != value.quantize(Decimal(1).scaleb(-shown)):
        # Stripe's minor units hold more than the currency shows (ISK 5.50): show them all.
        shown = places
    return f"{number_format(value, decimal_pos=shown, use_l10n=True)} {(currency or '').upper()}"
