"""
Reconciliation: the local subscriptions compared with the provider's, and drift repaired
through the webhook inbox.

The provider's subscriptions are listed in pages (100 per request, no request per
subscription). Each is compared, field by field, with the local record; a difference is
drift. Repairing one means feeding the inbox a synthetic ``customer.subscription.updated``
event that carries the provider's object as it is now: the same handler, the same customer
lock and watermarks as a webhook, and an audit record in the inbox (``evt_reconcile_...``).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django_bob_payments.models import ExternalPricing, ExternalSubscription, Subscription, SubscriptionItem

# The normalized fields compared with the local subscription's, as timestamps or values.
TIMESTAMP_FIELDS = ("cancel_at", "canceled_at", "ended_at", "trial_end")


def _stamp(value: datetime.datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


@dataclass
class Drift:
    """One provider subscription that differs from its local record (or has none)."""

    external_id: str
    differences: list[str]
    repaired: bool = False
    note: str = ""


@dataclass
class ReconcileReport:
    compared: int = 0
    drift: list[Drift] = field(default_factory=list)
    # Local subscriptions whose provider subscription was not listed.
    not_at_provider: list[str] = field(default_factory=list)
    provider_requests: int = 0


class SubscriptionComparer:
    """Compares normalized provider subscriptions with the local ones, a page at a time."""

    def __init__(self, provider_name: str) -> None:
        self.provider_name = provider_name
        self.seen: set[str] = set()

    def compare_page(self, page: list[dict[str, Any]]) -> list[Drift]:
        """``page``: normalized subscriptions. Three queries a page, whatever its size."""
        ids = [data["external_id"] for data in page]
        self.seen.update(ids)
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

    def missing_at_provider(self) -> list[str]:
        """Local subscriptions linked to this provider that no page listed."""
        held = ExternalSubscription.objects.filter(provider=self.provider_name).values_list("external_id", flat=True)
        return sorted(set(held) - self.seen)
