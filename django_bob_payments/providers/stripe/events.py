"""
Receiving Stripe events: signature verification, and the normalizers that turn an event's
payload into the fields the handlers of ``services/events.py`` read.

The normalizers read the shapes of the pinned API version (basil and later: billing periods
on subscription items, an invoice's subscription under ``parent.subscription_details``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

from django.views.decorators.debug import sensitive_variables

from django_bob_payments.bounds import depth_within
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


# What Stripe sends, as bounds: IDs of up to 255 safe characters, Unix times up to the year
# 9999, amounts and quantities that fit the database's 64-bit integers.
ID_PATTERN = re.compile(r"[A-Za-z0-9_.:\-]{1,255}")
EVENT_TYPE_PATTERN = re.compile(r"[a-z0-9_.]{1,128}")
API_VERSION_PATTERN = re.compile(r"[A-Za-z0-9_.\-]{0,64}")
MAX_TIMESTAMP = 253_402_300_799
MAX_AMOUNT = 2**63 - 1
MAX_TEXT = 5000
# The deepest nesting a Stripe event has is about ten levels (expanded objects in lists).
MAX_DEPTH = 64

SUBSCRIPTION_STATUSES = frozenset(
    ("incomplete", "incomplete_expired", "trialing", "active", "past_due", "canceled", "unpaid", "paused")
)
INVOICE_STATUSES = frozenset(("draft", "open", "paid", "uncollectible", "void"))


class Malformed(ValueError):
    """A field of the event's object does not have the type or range Stripe gives it."""


def _text(value: Any, name: str, *, max_length: int = MAX_TEXT, choices: frozenset[str] | None = None) -> str:
    """A string field ("" for null): no NUL, no lone surrogate, within the length, one of ``choices``."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Malformed(f"{name} is a {type(value).__name__}, not a string")
    if len(value) > max_length:
        raise Malformed(f"{name} is longer than {max_length} characters")
    if "\x00" in value or (not value.isascii() and not _encodes(value)):
        raise Malformed(f"{name} holds a NUL or an unpaired surrogate")
    if choices is not None and value not in choices:
        raise Malformed(f"{name} is not one of {', '.join(sorted(choices))}")
    return value


def _encodes(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _integer(value: Any, name: str, *, minimum: int = 0, maximum: int = MAX_AMOUNT) -> int | None:
    """An integer field (None for null) within [minimum, maximum]."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Malformed(f"{name} is a {type(value).__name__}, not an integer")
    if not minimum <= value <= maximum:
        raise Malformed(f"{name} is outside {minimum}..{maximum}")
    return value


def _timestamp(value: Any, name: str) -> int | None:
    return _integer(value, name, maximum=MAX_TIMESTAMP)


