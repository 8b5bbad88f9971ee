"""
The webhook inbox: store each verified event, apply it exactly once, in order per customer.

Receiving a new event is one transaction: lock the customer it concerns
(``SELECT ... FOR UPDATE`` on its row, so events of one customer are applied one at a time
by every process and host, while other customers proceed), apply the handlers, then insert
the event as processed. The unique (provider, event ID) constraint makes the insert of a
concurrent duplicate fail, which rolls back that duplicate's work: an event is applied once
however many times, and however concurrently, it is delivered. If a handler fails, its work
is rolled back and the event is stored as failed, in a transaction of its own, and the
provider is answered with an error so that it delivers the event again; a redelivery or
``processwebhooks`` applies a stored event under a lock on its row.

Events for another mode (live / test) or rendered in an API version the handlers do not read
are stored as rejected and never applied; events of a type the app does not handle are
stored as ignored.
"""

from __future__ import annotations

import datetime
import logging
import traceback
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from django_bob_payments import signals
from django_bob_payments.conf import bob_settings
from django_bob_payments.models import Customer, ExternalCustomer, WebhookEvent
from django_bob_payments.providers.base import PaymentProvider, ProviderEvent
from django_bob_payments.services.events import ApplyContext, EventApplier

logger = logging.getLogger("django_bob_payments.webhooks")

Status = WebhookEvent.Status
FINAL_STATUSES = (Status.PROCESSED, Status.IGNORED, Status.REJECTED)


class DuplicateEvent(Exception):
    """Another delivery of the event was stored first: roll back this one's work."""


@dataclass
class ReceiveResult:
    event: WebhookEvent
    duplicate: bool = False

    @property
    def failed(self) -> bool:
        return self.event.status == Status.FAILED


def _error_text(err: BaseException) -> str:
    """The error for the event's record: its type, message and where it was raised."""
    frames = traceback.extract_tb(err.__traceback__)
    where = f" at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
    return f"{type(err).__name__}: {err}{where}"[:2000]


