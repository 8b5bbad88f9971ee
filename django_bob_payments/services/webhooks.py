"""
The webhook inbox: store each verified event, apply it exactly once, in order per customer.

Receiving a new event is one transaction: lock the customer it concerns
(``SELECT ... FOR UPDATE`` on its row, so events of one customer are applied one at a time
by every process and host, while other customers proceed), apply the handlers, then insert
the event as processed. The unique (provider, event ID) constraint makes the insert of a
concurrent duplicate fail, which rolls back that duplicate's work: an event is applied once
however many times, and however concurrently, it is delivered.

Side effects go through an outbox: the billing emails an event implies are recorded in its
transaction (``side_effects``) and delivered after the commit, so a crash at any point
neither loses nor doubles one (``sendbillingemails`` sends what a dead process left).

Two kinds of failure, both rolled back and stored in a transaction of their own:

- transient (a database error, a lock timeout, any unexpected exception): stored as failed
  and answered with an error, so that the provider delivers the event again;
- deterministic (``WebhookHandlingError``: a price missing from the catalog, a customer
  missing from the payload; or an event the provider cannot read, such as an API version
  the handlers do not read): stored as waiting with the reason, logged as an error, and
  answered 2xx, since a redelivery cannot succeed. Waiting events are applied again after
  each ``synchronizepayments`` and by ``processwebhooks``.

A redelivery, ``processwebhooks`` or the admin applies a stored event under a lock on its
row. Events for the other mode (live / test) are stored as rejected and never applied;
events of a type the app does not handle are stored as ignored.
"""

from __future__ import annotations

import datetime
import json
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import F, QuerySet
from django.dispatch import Signal
from django.utils import timezone

from django_bob_payments import signals
from django_bob_payments.conf import bob_settings
from django_bob_payments.exceptions import WebhookHandlingError
from django_bob_payments.models import Customer, ExternalCustomer, WebhookEvent
from django_bob_payments.prepared import (
    PreparedQuery,
    deferred_writes,
    forget_prefetched,
    insert_row,
    prefetch,
    save_fields,
)
from django_bob_payments.providers.base import PaymentProvider, ProviderEvent
from django_bob_payments.reports import hide_locals, loggable
from django_bob_payments.services.events import ApplyContext, EventApplier, local_pk

logger = logging.getLogger("django_bob_payments.webhooks")


def _locked_customers(customers: QuerySet[Customer]) -> QuerySet[Customer]:
    """``customers`` locked for the transaction (only their rows where the database can say so)."""
    return customers.select_for_update(of=("self",) if connection.features.has_select_for_update_of else ()).order_by()


LOCKED_CUSTOMER = PreparedQuery(
    lambda provider, key: _locked_customers(
        Customer.objects.filter(external_ids__provider=provider, external_ids__external_id=key)
    )[:1]
)
# The local customer a provider customer's metadata names, locked; a provider link it has.
LOCKED_CUSTOMER_PK = PreparedQuery(lambda pk: _locked_customers(Customer.objects.filter(pk=pk))[:1])
LINK_OF_CUSTOMER = PreparedQuery(
    lambda customer, provider: (
        ExternalCustomer.objects.filter(customer_id=customer, provider=provider).only("pk").order_by()[:1]
    )
)
# A stored event, locked; its head (what a worker needs to pick its inbox).
LOCKED_EVENT = PreparedQuery(lambda pk: WebhookEvent.objects.select_for_update().filter(pk=pk).order_by()[:1])
HEAD_FIELDS = ("pk", "provider", "customer_key", "status")
EVENT_HEAD = PreparedQuery(lambda pk: WebhookEvent.objects.filter(pk=pk).only(*HEAD_FIELDS).order_by()[:1])


