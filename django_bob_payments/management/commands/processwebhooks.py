"""
``python manage.py processwebhooks``: apply stored webhook events again (the failed and
waiting ones, or those named), hand out what queued workers left (``--sweep``), fetch what
was never delivered (``--backfill``), summarize the inbox, and purge old processed events.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count, Min
from django.utils import timezone

from django_bob_payments.exceptions import BobPaymentsError
from django_bob_payments.interactors import get_payment_interactor
from django_bob_payments.models import WebhookEvent

Status = WebhookEvent.Status

AGE_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_age(text: str | None) -> datetime.timedelta:
    """``3d``, ``12h`` or ``90m`` as a duration; a CommandError for anything else or beyond 30 days."""
    if not text:
        raise CommandError("--backfill needs --since, such as --since 3d.")
    number, unit = text[:-1], text[-1:].lower()
    if unit not in AGE_UNITS or not number.isascii() or not number.isdigit():
        raise CommandError(f"--since {text!r}: write a number of days, hours or minutes, such as 3d, 12h or 90m.")
    age = datetime.timedelta(**{AGE_UNITS[unit]: int(number)})
    if age > datetime.timedelta(days=30):
        raise CommandError(f"--since {text!r}: Stripe keeps events for 30 days; ask for 30d or less.")
    return age


class Command(BaseCommand):
    help = (
        "Apply failed and waiting (or the given) webhook events again, oldest first; "
        "summarize the inbox; optionally purge old processed ones."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "event_ids", nargs="*", help="Provider event IDs (evt_...) to apply; default: all failed and waiting."
        )
        parser.add_argument(
            "--include-pending", action="store_true", help="Also apply events stored but never applied."
        )
        parser.add_argument(
            "--sweep",
            action="store_true",
            help="Hand the events still pending or failed after --older-than minutes to the workers of "
            "WEBHOOK_PROCESSING again (inline: apply them here). Run it every few minutes.",
        )
        parser.add_argument(
            "--older-than",
            type=float,
            metavar="MINUTES",
            help="With --sweep: the age of the events to hand out again (default: WEBHOOK_SWEEP_AFTER).",
        )
        parser.add_argument(
            "--backfill",
            action="store_true",
            help="List the provider's events since --since that were not delivered, and feed those never "
            "stored through the inbox (after an outage). Stripe keeps 30 days of events.",
        )
        parser.add_argument(
            "--since",
            metavar="AGE",
            help="With --backfill: how far back, as 3d, 12h or 90m (at most 30d).",
        )
        parser.add_argument(
            "--all-events",
            action="store_true",
            help="With --backfill: every event since --since, not only the undelivered ones.",
        )
        parser.add_argument(
            "--summary",
            action="store_true",
            help="Only print the number of events by status and the oldest waiting and failed ones.",
        )
        parser.add_argument(
            "--purge-days",
            type=int,
            metavar="N",
            help="Delete processed, ignored and rejected events received more than N days ago.",
        )

    def handle(
        self,
        *args: Any,
        event_ids: list[str],
        include_pending: bool,
        summary: bool,
        purge_days: int | None,
        sweep: bool = False,
        older_than: float | None = None,
        backfill: bool = False,
        since: str | None = None,
        all_events: bool = False,
        **options: Any,
    ) -> None:
        if summary:
            self.summarize()
            return
        interactor = get_payment_interactor()
        verbosity = options["verbosity"]
        if older_than is not None and not sweep:
            raise CommandError("--older-than goes with --sweep.")
        if (since is not None or all_events) and not backfill:
            raise CommandError("--since and --all-events go with --backfill.")
        if backfill:
            self.backfill(parse_age(since), undelivered_only=not all_events, verbosity=verbosity)
            return
        if sweep:
            if older_than is not None and older_than < 0:
                raise CommandError("--older-than must be 0 or more minutes.")
            age = None if older_than is None else datetime.timedelta(minutes=older_than)
            try:
                count = interactor.sweep_webhook_events(age)
            except ImproperlyConfigured as err:
                raise CommandError(str(err)) from err
            if verbosity:
                self.stdout.write(f"Swept {count} event(s) still pending or failed.")
            return
        if purge_days is not None:
            if purge_days < 1:
                raise CommandError("--purge-days must be 1 or more: events of today may still be redelivered.")
            purged = sum(
                interactor.get_webhook_inbox(provider).purge(purge_days)
                for provider in WebhookEvent.objects.values_list("provider", flat=True).distinct()
            )
            if verbosity:
                self.stdout.write(f"Purged {purged} event(s) older than {purge_days} day(s).")
            if not event_ids and not include_pending:
                return
        if event_ids:
            events = WebhookEvent.objects.filter(event_id__in=event_ids)
            missing = set(event_ids) - set(events.values_list("event_id", flat=True))
            if missing:
                raise CommandError(f"No stored event with the ID(s): {', '.join(sorted(missing))}.")
        else:
            statuses = [Status.FAILED, Status.WAITING] + ([Status.PENDING] if include_pending else [])
            events = WebhookEvent.objects.filter(status__in=statuses)
        failed = 0
        for event in events.order_by("created", "pk").only("pk", "provider", "event_id").iterator():
            result = interactor.process_webhook_event(event)
            if result.status in (Status.FAILED, Status.WAITING):
                failed += result.status == Status.FAILED
                self.stderr.write(f"{result.event_id} ({result.type}) {result.status}: {result.last_error}")
            elif verbosity:
                self.stdout.write(f"{result.event_id} ({result.type}): {result.status}")
        if failed:
            raise CommandError(f"{failed} event(s) failed again.")

    def backfill(self, age: datetime.timedelta, *, undelivered_only: bool, verbosity: int) -> None:
        interactor = get_payment_interactor()
        try:
            report = interactor.backfill_webhook_events(timezone.now() - age, undelivered_only=undelivered_only)
        except ImproperlyConfigured as err:
            raise CommandError(str(err)) from err
        except BobPaymentsError as err:
            raise CommandError(f"The provider's events could not be listed: {err}") from err
        if verbosity:
            self.stdout.write(
                f"Listed {report.listed} event(s): {report.known} stored already, {report.fed} fed to the inbox."
            )
        for event in report.failed:
            self.stderr.write(f"{event.event_id} ({event.type}) {event.status}: {event.last_error}")
        for refusal in report.refused:
            self.stderr.write(f"refused {refusal}")
        if report.failed or report.refused:
            raise CommandError(f"{len(report.failed) + len(report.refused)} backfilled event(s) could not be applied.")

    def summarize(self) -> None:
        """The inbox at a glance, for monitoring: counts by status, the oldest unapplied events."""
        counts = dict(WebhookEvent.objects.values_list("status").annotate(Count("pk")).order_by())
        for status in Status:
            self.stdout.write(f"{status.value}: {counts.get(status.value, 0)}")
        now = timezone.now()
        for status in (Status.WAITING, Status.FAILED, Status.PENDING):
            oldest = WebhookEvent.objects.filter(status=status).aggregate(Min("received_at"))["received_at__min"]
            if oldest is not None:
                minutes = int((now - oldest).total_seconds() // 60)
                self.stdout.write(f"oldest {status.value}: received {minutes} minute(s) ago")
        reasons = (
            WebhookEvent.objects.filter(status=Status.WAITING)
            .values_list("type")
            .annotate(Count("pk"))
            .order_by("-pk__count")[:10]
        )
        for event_type, count in reasons:
            self.stdout.write(f"waiting {event_type}: {count}")
