"""``python manage.py expirecheckouts``: close the checkout sessions that timed-out checkouts left open."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_bob_payments.exceptions import ProviderError
from django_bob_payments.interactors import get_payment_interactor


class Command(BaseCommand):
    help = (
        "Find the checkouts the provider did not answer (their payment attempt is still 'created' after "
        "--minutes), expire at the provider any session made for them, and mark them expired or failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--minutes",
            type=int,
            default=10,
            help="Only attempts older than this many minutes (a checkout may still be on its way). Default 10.",
        )

    def handle(self, *args: Any, minutes: int, **options: Any) -> None:
        if minutes < 1:
            raise CommandError("--minutes must be 1 or more: a younger checkout may still be on its way.")
        try:
            expired, failed = get_payment_interactor().expire_abandoned_checkouts(minutes)
        except ProviderError as err:
            raise CommandError(
                f"The payment provider failed: {err.args[0]} (code {err.code}, request {err.request_id or '-'})"
            ) from err
        if options["verbosity"]:
            self.stdout.write(f"Expired {expired} checkout session(s); {failed} attempt(s) had none and are failed.")