class WebhookInbox:
    """Receives, stores and applies one provider's events."""

    def __init__(self, provider: PaymentProvider, applier: EventApplier | None = None) -> None:
        self.provider = provider
        self.applier = applier or EventApplier()

    # Receiving

    def receive(self, payload: dict[str, Any]) -> ReceiveResult:
        """Store and apply a verified payload. Raises WebhookVerificationError for a non-event."""
        event = self.provider.parse_event(payload)
        rejection = self.rejection(event)
        if rejection or not event.handled:
            status = Status.REJECTED if rejection else Status.IGNORED
            return self._store_unapplied(event, payload, status, rejection or "no handler for this event type")
        # No look-up first: the unique insert that ends the transaction tells a redelivery,
        # and handlers are idempotent, so a duplicate's work is simply rolled back.
        try:
            return ReceiveResult(self._apply_new(event, payload))
        except DuplicateEvent:
            stored = WebhookEvent.objects.get(provider=event.provider, event_id=event.event_id)
            if stored.status not in FINAL_STATUSES:
                # A redelivery of an event that failed before: apply the stored one.
                stored = self.apply_stored(stored.pk)
            return ReceiveResult(stored, duplicate=True)
        except Exception as err:
            row = self._store_failed(event, payload, err)
            return ReceiveResult(row, duplicate=row.status != Status.FAILED)

    def rejection(self, event: ProviderEvent) -> str:
        """Why the event must not be applied here, or ""."""
        expected_live = str(bob_settings.STRIPE_SECRET_KEY or "").startswith(("sk_live_", "rk_live_"))
        if event.provider == "stripe" and event.livemode != expected_live:
            mode = "live" if event.livemode else "test"
            return f"a {mode}-mode event, but this site uses {'live' if expected_live else 'test'} keys"
        expected_version = self.provider.api_version
        if expected_version and event.api_version and event.api_version != expected_version:
            return (
                f"rendered in API version {event.api_version}; the handlers read {expected_version}: "
                "set the endpoint's API version in the provider's dashboard"
            )
        return ""

    def _row(self, event: ProviderEvent, payload: dict[str, Any], **fields: Any) -> WebhookEvent:
        return WebhookEvent(
            provider=event.provider,
            event_id=event.event_id,
            type=event.type[:128],
            api_version=event.api_version[:64],
            livemode=event.livemode,
            created=event.created,
            customer_key=event.customer_key[:255],
            payload=payload,
            **fields,
        )

    def _store_unapplied(self, event: ProviderEvent, payload: dict[str, Any], status: str, why: str) -> ReceiveResult:
        row = self._row(event, payload, status=status, outcome=why, processed_at=timezone.now())
        try:
            with transaction.atomic():
                row.save(force_insert=True)
        except IntegrityError:
            return ReceiveResult(WebhookEvent.objects.get(provider=event.provider, event_id=event.event_id), True)
        return ReceiveResult(row)

    def _apply_new(self, event: ProviderEvent, payload: dict[str, Any]) -> WebhookEvent:
        with transaction.atomic():
            context = self._apply(event)
            row = self._row(
                event,
                payload,
                status=Status.PROCESSED,
                attempts=1,
                outcome="; ".join(context.notes),
                processed_at=timezone.now(),
            )
            try:
                # The last statement of the transaction: a failure rolls back all of it.
                row.save(force_insert=True)
            except IntegrityError as err:
                raise DuplicateEvent from err
        self._send(context, row)
        return row

    def _store_failed(self, event: ProviderEvent, payload: dict[str, Any], err: Exception) -> WebhookEvent:
        logger.warning("Webhook event %s (%s) failed: %s", event.event_id, event.type, _error_text(err))
        row = self._row(event, payload, status=Status.FAILED, attempts=1, last_error=_error_text(err))
        try:
            with transaction.atomic():
                row.save(force_insert=True)
        except IntegrityError:
            # Stored already: by an earlier delivery that failed too (count this attempt), or
            # by a concurrent one that succeeded (its record stands).
            WebhookEvent.objects.filter(provider=event.provider, event_id=event.event_id, status=Status.FAILED).update(
                attempts=F("attempts") + 1, last_error=_error_text(err)
            )
            row = WebhookEvent.objects.get(provider=event.provider, event_id=event.event_id)
            if row.status != Status.FAILED:
                return row
        signals.webhook_event_failed.send_robust(sender=type(self), event=row, error=err)
        return row

    # Applying stored events

    def apply_stored(self, pk: int) -> WebhookEvent:
        """
        Apply a stored event that is pending or failed, under a lock on its row, so that a
        replay and a redelivery cannot both apply it. Returns the row with its new status.
        """
        try:
            with transaction.atomic():
                row = WebhookEvent.objects.select_for_update().get(pk=pk)
                if row.status in FINAL_STATUSES:
                    return row
                event = self.provider.parse_event(row.payload)
                rejection = self.rejection(event)
                if rejection or not event.handled:
                    row.status = Status.REJECTED if rejection else Status.IGNORED
                    row.outcome = rejection or "no handler for this event type"
                    row.processed_at = timezone.now()
                    row.save(update_fields=["status", "outcome", "processed_at"])
                    return row
                context = self._apply(event)
                row.status = Status.PROCESSED
                row.attempts += 1
                row.outcome = "; ".join(context.notes)
                row.last_error = ""
                row.processed_at = timezone.now()
                row.save(update_fields=["status", "attempts", "outcome", "last_error", "processed_at"])
        except Exception as err:
            logger.warning("Webhook event %s failed again: %s", pk, _error_text(err))
            WebhookEvent.objects.filter(pk=pk).update(
                status=Status.FAILED, last_error=_error_text(err), attempts=F("attempts") + 1
            )
            row = WebhookEvent.objects.get(pk=pk)
            signals.webhook_event_failed.send_robust(sender=type(self), event=row, error=err)
            return row
        self._send(context, row)
        return row

    # The apply step

    def _apply(self, event: ProviderEvent) -> ApplyContext:
        """Lock the event's customer and run its handler. Must run inside a transaction."""
        customer = self.lock_customer(event)
        context = ApplyContext(event=event, customer=customer)
        self.applier.apply(context)
        return context

    def lock_customer(self, event: ProviderEvent) -> Customer | None:
        """
        The local customer of the event, locked until the transaction ends; linked, or
        created, when the provider's customer is new to us. None for events about no customer.
        """
        if not event.customer_key:
            return None
        customers = Customer.objects.filter(
            external_ids__provider=event.provider, external_ids__external_id=event.customer_key
        )
        # One query finds and locks the customer; only its row where the database can say so.
        locked = customers.select_for_update(of=("self",) if connection.features.has_select_for_update_of else ())
        customer = locked.first()
        if customer is not None:
            return customer
        if event.kind == "customer" and event.action == "deleted":
            return None
        return Customer.objects.select_for_update().get(pk=self._link_customer(event))

    def _link_customer(self, event: ProviderEvent) -> int:
        """Link the provider's customer to the local one its metadata names, or to a new one."""
        hint = event.data.get("local_id") if event.kind == "customer" else event.data.get("customer_local_id")
        try:
            with transaction.atomic():
                customer = None
                if hint and str(hint).isdigit():
                    customer = Customer.objects.filter(pk=hint).exclude(external_ids__provider=event.provider).first()
                if customer is None:
                    # Created at the provider outside the app (the dashboard, a payment link).
                    customer = Customer.objects.create()
                ExternalCustomer.objects.create(
                    customer=customer, provider=event.provider, external_id=event.customer_key
                )
                return customer.pk
        except IntegrityError:
            # Another process linked it first.
            return ExternalCustomer.objects.get(provider=event.provider, external_id=event.customer_key).customer_id

    def _send(self, context: ApplyContext, row: WebhookEvent) -> None:
        """Send the handlers' signals, then webhook_event_processed, after the commit."""
        for signal, kwargs in context.pending_signals:
            for receiver, response in signal.send_robust(sender=type(self), **kwargs):
                if isinstance(response, Exception):
                    logger.error(
                        "A receiver of %s failed for event %s: %s", receiver, row.event_id, _error_text(response)
                    )
        signals.webhook_event_processed.send_robust(sender=type(self), event=row)

    # Maintenance

    def purge(self, older_than_days: int) -> int:
        """Delete processed, ignored and rejected events received more than N days ago."""
        cutoff = timezone.now() - datetime.timedelta(days=older_than_days)
        deleted, _ = WebhookEvent.objects.filter(
            provider=self.provider.name, status__in=FINAL_STATUSES, received_at__lt=cutoff
        ).delete()
        return deleted