def _flag(value: Any, name: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise Malformed(f"{name} is a {type(value).__name__}, not a boolean")
    return value


def _object(value: Any, name: str) -> dict[str, Any]:
    """A nested object ({} for null)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Malformed(f"{name} is a {type(value).__name__}, not an object")
    return value


def _objects(value: Any, name: str) -> list[dict[str, Any]]:
    """A list of objects ([] for null)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise Malformed(f"{name} is not a list of objects")
    return value


def _id(value: Any, name: str = "id") -> str:
    """An expandable field's ID, whether Stripe sent the ID or the object ("" for null)."""
    if isinstance(value, dict):
        value = value.get("id")
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise Malformed(f"{name} is not a Stripe ID")
    return value


def _meta(obj: dict[str, Any], key: str) -> str | None:
    """A metadata value; metadata that is not an object of strings names nothing."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        return None
    value = metadata.get(key)
    return value if isinstance(value, str) else None


def _customer_data(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "external_id": _id(obj["id"]),
        "local_id": _meta(obj, METADATA_KEY),
        "email": _text(obj.get("email"), "email", max_length=512),
        "name": _text(obj.get("name"), "name", max_length=512),
        "deleted": _flag(obj.get("deleted"), "deleted"),
    }


def _tax_id_data(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "external_id": _id(obj["id"]),
        "type": _text(obj.get("type"), "type", max_length=64),
        "value": _text(obj.get("value"), "value", max_length=64),
        "verification_status": _text(
            _object(obj.get("verification"), "verification").get("status"), "verification.status", max_length=32
        ),
    }


def _subscription_item(item: dict[str, Any], index: int) -> dict[str, Any]:
    name = f"items.data[{index}]"
    price = item.get("price")
    price_fields = _object(price, f"{name}.price") if isinstance(price, dict) else {}
    # Since basil (2025-03-31) the billing period is on each item, not on the subscription.
    return {
        "external_id": _id(item.get("id"), f"{name}.id"),
        "price_external_id": _id(price, f"{name}.price"),
        "price_local_id": _meta(price_fields, METADATA_KEY),
        "quantity": _integer(item.get("quantity"), f"{name}.quantity", maximum=2**31 - 1),
        "current_period_start": _timestamp(item.get("current_period_start"), f"{name}.current_period_start"),
        "current_period_end": _timestamp(item.get("current_period_end"), f"{name}.current_period_end"),
    }


def _subscription_data(obj: dict[str, Any]) -> dict[str, Any]:
    items_list = _object(obj.get("items"), "items")
    items = [_subscription_item(item, index) for index, item in enumerate(_objects(items_list.get("data"), "items"))]
    return {
        "external_id": _id(obj["id"]),
        "status": _text(obj.get("status"), "status", choices=SUBSCRIPTION_STATUSES),
        "items": items,
        "cancel_at_period_end": _flag(obj.get("cancel_at_period_end"), "cancel_at_period_end"),
        "cancel_at": _timestamp(obj.get("cancel_at"), "cancel_at"),
        "canceled_at": _timestamp(obj.get("canceled_at"), "canceled_at"),
        "ended_at": _timestamp(obj.get("ended_at"), "ended_at"),
        "trial_start": _timestamp(obj.get("trial_start"), "trial_start"),
        "trial_end": _timestamp(obj.get("trial_end"), "trial_end"),
        "customer_local_id": _meta(obj, CUSTOMER_METADATA_KEY),
        "order_local_id": _meta(obj, ORDER_METADATA_KEY),
        "schedule_external_id": _id(obj.get("schedule"), "schedule"),
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
        "external_id": _id(obj["id"]),
        "status": _text(obj.get("status"), "status", choices=frozenset(("open", "complete", "expired"))),
        "payment_status": _text(
            obj.get("payment_status"), "payment_status", choices=frozenset(("paid", "unpaid", "no_payment_required"))
        ),
        "mode": _text(obj.get("mode"), "mode", max_length=32),
        "subscription_external_id": _id(obj.get("subscription"), "subscription"),
        "order_local_id": _meta(obj, ORDER_METADATA_KEY)
        or _text(obj.get("client_reference_id"), "client_reference_id", max_length=200)
        or None,
        "customer_local_id": _meta(obj, CUSTOMER_METADATA_KEY),
        "amount_total": _integer(obj.get("amount_total"), "amount_total"),
        "currency": _text(obj.get("currency"), "currency", max_length=3),
        "customer_details": _customer_details(obj.get("customer_details")),
    }


def _customer_details(value: Any) -> dict[str, Any]:
    """What the buyer gave on the hosted page: name, email, address, and the tax IDs typed in."""
    details = _object(value, "customer_details")
    address = _object(details.get("address"), "customer_details.address")
    return {
        "name": _text(details.get("name"), "customer_details.name", max_length=512),
        "business_name": _text(details.get("business_name"), "customer_details.business_name", max_length=512),
        "email": _text(details.get("email"), "customer_details.email", max_length=512),
        "address": {
            key: _text(address.get(key), f"customer_details.address.{key}", max_length=512)
            for key in ("line1", "line2", "postal_code", "city", "state", "country")
        },
        "tax_ids": [
            {
                "type": _text(tax_id.get("type"), f"customer_details.tax_ids[{index}].type", max_length=64),
                "value": _text(tax_id.get("value"), f"customer_details.tax_ids[{index}].value", max_length=64),
            }
            for index, tax_id in enumerate(_objects(details.get("tax_ids"), "customer_details.tax_ids"))
        ],
    }


def _invoice_data(obj: dict[str, Any]) -> dict[str, Any]:
    # Since basil an invoice's subscription is under parent.subscription_details.
    details = _object(_object(obj.get("parent"), "parent").get("subscription_details"), "subscription_details")
    transitions = _object(obj.get("status_transitions"), "status_transitions")
    taxes = _objects(obj.get("total_taxes"), "total_taxes")
    return {
        "external_id": _id(obj["id"]),
        "subscription_external_id": _id(details.get("subscription"), "parent.subscription_details.subscription"),
        "number": _text(obj.get("number"), "number", max_length=64),
        "status": _text(obj.get("status"), "status", choices=INVOICE_STATUSES),
        "currency": _text(obj.get("currency"), "currency", max_length=3),
        "subtotal": _integer(obj.get("subtotal"), "subtotal", minimum=-MAX_AMOUNT) or 0,
        "customer_tax_exempt": _text(
            obj.get("customer_tax_exempt"), "customer_tax_exempt", choices=frozenset(("", "none", "exempt", "reverse"))
        ),
        "tax": sum(
            _integer(tax.get("amount"), f"total_taxes[{index}].amount", minimum=-MAX_AMOUNT) or 0
            for index, tax in enumerate(taxes)
        ),
        "total": _integer(obj.get("total"), "total", minimum=-MAX_AMOUNT) or 0,
        "amount_paid": _integer(obj.get("amount_paid"), "amount_paid") or 0,
        "amount_due": _integer(obj.get("amount_due"), "amount_due") or 0,
        "hosted_invoice_url": _text(obj.get("hosted_invoice_url"), "hosted_invoice_url", max_length=2048),
        "invoice_pdf": _text(obj.get("invoice_pdf"), "invoice_pdf", max_length=2048),
        "period_start": _timestamp(obj.get("period_start"), "period_start"),
        "period_end": _timestamp(obj.get("period_end"), "period_end"),
        "paid_at": _timestamp(transitions.get("paid_at"), "status_transitions.paid_at"),
        "customer_email": _text(obj.get("customer_email"), "customer_email", max_length=512),
        # The subscription's metadata, copied onto the invoice, names our customer.
        "customer_local_id": _meta(details, CUSTOMER_METADATA_KEY),
    }


def _product_data(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "external_id": _id(obj["id"]),
        "local_id": _meta(obj, METADATA_KEY),
        "name": _text(obj.get("name"), "name"),
        "description": _text(obj.get("description"), "description", max_length=40_000),
        "active": _flag(obj.get("active"), "active"),
    }


def _price_data(obj: dict[str, Any]) -> dict[str, Any]:
    recurring = _object(obj.get("recurring"), "recurring")
    return {
        "external_id": _id(obj["id"]),
        "local_id": _meta(obj, METADATA_KEY),
        "amount": _integer(obj.get("unit_amount"), "unit_amount"),
        "currency": _text(obj.get("currency"), "currency", max_length=3),
        "interval": _text(recurring.get("interval"), "recurring.interval", max_length=8),
        "interval_count": _integer(recurring.get("interval_count"), "recurring.interval_count", maximum=1000) or 1,
        "nickname": _text(obj.get("nickname"), "nickname"),
        "active": _flag(obj.get("active"), "active"),
    }


# Normalizers of ``data.previous_attributes``, by kind; kinds without one keep it empty.
PREVIOUS_NORMALIZERS = {"subscription": _subscription_previous}

# Each holds a payload's object (customer data) as its locals: none of them is reported.
NORMALIZERS = {
    kind: sensitive_variables()(normalizer)
    for kind, normalizer in {
        "customer": _customer_data,
        "tax_id": _tax_id_data,
        "subscription": _subscription_data,
        "checkout_session": _checkout_session_data,
        "invoice": _invoice_data,
        "product": _product_data,
        "price": _price_data,
    }.items()
}


def _refuse(field: str, problem: str) -> WebhookVerificationError:
    return WebhookVerificationError(f"The event's {field} {problem}.", code="invalid_event")


def _event_fields(payload: dict[str, Any]) -> tuple[str, str, int, dict[str, Any], dict[str, Any]]:
    """The event's own fields, checked against what Stripe sends; a 400 naming the field otherwise."""
    event_id, event_type, created, data = (payload.get(key) for key in ("id", "type", "created", "data"))
    if not isinstance(event_id, str) or not ID_PATTERN.fullmatch(event_id):
        raise _refuse("id", "is not a Stripe ID (up to 255 letters, digits and _ . : -)")
    if not isinstance(event_type, str) or not EVENT_TYPE_PATTERN.fullmatch(event_type):
        raise _refuse("type", "is not an event type (up to 128 lower-case letters, digits, _ and .)")
    if isinstance(created, bool) or not isinstance(created, int) or not 0 <= created <= MAX_TIMESTAMP:
        raise _refuse("created", f"is not a Unix time (an integer from 0 to {MAX_TIMESTAMP})")
    version = payload.get("api_version")
    if version is not None and (not isinstance(version, str) or not API_VERSION_PATTERN.fullmatch(version)):
        raise _refuse("api_version", "is not an API version")
    if not isinstance(payload.get("livemode", False), bool):
        raise _refuse("livemode", "is not a boolean")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise _refuse("data.object", "is missing or not an object")
    obj = data["object"]
    return event_id, event_type, created, data, obj


@sensitive_variables()
def parse_event(
    payload: dict[str, Any], provider_name: str = "stripe", reads_api_version: Callable[[str], bool] | None = None
) -> ProviderEvent:
    """
    Normalize a verified payload. Raises WebhookVerificationError, naming the field, when it
    is not a Stripe event.

    An event whose object cannot be read (an API version ``reads_api_version`` refuses, a
    field of the wrong type or range) is returned unnormalized, with the reason in
    ``unreadable``, so that it is stored and waits.
    """
    event_id, event_type, created, data, obj = _event_fields(payload)
    kind, action = EVENT_KINDS.get(event_type, ("", ""))
    normalized: dict[str, Any] = {}
    previous: dict[str, Any] = {}
    unreadable = ""
    customer_key = ""
    if kind:
        if not isinstance(obj.get("id"), str) or not ID_PATTERN.fullmatch(obj["id"]):
            raise _refuse("data.object.id", "is missing or not a Stripe ID")
        version = payload.get("api_version") or ""
        try:
            customer_key = obj["id"] if kind == "customer" else _id(obj.get("customer"), "customer")
        except Malformed:
            customer_key = ""
        if reads_api_version is not None and not reads_api_version(version):
            unreadable = (
                f"rendered in API version {version}, which the handlers do not read: set the endpoint's "
                'version in the dashboard, or list it in BOB_PAYMENTS["STRIPE_ACCEPTED_API_VERSIONS"], '
                "then replay it with processwebhooks"
            )
        else:
            try:
                normalized = NORMALIZERS[kind](obj)
                previous_attributes = data.get("previous_attributes")
                if kind in PREVIOUS_NORMALIZERS and isinstance(previous_attributes, dict):
                    previous = PREVIOUS_NORMALIZERS[kind](previous_attributes)
            except Malformed as err:
                unreadable = f"the {kind} object is malformed: {err}"
    return ProviderEvent(
        provider=provider_name,
        event_id=event_id,
        type=event_type,
        created=created,
        livemode=payload.get("livemode", False),
        api_version=payload.get("api_version") or "",
        customer_key=customer_key,
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


# The signing secrets, the signature and the body never reach an error report.
@sensitive_variables("secrets", "secret", "signature_header", "body", "text", "payload", "last_error")
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
        except Exception as err:
            # The SDK's frames hold the secret and the body as plain locals, which no
            # reporter filter masks: the error is raised again without them (a 500).
            raise RuntimeError(f"The webhook signature check failed unexpectedly ({type(err).__name__}).") from None
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
    except RecursionError:
        raise WebhookVerificationError(f"The body nests deeper than {MAX_DEPTH} levels.", code="too_deep") from None
    if not isinstance(payload, dict):
        raise WebhookVerificationError("The body is not a JSON object.", code="invalid_event")
    if not depth_within(payload, MAX_DEPTH, text):
        raise WebhookVerificationError(f"The body nests deeper than {MAX_DEPTH} levels.", code="too_deep")
    return payload
