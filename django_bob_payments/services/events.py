"""
Applying normalized provider events to the local models.

Handlers run inside the inbox's transaction, with the customer concerned locked. They read
only the event's payload (no API call), upsert what they find, create what is missing, and
never let an older event overwrite newer state: each provider object keeps the watermark of
the newest event applied to it (its ``created`` second and ID). Signals are
collected and sent by the inbox after the transaction commits.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.db import connection
from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone
from django_countries import countries

from django_bob_payments import signals
from django_bob_payments.conf import bob_settings
from django_bob_payments.exceptions import WebhookHandlingError
from django_bob_payments.models import (
    BillingInformation,
    Customer,
    ExternalCustomer,
    ExternalPaymentProvider,
    ExternalPricing,
    ExternalProduct,
    ExternalSubscription,
    Invoice,
    Order,
    PaymentAttempt,
    Pricing,
    Product,
    Subscription,
    SubscriptionItem,
)
from django_bob_payments.prepared import (
    NextKey,
    PreparedQuery,
    PreparedUpdate,
    can_pipeline,
    insert_row,
    prefetch,
    save_fields,
)
from django_bob_payments.providers.base import ProviderEvent
from django_bob_payments.reports import hide_locals
from django_bob_payments.services.billing import BillingService
from django_bob_payments.services.plans import PlanService

# The tax IDs typed in a checkout that are recorded as the customer's VAT number.
COLLECTED_TAX_ID_TYPES = ("eu_vat", "gb_vat")

# The lookups of the handlers, compiled once (see PreparedQuery).
CUSTOMER_LINK = PreparedQuery(
    lambda customer, provider, key: ExternalCustomer.objects.filter(
        customer_id=customer, provider=provider, external_id=key
    ).order_by()[:1]
)
BILLING_OF = PreparedQuery(lambda customer: BillingInformation.objects.filter(customer_id=customer).order_by()[:1])
PRICING_LINK = PreparedQuery(
    lambda provider, price: (
        ExternalPricing.objects.select_related("pricing__product")
        .filter(provider=provider, external_id=price)
        .order_by()[:1]
    )
)
SUBSCRIPTION_LINK = PreparedQuery(
    lambda provider, key: (
        ExternalSubscription.objects.select_related("subscription__pricing__product")
        .filter(provider=provider, external_id=key)
        .order_by()[:1]
    )
)
SUBSCRIPTION_ID = PreparedQuery(
    lambda provider, key: (
        ExternalSubscription.objects.filter(provider=provider, external_id=key)
        .only("pk", "subscription_id")
        .order_by()[:1]
    )
)
# The items of the subscription a provider subscription is linked to.
LINKED_ITEMS = PreparedQuery(
    lambda provider, key: SubscriptionItem.objects.filter(
        subscription__external_ids__provider=provider, subscription__external_ids__external_id=key
    ).order_by()
)
ENTITLED_TO = PreparedQuery(
    lambda customer, product: Subscription.objects.filter(
        customer_id=customer, pricing__product_id=product, status__in=Subscription.ENTITLED_STATUSES
    ).order_by("created_at", "pk")
)
# The entitled subscriptions of the customer of a provider subscription's local one, to its
# plan's product (its own included): the limit's check of its update, read with the lock.
ENTITLED_LIKE = PreparedQuery(
    lambda provider, key: Subscription.objects.filter(
        customer__subscriptions__external_ids__provider=provider,
        customer__subscriptions__external_ids__external_id=key,
        pricing__product_id=F("customer__subscriptions__pricing__product_id"),
        status__in=Subscription.ENTITLED_STATUSES,
    ).order_by("created_at", "pk")
)
# A new subscription's key, and its customer's entitled subscriptions (with their plans'
# products) before it is inserted: read with the customer's lock.
NEXT_SUBSCRIPTION_KEY = NextKey(Subscription)
ENTITLED_OF = PreparedQuery(
    lambda provider, key: (
        Subscription.objects.select_related("pricing")
        .filter(
            customer__external_ids__provider=provider,
            customer__external_ids__external_id=key,
            status__in=Subscription.ENTITLED_STATUSES,
        )
        .order_by("created_at", "pk")
    )
)
ORDER_OF = PreparedQuery(
    lambda order, customer: (
        Order.objects.select_related("pricing").filter(pk=order, customer_id=customer).order_by()[:1]
    )
)
ATTEMPT = PreparedQuery(
    lambda provider, key: PaymentAttempt.objects.filter(provider=provider, external_id=key).order_by()[:1]
)
INVOICE = PreparedQuery(lambda provider, key: Invoice.objects.filter(provider=provider, external_id=key).order_by()[:1])

# A new subscription's order, and the invoices that came before it, linked to it.
LINK_ORDER = PreparedUpdate(
    lambda order, customer, subscription: (
        Order.objects.filter(pk=order, customer_id=customer, subscription__isnull=True),
        {"subscription_id": subscription},
    )
)
LINK_INVOICES = PreparedUpdate(
    lambda provider, key, subscription: (
        Invoice.objects.filter(provider=provider, provider_subscription_id=key, subscription__isnull=True),
        {"subscription_id": subscription},
    )
)

# What marking an event applied on a provider object's link changes.
WATERMARK_FIELDS = ("last_event_created", "last_event_id", "updated_at")

# The largest primary key of a BigAutoField.
MAX_PK = 2**63 - 1


def local_pk(value: Any) -> int | None:
    """
    The local primary key a metadata value names, or None: only a plain positive integer in
    ASCII digits, without a leading zero, within the database's range ("²" and "١٢" are
    digits to ``str.isdigit`` but name no row).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value <= MAX_PK else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and value[:1] != "0" and len(value) <= 19:
        number = int(value)
        return number if number <= MAX_PK else None
    return None


