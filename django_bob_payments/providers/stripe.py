"""
The Stripe provider: the only module of the app that imports the ``stripe`` SDK.

It uses a ``stripe.StripeClient`` built from settings (key, ``STRIPE_API_BASE``,
``STRIPE_API_VERSION``, ``STRIPE_MAX_NETWORK_RETRIES``, ``STRIPE_TIMEOUT``). The SDK retries
connection errors, 409 and 5xx answers, reusing one idempotency key, so a retried create
never makes a second object; this module adds retries of 429 rate-limit answers, which the
SDK leaves to the caller. Since SDK 15 Stripe objects are not dicts: results of single calls
are turned into plain dicts with ``to_dict()``, and list pages are fetched with
``raw_request`` and read as parsed JSON, because building StripeObjects costs about 45 ms
per page of 100 customers, more than the request itself.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from django_bob_payments.conf import bob_settings
from django_bob_payments.exceptions import (
    ProviderAuthenticationError,
    ProviderError,
    ProviderNotInstalled,
    WebhookVerificationError,
)
from django_bob_payments.providers.base import (
    CUSTOMER_METADATA_KEY,
    METADATA_KEY,
    ORDER_METADATA_KEY,
    CheckoutRequest,
    CheckoutSession,
    PaymentProvider,
    ProviderEvent,
    RemoteObject,
)

try:
    import stripe
except ImportError as err:  # pragma: no cover - stripe is a dependency of the package
    raise ProviderNotInstalled("The Stripe provider needs the stripe SDK: pip install 'stripe>=16,<17'.") from err

T = TypeVar("T")

PAGE_SIZE = 100
ADDRESS_FIELDS = ("line1", "line2", "postal_code", "city", "state", "country")


def _metadata_id(obj: dict[str, Any]) -> str | None:
    return (obj.get("metadata") or {}).get(METADATA_KEY)


def _normalize_address(address: dict[str, Any] | None) -> dict[str, str] | None:
    if not address:
        return None
    values = {key: (address.get(key) or "") for key in ADDRESS_FIELDS}
    return values if any(values.values()) else None


def _as_dict(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else obj


class StripeProvider(PaymentProvider):
    """Talks to Stripe through the pinned SDK."""

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

    # Products

    def _product(self, obj: Any) -> RemoteObject:
        obj = _as_dict(obj)
        return RemoteObject(
            external_id=obj["id"],
            local_id=_metadata_id(obj),
            fields={"name": obj["name"], "description": obj.get("description") or "", "active": obj["active"]},
        )

    def _product_params(self, fields: dict[str, Any]) -> dict[str, Any]:
        params = dict(fields)
        if "description" in params:
            # An empty string unsets a description; Stripe refuses an empty one on create.
            params["description"] = params["description"] or ""
        return params

    def iter_products(self) -> Iterator[RemoteObject]:
        for obj in self._paginate("/v1/products", {}):
            yield self._product(obj)

    def create_product(self, local_id: str, fields: dict[str, Any], idempotency_key: str) -> RemoteObject:
        params = self._product_params(fields)
        if not params.get("description"):
            params.pop("description", None)
        params["metadata"] = {METADATA_KEY: local_id}
        obj = self.call(self.client.v1.products.create, params, {"idempotency_key": idempotency_key})
        return self._product(obj)

    def update_product(self, external_id: str, changes: dict[str, Any]) -> RemoteObject:
        obj = self.call(self.client.v1.products.update, external_id, self._product_params(changes))
        return self._product(obj)

    # Prices

    def _price(self, obj: Any) -> RemoteObject:
        obj = _as_dict(obj)
        recurring = obj.get("recurring")
        product = obj["product"]
        return RemoteObject(
            external_id=obj["id"],
            local_id=_metadata_id(obj),
            parent_id=product if isinstance(product, str) else product["id"],
            fields={
                "amount": obj["unit_amount"],
                "currency": obj["currency"],
                "type": obj["type"],
                "interval": recurring["interval"] if recurring else "",
                "interval_count": recurring["interval_count"] if recurring else 1,
                "nickname": obj.get("nickname") or "",
                "active": obj["active"],
            },
        )

    def iter_prices(self) -> Iterator[RemoteObject]:
        for obj in self._paginate("/v1/prices", {}):
            yield self._price(obj)

    def create_price(
        self, local_id: str, product_external_id: str, fields: dict[str, Any], idempotency_key: str
    ) -> RemoteObject:
        params: dict[str, Any] = {
            "product": product_external_id,
            "unit_amount": fields["amount"],
            "currency": fields["currency"],
            "active": fields["active"],
            "metadata": {METADATA_KEY: local_id},
        }
        if fields.get("nickname"):
            params["nickname"] = fields["nickname"]
        if fields["type"] == "recurring":
            params["recurring"] = {"interval": fields["interval"], "interval_count": fields["interval_count"]}
        obj = self.call(self.client.v1.prices.create, params, {"idempotency_key": idempotency_key})
        return self._price(obj)

    def update_price(self, external_id: str, changes: dict[str, Any]) -> RemoteObject:
        unknown = set(changes) - {"nickname", "active"}
        if unknown:
            raise ValueError(f"Stripe prices cannot change {sorted(unknown)}: create a new price.")
        obj = self.call(self.client.v1.prices.update, external_id, dict(changes))
        return self._price(obj)

    # Customers

    def _customer(self, obj: Any) -> RemoteObject:
        obj = _as_dict(obj)
        tax_ids = (obj.get("tax_ids") or {}).get("data", [])
        eu_vat = [tax_id for tax_id in tax_ids if tax_id["type"] == "eu_vat"]
        return RemoteObject(
            external_id=obj["id"],
            local_id=_metadata_id(obj),
            fields={
                "name": obj.get("name") or "",
                "email": obj.get("email") or "",
                "address": _normalize_address(obj.get("address")),
                "preferred_locales": list(obj.get("preferred_locales") or []),
                "tax_exempt": obj.get("tax_exempt") or "none",
                "tax_id": eu_vat[0]["value"] if eu_vat else None,
                "tax_id_ids": [tax_id["id"] for tax_id in eu_vat],
            },
        )

    def _customer_params(self, fields: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for key, value in fields.items():
            if key == "tax_id":
                continue
            if key == "address":
                params["address"] = {name: value.get(name, "") for name in ADDRESS_FIELDS} if value else ""
            elif key == "preferred_locales":
                params["preferred_locales"] = list(value) if value else ""
            else:
                params[key] = value
        return params

    def iter_customers(self) -> Iterator[RemoteObject]:
        for obj in self._paginate("/v1/customers", {"expand": ["data.tax_ids"]}):
            yield self._customer(obj)

    def retrieve_customer(self, external_id: str) -> RemoteObject | None:
        try:
            obj = self.call(self.client.v1.customers.retrieve, external_id, {"expand": ["tax_ids"]})
        except ProviderError as err:
            if err.http_status == 404:
                return None
            raise
        if getattr(obj, "deleted", False):
            return None
        return self._customer(obj)

    def create_customer(self, local_id: str, fields: dict[str, Any], idempotency_key: str) -> RemoteObject:
        params = {key: value for key, value in self._customer_params(fields).items() if value not in ("", None)}
        params["metadata"] = {METADATA_KEY: local_id}
        params["expand"] = ["tax_ids"]
        if fields.get("tax_id"):
            params["tax_id_data"] = [{"type": "eu_vat", "value": fields["tax_id"]}]
        obj = self.call(self.client.v1.customers.create, params, {"idempotency_key": idempotency_key})
        return self._customer(obj)

    def update_customer(self, remote: RemoteObject, changes: dict[str, Any]) -> RemoteObject:
        customer_id = remote.external_id
        params = self._customer_params(changes)
        if params:
            self.call(self.client.v1.customers.update, customer_id, params)
        if "tax_id" in changes:
            # Tax IDs cannot be edited: delete the old one and create the new one.
            for tax_id_id in remote.fields.get("tax_id_ids", []):
                self.call(self.client.v1.customers.tax_ids.delete, customer_id, tax_id_id)
            new_ids: list[str] = []
            if changes["tax_id"]:
                tax_id = self.call(
                    self.client.v1.customers.tax_ids.create,
                    customer_id,
                    {"type": "eu_vat", "value": changes["tax_id"]},
                )
                new_ids.append(tax_id.id)
            changes = {**changes, "tax_id_ids": new_ids}
        return RemoteObject(external_id=customer_id, local_id=remote.local_id, fields={**remote.fields, **changes})

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

    # Webhooks

    def verify_webhook(self, body: bytes, headers: Any) -> dict[str, Any]:
        return verify_webhook(body, headers.get("Stripe-Signature"))

    def parse_event(self, payload: dict[str, Any]) -> ProviderEvent:
        event_id, event_type, created = payload.get("id"), payload.get("type"), payload.get("created")
        data = payload.get("data")
        if not (
            isinstance(event_id, str)
            and event_id
            and isinstance(event_type, str)
            and event_type
            and isinstance(created, int)
            and not isinstance(created, bool)
            and isinstance(data, dict)
            and isinstance(data.get("object"), dict)
        ):
            raise WebhookVerificationError(
                "The body is not a Stripe event (id, type, created and data.object are required).",
                code="invalid_event",
            )
        obj = data["object"]
        kind, action = EVENT_KINDS.get(event_type, ("", ""))
        normalized: dict[str, Any] = {}
        if kind:
            if not isinstance(obj.get("id"), str):
                raise WebhookVerificationError("The event's object has no ID.", code="invalid_event")
            normalized = NORMALIZERS[kind](obj)
        customer_key = obj["id"] if kind == "customer" else _id(obj.get("customer"))
        return ProviderEvent(
            provider=self.name,
            event_id=event_id,
            type=event_type,
            created=created,
            livemode=bool(payload.get("livemode")),
            api_version=str(payload.get("api_version") or ""),
            customer_key=customer_key if isinstance(customer_key, str) else "",
            kind=kind,
            action=action,
            data=normalized,
        )

    @property
    def api_version(self) -> str:
        """The API version event payloads must be rendered in for the handlers to read them."""
        return bob_settings.STRIPE_API_VERSION or stripe.api_version

    def delete_customer(self, external_id: str) -> None:
        try:
            self.call(self.client.v1.customers.delete, external_id)
        except ProviderError as err:
            if err.http_status != 404:
                raise


# Stripe event types the app applies, as (object kind, action).
EVENT_KINDS: dict[str, tuple[str, str]] = {
    **{f"customer.{action}": ("customer", action) for action in ("created", "updated", "deleted")},
    **{f"customer.tax_id.{action}": ("tax_id", action) for action in ("created", "updated", "deleted")},
    **{
        f"customer.subscription.{action}": ("subscription", action)
        for action in ("created", "updated", "deleted", "paused", "resumed", "trial_will_end")
    },
    **{
        f"checkout.session.{action}": ("checkout_session", action)
        for action in ("completed", "expired", "async_payment_succeeded", "async_payment_failed")
    },
    **{f"invoice.{action}": ("invoice", action) for action in ("paid", "payment_failed", "finalized")},
    **{f"product.{action}": ("product", action) for action in ("created", "updated", "deleted")},
    **{f"price.{action}": ("price", action) for action in ("created", "updated", "deleted")},
}


def _id(value: Any) -> str:
    """An expandable field's ID, whether Stripe sent the ID or the object."""
    if isinstance(value, dict):
        return value.get("id") or ""
    return value or ""