def synthetic_event(provider: PaymentProvider, event_id: str, event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
    """
    An event payload of this second carrying ``obj`` as the provider holds it now, for what
    the app read at the provider itself (a checkout the success page asked about, drift
    found by reconciliation): fed to ``receive``, it is applied as a webhook would be, and
    the provider's webhooks of what came before are older than it.
    """
    return {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "api_version": getattr(provider, "api_version", None),
        "created": int(timezone.now().timestamp()),
        "livemode": bool(obj.get("livemode", False)),
        "data": {"object": obj},
    }


def stored_head(pk: int) -> WebhookEvent | None:
    """The stored event ``pk`` with only its provider, customer and status loaded; None if gone."""
    return EVENT_HEAD.first(pk)


Status = WebhookEvent.Status
FINAL_STATUSES = (Status.PROCESSED, Status.IGNORED, Status.REJECTED)


class DuplicateEvent(Exception):
    """Another delivery of the event was stored first: roll back this one's work."""


class CustomerLookupNeeded(Exception):
    """The event's provider customer is new to us and the event does not say whose it is."""

    def __init__(self, event: ProviderEvent) -> None:
        super().__init__(event.customer_key)
        self.event = event


@dataclass(frozen=True)
class ResolvedCustomer:
    """What the provider said of a customer: the local ID in its metadata, or that it is gone."""

    local_id: int | None
    deleted: bool


# Records, inside the event's transaction, what a signal the event will send implies (an
# email to send after the commit): called with the signal and its keyword arguments.
SideEffects = Callable[[Signal, dict[str, Any]], None]

# Events that record something on their customer: only these make an ownerless local
# customer for a provider customer made outside the app.
OWNERLESS_KINDS = ("subscription", "invoice")


@dataclass
class ReceiveResult:
    event: WebhookEvent
    duplicate: bool = False

    @property
    def to_apply(self) -> bool:
        """Stored but not applied (yet, or after a failure): what a queued mode hands to a worker."""
        return self.event.status not in FINAL_STATUSES

    @property
    def failed(self) -> bool:
        """Applying failed for a reason that may pass: the provider should deliver it again."""
        return self.event.status == Status.FAILED

    @property
    def waiting(self) -> bool:
        """The event cannot be applied until something changes here; redelivering it will not help."""
        return self.event.status == Status.WAITING


# Failures that a redelivery cannot mend: the event waits (answered 2xx) instead of failing.
# Besides the app's own, a value the database refuses (too long, out of range) and the
# type errors of a payload no normalizer caught.
DETERMINISTIC_ERRORS = (
    WebhookHandlingError,
    DataError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
)


def storable(text: str) -> str:
    """``text`` as every database stores it: NULs and unpaired surrogates escaped."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _insert_alone(row: WebhookEvent) -> None:
    """
    Insert ``row`` in a statement of its own: outside a transaction a single INSERT is one
    already (no BEGIN and COMMIT to wait for); inside one, in a savepoint, so that a
    duplicate's IntegrityError leaves the outer transaction usable.
    """
    if connection.in_atomic_block:
        with transaction.atomic():
            insert_row(row)
    else:
        insert_row(row)


def _is_event_duplicate(err: IntegrityError) -> bool:
    """
    Whether an IntegrityError raised when the event's transaction ended (its insert sent
    with held-back writes, ``deferred_writes``) is the insert's own (an earlier delivery
    stored the event first), and not a handler's write's: the table the database names.
    """
    table = getattr(getattr(err.__cause__, "diag", None), "table_name", None)
    return table == WebhookEvent._meta.db_table


def _error_text(err: BaseException) -> str:
    """The error for the event's record: its type, message and where it was raised."""
    frames = traceback.extract_tb(err.__traceback__)
    where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
    return storable(f"{type(err).__name__}: {err}{where}"[:2000])


