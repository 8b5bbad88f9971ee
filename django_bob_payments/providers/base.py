"""
The interface every payment provider implements.

A provider turns local rows into the provider's API calls and the provider's objects into
``RemoteObject``s with normalized fields, so that the code deciding what to create, update
or archive (``services/sync.py``) knows nothing of any provider's API. Only the module of a
provider imports its SDK.

Normalized fields, compared by the sync between local rows and provider objects:

- product: ``name``, ``description``, ``active``
- price: ``amount``, ``currency``, ``type``, ``interval``, ``interval_count`` (immutable:
  a change makes a new price), and ``nickname``, ``active``
- customer: ``name``, ``email``, ``address`` (dict of line1, line2, postal_code, city,
  state, country, or None), ``preferred_locales`` (list), ``tax_exempt``, ``tax_id``
  (the EU VAT number as the provider holds it, or None)
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django_bob_payments.exceptions import ProviderError

# The metadata key that carries our local primary key on every object we create.
METADATA_KEY = "bob_payments_id"
# On checkout sessions and the subscriptions they start: the local customer and order.
CUSTOMER_METADATA_KEY = "bob_payments_customer_id"
ORDER_METADATA_KEY = "bob_payments_order_id"

# When the provider calls of the current API request must be done (time.monotonic()).
_deadline: ContextVar[float | None] = ContextVar("bob_payments_provider_deadline", default=None)


@contextmanager
def time_budget(seconds: float | None) -> Iterator[None]:
    """
    The provider calls made inside share ``seconds`` in all, retries included (None or 0:
    no budget). A nested budget never extends the one around it.
    """
    if not seconds:
        yield
        return
    deadline = time.monotonic() + float(seconds)
    outer = _deadline.get()
    token = _deadline.set(min(deadline, outer) if outer is not None else deadline)
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining_budget() -> float | None:
    """Seconds left of the current time budget; None when there is none."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


PRICE_IMMUTABLE_FIELDS = ("amount", "currency", "type", "interval", "interval_count")


@dataclass(frozen=True)
class ProviderEvent:
    """
    A verified provider event, normalized.

    ``kind`` names the object (customer, tax_id, subscription, checkout_session, invoice,
    product, price) and ``action`` what happened to it (created, updated, deleted, paused,
    resumed, trial_will_end, completed, expired, async_payment_succeeded,
    async_payment_failed, paid, payment_failed, finalized, voided,
    marked_uncollectible); both are empty for an event the
    app does not handle. ``data`` holds the object's normalized fields (see each provider);
    ``previous`` the values that an update changed, as they were before it, under the same
    normalized names (empty when the provider does not say); ``customer_key`` is the
    provider's ID of the customer it concerns, or "". ``unreadable`` says why the event's
    object cannot be read (an API version the handlers do not read, a field of the wrong
    type); such an event is stored to wait, never applied.
    """

    provider: str
    event_id: str
    type: str
    created: int
    livemode: bool
    api_version: str
    customer_key: str
    kind: str = ""
    action: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    previous: dict[str, Any] = field(default_factory=dict)
    unreadable: str = ""

    @property
    def handled(self) -> bool:
        return bool(self.kind)


@dataclass(frozen=True)
class CheckoutRequest:
    """What a checkout session is made of."""

    customer_external_id: str
    price_external_id: str
    quantity: int
    mode: str  # "subscription" or "payment"
    success_url: str
    cancel_url: str
    client_reference_id: str
    metadata: dict[str, str]
    idempotency_key: str
    trial_period_days: int | None = None
    allow_promotion_codes: bool = False
    automatic_tax: bool = False
    tax_id_collection: bool = False


@dataclass(frozen=True)
class CheckoutSession:
    external_id: str
    url: str


@dataclass(frozen=True)
class RemoteObject:
    """An object at the provider: its ID, the local ID from its metadata, and its normalized fields."""

    external_id: str
    local_id: str | None
    fields: dict[str, Any] = field(default_factory=dict)
    # For prices: the provider ID of the product it belongs to.
    parent_id: str | None = None


# Receives an event a provider emits itself (a verified payload) and returns what the inbox
# made of it: an object with ``failed`` and ``event``, as ``WebhookInbox.receive`` returns.
EventSink = Callable[[dict[str, Any]], Any]