def _meta(obj: dict[str, Any], key: str) -> str | None:
    return (obj.get("metadata") or {}).get(key)


def _customer_data(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "external_id": obj["id"],
        "local_id": _meta(obj, METADATA_KEY),
        "email": obj.get("email") or "",
        "name": obj.get("name") or "",
    }


def _tax_id_data(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "external_id": obj["id"],
        "type": obj.get("type") or "",
        "value": obj.get("value") or "",
        "verification_status": (obj.get("verification") or {}).get("status") or "",
    }


def _subscription_data(obj: dict[str, Any]) -> dict[str, Any]:
    items = (obj.get("items") or {}).get("data") or []
    item = items[0] if items else {}
    price = item.get("price") or {}
    # Since basil (2025-03-31) the billing period is on each item, not on the subscription.
    return {
        "external_id": obj["id"],
        "status": obj.get("status") or "",
        "quantity": item.get("quantity") or 1,
        "price_external_id": _id(price),
        "price_local_id": _meta(price, METADATA_KEY) if isinstance(price, dict) else None,
        "current_period_start": item.get("current_period_start"),
        "current_period_end": item.get("current_period_end"),
        "cancel_at_period_end": bool(obj.get("cancel_at_period_end")),
        "cancel_at": obj.get("cancel_at"),
        "canceled_at": obj.get("canceled_at"),
        "ended_at": obj.get("ended_at"),
        "trial_start": obj.get("trial_start"),
        "trial_end": obj.get("trial_end"),
        "customer_local_id": _meta(obj, CUSTOMER_METADATA_KEY),
        "order_local_id": _meta(obj, ORDER_METADATA_KEY),
    }


