"""Template filters for billing emails: ``{% load bob_payments %}``."""

from __future__ import annotations

from django import template

from django_bob_payments.money import format_money

register = template.Library()


@register.filter
def money(amount: int | None, currency: str) -> str:
    """Minor units as a formatted amount with its currency: ``1900|money:"eur"`` is ``19.00 EUR``."""
    return format_money(amount, currency)
