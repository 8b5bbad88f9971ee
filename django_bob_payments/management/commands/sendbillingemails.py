"""``python manage.py sendbillingemails``: send again the billing emails whose sending failed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_bob_payments.interactors import get_payment_interactor


class Command(BaseCommand):
    help = "Send the billing emails that failed (and those pending for longer than --minutes), once each."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--minutes",
            type=int,
            default=10,
            help="Also send messages still pending after this many minutes (their process died). Default 10.",
        )

    def handle(self, *args: Any, minutes: int, **options: Any) -> None:
        if minutes < 1:
            raise CommandError("--minutes must be 1 or more: a message pending for less may still be on its way.")
        sent, failed = get_payment_interactor().mailer.retry(minutes)
        if options["verbosity"]:
            self.stdout.write(f"Sent {sent} email(s); {failed} failed again.")
        if failed:
            raise CommandError(f"{failed} email(s) failed again; see BillingEmail.last_error.")
