"""Exceptions raised by django-bob-payments."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


class BobPaymentsError(Exception):
    """
    Base of the app's errors.

    ``provider``, ``http_status``, ``code`` and ``request_id`` are set when the error comes
    from a payment provider, so a log line can name the request to look up at the provider.
    """

    default_code = "payment_error"

    def __init__(
        self,
        message: str = "",
        *,
        provider: str | None = None,
        http_status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.http_status = http_status
        self.code = code or self.default_code
        self.request_id = request_id

    def __str__(self) -> str:
        message = super().__str__()
        details = [f"{key}={value}" for key, value in self._details() if value is not None]
        return f"{message} ({', '.join(details)})" if details else message

    def _details(self) -> list[tuple[str, object]]:
        return [
            ("provider", self.provider),
            ("status", self.http_status),
            ("request_id", self.request_id),
        ]


class BobPaymentsImproperlyConfigured(BobPaymentsError, ImproperlyConfigured):
    """A setting is missing or wrong; the message names the BOB_PAYMENTS key to fix."""

    default_code = "improperly_configured"


class BillingPermissionDenied(BobPaymentsError):
    """The user may not manage the billing of the customer they asked for."""

    default_code = "billing_permission_denied"


class PurchaseNotAllowed(BobPaymentsError):
    """A purchase breaks a product's limits (quantity, subscriptions per customer)."""

    default_code = "purchase_not_allowed"


class ActionNotAllowed(BobPaymentsError):
    """A subscription action its current state does not allow (an ended subscription, say); a 409."""

    default_code = "action_not_allowed"


class ProviderError(BobPaymentsError):
    """A call to the payment provider failed; ``code`` is the provider's error code."""

    default_code = "provider_error"


class ProviderTimeout(ProviderError):
    """The provider did not answer within the time budget; whether the call took effect is unknown."""

    default_code = "provider_timeout"


class ProviderAuthenticationError(ProviderError):
    """The provider refused our credentials; nothing will work until the key is fixed."""

    default_code = "authentication_error"


class ProviderNotInstalled(BobPaymentsImproperlyConfigured):
    """The provider's SDK is not installed; the message says which pip install fixes it."""

    default_code = "provider_not_installed"


class WebhookVerificationError(BobPaymentsError):
    """A webhook request is not a verified provider event; ``code`` says why."""

    default_code = "invalid_webhook"


class WebhookHandlingError(BobPaymentsError):
    """A verified event cannot be applied yet, such as a price missing from the local catalog."""

    default_code = "webhook_not_applicable"


class NotAtProvider(BobPaymentsError):
    """A local row (customer, pricing, subscription) has no counterpart at the provider yet."""

    default_code = "not_at_provider"
