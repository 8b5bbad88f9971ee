"""Stripe events for tests: build them, sign them as Stripe does, post them."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

WEBHOOK_PATH = "/api/payment/stripe/webhook/"


def api_version() -> str:
    """The API version of the installed stripe SDK, which events are shaped after."""
    import stripe

    return stripe.api_version


def build_event(
    event_type: str,
    data_object: dict[str, Any],
    *,
    previous_attributes: dict[str, Any] | None = None,
    created: int | None = None,
    event_id: str | None = None,
    livemode: bool = False,
    version: str | None = None,
) -> dict[str, Any]:
    """An event of ``event_type`` about ``data_object``, as Stripe delivers it."""
    data: dict[str, Any] = {"object": data_object}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": event_id or f"evt_{secrets.token_hex(12)}",
        "object": "event",
        "account": None,
        "api_version": version or api_version(),
        "context": None,
        "created": int(time.time()) if created is None else created,
        "data": data,
        "livemode": livemode,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def sign_payload(payload: bytes | str, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header Stripe would send with ``payload``."""
    if isinstance(payload, bytes):
        payload = payload.decode()
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


def post_event(
    client: Any,
    event: dict[str, Any] | bytes | str,
    secret: str | None = None,
    *,
    timestamp: int | None = None,
    path: str = WEBHOOK_PATH,
) -> Any:
    """
    Post ``event`` to the webhook endpoint with a Django test client, signed with ``secret``
    (by default the first configured ``STRIPE_WEBHOOK_SECRET``).
    """
    from django_bob_payments.conf import bob_settings

    body = event if isinstance(event, (bytes, str)) else json.dumps(event)
    secret = secret if secret is not None else bob_settings.webhook_secrets[0]
    return client.post(
        path,
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign_payload(body, secret, timestamp),
    )
