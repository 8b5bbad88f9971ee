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

import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from django_bob_payments.conf import bob_settings
from django_bob_payments.exceptions import (
    ProviderAuthenticationError,
    ProviderError,
    ProviderNotInstalled,
    ProviderTimeout,
)
from django_bob_payments.providers.base import (
    ORDER_METADATA_KEY,
    CheckoutRequest,
    CheckoutSession,
    remaining_budget,
)

try:
    import stripe
except ImportError as err:  # pragma: no cover - stripe is a dependency of the package
    raise ProviderNotInstalled("The Stripe provider needs the stripe SDK: pip install 'stripe>=16,<17'.") from err

T = TypeVar("T")

PAGE_SIZE = 100


def sdk_logs_bodies() -> bool:
    """Whether the stripe SDK logs request and response bodies: its logger at DEBUG or INFO, or ``stripe.log`` set."""
    return logging.getLogger("stripe").isEnabledFor(logging.INFO) or str(stripe.log or "").lower() in ("debug", "info")


def as_dict(obj: Any) -> dict[str, Any]:
    """A Stripe object as a plain dict (parsed JSON is returned as it is)."""
    return obj.to_dict() if hasattr(obj, "to_dict") else obj


def _id_of(value: Any) -> Any:
    """An expandable field as its ID."""
    return value.get("id") if isinstance(value, dict) else value


def current_phase(schedule: dict[str, Any]) -> dict[str, Any]:
    """The phase that runs now: the one ``current_phase`` names (``phases[0]`` may be over)."""
    phases = schedule.get("phases") or []
    running = schedule.get("current_phase") or {}
    for phase in phases:
        if phase.get("start_date") == running.get("start_date"):
            return phase
    now = int(time.time())
    for phase in phases:
        if phase.get("start_date", 0) <= now < (phase.get("end_date") or now + 1):
            return phase
    return phases[-1]


def _discounts(discounts: Any) -> list[dict[str, Any]]:
    kept = []
    for discount in discounts or []:
        fields = {key: _id_of(discount.get(key)) for key in ("coupon", "discount", "promotion_code")}
        fields = {key: value for key, value in fields.items() if value}
        if fields:
            kept.append(fields)
    return kept


def phase_params(phase: dict[str, Any]) -> dict[str, Any]:
    """
    A schedule phase as update parameters, whole: its items (price, quantity, tax rates,
    discounts, metadata), dates, trial, discounts, tax rates, metadata and billing settings,
    so rewriting a schedule never drops what the running phase grants.
    """
    items = []
    for item in phase.get("items") or []:
        params: dict[str, Any] = {"price": _id_of(item.get("price"))}
        if item.get("quantity") is not None:
            params["quantity"] = item["quantity"]
        if item.get("metadata"):
            params["metadata"] = dict(item["metadata"])
        if item.get("tax_rates"):
            params["tax_rates"] = [_id_of(rate) for rate in item["tax_rates"]]
        if _discounts(item.get("discounts")):
            params["discounts"] = _discounts(item.get("discounts"))
        items.append(params)
    params = {"items": items, "start_date": phase["start_date"]}
    for key in (
        "end_date",
        "trial_end",
        "proration_behavior",
        "collection_method",
        "description",
        "billing_cycle_anchor",
        "currency",
        "application_fee_percent",
    ):
        if phase.get(key) is not None:
            params[key] = phase[key]
    for key in ("default_payment_method", "on_behalf_of"):
        if phase.get(key):
            params[key] = _id_of(phase[key])
    if phase.get("trial"):
        params["trial"] = True
    if phase.get("default_tax_rates"):
        params["default_tax_rates"] = [_id_of(rate) for rate in phase["default_tax_rates"]]
    if _discounts(phase.get("discounts")):
        params["discounts"] = _discounts(phase.get("discounts"))
    if phase.get("metadata"):
        params["metadata"] = dict(phase["metadata"])
    if phase.get("automatic_tax"):
        params["automatic_tax"] = {"enabled": bool(phase["automatic_tax"].get("enabled"))}
    return params


