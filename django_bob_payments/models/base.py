"""
What every model of the app shares: the provider choices, timestamps, the currency rule and
the list of EU member states.
"""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

currency_validator = RegexValidator(
    r"^[a-z]{3}$", _("Enter a lower-case ISO 4217 currency code, such as eur."), code="currency"
)

# Member states of the EU, as ISO 3166-1 alpha-2 codes (Greece is GR here, EL at VIES).
EU_COUNTRIES = frozenset("AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split())


class Provider(models.TextChoices):
    """Payment providers the app can talk to."""

    STRIPE = "stripe", "Stripe"
    FAKE = "fake", _("Fake (in-database)")


class TimestampedModel(models.Model):
    """Creation and last-change times."""

    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True
