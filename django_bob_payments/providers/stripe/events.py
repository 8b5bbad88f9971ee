"""
Receiving Stripe events: signature verification, and the normalizers that turn an event's
payload into the fields the handlers of ``services/events.py`` read.

The normalizers read the shapes of the pinned API version (basil and later: billing periods
on subscription items, an invoice's subscription under ``parent.subscription_details``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from django_bob_payments.conf import bob_settings
from django_bob_payments.exceptions import WebhookVerificationError
from django_bob_payments.providers.base import (
    CUSTOMER_METADATA_KEY,
    METADATA_KEY,
    ORDER_METADATA_KEY,
    ProviderEvent,
)
from django_bob_payments.providers.stripe.client import stripe

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
    **{
        f"invoice.{action}": ("invoice", action)
        for action in ("created", "finalized", "paid", "payment_failed", "voided", "marked_uncollectible")
    },
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


# Fields of a subscription whose values before an update order the updates of one second.
SUBSCRIPTION_PREVIOUS_FIELDS = ("status", "cancel_at_period_end", "cancel_at", "canceled_at", "ended_at", "trial_end")


def _subscription_previous(previous: dict[str, Any]) -> dict[str, Any]:
    """The subscription's values before an update, under the normalized names, as far as they are known."""
    values = {name: previous[name] for name in SUBSCRIPTION_PREVIOUS_FIELDS if name in previous}
    items = previous.get("items")
    items = items.get("data") if isinstance(items, dict) else None
    if isinstance(items, list) and len(items) == 1 and isinstance(items[0], dict) and "quantity" in items[0]:
        values["quantity"] = items[0]["quantity"]
    return values


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


# Normalizers of ``data.previous_attributes``, by kind; kinds without one keep it empty.
PREVIOUS_NORMALIZERS = {"subscription": _subscription_previous}

NORMALIZERS = {
    "customer": _customer_data,
    "tax_id": _tax_id_data,
    "subscription": _subscription_data,
    "checkout_session": _checkout_session_data,
    "invoice": _invoice_data,
    "product": _product_data,
    "price": _price_data,
}


def parse_event(
    payload: dict[str, Any], provider_name: str = "stripe", reads_api_version: Callable[[str], bool] | None = None
) -> ProviderEvent:
    """
    Normalize a verified payload. Raises WebhookVerificationError when it is not an event.

    An event in an API version ``reads_api_version`` refuses is returned unnormalized, with
    the reason in ``unreadable``, so that it is stored and waits.
    """
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
    previous: dict[str, Any] = {}
    unreadable = ""
    if kind:
        if not isinstance(obj.get("id"), str):
            raise WebhookVerificationError("The event's object has no ID.", code="invalid_event")
        version = str(payload.get("api_version") or "")
        if reads_api_version is not None and not reads_api_version(version):
            unreadable = (
                f"rendered in API version {version}, which the handlers do not read: set the endpoint's "
                'version in the dashboard, or list it in BOB_PAYMENTS["STRIPE_ACCEPTED_API_VERSIONS"], '
                "then replay it with processwebhooks"
            )
        else:
            normalized = NORMALIZERS[kind](obj)
            previous_attributes = data.get("previous_attributes")
            if kind in PREVIOUS_NORMALIZERS and isinstance(previous_attributes, dict):
                previous = PREVIOUS_NORMALIZERS[kind](previous_attributes)
    customer_key = obj["id"] if kind == "customer" else _id(obj.get("customer"))
    return ProviderEvent(
        provider=provider_name,
        event_id=event_id,
        type=event_type,
        created=created,
        livemode=bool(payload.get("livemode")),
        api_version=str(payload.get("api_version") or ""),
        customer_key=customer_key if isinstance(customer_key, str) else "",
        kind=kind,
        action=action,
        data=normalized,
        previous=previous,
        unreadable=unreadable,
    )


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