def trusted_url(context: ApplyContext, url: str, name: str) -> str:
    """
    ``url`` when it is https on one of ``TRUSTED_URL_HOSTS`` (or their subdomains), else "":
    links from provider events are shown to customers and rendered in emails, so a link
    that is not the provider's is dropped, with a note on the event.
    """
    if not url:
        return ""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    trusted = [str(allowed).lower().lstrip(".") for allowed in bob_settings.TRUSTED_URL_HOSTS or []]
    if parts.scheme == "https" and any(host == allowed or host.endswith("." + allowed) for allowed in trusted):
        return url
    context.note(f"untrusted URL in {name} dropped")
    return ""


def from_timestamp(value: int | None) -> datetime.datetime | None:
    return datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc) if value else None


@dataclass
class ApplyContext:
    """What applying one event produced: a note for the inbox, and signals to send after commit."""

    event: ProviderEvent
    customer: Customer | None
    # The link to the provider customer that this event's customer lock made, inserted
    # after the handler (which records the event on it for customer events).
    new_link: ExternalCustomer | None = None
    notes: list[str] = field(default_factory=list)
    pending_signals: list[tuple[Signal, dict[str, Any]]] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def signal(self, signal: Signal, **kwargs: Any) -> None:
        self.pending_signals.append((signal, kwargs))

    @property
    def watermark(self) -> tuple[int, str]:
        return (self.event.created, self.event.event_id)


def is_stale(link: ExternalPaymentProvider, context: ApplyContext, held: dict[str, Any] | None = None) -> bool:
    """
    Whether the object ``link`` identifies already holds state newer than the event's.

    An event of an earlier ``created`` second than the newest one applied is stale. Stripe's
    ``created`` counts whole seconds, and an object is often created and changed several times
    within one, delivered in any order; within a second the payloads decide:

    - a ``*.created`` event is the object's first: it never overwrites an event of its second;
    - an update carries the values it changed as they were before (``event.previous``): when
      ``held``, the values the object holds now, differ from them, the update came before
      what is held, so it is stale;
    - otherwise (nothing to compare) events of one second apply in arrival order.

    Terminal states (an ended subscription, a paid or void invoice) are kept by the handlers.
    """
    event = context.event
    if link.last_event_created is None:
        return False
    if link.last_event_created != event.created:
        return link.last_event_created > event.created
    if link.last_event_id == event.event_id:
        return True
    if event.action == "created":
        return True
    if held is not None:
        compared = [name for name in event.previous if name in held]
        return any(held[name] != event.previous[name] for name in compared)
    return False


