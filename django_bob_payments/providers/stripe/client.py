"""
The Stripe API client and the calls a request makes: checkout, the customer portal and
subscription changes.

It uses a ``stripe.StripeClient`` built from settings (key, ``STRIPE_API_BASE``,
``STRIPE_API_VERSION``, ``STRIPE_MAX_NETWORK_RETRIES``, ``STRIPE_TIMEOUT``). The SDK retries
connection errors, 409 and 5xx answers, reusing one idempotency key, so a retried create
never makes a second object; ``StripeAPI.call`` adds retries of 429 rate-limit answers, which
the SDK leaves to the caller. Since SDK 15 Stripe objects are not dicts: results of single
calls are turned into plain dicts with ``to_dict()``, and list pages are fetched with
``raw_request`` and read as parsed JSON, because building StripeObjects costs about 45 ms
per page of 100 customers, more than the request itself.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from django_bob_payments.conf import bob_settings
from django_bob_payments.exceptions import ProviderAuthenticationError, ProviderError, ProviderNotInstalled
from django_bob_payments.providers.base import CheckoutRequest, CheckoutSession

try:
    import stripe
except ImportError as err:  # pragma: no cover - stripe is a dependency of the package
    raise ProviderNotInstalled("The Stripe provider needs the stripe SDK: pip install 'stripe>=16,<17'.") from err

T = TypeVar("T")

PAGE_SIZE = 100


def as_dict(obj: Any) -> dict[str, Any]:
    """A Stripe object as a plain dict (parsed JSON is returned as it is)."""
    return obj.to_dict() if hasattr(obj, "to_dict") else obj


class StripeAPI:
    """Calls Stripe through the pinned SDK."""

    name = "stripe"
    # Base delay of the retries of 429 answers; doubled each time, with jitter.
    rate_limit_delay = 1.0

    def __init__(self, client: stripe.StripeClient | None = None) -> None:
        self._client = client

    @property
    def client(self) -> stripe.StripeClient:
        """The API client, built on first use: verifying webhooks needs none."""
        if self._client is None:
            self._client = self.build_client()
        return self._client

    @staticmethod
    def build_client() -> stripe.StripeClient:
        """A client configured from BOB_PAYMENTS."""
        if not bob_settings.STRIPE_SECRET_KEY:
            raise ProviderAuthenticationError(
                'BOB_PAYMENTS["STRIPE_SECRET_KEY"] is not set.', provider="stripe", code="missing_api_key"
            )
        return stripe.StripeClient(
            bob_settings.STRIPE_SECRET_KEY,
            stripe_version=bob_settings.STRIPE_API_VERSION or stripe.api_version,
            base_addresses={"api": bob_settings.STRIPE_API_BASE},
            max_network_retries=bob_settings.STRIPE_MAX_NETWORK_RETRIES,
            http_client=stripe.RequestsClient(timeout=bob_settings.STRIPE_TIMEOUT),
        )

    # Calling Stripe

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one SDK call, retrying rate limits and turning SDK errors into ours."""
        attempts = max(int(bob_settings.STRIPE_MAX_NETWORK_RETRIES), 0) + 1
        for attempt in range(attempts):
            try:
                return function(*args, **kwargs)
            except stripe.RateLimitError as err:
                if attempt == attempts - 1:
                    raise self._translate(err) from err
                delay = self.rate_limit_delay * (2**attempt)
                time.sleep(delay / 2 + random.uniform(0, delay / 2))
            except stripe.StripeError as err:
                raise self._translate(err) from err
        raise AssertionError("unreachable")  # pragma: no cover

    def _translate(self, err: stripe.StripeError) -> ProviderError:
        error_class = (
            ProviderAuthenticationError
            if isinstance(err, (stripe.AuthenticationError, stripe.PermissionError))
            else ProviderError
        )
        return error_class(
            err.user_message or type(err).__name__,
            provider=self.name,
            http_status=err.http_status,
            code=err.code or type(err).__name__,
            request_id=err.request_id,
        )

    def _paginate(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every object of a list endpoint, as parsed JSON, 100 per request."""
        params = {**params, "limit": PAGE_SIZE}
        while True:
            page = self.call(self.client.raw_request, "get", path, **params).data
            yield from page["data"]
            if not page["has_more"] or not page["data"]:
                return
            params["starting_after"] = page["data"][-1]["id"]

    # Checkout, portal and subscription changes

    def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        # Since endive, payment_method_types is not sent: the dashboard's settings decide.
        params: dict[str, Any] = {
            "mode": request.mode,
            "customer": request.customer_external_id,
            "line_items": [{"price": request.price_external_id, "quantity": request.quantity}],
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "client_reference_id": request.client_reference_id,
            "metadata": dict(request.metadata),
        }
        if request.mode == "subscription":
            subscription_data: dict[str, Any] = {"metadata": dict(request.metadata)}
            if request.trial_period_days:
                subscription_data["trial_period_days"] = request.trial_period_days
            params["subscription_data"] = subscription_data
        if request.allow_promotion_codes:
            params["allow_promotion_codes"] = True
        if request.automatic_tax:
            params["automatic_tax"] = {"enabled": True}
        if request.tax_id_collection:
            params["tax_id_collection"] = {"enabled": True}
        if request.automatic_tax or request.tax_id_collection:
            # Lets Checkout write the address and name it collects back to the customer.
            params["customer_update"] = {"address": "auto", "name": "auto"}
        session = self.call(
            self.client.v1.checkout.sessions.create, params, {"idempotency_key": request.idempotency_key}
        )
        return CheckoutSession(external_id=session.id, url=session.url)

    def create_portal_session(self, customer_external_id: str, return_url: str) -> str:
        session = self.call(
            self.client.v1.billing_portal.sessions.create,
            {"customer": customer_external_id, "return_url": return_url},
        )
        return session.url

    def cancel_subscription(self, external_id: str, *, at_period_end: bool) -> None:
        if at_period_end:
            self.call(self.client.v1.subscriptions.update, external_id, {"cancel_at_period_end": True})
        else:
            self.call(self.client.v1.subscriptions.cancel, external_id)

    def resume_subscription(self, external_id: str) -> None:
        self.call(self.client.v1.subscriptions.update, external_id, {"cancel_at_period_end": False})

    def schedule_subscription_change(self, external_id: str, *, price_external_id: str, quantity: int) -> None:
        # A subscription schedule with two phases: the current one until the end of the
        # period, then the new price; the schedule then releases the subscription.
        subscription = self.call(self.client.v1.subscriptions.retrieve, external_id)
        schedules = self.client.v1.subscription_schedules
        schedule_id = subscription.schedule if isinstance(subscription.schedule, str) else None
        if schedule_id is None:
            schedule = self.call(schedules.create, {"from_subscription": external_id})
        else:
            schedule = self.call(schedules.retrieve, schedule_id)
        current = schedule.phases[0]
        price = self.call(self.client.v1.prices.retrieve, price_external_id)
        next_phase: dict[str, Any] = {"items": [{"price": price_external_id, "quantity": quantity}]}
        if price.recurring:
            next_phase["duration"] = {
                "interval": price.recurring.interval,
                "interval_count": price.recurring.interval_count,
            }
        self.call(
            schedules.update,
            schedule.id,
            {
                "phases": [
                    {
                        "items": [{"price": current["items"][0].price, "quantity": current["items"][0].quantity}],
                        "start_date": current.start_date,
                        "end_date": current.end_date,
                    },
                    next_phase,
                ],
                "end_behavior": "release",
            },
        )

    def change_subscription(
        self, external_id: str, *, price_external_id: str, quantity: int, proration_behavior: str
    ) -> None:
        subscription = self.call(self.client.v1.subscriptions.retrieve, external_id)
        item_id = subscription["items"].data[0].id
        self.call(
            self.client.v1.subscriptions.update,
            external_id,
            {
                "items": [{"id": item_id, "price": price_external_id, "quantity": quantity}],
                "proration_behavior": proration_behavior,
            },
        )
