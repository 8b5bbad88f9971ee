"""
``python manage.py reconcilebilling [--apply]``: compare the local subscriptions and
invoices with the provider's and report the drift; with ``--apply``, repair it through the
webhook inbox.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_bob_payments.exceptions import BobPaymentsError
from django_bob_payments.interactors import get_payment_interactor


class Command(BaseCommand):
    help = (
        "Compare every subscription and invoice at Stripe with the local one (a request per 100) and report what "
        "differs; --apply repairs it through the same handlers as webhooks. Run it nightly."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--apply", action="store_true", help="Repair the drift found.")

    def handle(self, *args: Any, apply: bool, **options: Any) -> None:
        try:
            report = get_payment_interactor().reconcile_billing(apply=apply)
        except BobPaymentsError as err:
            raise CommandError(f"The provider's subscriptions could not be listed: {err}") from err
        for drift in report.drift:
            state = " (repaired)" if drift.repaired else (f" (not repaired: {drift.note})" if apply else "")
            self.stdout.write(f"{drift.external_id}: {'; '.join(drift.differences)}{state}")
        for external_id in report.not_at_provider:
            self.stdout.write(f"{external_id}: recorded locally, not listed by the provider")
        repaired = sum(drift.repaired for drift in report.drift)
        compared = report.compared
        summary = (
            f"Compared {compared['subscription']} subscription(s) and {compared['invoice']} invoice(s): "
            f"{len(report.drift)} differ"
        )
        if apply:
            summary += f", {repaired} repaired"
        self.stdout.write(summary + f", {len(report.not_at_provider)} not at the provider.")
        if apply and repaired < len(report.drift):
            raise CommandError(f"{len(report.drift) - repaired} object(s) could not be repaired.")
