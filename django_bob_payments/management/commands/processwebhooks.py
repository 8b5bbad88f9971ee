"""
``python manage.py processwebhooks``: apply stored webhook events again (the failed ones, or
those named), and purge old processed events.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_bob_payments.interactors import get_payment_interactor
from django_bob_payments.models import WebhookEvent


class Command(BaseCommand):
    help = "Replay failed (or the given) webhook events, oldest first; optionally purge old processed ones."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("event_ids", nargs="*", help="Provider event IDs (evt_...) to apply; default: all failed.")
        parser.add_argument(
            "--include-pending", action="store_true", help="Also apply events stored but never applied."
        )
        parser.add_argument(
            "--purge-days",
            type=int,
            metavar="N",
            help="Delete processed, ignored and rejected events received more than N days ago.",
        )

    def handle(
        self, *args: Any, event_ids: list[str], include_pending: bool, purge_days: int | None, **options: Any
    ) -> None:
        interactor = get_payment_interactor()
        verbosity = options["verbosity"]
        if purge_days is not None:
            if purge_days < 0:
                raise CommandError("--purge-days must be 0 or more.")
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
            statuses = [WebhookEvent.Status.FAILED] + ([WebhookEvent.Status.PENDING] if include_pending else [])
            events = WebhookEvent.objects.filter(status__in=statuses)
        failed = 0
        for event in events.order_by("created", "pk").only("pk", "provider", "event_id").iterator():
            result = interactor.process_webhook_event(event)
            if result.status == WebhookEvent.Status.FAILED:
                failed += 1
                self.stderr.write(f"{result.event_id} ({result.type}) failed: {result.last_error}")
            elif verbosity:
                self.stdout.write(f"{result.event_id} ({result.type}): {result.status}")
        if failed:
            raise CommandError(f"{failed} event(s) failed again.")