@hide_locals
class WebhookInbox:
    """Receives, stores and applies one provider's events."""

    def __init__(
        self,
        provider: PaymentProvider,
        applier: EventApplier | None = None,
        side_effects: SideEffects | None = None,
    ) -> None:
        self.provider = provider
        self.applier = applier or EventApplier()
        self.side_effects = side_effects
        # Customers read at the provider to resolve them (events without our metadata).
        self.provider_reads = 0

    # Receiving

    def receive(self, payload: dict[str, Any], body: bytes | None = None) -> ReceiveResult:
        """
        Store and apply a verified payload, parsed from ``body``, the request body as received
        (by default the payload's JSON). Raises WebhookVerificationError for a non-event.
        """
        event, body, unapplied = self._parse(payload, body)
        if unapplied is not None:
            return unapplied
        # No look-up first: the unique insert that ends the transaction tells a redelivery,
        # and handlers are idempotent, so a duplicate's work is simply rolled back.
        try:
            if event.unreadable:
                raise WebhookHandlingError(event.unreadable, provider=event.provider, code="unreadable_event")
            try:
                return ReceiveResult(self._apply_new(event, body))
            except CustomerLookupNeeded:
                # Rolled back; ask the provider whose customer this is, with no transaction open.
                return ReceiveResult(self._apply_new(event, body, self.look_up_customer(event)))
        except DuplicateEvent:
            stored = WebhookEvent.objects.get(provider=event.provider, event_id=event.event_id)
            if stored.status not in FINAL_STATUSES:
                # A redelivery of an event that failed or waited before: apply the stored one.
                stored = self.apply_stored(stored.pk)
            return ReceiveResult(stored, duplicate=True)
        except Exception as err:
            return self._store_unsuccessful(event, body, err)

    def store(self, payload: dict[str, Any], body: bytes | None = None) -> ReceiveResult:
        """
        Store a verified payload as pending, for a worker to apply (``apply_queued``); events
        never to be applied are stored as rejected or ignored at once. A redelivery returns
        the stored event (``duplicate``). Raises WebhookVerificationError for a non-event.
        """
        event, body, unapplied = self._parse(payload, body)
        if unapplied is not None:
            return unapplied
        row = self._row(event, body, status=Status.PENDING)
        try:
            _insert_alone(row)
        except IntegrityError:
            return ReceiveResult(WebhookEvent.objects.get(provider=event.provider, event_id=event.event_id), True)
        return ReceiveResult(row)

    def _parse(self, payload: dict[str, Any], body: bytes | None) -> tuple[ProviderEvent, bytes, ReceiveResult | None]:
        """The normalized event and its body; and, for an event never to be applied, its stored record."""
        if body is None:
            body = json.dumps(payload, separators=(",", ":")).encode()
        event = self.provider.parse_event(payload)
        rejection = self.rejection(event)
        if rejection or not event.handled:
            status = Status.REJECTED if rejection else Status.IGNORED
            return (
                event,
                body,
                self._store_unapplied(event, body, status, rejection or "no handler for this event type"),
            )
        return event, body, None

    def rejection(self, event: ProviderEvent) -> str:
        """Why the event must never be applied here, or ""."""
        expected_live = str(bob_settings.STRIPE_SECRET_KEY or "").startswith(("sk_live_", "rk_live_"))
        if event.provider == "stripe" and event.livemode != expected_live:
            mode = "live" if event.livemode else "test"
            return f"a {mode}-mode event, but this site uses {'live' if expected_live else 'test'} keys"
        return ""

    def _row(self, event: ProviderEvent, body: bytes, **fields: Any) -> WebhookEvent:
        return WebhookEvent(
            provider=event.provider,
            event_id=event.event_id,
            type=event.type[:128],
            api_version=event.api_version[:64],
            livemode=event.livemode,
            created=event.created,
            customer_key=event.customer_key[:255],
            body=body,
            **fields,
        )

    def _store_unapplied(self, event: ProviderEvent, body: bytes, status: str, why: str) -> ReceiveResult:
        row = self._row(event, body, status=status, outcome=why, processed_at=timezone.now())
        try:
            _insert_alone(row)
        except IntegrityError:
            return ReceiveResult(WebhookEvent.objects.get(provider=event.provider, event_id=event.event_id), True)
        return ReceiveResult(row)

    def _apply_new(self, event: ProviderEvent, body: bytes, resolved: ResolvedCustomer | None = None) -> WebhookEvent:
        try:
            # The handlers' writes travel with the statement after them, and the last ones,
            # with the event's insert, with the COMMIT (PostgreSQL).
            with transaction.atomic(), deferred_writes(commit=True):
                context = self._apply(event, resolved)
                row = self._row(
                    event,
                    body,
                    status=Status.PROCESSED,
                    attempts=1,
                    outcome=storable("; ".join(context.notes)),
                    processed_at=timezone.now(),
                )
                try:
                    # The last statement of the transaction: a failure rolls back all of it.
                    insert_row(row, defer=True)
                except IntegrityError as err:  # inserted at once: its own
                    raise DuplicateEvent from err
        except IntegrityError as err:
            # Sent with held-back writes at the end of the block (PostgreSQL), or a handler's.
            if _is_event_duplicate(err):
                raise DuplicateEvent from err
            raise
        self._send(context, row)
        return row

    def _store_unsuccessful(self, event: ProviderEvent, body: bytes, err: Exception) -> ReceiveResult:
        """Store an event that could not be applied: waiting (deterministic) or failed (transient)."""
        status = self._log_failure(event.event_id, event.type, err)
        row = self._row(event, body, status=status, attempts=1, last_error=_error_text(err))
        try:
            _insert_alone(row)
        except IntegrityError:
            # Stored already: by an earlier delivery that failed too (count this attempt), or
            # by a concurrent one that succeeded (its record stands).
            WebhookEvent.objects.filter(
                provider=event.provider, event_id=event.event_id, status__in=(Status.FAILED, Status.WAITING)
            ).update(status=status, attempts=F("attempts") + 1, last_error=_error_text(err))
            row = WebhookEvent.objects.get(provider=event.provider, event_id=event.event_id)
            if row.status in (Status.FAILED, Status.WAITING):
                signals.webhook_event_failed.send_robust(sender=type(self), event=row, error=err)
            return ReceiveResult(row, duplicate=True)
        signals.webhook_event_failed.send_robust(sender=type(self), event=row, error=err)
        return ReceiveResult(row)

    @staticmethod
    def _log_failure(event_id: str, event_type: str, err: Exception) -> str:
        """Log why an event was not applied, and return the status it is stored in."""
        if isinstance(err, DETERMINISTIC_ERRORS):
            logger.error("Webhook event %s (%s) is waiting: %s", event_id, event_type, loggable(err))
            return Status.WAITING
        logger.warning("Webhook event %s (%s) failed: %s", event_id, event_type, loggable(err))
        return Status.FAILED

    # Applying stored events

    def apply_stored(self, pk: int) -> WebhookEvent:
        """
        Apply a stored event that is pending, failed or waiting, under a lock on its row, so
        that a replay and a redelivery cannot both apply it. Returns the row with its new status.
        """
        try:
            try:
                return self._apply_stored(pk, None)
            except CustomerLookupNeeded as lookup:
                return self._apply_stored(pk, self.look_up_customer(lookup.event))
        except Exception as err:
            row = WebhookEvent.objects.get(pk=pk)
            status = self._log_failure(row.event_id, row.type, err)
            WebhookEvent.objects.filter(pk=pk).update(
                status=status, last_error=_error_text(err), attempts=F("attempts") + 1
            )
            row.refresh_from_db()
            signals.webhook_event_failed.send_robust(sender=type(self), event=row, error=err)
            return row

    def _apply_stored(self, pk: int, resolved: ResolvedCustomer | None) -> WebhookEvent:
        """One try at applying a stored event, in a transaction that holds its row."""
        with transaction.atomic(), deferred_writes(commit=True):
            row = LOCKED_EVENT.first(pk)
            if row is None:
                raise WebhookEvent.DoesNotExist(f"No stored webhook event {pk}.")
            if row.status in FINAL_STATUSES:
                return row
            event = self.provider.parse_event(row.payload)
            rejection = self.rejection(event)
            if rejection or not event.handled:
                row.status = Status.REJECTED if rejection else Status.IGNORED
                row.outcome = rejection or "no handler for this event type"
                row.processed_at = timezone.now()
                save_fields(row, ("status", "outcome", "processed_at"))
                return row
            if event.unreadable:
                raise WebhookHandlingError(event.unreadable, provider=event.provider, code="unreadable_event")
            context = self._apply(event, resolved)
            row.status = Status.PROCESSED
            row.attempts += 1
            row.outcome = storable("; ".join(context.notes))
            row.last_error = ""
            row.processed_at = timezone.now()
            save_fields(row, ("status", "attempts", "outcome", "last_error", "processed_at"))
        self._send(context, row)
        return row

    def apply_queued(self, pk: int, head: WebhookEvent | None = None) -> WebhookEvent | None:
        """
        Apply a stored event for a worker of a queued mode (``apply_queued_batch`` of one);
        None when no such event is stored (purged). ``head`` is the event's ``stored_head``
        when the caller read it already.
        """
        rows = self.apply_queued_batch([pk], None if head is None else {pk: head})
        return rows[0] if rows else None

    def apply_queued_batch(self, pks: list[int], heads: dict[int, WebhookEvent] | None = None) -> list[WebhookEvent]:
        """
        Apply stored events for a worker of a queued mode, in order, each after the events of
        its customer received before it that no worker has applied yet, so that a customer's
        events are applied in the order they came, however many workers run. Each is applied
        under its row's lock (``apply_stored``): a worker that reaches an event another one
        holds waits for it, then finds it applied. Two reads for the whole batch: the events'
        heads (``heads`` when the caller read them) and their customers' earlier pending
        events. Returns the rows of the events found.
        """
        if heads is None:
            heads = {row.pk: row for row in WebhookEvent.objects.filter(pk__in=pks).only(*HEAD_FIELDS)}
        keys = {
            (row.provider, row.customer_key)
            for row in heads.values()
            if row.customer_key and row.status not in FINAL_STATUSES
        }
        earlier: dict[tuple[str, str], list[int]] = {}
        if keys:
            pending = WebhookEvent.objects.filter(
                provider__in={provider for provider, _ in keys},
                customer_key__in={key for _, key in keys},
                status=Status.PENDING,
                pk__lt=max(pks),
            ).only(*HEAD_FIELDS)
            for row in pending.order_by("pk"):
                earlier.setdefault((row.provider, row.customer_key), []).append(row.pk)
        applied: dict[int, WebhookEvent] = {}
        rows = []
        for pk in pks:
            head = heads.get(pk)
            if head is None:
                continue
            if pk in applied or head.status in FINAL_STATUSES:
                rows.append(applied.get(pk, head))
                continue
            for before in earlier.get((head.provider, head.customer_key), ()):
                if before < pk and before not in applied:
                    applied[before] = self.apply_stored(before)
            applied[pk] = self.apply_stored(pk)
            rows.append(applied[pk])
        return rows

    def unapplied(self, older_than: datetime.timedelta) -> list[int]:
        """
        The events of this provider stored pending or failed more than ``older_than`` ago,
        oldest first: those a crashed worker or a lost message left behind (the sweeper's).
        """
        cutoff = timezone.now() - older_than
        stale = WebhookEvent.objects.filter(
            provider=self.provider.name, status__in=(Status.PENDING, Status.FAILED), received_at__lt=cutoff
        )
        return list(stale.order_by("pk").values_list("pk", flat=True))

    def apply_waiting(self) -> list[WebhookEvent]:
        """Apply again, oldest first, every event of this provider that waits; returns their rows."""
        waiting = WebhookEvent.objects.filter(provider=self.provider.name, status=Status.WAITING)
        return [self.apply_stored(pk) for pk in waiting.order_by("created", "pk").values_list("pk", flat=True)]

    # The apply step

    def _apply(self, event: ProviderEvent, resolved: ResolvedCustomer | None = None) -> ApplyContext:
        """Lock the event's customer and run its handler. Must run inside a transaction."""
        # The lock and the handler's first lookups in one round trip where the database can:
        # read after the lock is granted, they see what its previous holder committed.
        if event.customer_key:
            prefetch([(LOCKED_CUSTOMER, (event.provider, event.customer_key)), *self.applier.reads(event)])
        try:
            customer, new_link = self.lock_customer(event, resolved)
            context = ApplyContext(event=event, customer=customer, new_link=new_link)
            if resolved is not None:
                context.note(f"read customer {event.customer_key} at the provider")
            self.applier.apply(context)
            if new_link is not None:
                # Inserted after the handler, which may have recorded the event on it: one
                # write, with nothing to wait for (no read of it, no update by its key).
                insert_row(new_link, defer=True)
        finally:
            forget_prefetched()
        if self.side_effects is not None:
            # The outbox: effects (billing emails) are recorded in this transaction, so they
            # exist exactly when the event was applied, and are delivered after the commit.
            for signal, kwargs in context.pending_signals:
                self.side_effects(signal, kwargs)
        return context

    def lock_customer(
        self, event: ProviderEvent, resolved: ResolvedCustomer | None = None
    ) -> tuple[Customer | None, ExternalCustomer | None]:
        """
        The local customer of the event, locked until the transaction ends; None for events
        about no customer, or about a provider customer that is not (or no longer) ours. With
        it, when the provider customer is seen for the first time, the link to make (not
        inserted yet: the caller inserts it in this transaction).

        A provider customer seen for the first time is resolved by the local ID our metadata
        carries: from the event, or else read once from the provider (``resolved``; the first
        call raises CustomerLookupNeeded so the read happens outside the transaction). Only a
        customer genuinely made outside the app (no metadata of ours) becomes a new, ownerless
        local customer, and only for an event that records something on it.
        """
        if not event.customer_key:
            return None, None
        # One query finds and locks the customer (only its row where the database can say so).
        customer = LOCKED_CUSTOMER.first(event.provider, event.customer_key)
        if customer is not None:
            return customer, None
        # No lock was held when the handler's lookups were read with it: read them again
        # under the lock taken below (another delivery may have been applying this customer's
        # events meanwhile).
        forget_prefetched()
        if event.kind == "customer" and event.action == "deleted":
            return None, None
        hint = local_pk(event.data.get("local_id") if event.kind == "customer" else event.data.get("customer_local_id"))
        if hint is None:
            if resolved is None:
                raise CustomerLookupNeeded(event)
            if resolved.deleted:
                return None, None
            hint = resolved.local_id
        if hint is None and event.kind not in OWNERLESS_KINDS:
            return None, None
        if hint is None:
            return Customer.objects.select_for_update().get(pk=self._link_ownerless(event)), None
        return self._link_customer(event, hint)

    def _link_customer(self, event: ProviderEvent, hint: int) -> tuple[Customer, ExternalCustomer | None]:
        """
        Link the provider's customer to the local one ``hint`` names, locked first: two
        deliveries of its first events wait for each other there, and the second finds the
        link the first made. A local customer linked to another provider customer already
        keeps that link: the event is applied to it without linking this one. Returns the
        customer and the new link, for the caller to insert in this transaction.
        """
        # The lock, and its link read after it, in one round trip where the database can.
        prefetch([(LOCKED_CUSTOMER_PK, (hint,)), (LINK_OF_CUSTOMER, (hint, event.provider))])
        customer = LOCKED_CUSTOMER_PK.first(hint)
        if customer is None:
            raise WebhookHandlingError(
                f"The provider's customer {event.customer_key} names local customer {hint}, which does not exist.",
                provider=event.provider,
                code="unknown_customer",
            )
        if LINK_OF_CUSTOMER.first(customer.pk, event.provider) is not None:
            return customer, None
        return customer, ExternalCustomer(customer=customer, provider=event.provider, external_id=event.customer_key)

    def _link_ownerless(self, event: ProviderEvent) -> int:
        """
        Link the provider's customer, created at the provider outside the app (the dashboard,
        a payment link), to a new, ownerless local customer; or to the one another process
        linked it to first.
        """
        try:
            with transaction.atomic():
                customer = Customer.objects.create()
                ExternalCustomer.objects.create(
                    customer=customer, provider=event.provider, external_id=event.customer_key
                )
                return customer.pk
        except IntegrityError:
            return ExternalCustomer.objects.get(provider=event.provider, external_id=event.customer_key).customer_id

    def look_up_customer(self, event: ProviderEvent) -> ResolvedCustomer:
        """Read the event's customer at the provider (one API call) to learn whose it is."""
        self.provider_reads += 1
        remote = self.provider.retrieve_customer(event.customer_key)
        if remote is None:
            return ResolvedCustomer(local_id=None, deleted=True)
        return ResolvedCustomer(local_id=local_pk(remote.local_id), deleted=False)

    def _send(self, context: ApplyContext, row: WebhookEvent) -> None:
        """Send the handlers' signals, then webhook_event_processed, after the commit."""
        for signal, kwargs in context.pending_signals:
            for receiver, response in signal.send_robust(sender=type(self), **kwargs):
                if isinstance(response, Exception):
                    logger.error("A receiver of %s failed for event %s: %s", receiver, row.event_id, loggable(response))
        signals.webhook_event_processed.send_robust(sender=type(self), event=row)

    # Maintenance

    def purge(self, older_than_days: int) -> int:
        """Delete processed, ignored and rejected events received more than N days ago."""
        cutoff = timezone.now() - datetime.timedelta(days=older_than_days)
        deleted, _ = WebhookEvent.objects.filter(
            provider=self.provider.name, status__in=FINAL_STATUSES, received_at__lt=cutoff
        ).delete()
        return deleted
