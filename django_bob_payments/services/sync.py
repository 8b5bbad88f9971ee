"""
Pushing the local catalog and customers to the provider, which mirrors them.

The local database is the truth. For each kind (products, then prices, then customers) the
sync lists what exists at the provider once, matches it to local rows by the local ID every
object carries in its metadata, then creates what is missing, updates only the fields that
differ and archives what was removed locally. Objects left by an interrupted run are adopted,
never duplicated: they carry the metadata, and creates use idempotency keys derived from the
local ID and the content sent.

Local rows are read in pages of ``PAGE_SIZE``; what is held for the whole run is the
normalized fields of the provider's objects of one kind.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, models
from django.utils import timezone

from django_bob_payments.exceptions import ProviderAuthenticationError, ProviderError
from django_bob_payments.models import (
    BillingInformation,
    Customer,
    ExternalCustomer,
    ExternalPricing,
    ExternalProduct,
    PaymentsSite,
    Pricing,
    Product,
)
from django_bob_payments.providers.base import PRICE_IMMUTABLE_FIELDS, PaymentProvider, RemoteObject

PAGE_SIZE = 100
KINDS = ("products", "prices", "customers")


@dataclass
class KindReport:
    """What the sync did to one kind of object."""

    created: int = 0
    updated: int = 0
    archived: int = 0
    unchanged: int = 0
    failed: int = 0
    # Objects at the provider that carry our metadata but whose local row is gone, left as they are.
    orphaned: int = 0


@dataclass
class SyncFailure:
    kind: str
    local_id: str
    error: ProviderError


@dataclass
class SyncReport:
    """The outcome of a run: counts per kind and each failure."""

    kinds: dict[str, KindReport] = field(default_factory=lambda: {kind: KindReport() for kind in KINDS})
    failures: list[SyncFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


class SyncObserver:
    """Receives what the sync does, to print a plan or progress. The default says nothing."""

    def planned(self, kind: str, action: str, description: str) -> None:
        """An action the sync takes (or, in a dry run, would take)."""

    def progress(self, kind: str, done: int, total: int) -> None:
        """``done`` of ``total`` local rows of ``kind`` are handled."""

    def failed(self, failure: SyncFailure) -> None:
        """An object could not be synced; the run goes on."""


def idempotency_key(kind: str, local_id: str, content: dict[str, Any], site: str = "") -> str:
    """
    The key of one create: this installation's key (``PaymentsSite``), the local ID and a
    digest of what is sent, so a rerun replays it and another installation never does.
    """
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:24]
    site = site or PaymentsSite.current_key()
    return f"bob-payments-{site}-{kind}-{local_id}-{digest}"


def terms_digest(pricing: Pricing) -> str:
    """A digest of what a provider price cannot change (amount, currency, interval), as the link records it."""
    terms = {name: getattr(pricing, name) for name in PRICE_IMMUTABLE_FIELDS}
    return hashlib.sha256(json.dumps(terms, sort_keys=True, default=str).encode()).hexdigest()[:32]


def iter_pages(queryset: models.QuerySet, page_size: int = PAGE_SIZE) -> Iterator[list[Any]]:
    """Rows of ``queryset`` by ascending primary key, one page (one query) at a time."""
    last_pk = None
    while True:
        page_queryset = queryset.order_by("pk")
        if last_pk is not None:
            page_queryset = page_queryset.filter(pk__gt=last_pk)
        page = list(page_queryset[:page_size])
        if not page:
            return
        yield page
        last_pk = page[-1].pk


class ProviderSync:
    """One run of the sync against one provider."""

    def __init__(
        self,
        provider: PaymentProvider,
        *,
        dry_run: bool = False,
        observer: SyncObserver | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.provider = provider
        self.dry_run = dry_run
        self.observer = observer or SyncObserver()
        self.page_size = page_size
        self.report = SyncReport()
        self._site = ""

    @property
    def site(self) -> str:
        """This installation's key, read once per run."""
        if not self._site:
            self._site = PaymentsSite.current_key()
        return self._site

    def run(self, kinds: tuple[str, ...] = KINDS) -> SyncReport:
        """
        Sync the given kinds, in dependency order. Raises ProviderAuthenticationError. A
        provider error outside one object's push (listing a kind failed after its retries)
        is recorded as that kind's failure, with an empty local ID, and ends the run: the
        kinds after it depend on it.
        """
        for kind in KINDS:
            if kind not in kinds:
                continue
            try:
                getattr(self, f"sync_{kind}")()
            except ProviderAuthenticationError:
                raise
            except ProviderError as err:
                failure = SyncFailure(kind, "", err)
                self.report.failures.append(failure)
                self.report.kinds[kind].failed += 1
                self.observer.failed(failure)
                break
        return self.report

    # Shared steps

    def _index(self, remote_objects: Iterator[RemoteObject]) -> dict[str, list[RemoteObject]]:
        by_local_id: dict[str, list[RemoteObject]] = defaultdict(list)
        for remote in remote_objects:
            if remote.local_id is not None:
                by_local_id[remote.local_id].append(remote)
        return by_local_id

    def _attempt(self, kind: str, local_id: str, action: Callable[..., Any], *args: Any) -> None:
        """Run ``action(*args)``; a provider error is recorded and the run goes on."""
        try:
            action(*args)
        except ProviderAuthenticationError:
            raise
        except ProviderError as err:
            failure = SyncFailure(kind, local_id, err)
            self.report.failures.append(failure)
            self.report.kinds[kind].failed += 1
            self.observer.failed(failure)

    def _changes(self, desired: dict[str, Any], remote: RemoteObject) -> dict[str, Any]:
        return {key: value for key, value in desired.items() if remote.fields.get(key) != value}

    def _save_links(
        self,
        link_model: type[models.Model],
        owner_field: str,
        links: dict[int, str],
        linked: dict[int, str] | None = None,
        terms: dict[int, str] | None = None,
    ) -> None:
        """
        Point each local row's link for this provider at its provider ID, in one query; rows
        whose live link (``linked``) already says so are left alone, unless ``terms`` (of
        pricings: the terms digest their price has) must be recorded. A new ID starts a new
        link: no watermark, no tombstone.
        """
        terms = terms or {}
        if linked:
            links = {pk: ext for pk, ext in links.items() if linked.get(pk) != ext or pk in terms}
        if not links or self.dry_run:
            return
        manager = link_model._default_manager
        reset = [name for name in ("deleted_at", "last_event_created", "last_event_id") if hasattr(link_model, name)]
        # MySQL and MariaDB upsert on any unique key and take no conflict target.
        with_target = connections[manager.db].features.supports_update_conflicts_with_target
        manager.bulk_create(
            [
                link_model(
                    **{f"{owner_field}_id": pk, "provider": self.provider.name, "external_id": external_id},
                    **({"terms": terms.get(pk, "")} if terms else {}),
                )
                for pk, external_id in links.items()
            ],
            update_conflicts=True,
            unique_fields=[owner_field, "provider"] if with_target else None,
            update_fields=["external_id", "updated_at", *reset, *(["terms"] if terms else [])],
        )

    def _linked_ids(self, rows: list[Any]) -> dict[int, str]:
        """The current provider ID of each row, from its prefetched links (tombstones left out)."""
        return {
            row.pk: link.external_id
            for row in rows
            for link in row.external_ids.all()
            if link.provider == self.provider.name and getattr(link, "deleted_at", None) is None
        }

    def _archive_leftovers(self, kind: str, leftovers: dict[str, list[RemoteObject]], archive: Callable) -> None:
        for local_id, remotes in leftovers.items():
            for remote in remotes:
                if remote.fields.get("active"):
                    self.observer.planned(kind, "archive", f"{remote.external_id} (local {local_id} is gone)")
                    if not self.dry_run:
                        self._attempt(
                            kind, local_id, lambda remote=remote: archive(remote.external_id, {"active": False})
                        )
                    self.report.kinds[kind].archived += 1

    def _prefetched(self, queryset: models.QuerySet, link_model: type[models.Model]) -> models.QuerySet:
        return queryset.prefetch_related(
            models.Prefetch("external_ids", queryset=link_model._default_manager.filter(provider=self.provider.name))
        )

    # Products

    def product_fields(self, product: Product) -> dict[str, Any]:
        return {"name": product.name, "description": product.description, "active": product.is_active}

    def sync_products(self) -> None:
        kind = "products"
        remote_index = self._index(self.provider.iter_products())
        queryset = self._prefetched(Product.objects.all(), ExternalProduct)
        total, done = Product.objects.count(), 0
        for page in iter_pages(queryset, self.page_size):
            linked = self._linked_ids(page)
            links: dict[int, str] = {}
            for product in page:
                local_id = str(product.pk)
                desired = self.product_fields(product)
                candidates = remote_index.pop(local_id, [])
                remote = next((r for r in candidates if r.external_id == linked.get(product.pk)), None) or (
                    candidates[0] if candidates else None
                )
                self._attempt(kind, local_id, self._push_product, product, desired, remote, links)
                done += 1
            self._save_links(ExternalProduct, "product", links, linked)
            self.observer.progress(kind, done, total)
        self._archive_leftovers(kind, remote_index, self.provider.update_product)

    def _push_product(self, product: Product, desired: dict, remote: RemoteObject | None, links: dict) -> None:
        report = self.report.kinds["products"]
        local_id = str(product.pk)
        if remote is None:
            self.observer.planned("products", "create", f"{local_id} ({product.name})")
            if not self.dry_run:
                key = idempotency_key("product", local_id, desired, self.site)
                remote = self.provider.create_product(local_id, desired, key)
                links[product.pk] = remote.external_id
            report.created += 1
            return
        links[product.pk] = remote.external_id
        changes = self._changes(desired, remote)
        if not changes:
            report.unchanged += 1
            return
        self.observer.planned("products", "update", f"{local_id} {remote.external_id}: {', '.join(sorted(changes))}")
        if not self.dry_run:
            self.provider.update_product(remote.external_id, changes)
        if changes == {"active": False}:
            report.archived += 1
        else:
            report.updated += 1

    # Prices

    def pricing_fields(self, pricing: Pricing) -> dict[str, Any]:
        return {
            "amount": pricing.amount,
            "currency": pricing.currency,
            "type": pricing.type,
            "interval": pricing.interval,
            "interval_count": pricing.interval_count,
            "nickname": pricing.nickname,
            "active": pricing.is_active and pricing.product.is_active,
        }

    def sync_prices(self) -> None:
        kind = "prices"
        remote_index = self._index(self.provider.iter_prices())
        product_ids = dict(
            ExternalProduct.objects.filter(provider=self.provider.name).values_list("product_id", "external_id")
        )
        queryset = self._prefetched(Pricing.objects.select_related("product"), ExternalPricing)
        total, done = Pricing.objects.count(), 0
        for page in iter_pages(queryset, self.page_size):
            linked = self._linked_ids(page)
            recorded = {row.pk: link.terms for row in page for link in row.external_ids.all()}
            links: dict[int, str] = {}
            for pricing in page:
                local_id = str(pricing.pk)
                candidates = remote_index.pop(local_id, [])
                self._attempt(
                    kind, local_id, self._push_price, pricing, candidates, linked.get(pricing.pk), product_ids, links
                )
                done += 1
            self._save_links(ExternalPricing, "pricing", links, linked, self._new_terms(page, links, linked, recorded))
            self.observer.progress(kind, done, total)
        self._archive_leftovers(kind, remote_index, self.provider.update_price)

    @staticmethod
    def _new_terms(
        pricings: list[Pricing], links: dict[int, str], linked: dict[int, str], recorded: dict[int, str]
    ) -> dict[int, str]:
        """The terms digests to record: of the pricings pushed whose link is new or records other terms."""
        digests = {pricing.pk: terms_digest(pricing) for pricing in pricings if pricing.pk in links}
        return {
            pk: digest for pk, digest in digests.items() if linked.get(pk) != links[pk] or recorded.get(pk) != digest
        }

    def sync_pricing(self, pricing: Pricing) -> str:
        """
        Push one pricing now, its product first if that is not at the provider yet; returns
        its provider price ID. One list call for the product's prices, and a create when
        none has the pricing's terms.
        """
        product_id = (
            ExternalProduct.objects.filter(provider=self.provider.name, product_id=pricing.product_id)
            .values_list("external_id", flat=True)
            .first()
        )
        if product_id is None:
            links: dict[int, str] = {}
            self._push_product(pricing.product, self.product_fields(pricing.product), None, links)
            self._save_links(ExternalProduct, "product", links)
            product_id = links[pricing.product_id]
        link = ExternalPricing.objects.filter(provider=self.provider.name, pricing=pricing).first()
        local_id = str(pricing.pk)
        candidates = [price for price in self.provider.iter_prices(product_id) if price.local_id == local_id]
        links = {}
        self._push_price(
            pricing, candidates, link.external_id if link else None, {pricing.product_id: product_id}, links
        )
        linked = {pricing.pk: link.external_id} if link else {}
        recorded = {pricing.pk: link.terms} if link else {}
        self._save_links(ExternalPricing, "pricing", links, linked, self._new_terms([pricing], links, linked, recorded))
        return links[pricing.pk]

    def _push_price(
        self,
        pricing: Pricing,
        candidates: list[RemoteObject],
        linked_id: str | None,
        product_ids: dict[int, str],
        links: dict[int, str],
    ) -> None:
        report = self.report.kinds["prices"]
        local_id = str(pricing.pk)
        desired = self.pricing_fields(pricing)
        product_external_id = product_ids.get(pricing.product_id)
        if product_external_id is None and not self.dry_run:
            raise ProviderError(
                f"Product {pricing.product_id} is not at {self.provider.name} yet: sync products first.",
                provider=self.provider.name,
                code="product_not_synced",
            )
        immutable = {key: desired[key] for key in PRICE_IMMUTABLE_FIELDS}

        def same_terms(remote: RemoteObject) -> bool:
            return remote.parent_id == product_external_id and all(
                remote.fields.get(key) == value for key, value in immutable.items()
            )

        matches = sorted(
            (remote for remote in candidates if same_terms(remote)),
            key=lambda remote: (remote.external_id != linked_id, not remote.fields.get("active")),
        )
        current = matches[0] if matches else None
        if current is None:
            self.observer.planned("prices", "create", f"{local_id} ({pricing})")
            if not self.dry_run:
                content = {**desired, "product": product_external_id}
                current = self.provider.create_price(
                    local_id, product_external_id, desired, idempotency_key("price", local_id, content, self.site)
                )
                links[pricing.pk] = current.external_id
            report.created += 1
        else:
            links[pricing.pk] = current.external_id
            # A nickname can be changed, not removed (no "" in the SDK's types): an empty one is left alone.
            mutable = {"nickname": desired["nickname"]} if desired["nickname"] else {}
            changes = self._changes({**mutable, "active": desired["active"]}, current)
            if changes:
                self.observer.planned(
                    "prices", "update", f"{local_id} {current.external_id}: {', '.join(sorted(changes))}"
                )
                if not self.dry_run:
                    self.provider.update_price(current.external_id, changes)
                if changes == {"active": False}:
                    report.archived += 1
                else:
                    report.updated += 1
            else:
                report.unchanged += 1
        # Prices cannot change their amount, currency or interval: the old ones are archived.
        for stale in candidates:
            if stale is not current and stale.fields.get("active"):
                self.observer.planned("prices", "archive", f"{stale.external_id} (replaced for local {local_id})")
                if not self.dry_run:
                    self.provider.update_price(stale.external_id, {"active": False})
                report.archived += 1

    # Customers

    def customer_fields(self, customer: Customer) -> dict[str, Any]:
        billing = getattr(customer, "billing_information", None)
        user = customer.user
        fields: dict[str, Any] = {
            "name": "",
            "email": (getattr(user, "email", "") or "") if user is not None else "",
            "address": None,
            "tax_exempt": "none",
            "tax_id": None,
        }
        if customer.preferred_locale:
            # Only when set: Stripe cannot unset a customer's locales (no "" in the SDK's types).
            fields["preferred_locales"] = [customer.preferred_locale]
        if user is not None and hasattr(user, "get_full_name"):
            fields["name"] = user.get_full_name() or ""
        if billing is not None:
            address = {
                "line1": billing.address_line1,
                "line2": billing.address_line2,
                "postal_code": billing.postal_code,
                "city": billing.city,
                "state": billing.state,
                "country": str(billing.country),
            }
            fields.update(
                name=billing.name,
                email=billing.email,
                address=address if any(address.values()) else None,
                tax_exempt=billing.tax_exempt,
                tax_id=(billing.vat_number or None) if billing.is_from_eu or str(billing.country) == "GB" else None,
            )
        return fields

    def sync_customers(self) -> None:
        kind, report = "customers", self.report.kinds["customers"]
        remote_index = self._index(self.provider.iter_customers())
        queryset = self._prefetched(Customer.objects.select_related("billing_information", "user"), ExternalCustomer)
        total, done = Customer.objects.count(), 0
        for page in iter_pages(queryset, self.page_size):
            linked = self._linked_ids(page)
            links: dict[int, str] = {}
            for customer in page:
                done += 1
                local_id = str(customer.pk)
                candidates = remote_index.pop(local_id, [])
                if not self.owns_data(customer):
                    # Made by a webhook for a provider customer created outside the app: the
                    # provider holds its data, and pushing nothing would make a blank clone.
                    report.unchanged += 1
                    continue
                remote = next((r for r in candidates if r.external_id == linked.get(customer.pk)), None) or (
                    candidates[0] if candidates else None
                )
                if remote is None and customer.pk in linked:
                    # Linked, but without our metadata at the provider (linked by hand, say).
                    remote = self.provider.retrieve_customer(linked[customer.pk])
                self._attempt(kind, local_id, self._push_customer, customer, remote, links, self._tombstone(customer))
            self._save_links(ExternalCustomer, "customer", links, linked)
            self._mark_synced(links)
            self.observer.progress(kind, done, total)
        for remotes in remote_index.values():
            report.orphaned += len(remotes)

    def _mark_synced(self, links: dict[int, str]) -> None:
        """Billing information of the customers now in step with the provider: synced."""
        if links and not self.dry_run:
            BillingInformation.objects.filter(customer_id__in=list(links)).exclude(
                sync_status=BillingInformation.SyncStatus.SYNCED
            ).update(sync_status=BillingInformation.SyncStatus.SYNCED, synced_at=timezone.now())

    @staticmethod
    def owns_data(customer: Customer) -> bool:
        """Whether the local customer has data to push: an owner, or billing information."""
        return (
            customer.user_id is not None
            or customer.organization_type_id is not None
            or getattr(customer, "billing_information", None) is not None
        )

    def sync_customer(self, customer: Customer) -> None:
        """Push one customer now: fetch its provider object (one call), then create or update it."""
        link = customer.external_ids.filter(provider=self.provider.name).first()
        tombstone = link.external_id if link is not None and link.deleted_at is not None else None
        if tombstone:
            link = None
        remote = self.provider.retrieve_customer(link.external_id) if link else None
        links: dict[int, str] = {}
        self._push_customer(customer, remote, links, tombstone)
        self._save_links(ExternalCustomer, "customer", links, {customer.pk: link.external_id} if link else None)

    def _tombstone(self, customer: Customer) -> str | None:
        """The provider ID of the customer's deleted provider customer, from its prefetched links."""
        for link in customer.external_ids.all():
            if link.provider == self.provider.name and link.deleted_at is not None:
                return link.external_id
        return None

    def _push_customer(
        self, customer: Customer, remote: RemoteObject | None, links: dict[int, str], replaces: str | None = None
    ) -> None:
        """Create or update the customer at the provider; ``replaces`` names a deleted one it succeeds."""
        report = self.report.kinds["customers"]
        local_id = str(customer.pk)
        desired = self.customer_fields(customer)
        if remote is None:
            self.observer.planned("customers", "create", f"{local_id} ({desired['email'] or 'no email'})")
            if not self.dry_run:
                # A successor of a deleted customer needs its own key: the first create's key
                # would replay the deleted customer.
                content = {**desired, "replaces": replaces} if replaces else desired
                key = idempotency_key("customer", local_id, content, self.site)
                remote = self.provider.create_customer(local_id, desired, key)
                links[customer.pk] = remote.external_id
                # Linked at once, not with the page: its webhooks may arrive any moment.
                self._save_links(ExternalCustomer, "customer", {customer.pk: remote.external_id})
            report.created += 1
            return
        changes = self._changes(desired, remote)
        if not changes:
            links[customer.pk] = remote.external_id
            report.unchanged += 1
            return
        self.observer.planned("customers", "update", f"{local_id} {remote.external_id}: {', '.join(sorted(changes))}")
        if not self.dry_run:
            self.provider.update_customer(remote, changes)
        links[customer.pk] = remote.external_id
        report.updated += 1
