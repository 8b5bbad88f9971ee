"""
Helpers for the tests of projects that use django-bob-payments (and for the app's own).

``stripe_objects`` builds Stripe objects shaped like the API version of the pinned stripe
SDK; ``webhooks`` builds events from them, signs payloads exactly as Stripe does and posts
them to the webhook endpoint with Django's test client; ``vies.ViesEmulator`` is a local
VIES that answers over HTTP.
"""

from django_bob_payments.testing import stripe_objects
from django_bob_payments.testing.webhooks import build_event, post_event, sign_payload

__all__ = ["build_event", "post_event", "sign_payload", "stripe_objects"]
