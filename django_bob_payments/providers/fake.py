"""
The fake provider: the provider interface backed by the database, for development and for
projects' tests. No network, no keys.

Its objects live in ``FakeProviderObject``. Its checkout page is served by the app
(``/api/payment/fake/checkout/<id>/``): paying there starts the subscription. Every change
(a paid checkout, a cancellation, a plan change) is announced the way Stripe announces it,
as events that go through the same webhook inbox and handlers as Stripe's, at once: the
inbox is connected as the provider's ``event_sink`` by ``PaymentInteractor.get_provider()``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

from django.urls import reverse

from django_bob_payments.exceptions import ProviderError, WebhookVerificationError
from django_bob_payments.models import BillingInformation, FakeProviderObject, Pricing
from django_bob_payments.providers.base import (
    CUSTOMER_METADATA_KEY,
    ORDER_METADATA_KEY,
    CheckoutRequest,
    CheckoutSession,
    PaymentProvider,
    ProviderEvent,
    RemoteObject,
)

PERIOD = 30 * 86400
# The length of a billing period by the price's interval (a month is 30 days here).
INTERVAL_SECONDS = {"day": 86400, "week": 7 * 86400, "month": PERIOD, "year": 365 * 86400}


def _new_id(kind: str) -> str:
    return f"fake_{kind}_{secrets.token_hex(8)}"


class FakeProvider(PaymentProvider):
    """The provider interface on the database."""

    name = "fake"

    # Storage

    def _get(self, external_id: str, kind: str) -> FakeProviderObject:
        found = FakeProviderObject.objects.filter(external_id=external_id, kind=kind).first()
        if found is None:
            raise ProviderError(f"No such {kind}: {external_id}", provider=self.name, http_status=404, code="missing")
        return found

    def _iter(self, kind: str) -> Iterator[RemoteObject]:
        for obj in FakeProviderObject.objects.filter(kind=kind).order_by("pk").iterator():
            yield self._remote(obj)

    def _remote(self, obj: FakeProviderObject) -> RemoteObject:
        return RemoteObject(
            external_id=obj.external_id,
            local_id=obj.data.get("local_id"),
            fields=dict(obj.data.get("fields", {})),
            parent_id=obj.data.get("parent_id"),
        )

    def _create(
        self, kind: str, local_id: str, fields: dict[str, Any], key: str, parent_id: str | None = None
    ) -> RemoteObject:
        existing = FakeProviderObject.objects.filter(kind=kind, data__idempotency_key=key).first()
        if existing is not None:
            return self._remote(existing)
        data = {"local_id": local_id, "fields": fields, "parent_id": parent_id, "idempotency_key": key}
        return self._remote(FakeProviderObject.objects.create(kind=kind, external_id=_new_id(kind), data=data))

    def _update(self, kind: str, external_id: str, changes: dict[str, Any]) -> RemoteObject:
        obj = self._get(external_id, kind)
        obj.data["fields"] = {**obj.data.get("fields", {}), **changes}
        obj.save(update_fields=["data"])
        return self._remote(obj)

    # Catalog and customers

    def iter_products(self) -> Iterator[RemoteObject]:
        return self._iter("product")

    def create_product(self, local_id: str, fields: dict[str, Any], idempotency_key: str) -> RemoteObject:
        return self._create("product", local_id, fields, idempotency_key)

    def update_product(self, external_id: str, changes: dict[str, Any]) -> RemoteObject:
        return self._update("product", external_id, changes)

    def iter_prices(self, product_external_id: str | None = None) -> Iterator[RemoteObject]:
        prices = self._iter("price")
        if product_external_id is None:
            return prices
        return (price for price in prices if price.parent_id == product_external_id)

    def create_price(
        self, local_id: str, product_external_id: str, fields: dict[str, Any], idempotency_key: str
    ) -> RemoteObject:
        return self._create("price", local_id, fields, idempotency_key, parent_id=product_external_id)

    def update_price(self, external_id: str, changes: dict[str, Any]) -> RemoteObject:
        return self._update("price", external_id, changes)

    def iter_customers(self) -> Iterator[RemoteObject]:
        return self._iter("customer")

    def retrieve_customer(self, external_id: str) -> RemoteObject | None:
        obj = FakeProviderObject.objects.filter(external_id=external_id, kind="customer").first()
        return self._remote(obj) if obj else None

    def create_customer(self, local_id: str, fields: dict[str, Any], idempotency_key: str) -> RemoteObject:
        return self._create("customer", local_id, fields, idempotency_key)

    def update_customer(self, remote: RemoteObject, changes: dict[str, Any]) -> RemoteObject:
        return self._update("customer", remote.external_id, changes)

    def delete_customer(self, external_id: str) -> None:
        FakeProviderObject.objects.filter(external_id=external_id, kind="customer").delete()

    # Checkout, portal and subscription changes

    def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        session_id = _new_id("cs")
        price = self._get(request.price_external_id, "price")
        FakeProviderObject.objects.create(
            kind="checkout_session",
            external_id=session_id,
            data={
                "status": "open",
                "customer_key": request.customer_external_id,
                "price": request.price_external_id,
                "amount_total": price.data["fields"]["amount"] * request.quantity,
                "currency": price.data["fields"]["currency"],
                "quantity": request.quantity,
                "mode": request.mode,
                "metadata": request.metadata,
                "client_reference_id": request.client_reference_id,
                "success_url": request.success_url,
                "cancel_url": request.cancel_url,
                "trial_period_days": request.trial_period_days,
            },
        )
        return CheckoutSession(session_id, reverse("bob_payments:fake-checkout", args=[session_id]))

    def session(self, session_id: str) -> dict[str, Any]:
        """An open or closed checkout session, with its ID."""
        obj = self._get(session_id, "checkout_session")
        return {"id": obj.external_id, **obj.data}

    def checkout_page(self, session_id: str) -> dict[str, Any]:
        """
        What the hosted page shows: the plan, its price per interval, the quantity, the tax
        line and the total. The fake provider computes no tax: the tax line says what the
        app decided for the customer (reverse charge, exempt) and that the amount is zero.
        """
        session = self.session(session_id)
        price = self._get(session["price"], "price")
        pricing = (
            Pricing.objects.select_related("product").filter(pk=price.data.get("local_id")).first()
            if str(price.data.get("local_id") or "").isdigit()
            else None
        )
        customer_id = session["metadata"].get(CUSTOMER_METADATA_KEY)
        billing = (
            BillingInformation.objects.filter(customer_id=customer_id).first() if str(customer_id).isdigit() else None
        )
        tax_exempt = billing.tax_exempt if billing else BillingInformation.TaxExempt.NONE
        return {
            **session,
            "product_name": pricing.product.name if pricing else price.data["fields"].get("nickname", ""),
            "unit_amount": price.data["fields"]["amount"],
            "interval": pricing.get_interval_display().lower() if pricing and pricing.is_recurring else "",
            "tax_exempt": tax_exempt,
            "tax_amount": 0,
        }

    def complete_checkout(self, session_id: str) -> str:
        """Pay the session, as a customer on the hosted page would; returns where to go next."""
        obj = self._get(session_id, "checkout_session")
        data = obj.data
        if data["status"] != "open":
            return data["success_url"]
        subscription_id = ""
        if data["mode"] == "subscription":
            subscription_id = _new_id("sub")
            now = int(time.time())
            trial = data.get("trial_period_days") or 0
            fields = self._get(data["price"], "price").data["fields"]
            period = INTERVAL_SECONDS.get(fields.get("interval"), PERIOD) * int(fields.get("interval_count") or 1)
            FakeProviderObject.objects.create(
                kind="subscription",
                external_id=subscription_id,
                data={
                    "customer_key": data["customer_key"],
                    "price": data["price"],
                    "quantity": data["quantity"],
                    "status": "trialing" if trial else "active",
                    "start": now,
                    "period_end": now + (trial * 86400 if trial else period),
                    "cancel_at_period_end": False,
                    "canceled_at": None,
                    "trial_end": now + trial * 86400 if trial else None,
                    "metadata": data["metadata"],
                },
            )
        data.update(status="complete", payment_status="paid", subscription=subscription_id)
        obj.save(update_fields=["data"])
        if subscription_id:
            self._emit_subscription(subscription_id, "created")
            self._emit_invoice(subscription_id)
        self._emit("checkout_session", "completed", data["customer_key"], self._session_data(obj))
        return data["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)

    def expire_checkout(self, session_id: str) -> str:
        """Leave the page without paying; returns the cancel URL."""
        obj = self._get(session_id, "checkout_session")
        if obj.data["status"] == "open":
            obj.data["status"] = "expired"
            obj.save(update_fields=["data"])
            self._emit("checkout_session", "expired", obj.data["customer_key"], self._session_data(obj))
        return obj.data["cancel_url"]

    def create_portal_session(self, customer_external_id: str, return_url: str) -> str:
        # The fake provider has no portal of its own: the customer goes straight back.
        self._get(customer_external_id, "customer")
        return return_url

    def cancel_subscription(self, external_id: str, *, at_period_end: bool) -> None:
        obj = self._get(external_id, "subscription")
        if at_period_end:
            obj.data["cancel_at_period_end"] = True
        else:
            obj.data.update(status="canceled", canceled_at=int(time.time()), cancel_at_period_end=False)
        obj.save(update_fields=["data"])
        self._emit_subscription(external_id, "updated" if at_period_end else "deleted")

    def iter_open_checkout_sessions(self, customer_external_id: str) -> Iterator[tuple[str, str | None]]:
        for obj in FakeProviderObject.objects.filter(kind="checkout_session").order_by("pk"):
            if obj.data.get("customer_key") == customer_external_id and obj.data.get("status") == "open":
                yield obj.external_id, obj.data["metadata"].get(ORDER_METADATA_KEY)

    def expire_checkout_session(self, external_id: str) -> bool:
        obj = self._get(external_id, "checkout_session")
        if obj.data["status"] != "open":
            return False
        self.expire_checkout(external_id)
        return True

    def resume_subscription(self, external_id: str) -> None:
        obj = self._get(external_id, "subscription")
        obj.data["cancel_at_period_end"] = False
        obj.save(update_fields=["data"])
        self._emit_subscription(external_id, "updated")

    def release_subscription_schedule(self, external_id: str) -> bool:
        obj = self._get(external_id, "subscription")
        if "scheduled" not in obj.data:
            return False
        del obj.data["scheduled"]
        obj.save(update_fields=["data"])
        return True

    def schedule_subscription_change(self, external_id: str, *, price_external_id: str, quantity: int) -> None:
        # Recorded; the fake provider's periods never end by themselves.
        obj = self._get(external_id, "subscription")
        self._get(price_external_id, "price")
        obj.data["scheduled"] = {"price": price_external_id, "quantity": quantity}
        obj.save(update_fields=["data"])

    def change_subscription(
        self, external_id: str, *, price_external_id: str, quantity: int, proration_behavior: str
    ) -> None:
        obj = self._get(external_id, "subscription")
        self._get(price_external_id, "price")
        obj.data.update(price=price_external_id, quantity=quantity)
        obj.save(update_fields=["data"])
        self._emit_subscription(external_id, "updated")

    # Events

    def _session_data(self, obj: FakeProviderObject) -> dict[str, Any]:
        data = obj.data
        return {
            "external_id": obj.external_id,
            "status": data["status"],
            "payment_status": data.get("payment_status", "unpaid"),
            "mode": data["mode"],
            "subscription_external_id": data.get("subscription", ""),
            "order_local_id": data["metadata"].get(ORDER_METADATA_KEY) or data["client_reference_id"],
            "customer_local_id": data["metadata"].get(CUSTOMER_METADATA_KEY),
            "amount_total": data["amount_total"],
            "currency": data["currency"],
            # The fake page asks the buyer nothing.
            "customer_details": {
                "name": "",
                "business_name": "",
                "email": "",
                "address": dict.fromkeys(("line1", "line2", "postal_code", "city", "state", "country"), ""),
                "tax_ids": [],
            },
        }

    def _emit_subscription(self, external_id: str, action: str) -> None:
        obj = self._get(external_id, "subscription")
        data = obj.data
        price = self._get(data["price"], "price")
        cancel_at = data["period_end"] if data["cancel_at_period_end"] else None
        self._emit(
            "subscription",
            action,
            data["customer_key"],
            {
                "external_id": external_id,
                "status": data["status"],
                "items": [
                    {
                        "external_id": f"{external_id}_item",
                        "price_external_id": price.external_id,
                        "price_local_id": price.data.get("local_id"),
                        "quantity": data["quantity"],
                        "current_period_start": data["start"],
                        "current_period_end": data["period_end"],
                    }
                ],
                "cancel_at_period_end": data["cancel_at_period_end"],
                "cancel_at": cancel_at,
                "canceled_at": data["canceled_at"],
                "ended_at": data["canceled_at"] if data["status"] == "canceled" else None,
                "trial_start": data["start"] if data["trial_end"] else None,
                "trial_end": data["trial_end"],
                "customer_local_id": data["metadata"].get(CUSTOMER_METADATA_KEY),
                "order_local_id": data["metadata"].get(ORDER_METADATA_KEY),
            },
        )

    def _emit_invoice(self, subscription_id: str) -> None:
        data = self._get(subscription_id, "subscription").data
        price = self._get(data["price"], "price").data["fields"]
        total = price["amount"] * data["quantity"]
        invoice_id = _new_id("in")
        self._emit(
            "invoice",
            "paid",
            data["customer_key"],
            {
                "external_id": invoice_id,
                "subscription_external_id": subscription_id,
                "number": invoice_id.upper()[-8:],
                "status": "paid",
                "currency": price["currency"],
                "subtotal": total,
                "tax": 0,
                "customer_tax_exempt": "",
                "total": total,
                "amount_paid": total,
                "amount_due": total,
                "hosted_invoice_url": "",
                "invoice_pdf": "",
                "period_start": data["start"],
                "period_end": data["period_end"],
                "paid_at": int(time.time()),
                "customer_email": "",
                "customer_local_id": data["metadata"].get(CUSTOMER_METADATA_KEY),
            },
        )

    def _emit(self, kind: str, action: str, customer_key: str, data: dict[str, Any]) -> None:
        """Apply an event through the inbox at once, as a Stripe webhook would be."""
        # Nanoseconds in the ID keep events of the same second in the order they happened.
        payload = {
            "id": f"fake_evt_{time.time_ns():020d}",
            "type": f"{kind}.{action}",
            "created": int(time.time()),
            "customer_key": customer_key,
            "kind": kind,
            "action": action,
            "data": data,
        }
        result = self.deliver(payload)
        if result.failed or result.waiting:
            raise ProviderError(
                f"The fake provider's {kind}.{action} event failed: {result.event.last_error}",
                provider=self.name,
                code="event_failed",
            )

    # Webhooks

    def verify_webhook(self, body: bytes, headers: Any) -> dict[str, Any]:
        raise WebhookVerificationError("The fake provider sends no webhooks.", code="no_webhooks")

    def parse_event(self, payload: dict[str, Any]) -> ProviderEvent:
        try:
            return ProviderEvent(
                provider=self.name,
                event_id=payload["id"],
                type=payload["type"],
                created=payload["created"],
                livemode=False,
                api_version="",
                customer_key=payload.get("customer_key") or "",
                kind=payload["kind"],
                action=payload["action"],
                data=payload["data"],
            )
        except (KeyError, TypeError) as err:
            raise WebhookVerificationError("Not a fake provider event.", code="invalid_event") from err
