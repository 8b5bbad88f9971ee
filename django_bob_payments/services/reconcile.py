"""
Reconciliation: the local subscriptions and invoices compared with the provider's, and
drift repaired through the webhook inbox.

The provider's objects are listed in pages (100 per request, no request per object). Each
is compared, field by field, with the local record; a difference is drift. Repairing one
means feeding the inbox a synthetic event that carries the provider's object as it is now
(``customer.subscription.updated``; for an invoice, the event of its status): the same
handler, the same customer lock and watermarks as a webhook, and an audit record in the
inbox (``evt_reconcile_...``). What the handlers refuse (reviving an ended subscription,
moving an invoice back) stays drift.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django_bob_payments.models import ExternalPricing, ExternalSubscription, Invoice, Subscription, SubscriptionItem

# The normalized fields compared with the local subscription's, as timestamps or values.
TIMESTAMP_FIELDS = ("cancel_at", "canceled_at", "ended_at", "trial_end")


def _stamp(value: datetime.datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


@dataclass
class Drift:
    """One provider object (a subscription, an invoice) that differs from its local record (or has none)."""

    external_id: str
    differences: list[str]
    repaired: bool = False
    note: str = ""


@dataclass
class ReconcileReport:
    # Objects compared, by kind ("subscription", "invoice").
    compared: dict[str, int] = field(default_factory=lambda: {"subscription": 0, "invoice": 0})
    drift: list[Drift] = field(default_factory=list)
    # Local objects the provider did not list.
    not_at_provider: list[str] = field(default_factory=list)


class Comparer:
    """Compares normalized provider objects of one kind with the local ones, a page at a time."""

    def __init__(self, provider_name: str) -> None:
        self.provider_name = provider_name
        # The provider IDs listed so far: what is held locally and not among them is not at the provider.
        self.seen: set[str] = set()

    def _listed(self, page: list[dict[str, Any]]) -> list[str]:
        ids = [data["external_id"] for data in page]
        self.seen.update(ids)
        return ids

    def compare_page(self, page: list[dict[str, Any]]) -> list[Drift]:
        raise NotImplementedError


class SubscriptionComparer(Comparer):
    """Subscriptions: status, dates, items and their prices, the period end."""

    def compare_page(self, page: list[dict[str, Any]]) -> list[Drift]:
        """``page``: normalized subscriptions. Three queries a page, whatever its size."""
        ids = self._listed(page)
        links = {
            link.external_id: link.subscription
            for link in ExternalSubscription.objects.select_related("subscription").filter(
                provider=self.provider_name, external_id__in=ids
            )
        }
        items: dict[int, list[SubscriptionItem]] = {}
        for item in SubscriptionItem.objects.filter(subscription__in=[sub.pk for sub in links.values()]):
            items.setdefault(item.subscription_id, []).append(item)
        prices = {item["price_external_id"] for data in page for item in data["items"] if item.get("price_external_id")}
        pricing_of = dict(
            ExternalPricing.objects.filter(provider=self.provider_name, external_id__in=prices).values_list(
                "external_id", "pricing_id"
            )
        )
        found = []
        for data in page:
            subscription = links.get(data["external_id"])
            if subscription is None:
                found.append(Drift(data["external_id"], ["not recorded locally"]))
                continue
            differences = self.differences(subscription, items.get(subscription.pk, []), data, pricing_of)
            if differences:
                found.append(Drift(data["external_id"], differences))
        return found

    @staticmethod
    def differences(
        subscription: Subscription, items: list[SubscriptionItem], data: dict[str, Any], pricing_of: dict[str, int]
    ) -> list[str]:
        differences = []
        if subscription.status != data["status"]:
            differences.append(f"status {subscription.status} -> {data['status']}")
        if subscription.cancel_at_period_end != data["cancel_at_period_end"]:
            differences.append(
                f"cancel_at_period_end {subscription.cancel_at_period_end} -> {data['cancel_at_period_end']}"
            )
        for name in TIMESTAMP_FIELDS:
            held = _stamp(getattr(subscription, name))
            if held != data[name]:
                differences.append(f"{name} {held} -> {data[name]}")
        held_items = sorted((item.external_id, item.pricing_id, item.quantity) for item in items)
        remote_items = sorted(
            (
                item["external_id"],
                pricing_of.get(item["price_external_id"]),
                1 if item["quantity"] is None else item["quantity"],
            )
            for item in data["items"]
        )
        if held_items != remote_items:
            differences.append(f"items {held_items} -> {remote_items}")
        ends = {item["external_id"]: item["current_period_end"] for item in data["items"]}
        plan = next((item for item in items if item.pricing_id == subscription.pricing_id), None)
        if (
            plan is not None
            and plan.external_id in ends
            and _stamp(subscription.current_period_end) != ends[plan.external_id]
        ):
            differences.append(
                f"current_period_end {_stamp(subscription.current_period_end)} -> {ends[plan.external_id]}"
            )
        return differences

    def missing_at_provider(self, customer_id: int | None = None) -> list[str]:
        """Local subscriptions linked to this provider (of one local customer) that no page listed."""
        held = ExternalSubscription.objects.filter(provider=self.provider_name)
        if customer_id is not None:
            held = held.filter(subscription__customer_id=customer_id)
        return sorted(set(held.values_list("external_id", flat=True)) - self.seen)


# The normalized invoice fields compared with the local invoice's.
INVOICE_FIELDS = ("status", "number", "currency", "subtotal", "tax", "total", "amount_paid", "amount_due")

# The event a repair of an invoice in each status is fed as: one the invoice handler reads.
INVOICE_EVENT_TYPES = {
    "draft": "invoice.created",
    "open": "invoice.finalized",
    "paid": "invoice.paid",
    "void": "invoice.voided",
    "uncollectible": "invoice.marked_uncollectible",
}


class InvoiceComparer(Comparer):
    """Invoices: status, number, amounts, payment date, subscription."""

    def compare_page(self, page: list[dict[str, Any]]) -> list[Drift]:
        """``page``: normalized invoices. One query a page."""
        ids = self._listed(page)
        held = {
            invoice.external_id: invoice
            for invoice in Invoice.objects.filter(provider=self.provider_name, external_id__in=ids)
        }
        found = []
        for data in page:
            invoice = held.get(data["external_id"])
            if invoice is None:
                found.append(Drift(data["external_id"], ["not recorded locally"]))
                continue
            differences = [
                f"{name} {getattr(invoice, name)} -> {data[name]}"
                for name in INVOICE_FIELDS
                if getattr(invoice, name) != data[name]
            ]
            if _stamp(invoice.paid_at) != data["paid_at"]:
                differences.append(f"paid_at {_stamp(invoice.paid_at)} -> {data['paid_at']}")
            if invoice.provider_subscription_id != data["subscription_external_id"]:
                differences.append(
                    f"subscription {invoice.provider_subscription_id or None} -> {data['subscription_external_id']}"
                )
            if differences:
                found.append(Drift(data["external_id"], differences))
        return found

    def missing_at_provider(self) -> list[str]:
        held = Invoice.objects.filter(provider=self.provider_name).values_list("external_id", flat=True)
        return sorted(set(held) - self.seen)