class PaymentProvider(ABC):
    """A payment provider. Methods raise ``ProviderError`` (or a subclass) when a call fails."""

    name: ClassVar[str]
    # Where a provider that announces its own changes (the fake provider) delivers them: the
    # inbox, connected by whoever builds the provider for the app (``PaymentInteractor``), so
    # that this layer never imports the layers above it.
    event_sink: EventSink | None = None

    def deliver(self, payload: dict[str, Any]) -> Any:
        """Hand an event of this provider's own to the connected inbox, as a webhook would."""
        if self.event_sink is None:
            raise ProviderError(
                f"The {self.name} provider has no inbox to deliver its events to: "
                "get it from PaymentInteractor.get_provider().",
                provider=self.name,
                code="no_inbox",
            )
        return self.event_sink(payload)

    @property
    def api_version(self) -> str:
        """The API version whose event shapes ``parse_event`` reads; "" when any will do."""
        return ""

    def reads_api_version(self, version: str) -> bool:
        """Whether ``parse_event`` reads events rendered in ``version`` ("" when the event does not say)."""
        return not version or not self.api_version or version == self.api_version

    # Products

    @abstractmethod
    def iter_products(self) -> Iterator[RemoteObject]:
        """Every product at the provider, paging through them."""

    @abstractmethod
    def create_product(self, local_id: str, fields: dict[str, Any], idempotency_key: str) -> RemoteObject:
        """Create a product carrying ``local_id`` in its metadata."""

    @abstractmethod
    def update_product(self, external_id: str, changes: dict[str, Any]) -> RemoteObject:
        """Change only the given normalized fields of a product."""

    # Prices

    @abstractmethod
    def iter_prices(self, product_external_id: str | None = None) -> Iterator[RemoteObject]:
        """Every price at the provider (or of one provider product), paging through them."""

    @abstractmethod
    def create_price(
        self, local_id: str, product_external_id: str, fields: dict[str, Any], idempotency_key: str
    ) -> RemoteObject:
        """Create a price of the given provider product."""

    @abstractmethod
    def update_price(self, external_id: str, changes: dict[str, Any]) -> RemoteObject:
        """Change mutable fields of a price (``nickname``, ``active``)."""

    # Customers

    @abstractmethod
    def iter_customers(self) -> Iterator[RemoteObject]:
        """Every customer at the provider, with their tax ID, paging through them."""

    @abstractmethod
    def retrieve_customer(self, external_id: str) -> RemoteObject | None:
        """One customer with its tax ID, or None when the provider has no such customer."""

    @abstractmethod
    def create_customer(self, local_id: str, fields: dict[str, Any], idempotency_key: str) -> RemoteObject:
        """Create a customer (with its tax ID) carrying ``local_id`` in its metadata."""

    @abstractmethod
    def update_customer(self, remote: RemoteObject, changes: dict[str, Any]) -> RemoteObject:
        """Change the given normalized fields; a new ``tax_id`` replaces the old one."""

    @abstractmethod
    def delete_customer(self, external_id: str) -> None:
        """Delete a customer at the provider."""

    # Webhooks

    @abstractmethod
    def verify_webhook(self, body: bytes, headers: Any) -> dict[str, Any]:
        """
        Check a webhook request's signature and return its parsed JSON payload. Raises
        WebhookVerificationError (with a short reason, never the body) when it fails.
        """

    @abstractmethod
    def parse_event(self, payload: dict[str, Any]) -> ProviderEvent:
        """Normalize a verified payload. Raises WebhookVerificationError when it is not an event."""

    def retrieve_checkout_session(self, external_id: str) -> dict[str, Any] | None:
        """
        The checkout session as the provider holds it now, with its subscription object
        (not only its ID), shaped as a checkout event carries it; None for a provider whose
        checkouts apply their outcome as they happen (the fake provider).
        """
        return None

    def iter_subscriptions(self, customer_external_id: str | None = None) -> Iterator[dict[str, Any]]:
        """
        Every subscription the provider holds (of one customer, when given), ended ones
        included, as the object a subscription event carries (a page of 100 per request).
        None for a provider without them.
        """
        return iter(())

    def iter_invoices(self) -> Iterator[dict[str, Any]]:
        """Every invoice the provider holds, as the object an invoice event carries. None without them."""
        return iter(())

    def iter_events(self, since: int, *, undelivered_only: bool = True) -> Iterator[dict[str, Any]]:
        """
        The events the provider still holds that were created at or after ``since`` (Unix
        time), newest first, as the payloads a webhook would carry; when ``undelivered_only``,
        only those an endpoint has not received yet. A provider without an events API has none.
        """
        return iter(())

    # Checkout, portal and subscription changes

    @abstractmethod
    def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        """A hosted checkout page for one price; its metadata ties it to our order and customer."""

    @abstractmethod
    def create_portal_session(self, customer_external_id: str, return_url: str) -> str:
        """The URL of the provider's customer portal for this customer."""

    @abstractmethod
    def iter_open_checkout_sessions(self, customer_external_id: str) -> Iterator[tuple[str, str | None]]:
        """The customer's checkout sessions still open: (session ID, local order ID from its metadata)."""

    @abstractmethod
    def expire_checkout_session(self, external_id: str) -> bool:
        """Close an open checkout session; False when it is not open any more (paid or expired)."""

    @abstractmethod
    def cancel_subscription(self, external_id: str, *, at_period_end: bool) -> None:
        """Cancel now, or at the end of the current period."""

    @abstractmethod
    def resume_subscription(self, external_id: str) -> None:
        """Undo a cancellation set for the end of the period or for a date."""

    @abstractmethod
    def release_subscription_schedule(self, external_id: str) -> bool:
        """
        Release the schedule attached to the subscription, if any, so that direct changes
        (cancel, resume, a plan change now) are allowed; True when one was released.
        """

    @abstractmethod
    def schedule_subscription_change(self, external_id: str, *, price_external_id: str, quantity: int) -> None:
        """
        Switch to another price and/or quantity at the end of the current period, through a
        schedule whose current phase is kept as it is; a change scheduled before is replaced.
        """

    @abstractmethod
    def change_subscription(
        self, external_id: str, *, price_external_id: str, quantity: int, proration_behavior: str
    ) -> None:
        """Switch the subscription to another price and/or quantity now."""
