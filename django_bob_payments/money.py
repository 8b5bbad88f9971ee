"""
Amounts as people read them. The app stores money as integer minor units beside a
lower-case ISO 4217 currency, as Stripe does; this turns them into "19.00 EUR".
"""

from __future__ import annotations

from decimal import Decimal

from django.utils.formats import number_format

# Stripe's own table of minor units is the authority, not ISO 4217's: the amounts are the ones
# Stripe counts (it counts ISK, for one, in hundredths, where ISO has no decimals).
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


def format_money(amount: int | None, currency: str) -> str:
    """Minor units as a formatted amount with its currency, in the active language: ``19.00 EUR``."""
    if amount is None:
        return ""
    places = decimal_places(currency)
    value = Decimal(amount).scaleb(-places)
    return f"{number_format(value, decimal_pos=places, use_l10n=True)} {(currency or '').upper()}"
