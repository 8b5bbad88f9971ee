"""
The Stripe provider: the only package of the app that imports the ``stripe`` SDK.

- ``client``: the API client built from settings, calls with retries of rate limits, and
  the calls of a request (checkout, the customer portal, subscription changes);
- ``sync``: the catalog and customer operations of ``synchronizepayments``;
- ``events``: webhook signature verification and the event normalizers.
"""

from __future__ import annotations

from typing import Any

from django.views.decorators.debug import sensitive_variables

from django_bob_payments.conf import bob_settings
from django_bob_payments.providers.base import PaymentProvider, ProviderEvent
from django_bob_payments.providers.stripe import events
from django_bob_payments.providers.stripe.client import stripe
from django_bob_payments.providers.stripe.sync import StripeSync

__all__ = ["StripeProvider"]


class StripeProvider(StripeSync, PaymentProvider):
    """Talks to Stripe through the pinned SDK."""

    @sensitive_variables("body", "headers")
    def verify_webhook(self, body: bytes, headers: Any) -> dict[str, Any]:
        return events.verify_webhook(body, headers.get("Stripe-Signature"))

    def parse_event(self, payload: dict[str, Any]) -> ProviderEvent:
        return events.parse_event(payload, self.name, self.reads_api_version)

    @property
    def api_version(self) -> str:
        """The API version the handlers read, and requests are made in."""
        return bob_settings.STRIPE_API_VERSION or stripe.api_version

    def reads_api_version(self, version: str) -> bool:
        """
        Since acacia (2024-09-30) the monthly versions of one release (``2026-09-30.endive``,
        ``2026-10-28.endive``) render the same shapes: every version of the release of
        ``api_version`` is read, and those listed in ``STRIPE_ACCEPTED_API_VERSIONS``.
        """
        if not version or version in bob_settings.STRIPE_ACCEPTED_API_VERSIONS:
            return True
        release = self.api_version.rpartition(".")[2]
        return bool(release) and version.rpartition(".")[2] == release
