"""
The Stripe provider: the only package of the app that imports the ``stripe`` SDK.

- ``client``: the API client built from settings, calls with retries of rate limits, and
  the calls of a request (checkout, the customer portal, subscription changes);
- ``sync``: the catalog and customer operations of ``synchronizepayments``;
- ``events``: webhook signature verification and the event normalizers.
"""

from __future__ import annotations

from typing import Any

from django_bob_payments.conf import bob_settings
from django_bob_payments.providers.base import PaymentProvider, ProviderEvent
from django_bob_payments.providers.stripe import events
from django_bob_payments.providers.stripe.client import stripe
from django_bob_payments.providers.stripe.sync import StripeSync

__all__ = ["StripeProvider"]


class StripeProvider(StripeSync, PaymentProvider):
    """Talks to Stripe through the pinned SDK."""

    def verify_webhook(self, body: bytes, headers: Any) -> dict[str, Any]:
        return events.verify_webhook(body, headers.get("Stripe-Signature"))

    def parse_event(self, payload: dict[str, Any]) -> ProviderEvent:
        return events.parse_event(payload, self.name)

    @property
    def api_version(self) -> str:
        """The API version event payloads must be rendered in for the handlers to read them."""
        return bob_settings.STRIPE_API_VERSION or stripe.api_version