def _checkout_session_data(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "external_id": obj["id"],
        "status": obj.get("status") or "",
        "payment_status": obj.get("payment_status") or "",
        "mode": obj.get("mode") or "",
        "subscription_external_id": _id(obj.get("subscription")),
        "order_local_id": _meta(obj, ORDER_METADATA_KEY) or obj.get("client_reference_id"),
        "customer_local_id": _meta(obj, CUSTOMER_METADATA_KEY),
        "amount_total": obj.get("amount_total"),
        "currency": obj.get("currency") or "",
    }


def _invoice_data(obj: dict[str, Any]) -> dict[str, Any]:
    # Since basil an invoice's subscription is under parent.subscription_details.
    details = (obj.get("parent") or {}).get("subscription_details") or {}
    transitions = obj.get("status_transitions") or {}
    return {
        "external_id": obj["id"],
        "subscription_external_id": _id(details.get("subscription")),
        "number": obj.get("number") or "",
        "status": obj.get("status") or "",
        "currency": obj.get("currency") or "",
        "subtotal": obj.get("subtotal") or 0,
        "tax": sum(tax.get("amount") or 0 for tax in obj.get("total_taxes") or []),
        "total": obj.get("total") or 0,
        "amount_paid": obj.get("amount_paid") or 0,
        "amount_due": obj.get("amount_due") or 0,
        "hosted_invoice_url": obj.get("hosted_invoice_url") or "",
        "invoice_pdf": obj.get("invoice_pdf") or "",
        "period_start": obj.get("period_start"),
        "period_end": obj.get("period_end"),
        "paid_at": transitions.get("paid_at"),
        "customer_email": obj.get("customer_email") or "",
        # The subscription's metadata, copied onto the invoice, names our customer.
        "customer_local_id": (details.get("metadata") or {}).get(CUSTOMER_METADATA_KEY),
    }