class BudgetedRequestsClient(stripe.RequestsClient):
    """
    The SDK's requests client within the request's time budget (``STRIPE_REQUEST_BUDGET``):
    each try waits at most what is left of it, and no retry starts that would outlast it.
    """

    @property
    def _timeout(self) -> float:
        left = remaining_budget()
        if left is None:
            return self._configured_timeout
        return max(min(self._configured_timeout, left), 0.001)

    @_timeout.setter
    def _timeout(self, value: float) -> None:
        self._configured_timeout = value

    def request(self, method: str, url: str, headers: Any, post_data: Any = None) -> Any:
        left = remaining_budget()
        if left is not None and left <= 0:
            raise stripe.APIConnectionError("The time budget for provider calls is spent.", should_retry=False)
        return super().request(method, url, headers, post_data)

    def _should_retry(self, response: Any, api_connection_error: Any, num_retries: int, max_network_retries: Any):
        left = remaining_budget()
        if left is not None and left <= self._sleep_time_seconds(num_retries + 1):
            return False
        return super()._should_retry(response, api_connection_error, num_retries, max_network_retries)


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
            http_client=BudgetedRequestsClient(timeout=bob_settings.STRIPE_TIMEOUT),
        )

    # Calling Stripe

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one SDK call, retrying rate limits and turning SDK errors into ours."""
        attempts = max(int(bob_settings.STRIPE_MAX_NETWORK_RETRIES), 0) + 1
        for attempt in range(attempts):
            try:
                return function(*args, **kwargs)
            except stripe.RateLimitError as err:
                delay = self.rate_limit_delay * (2**attempt)
                left = remaining_budget()
                if attempt == attempts - 1 or (left is not None and left <= delay):
                    raise self._translate(err) from err
                time.sleep(delay / 2 + random.uniform(0, delay / 2))
            except stripe.APIConnectionError as err:
                left = remaining_budget()
                if left is not None and left <= 0.05:
                    raise ProviderTimeout(
                        "The payment provider did not answer in time.", provider=self.name, code="provider_timeout"
                    ) from err
                raise self._translate(err) from err
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

    def retrieve_checkout_session(self, external_id: str) -> dict[str, Any] | None:
        try:
            response = self.call(
                self.client.raw_request, "get", f"/v1/checkout/sessions/{external_id}", expand=["subscription"]
            )
        except ProviderError as err:
            if err.http_status == 404:
                return None
            raise
        return response.data

    def iter_subscriptions(self, customer_external_id: str | None = None) -> Iterator[dict[str, Any]]:
        params = {"status": "all", **({"customer": customer_external_id} if customer_external_id else {})}
        yield from self._paginate("/v1/subscriptions", params)

    def iter_invoices(self) -> Iterator[dict[str, Any]]:
        yield from self._paginate("/v1/invoices", {})

    # Events

    def iter_events(self, since: int, *, undelivered_only: bool = True) -> Iterator[dict[str, Any]]:
        # Stripe keeps 30 days of events; delivery_success=false lists those some endpoint has
        # not received yet (still pending, or failed). Each is the payload a webhook carries.
        params: dict[str, Any] = {"created": {"gte": since}}
        if undelivered_only:
            params["delivery_success"] = False
        yield from self._paginate("/v1/events", params)

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

    def iter_open_checkout_sessions(self, customer_external_id: str) -> Iterator[tuple[str, str | None]]:
        for session in self._paginate("/v1/checkout/sessions", {"customer": customer_external_id, "status": "open"}):
            metadata = session.get("metadata") or {}
            yield session["id"], metadata.get(ORDER_METADATA_KEY) or session.get("client_reference_id")

    def expire_checkout_session(self, external_id: str) -> bool:
        try:
            self.call(self.client.v1.checkout.sessions.expire, external_id)
        except ProviderError as err:
            if err.http_status == 400:
                # Stripe expires only open sessions: this one was paid or has expired.
                session = self.call(self.client.v1.checkout.sessions.retrieve, external_id)
                if session.status != "open":
                    return False
            raise
        return True

    def cancel_subscription(self, external_id: str, *, at_period_end: bool) -> None:
        if at_period_end:
            self.call(self.client.v1.subscriptions.update, external_id, {"cancel_at_period_end": True})
        else:
            self.call(self.client.v1.subscriptions.cancel, external_id)

    def resume_subscription(self, external_id: str) -> None:
        # Both ways of ending: at the period end, and at a date ("" unsets it).
        self.call(self.client.v1.subscriptions.update, external_id, {"cancel_at_period_end": False, "cancel_at": ""})

    def release_subscription_schedule(self, external_id: str) -> bool:
        subscription = self.call(self.client.v1.subscriptions.retrieve, external_id)
        schedule = subscription.schedule
        schedule_id = schedule if isinstance(schedule, str) else getattr(schedule, "id", None)
        if not schedule_id:
            return False
        self.call(self.client.v1.subscription_schedules.release, schedule_id)
        return True

    def schedule_subscription_change(self, external_id: str, *, price_external_id: str, quantity: int) -> None:
        # A schedule with two phases: the current one, kept whole, until the end of the
        # period, then the new price; after that phase the schedule releases the subscription.
        subscription = self.call(self.client.v1.subscriptions.retrieve, external_id)
        schedules = self.client.v1.subscription_schedules
        schedule_id = subscription.schedule if isinstance(subscription.schedule, str) else None
        if schedule_id is None:
            schedule = self.call(schedules.create, {"from_subscription": external_id})
        else:
            schedule = self.call(schedules.retrieve, schedule_id)
        schedule = as_dict(schedule)
        current = current_phase(schedule)
        price = self.call(self.client.v1.prices.retrieve, price_external_id)
        next_phase: dict[str, Any] = {"items": [{"price": price_external_id, "quantity": quantity}]}
        if price.recurring:
            next_phase["duration"] = {
                "interval": price.recurring.interval,
                "interval_count": price.recurring.interval_count,
            }
        self.call(
            schedules.update,
            schedule["id"],
            {"phases": [phase_params(current), next_phase], "end_behavior": "release"},
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