def timestamp(value: datetime.datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def mark_applied(link: ExternalPaymentProvider, context: ApplyContext) -> None:
    link.last_event_created, link.last_event_id = context.watermark


# What a subscription event writes on the local row.
SUBSCRIPTION_EVENT_FIELDS = (
    "pricing_id",
    "status",
    "quantity",
    "current_period_start",
    "current_period_end",
    "cancel_at_period_end",
    "cancel_at",
    "canceled_at",
    "ended_at",
    "trial_start",
    "trial_end",
    "entitlements",
    "scheduled_pricing_id",
    "scheduled_quantity",
)
# A subscription in these states has ended for good at the provider: no event revives it.
ENDED_STATUSES = (Subscription.Status.CANCELED, Subscription.Status.INCOMPLETE_EXPIRED)
# Invoices move forward through these ranks; paid and void are final.
INVOICE_RANK = {
    Invoice.Status.DRAFT: 0,
    Invoice.Status.OPEN: 1,
    Invoice.Status.UNCOLLECTIBLE: 2,
    Invoice.Status.PAID: 3,
    Invoice.Status.VOID: 3,
}
FINAL_INVOICE_STATUSES = (Invoice.Status.PAID, Invoice.Status.VOID)

# Orders never move back from these states, whatever order events arrive in.
ORDER_RANK = {Order.Status.PENDING: 0, Order.Status.EXPIRED: 1, Order.Status.FAILED: 1, Order.Status.CANCELED: 1}
ORDER_RANK[Order.Status.PAID] = 2
ATTEMPT_RANK = {
    PaymentAttempt.Status.CREATED: 0,
    PaymentAttempt.Status.PENDING: 1,
    PaymentAttempt.Status.EXPIRED: 2,
    PaymentAttempt.Status.FAILED: 2,
    PaymentAttempt.Status.SUCCEEDED: 3,
}


@hide_locals
class EventApplier:
    """Dispatches a normalized event to the handler of its kind."""

    def __init__(self, plans: PlanService | None = None, billing: BillingService | None = None) -> None:
        self.plans = plans or PlanService()
        self.billing = billing or BillingService()

    def apply(self, context: ApplyContext) -> None:
        handler = getattr(self, f"handle_{context.event.kind}")
        handler(context)

    def reads(self, event: ProviderEvent) -> list[tuple[PreparedQuery[Any], tuple[Any, ...]]]:
        """
        The lookups the event's handler starts with, which depend only on the payload: the
        inbox runs them together with the customer's lock (one round trip on PostgreSQL).
        A handler that reads something else simply reads it; one that skips some leaves them.
        """
        data, provider = event.data, event.provider
        if event.kind == "subscription":
            key = (provider, data["external_id"])
            # A subscription's first event finds no items (and reads them itself when it
            # comes after others), and looks its one price up.
            if event.action != "created":
                reads = [(SUBSCRIPTION_LINK, key), (LINKED_ITEMS, key)]
                if event.action == "deleted" or "status" in event.previous:
                    # The status changes, and with it perhaps the limit's count.
                    reads.append((ENTITLED_LIKE, key))
                return reads
            items = data["items"] or []
            prices = [(PRICING_LINK, (provider, items[0]["price_external_id"]))] if len(items) == 1 else []
            # Its key and its customer's entitled subscriptions (the limit's check): the
            # subscription and the rows that point to it are then written together.
            created = [(NEXT_SUBSCRIPTION_KEY, ()), (ENTITLED_OF, (provider, event.customer_key))]
            return [(SUBSCRIPTION_LINK, key), *prices, *created]
        if event.kind == "invoice":
            reads = [(INVOICE, (provider, data["external_id"]))]
            if data["subscription_external_id"]:
                reads.append((SUBSCRIPTION_ID, (provider, data["subscription_external_id"])))
            return reads
        if event.kind == "checkout_session":
            reads: list[tuple[PreparedQuery[Any], tuple[Any, ...]]] = []
            # Keyed by the customer the metadata names: when the locked one is another, its
            # lookups are simply read again.
            hint, order = local_pk(data["customer_local_id"]), local_pk(data["order_local_id"])
            if hint is not None and data["customer_details"]:
                reads.append((BILLING_OF, (hint,)))
            if hint is not None and order is not None:
                reads.append((ORDER_OF, (order, hint)))
            reads.append((ATTEMPT, (provider, data["external_id"])))
            if data["subscription_external_id"]:
                reads.append((SUBSCRIPTION_ID, (provider, data["subscription_external_id"])))
            return reads
        return []

    # Customers and tax IDs

    def handle_customer(self, context: ApplyContext) -> None:
        event = context.event
        if context.customer is None:
            context.note("unknown customer: nothing to do")
            return
        new_link = context.new_link
        link = new_link or CUSTOMER_LINK.first(context.customer.pk, event.provider, event.customer_key)
        if link is None:
            # The event reached the customer its metadata names, which is linked to another one.
            context.note(f"provider customer {event.customer_key} is not the one linked: not linked")
            return
        if link.deleted_at is not None:
            context.note("the provider customer was deleted: its tombstone stays")
            return
        if is_stale(link, context):
            context.note(f"stale: {link.last_event_id} is newer")
            return
        mark_applied(link, context)
        if event.action == "deleted" or event.data.get("deleted"):
            # A tombstone: late events still reach the local customer (it is the truth) and
            # never link the deleted one again; the next push makes a new provider customer.
            link.deleted_at = timezone.now()
            if link is not new_link:  # a new link is inserted as it is now, after the handler
                save_fields(link, ("deleted_at", "last_event_created", "last_event_id", "updated_at"))
            context.note("provider customer deleted: kept as a tombstone")
            return
        if link is not new_link:
            save_fields(link, WATERMARK_FIELDS)
        context.note("customer linked")

    def handle_tax_id(self, context: ApplyContext) -> None:
        data = context.event.data
        billing = BILLING_OF.first(context.customer.pk) if context.customer else None
        if billing is None:
            context.note("no billing information: nothing to record")
            return
        if data["value"].replace(" ", "").upper() != billing.vat_number.replace(" ", "").upper():
            context.note(f"tax ID {data['value']} is not the current VAT number: ignored")
            return
        event = context.event
        held = billing.provider_tax_id_event
        if held is not None:
            # The watermark of the tax ID check recorded: an older event (of this tax ID or of
            # the one it replaced), a created event of its second, or anything after the
            # deletion of this tax ID changes nothing.
            same = billing.provider_tax_id == data["external_id"]
            if event.created < held or (
                same and (billing.provider_tax_id_deleted or (event.created == held and event.action == "created"))
            ):
                context.note(f"stale: a newer tax ID event ({billing.provider_tax_id}) is recorded")
                return
        deleted = event.action == "deleted"
        billing.provider_vat_status = "" if deleted else data["verification_status"]
        billing.provider_tax_id = data["external_id"]
        billing.provider_tax_id_event = event.created
        billing.provider_tax_id_deleted = deleted
        billing.save(
            update_fields=[
                "provider_vat_status",
                "provider_tax_id",
                "provider_tax_id_event",
                "provider_tax_id_deleted",
                "updated_at",
            ]
        )
        context.note(f"provider VAT check: {billing.provider_vat_status or 'removed'}")

    # Subscriptions

    def resolve_pricing(self, context: ApplyContext, external_id: str, local_id: str | None) -> Pricing:
        provider = context.event.provider
        found = PRICING_LINK.first(provider, external_id)
        if found is not None:
            return found.pricing
        pk = local_pk(local_id)
        pricing = Pricing.objects.select_related("product").filter(pk=pk).first() if pk else None
        if pricing is None:
            raise WebhookHandlingError(
                f"Price {external_id} is not in the local catalog: add it and run synchronizepayments, "
                "then replay the event.",
                provider=provider,
                code="unknown_price",
            )
        return pricing

    def handle_subscription(self, context: ApplyContext) -> None:
        event, data = context.event, context.event.data
        if context.customer is None:
            raise WebhookHandlingError("A subscription event without a customer.", code="no_customer")
        link = SUBSCRIPTION_LINK.first(event.provider, data["external_id"])
        subscription = link.subscription if link else None
        if event.action == "trial_will_end" and subscription is not None:
            context.signal(signals.subscription_trial_will_end, subscription=subscription)
        if link is not None and is_stale(link, context, self._held_subscription(subscription)):
            context.note(f"stale: {link.last_event_id} is newer")
            return
        if subscription is not None and subscription.status in ENDED_STATUSES and data["status"] not in ENDED_STATUSES:
            context.note(f"stale: the subscription has ended ({subscription.status}); {data['status']} is older")
            return
        items = self._items(data)
        pricings = self._item_pricings(context, items, subscription)
        # The plan is the item whose product is not an add-on; add-ons are recorded beside it.
        plan_index = next((index for index, pricing in enumerate(pricings) if not pricing.product.is_addon), 0)
        plan_item, pricing = items[plan_index], pricings[plan_index]
        created = subscription is None
        previous_status = "" if created else subscription.status
        previous_product = None if created else subscription.pricing.product
        if created:
            subscription = Subscription(customer=context.customer)
        held = None if created else self._tracked(subscription)
        plan_changed = subscription.pricing_id != pricing.pk
        subscription.pricing = pricing
        subscription.status = data["status"]
        subscription.quantity = plan_item["quantity"]
        # Since basil the billing period is on each item: the plan's is the subscription's.
        subscription.current_period_start = from_timestamp(plan_item["current_period_start"])
        subscription.current_period_end = from_timestamp(plan_item["current_period_end"])
        subscription.cancel_at_period_end = data["cancel_at_period_end"]
        subscription.cancel_at = from_timestamp(data["cancel_at"])
        subscription.canceled_at = from_timestamp(data["canceled_at"])
        subscription.ended_at = from_timestamp(data["ended_at"])
        subscription.trial_start = from_timestamp(data["trial_start"])
        subscription.trial_end = from_timestamp(data["trial_end"])
        held_items = [] if created else LINKED_ITEMS.all(event.provider, data["external_id"])
        wanted_items = [
            (item["external_id"], item_pricing, item["quantity"])
            for item, item_pricing in zip(items, pricings, strict=True)
        ]
        items_changed = sorted((i.external_id, i.pricing_id, i.quantity) for i in held_items) != sorted(
            (external_id, item_pricing.pk, quantity) for external_id, item_pricing, quantity in wanted_items
        )
        if items_changed:
            subscription.entitlements = self.plans.combined_entitlements(
                [(item_pricing.product, quantity) for _, item_pricing, quantity in wanted_items]
            )
        scheduled_change_applied = subscription.scheduled_pricing_id == pricing.pk and (
            subscription.scheduled_quantity in (None, subscription.quantity)
        )
        if scheduled_change_applied:
            subscription.scheduled_pricing = None
            subscription.scheduled_quantity = None
        # An event that changes nothing (the webhook of a state the checkout-state read or
        # the reconciliation applied first) writes only the watermark, and signals nothing.
        changed = created or items_changed or self._tracked(subscription) != held
        # The customer's entitled subscriptions to the plan's product, where they were read
        # with the lock (before this event's writes), for the limit's check.
        known: list[Subscription] | None = None
        if created:
            subscription.pk = NEXT_SUBSCRIPTION_KEY.take()
            if subscription.pk is not None:
                # The key was read with the lock: the row goes with the rows that point to it.
                before = ENTITLED_OF.all(event.provider, event.customer_key)
                insert_row(subscription, defer=True)
                known = [held for held in before if held.pricing.product_id == pricing.product_id]
            else:
                insert_row(subscription, defer=True)
                # The limit's check below reads the customer's subscriptions to the plan's
                # product, which nothing written before it changes: sent with the insert, in
                # one round trip (PostgreSQL), which gives the subscription its key.
                prefetch([(ENTITLED_TO, (context.customer.pk, pricing.product_id))])
        elif changed:
            save_fields(subscription)
        if items_changed:
            self._replace_items(context, subscription, held_items, wanted_items)
        was_entitled = previous_status in Subscription.ENTITLED_STATUSES
        limit_may_change = created or plan_changed or was_entitled != subscription.is_entitled
        if created:
            link = ExternalSubscription(
                subscription=subscription, provider=event.provider, external_id=data["external_id"]
            )
            self._link_order(context, subscription, data["order_local_id"])
            # Invoices that arrived before their subscription.
            LINK_INVOICES.run(event.provider, data["external_id"], subscription.pk)
        mark_applied(link, context)
        if created:
            insert_row(link, defer=True)
        else:
            save_fields(link, WATERMARK_FIELDS)
        if limit_may_change or subscription.exceeds_limit:
            moved_from = [previous_product] if previous_product and previous_product.pk != pricing.product_id else []
            # Its plan's product is the one it had: its entitled subscriptions to it are
            # those read with the lock (before this event's writes), with its own new state
            # (where the lock's round trip carries reads; elsewhere the plain read is less work).
            if previous_product is not None and not moved_from and can_pipeline(connection):
                known = ENTITLED_LIKE.all(event.provider, data["external_id"])
            self._check_limit(context, subscription, [pricing.product, *moved_from], known=known)
        if scheduled_change_applied:
            # The schedule has done its work: released after the commit, so that direct
            # changes (the portal's cancel, say) are allowed again.
            context.signal(
                signals.scheduled_change_applied,
                subscription=subscription,
                schedule_external_id=data.get("schedule_external_id", ""),
            )
        if created:
            context.signal(signals.subscription_created, subscription=subscription)
            context.note(f"subscription {subscription.pk} created ({subscription.status})")
        elif not changed:
            context.note(f"subscription {subscription.pk} unchanged ({subscription.status})")
        else:
            context.signal(signals.subscription_updated, subscription=subscription, previous_status=previous_status)
            context.note(f"subscription {subscription.pk} updated ({previous_status} -> {subscription.status})")
        if subscription.status == Subscription.Status.CANCELED and previous_status != Subscription.Status.CANCELED:
            context.signal(signals.subscription_canceled, subscription=subscription)

    @staticmethod
    def _tracked(subscription: Subscription) -> tuple[Any, ...]:
        """The subscription's fields that events write, to tell whether one changed anything."""
        return tuple(getattr(subscription, name) for name in SUBSCRIPTION_EVENT_FIELDS)

    @staticmethod
    def _items(data: dict[str, Any]) -> list[dict[str, Any]]:
        """The subscription's items, each with a quantity."""
        items = data["items"]
        if not items:
            raise WebhookHandlingError("The subscription has no items.", code="no_items")
        # Metered items have no quantity.
        return [{**item, "quantity": 1 if item["quantity"] is None else item["quantity"]} for item in items]

    def _item_pricings(
        self, context: ApplyContext, items: list[dict[str, Any]], subscription: Subscription | None
    ) -> list[Pricing]:
        """The local pricing of each item's price, in the items' order; one query at most."""
        if subscription is not None and len(items) == 1 and items[0]["price_local_id"] == str(subscription.pricing_id):
            # The price still names the subscription's pricing in its metadata: no look-up.
            return [subscription.pricing]
        if len(items) == 1:
            return [self.resolve_pricing(context, items[0]["price_external_id"], items[0]["price_local_id"])]
        links = {
            link.external_id: link.pricing
            for link in ExternalPricing.objects.select_related("pricing__product").filter(
                provider=context.event.provider, external_id__in={item["price_external_id"] for item in items}
            )
        }
        return [
            links.get(item["price_external_id"])
            or self.resolve_pricing(context, item["price_external_id"], item["price_local_id"])
            for item in items
        ]

    @staticmethod
    def _replace_items(
        context: ApplyContext,
        subscription: Subscription,
        held: list[SubscriptionItem],
        wanted: list[tuple[str, Pricing, int]],
    ) -> None:
        """Make the recorded items those of the event: update, add and remove."""
        by_id = {item.external_id: item for item in held}
        new = []
        for external_id, pricing, quantity in wanted:
            item = by_id.pop(external_id, None)
            if item is None:
                new.append(
                    SubscriptionItem(
                        subscription=subscription,
                        pricing=pricing,
                        quantity=quantity,
                        provider=context.event.provider,
                        external_id=external_id,
                    )
                )
            elif (item.pricing_id, item.quantity) != (pricing.pk, quantity):
                item.pricing, item.quantity = pricing, quantity
                save_fields(item, ("pricing", "quantity", "updated_at"))
        if by_id:
            SubscriptionItem.objects.filter(pk__in=[item.pk for item in by_id.values()]).delete()
        if len(new) == 1:
            insert_row(new[0], defer=True)  # a subscription's usual one item: with the next statement
        elif new:
            SubscriptionItem.objects.bulk_create(new)

    @staticmethod
    def _held_subscription(subscription: Subscription) -> dict[str, Any]:
        """The subscription's values, under the names of ``ProviderEvent.previous``."""
        return {
            "status": subscription.status,
            "quantity": subscription.quantity,
            "cancel_at_period_end": subscription.cancel_at_period_end,
            "cancel_at": timestamp(subscription.cancel_at),
            "canceled_at": timestamp(subscription.canceled_at),
            "ended_at": timestamp(subscription.ended_at),
            "trial_end": timestamp(subscription.trial_end),
        }

    def _link_order(self, context: ApplyContext, subscription: Subscription, order_local_id: str | None) -> None:
        pk = local_pk(order_local_id)
        if pk:
            LINK_ORDER.run(pk, context.customer.pk, subscription.pk)

    def _check_limit(
        self,
        context: ApplyContext,
        subscription: Subscription,
        products: list[Product],
        *,
        known: list[Subscription] | None = None,
    ) -> None:
        """
        Flag, among the customer's entitled subscriptions to each of ``products``,
        those beyond the product's limit (the newest), and clear the flag of those now within
        it (another one ended or moved away). A subscription that no longer grants its plan
        is never flagged. ``known``: the entitled subscriptions to the first product, read
        before or after the subscription's own write (the others are the same either way).
        """
        if subscription.exceeds_limit and not subscription.is_entitled:
            subscription.exceeds_limit = False
            subscription.save(update_fields=["exceeds_limit", "updated_at"])
        for index, product in enumerate(products):
            allowed = product.max_subscriptions_per_customer
            if index == 0 and known is not None:
                entitled = [held for held in known if held.pk != subscription.pk]
                if subscription.is_entitled:
                    entitled = sorted([*entitled, subscription], key=lambda held: (held.created_at, held.pk))
            else:
                entitled = ENTITLED_TO.all(subscription.customer_id, product.pk)
            over = {sub.pk for sub in entitled[allowed:]} if allowed is not None else set()
            for held in entitled:
                if held.pk == subscription.pk:
                    held = subscription
                flagged = held.pk in over
                if flagged == held.exceeds_limit:
                    continue
                held.exceeds_limit = flagged
                save_fields(held, ("exceeds_limit", "updated_at"))
                if flagged:
                    context.signal(signals.subscription_limit_exceeded, subscription=held)
                    context.note(f"subscription {held.pk} over the limit of {allowed} to {product.slug}")
                else:
                    context.note(f"subscription {held.pk} within the limit to {product.slug} again")

    # Checkout sessions

    def handle_checkout_session(self, context: ApplyContext) -> None:
        event, data = context.event, context.event.data
        if event.action == "completed" and context.customer is not None:
            self._record_customer_details(context, data["customer_details"])
        order_id = local_pk(data["order_local_id"])
        order = ORDER_OF.first(order_id, context.customer.pk) if order_id and context.customer else None
        if order is None:
            context.note("no local order for this session: nothing to do")
            return
        attempt = ATTEMPT.first(event.provider, data["external_id"])
        if attempt is None:
            # Inserted below with the status this event gives it: one statement.
            attempt = PaymentAttempt(
                order=order,
                provider=event.provider,
                external_id=data["external_id"],
                amount=data["amount_total"],
                currency=data["currency"] or order.currency,
            )
        paid = data["payment_status"] in ("paid", "no_payment_required")
        # The order is written only when the event changes it: a late webhook of an outcome
        # already applied (the checkout-state read came first) leaves the row as it is.
        held = (order.status, order.paid_at, order.amount_total, order.subscription_id)
        # Signals tell what happened once: when the attempt moves forward (a second event of
        # the same outcome, such as the checkout-state endpoint's read and the webhook, is silent).
        if event.action in ("completed", "async_payment_succeeded") and paid:
            advanced = self._advance(attempt, PaymentAttempt.Status.SUCCEEDED, order, Order.Status.PAID)
            if order.paid_at is None:
                order.paid_at = from_timestamp(event.created)
            if data["amount_total"] is not None:
                order.amount_total = data["amount_total"]
            if advanced:
                if event.action == "completed":
                    context.signal(signals.checkout_completed, order=order, payment_attempt=attempt)
                context.signal(signals.payment_succeeded, order=order, payment_attempt=attempt)
        elif event.action == "completed":
            if self._advance(attempt, PaymentAttempt.Status.PENDING, order, None):
                context.signal(signals.checkout_completed, order=order, payment_attempt=attempt)
        elif event.action == "async_payment_failed":
            advanced = self._advance(attempt, PaymentAttempt.Status.FAILED, order, Order.Status.FAILED)
            if advanced:
                context.signal(signals.payment_failed, order=order, payment_attempt=attempt, invoice=None)
        elif event.action == "expired":
            self._advance(attempt, PaymentAttempt.Status.EXPIRED, order, Order.Status.EXPIRED)
        if attempt.pk is None:
            insert_row(attempt, defer=True)
        subscription_id = data["subscription_external_id"]
        if subscription_id and order.subscription_id is None:
            # The subscription's events came first: the order is linked to it now.
            link = SUBSCRIPTION_ID.first(event.provider, subscription_id)
            if link is not None:
                order.subscription_id = link.subscription_id
        if (order.status, order.paid_at, order.amount_total, order.subscription_id) != held:
            save_fields(order)
        context.note(f"order {order.pk}: {order.status}, attempt {attempt.external_id}: {attempt.status}")

    def _record_customer_details(self, context: ApplyContext, details: dict[str, Any]) -> None:
        """
        What the buyer typed on the hosted checkout page, recorded locally so that the sync
        never removes it at the provider and the tax decision stays local: a VAT number (the
        first ``eu_vat`` or ``gb_vat`` tax ID) replaces the customer's, unless the billing
        information changed after the checkout; a customer without billing information gets
        it from the details when they name a known country. The number is ``unverified``
        until the VIES check that ``billing_details_collected`` starts after the commit.
        """
        event, customer = context.event, context.customer
        number = next((tax["value"] for tax in details["tax_ids"] if tax["type"] in COLLECTED_TAX_ID_TYPES), "")
        number = "".join(number.split()).upper()
        billing = BILLING_OF.first(customer.pk)
        if billing is None:
            address = details["address"]
            email = details["email"]
            if address["country"] not in countries or not email:
                if number:
                    context.note("checkout details without a known country or email: the VAT number is not recorded")
                return
            billing = BillingInformation(
                customer=customer,
                name=details["business_name"] or details["name"] or email,
                email=email,
                address_line1=address["line1"],
                address_line2=address["line2"],
                postal_code=address["postal_code"],
                city=address["city"],
                state=address["state"],
                country=address["country"],
            )
        elif not number or number == billing.vat_number:
            return
        elif timestamp(billing.updated_at) > event.created:
            context.note("billing information changed after this checkout: its VAT number is kept")
            return
        if number:
            billing.vat_number = number
            billing.vat_status = BillingInformation.VatStatus.UNVERIFIED
            billing.vat_verified_at = None
            billing.vies_consultation_number = ""
        billing.tax_exempt = self.billing.decide_tax_exempt(str(billing.country), billing.vat_status)
        billing.sync_status = BillingInformation.SyncStatus.PENDING
        billing.save()
        context.note(f"recorded the checkout's billing details{' and VAT number' if number else ''}")
        context.signal(signals.billing_details_collected, billing_information=billing)

    def _advance(self, attempt: PaymentAttempt, attempt_status: str, order: Order, order_status: str | None) -> bool:
        """Move the attempt and the order forward, never back; whether the attempt moved."""
        moved = ATTEMPT_RANK[attempt_status] > ATTEMPT_RANK[attempt.status]
        if moved:
            attempt.status = attempt_status
            if attempt.pk is not None:  # a new attempt is inserted with its status
                save_fields(attempt, ("status", "updated_at"))
        if order_status and ORDER_RANK[order_status] > ORDER_RANK[order.status]:
            order.status = order_status
        return moved

    # Invoices

    def handle_invoice(self, context: ApplyContext) -> None:
        event, data = context.event, context.event.data
        if context.customer is None:
            raise WebhookHandlingError("An invoice event without a customer.", code="no_customer")
        invoice = INVOICE.first(event.provider, data["external_id"])
        if invoice is not None and is_stale(invoice, context):
            context.note(f"stale: {invoice.last_event_id} is newer")
            return
        if invoice is not None and self._invoice_goes_back(invoice, context):
            context.note(f"stale: the invoice is {invoice.status} already; {data['status']} is older")
            return
        if invoice is None:
            invoice = Invoice(customer=context.customer, provider=event.provider, external_id=data["external_id"])
        subscription_link = (
            SUBSCRIPTION_ID.first(event.provider, data["subscription_external_id"])
            if data["subscription_external_id"]
            else None
        )
        invoice.subscription_id = subscription_link.subscription_id if subscription_link else None
        invoice.provider_subscription_id = data["subscription_external_id"]
        for name in ("number", "status", "currency", "subtotal", "tax", "total", "amount_paid", "amount_due"):
            setattr(invoice, name, data[name])
        invoice.customer_tax_exempt = data.get("customer_tax_exempt", "")
        invoice.hosted_invoice_url = trusted_url(context, data["hosted_invoice_url"], "hosted_invoice_url")
        invoice.invoice_pdf = trusted_url(context, data["invoice_pdf"], "invoice_pdf")
        invoice.period_start = from_timestamp(data["period_start"])
        invoice.period_end = from_timestamp(data["period_end"])
        invoice.paid_at = from_timestamp(data["paid_at"])
        mark_applied(invoice, context)
        if invoice.pk is None:
            insert_row(invoice, defer=True)
        else:
            save_fields(invoice)
        if event.action == "paid":
            context.signal(signals.invoice_paid, invoice=invoice)
        elif event.action == "payment_failed":
            context.signal(signals.payment_failed, order=None, payment_attempt=None, invoice=invoice)
        context.note(f"invoice {invoice.number or invoice.external_id}: {invoice.status}")

    @staticmethod
    def _invoice_goes_back(invoice: Invoice, context: ApplyContext) -> bool:
        """
        Whether the event would move the invoice back: out of a final state (paid, void) ever,
        or to an earlier status within the second of the last applied event.
        """
        status = context.event.data["status"]
        if invoice.status in FINAL_INVOICE_STATUSES:
            return status != invoice.status
        same_second = invoice.last_event_created == context.event.created
        return same_second and INVOICE_RANK.get(status, 0) < INVOICE_RANK.get(invoice.status, 0)

    # Catalog: the local catalog is the truth; differences are recorded, never applied.

    def handle_product(self, context: ApplyContext) -> None:
        data = context.event.data
        link = (
            ExternalProduct.objects.select_related("product")
            .filter(provider=context.event.provider, external_id=data["external_id"])
            .first()
        )
        product = link.product if link else Product.objects.filter(pk=local_pk(data["local_id"]) or 0).first()
        self._record_drift(
            context,
            product,
            {"name": (product.name, data["name"]), "active": (product.is_active, data["active"])} if product else {},
        )

    def handle_price(self, context: ApplyContext) -> None:
        data = context.event.data
        link = (
            ExternalPricing.objects.select_related("pricing")
            .filter(provider=context.event.provider, external_id=data["external_id"])
            .first()
        )
        if link is None:
            context.note("price not linked to a local pricing: nothing to compare")
            return
        pricing = link.pricing
        self._record_drift(
            context,
            pricing,
            {
                "amount": (pricing.amount, data["amount"]),
                "currency": (pricing.currency, data["currency"]),
                "active": (pricing.is_active, data["active"]),
            },
        )

    def _record_drift(self, context: ApplyContext, obj: Any, pairs: dict[str, tuple[Any, Any]]) -> None:
        if obj is None:
            context.note(f"{context.event.kind} not in the local catalog: ignored")
            return
        if context.event.action == "deleted":
            context.note(f"drift: deleted at the provider; local {context.event.kind} {obj.pk} kept")
            return
        drift = sorted(name for name, (local, remote) in pairs.items() if local != remote)
        if drift:
            context.note(f"drift: {', '.join(drift)} differ from the local {context.event.kind} {obj.pk}; kept local")
        else:
            context.note("in step with the local catalog")