def _product_data(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "external_id": obj["id"],
        "local_id": _meta(obj, METADATA_KEY),
        "name": obj.get("name") or "",
        "description": obj.get("description") or "",
        "active": bool(obj.get("active")),
    }


def _price_data(obj: dict[str, Any]) -> dict[str, Any]:
    recurring = obj.get("recurring") or {}
    return {
        "external_id": obj["id"],
        "local_id": _meta(obj, METADATA_KEY),
        "amount": obj.get("unit_amount"),
        "currency": obj.get("currency") or "",
        "interval": recurring.get("interval") or "",
        "interval_count": recurring.get("interval_count") or 1,
        "nickname": obj.get("nickname") or "",
        "active": bool(obj.get("active")),
    }


NORMALIZERS = {
    "customer": _customer_data,
    "tax_id": _tax_id_data,
    "subscription": _subscription_data,
    "checkout_session": _checkout_session_data,
    "invoice": _invoice_data,
    "product": _product_data,
    "price": _price_data,
}


def _signed_at(signature_header: str) -> int:
    """The ``t=`` timestamp of a header the SDK has already accepted."""
    for part in signature_header.split(","):
        key, _, value = part.partition("=")
        if key.strip() == "t":
            return int(value)
    return 0


def verify_webhook(body: bytes, signature_header: str | None) -> dict[str, Any]:
    """
    Check ``body`` against every configured signing secret and parse it once.

    Only the signature is checked with the SDK (``WebhookSignature.verify_header``, about
    0.01 ms); ``construct_event`` would also build StripeObjects from the whole body, which
    costs more than the rest of storing the event.
    """
    secrets = bob_settings.webhook_secrets
    if not secrets:
        raise WebhookVerificationError("No webhook secret is configured.", code="no_webhook_secret")
    if not signature_header:
        raise WebhookVerificationError("The Stripe-Signature header is missing.", code="missing_signature")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookVerificationError("The body is not UTF-8.", code="invalid_body") from None
    tolerance = bob_settings.WEBHOOK_TOLERANCE
    last_error: Exception | None = None
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, signature_header, secret, tolerance)
            break
        except stripe.SignatureVerificationError as err:
            last_error = err
    else:
        reason = "stale_signature" if "tolerance" in str(last_error) else "invalid_signature"
        message = (
            "The signature's timestamp is outside the tolerance."
            if reason == "stale_signature"
            else "The signature does not match the body for any configured secret."
        )
        raise WebhookVerificationError(message, code=reason)
    # The SDK refuses old timestamps only; one from the future beyond the tolerance is as suspect.
    if _signed_at(signature_header) > time.time() + tolerance:
        raise WebhookVerificationError("The signature's timestamp is in the future.", code="stale_signature")
    try:
        payload = json.loads(text)
    except ValueError:
        raise WebhookVerificationError("The body is not JSON.", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise WebhookVerificationError("The body is not a JSON object.", code="invalid_event")
    return payload
