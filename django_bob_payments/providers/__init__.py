"""
Payment providers. ``get_provider()`` returns the one named by ``BOB_PAYMENTS["PROVIDER"]``.

Each provider lives in its own module and is imported only when used, so a project that
never talks to Stripe never imports the stripe SDK.
"""

from __future__ import annotations

from importlib import import_module

from django_bob_payments.conf import bob_settings
from django_bob_payments.exceptions import BobPaymentsImproperlyConfigured
from django_bob_payments.providers.base import METADATA_KEY, PaymentProvider, RemoteObject

PROVIDER_CLASSES = {
    "stripe": "django_bob_payments.providers.stripe.StripeProvider",
    "fake": "django_bob_payments.providers.fake.FakeProvider",
}

__all__ = ["METADATA_KEY", "PROVIDER_CLASSES", "PaymentProvider", "RemoteObject", "get_provider"]


def get_provider(name: str | None = None) -> PaymentProvider:
    """A new instance of the provider ``name``, by default the configured one."""
    name = name or bob_settings.PROVIDER
    try:
        path = PROVIDER_CLASSES[name]
    except KeyError:
        raise BobPaymentsImproperlyConfigured(
            f'BOB_PAYMENTS["PROVIDER"] is {name!r}; the providers available are: {", ".join(PROVIDER_CLASSES)}.'
        ) from None
    module_path, _, class_name = path.rpartition(".")
    return getattr(import_module(module_path), class_name)()
