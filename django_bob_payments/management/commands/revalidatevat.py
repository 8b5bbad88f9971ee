"""
``python manage.py revalidatevat``: check again the VAT numbers VIES could not confirm, and
those confirmed more than ``VAT_REVALIDATE_DAYS`` ago; apply the tax decision again.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q
from django.utils import timezone

from django_bob_payments.conf import bob_settings
from django_bob_payments.interactors import get_payment_interactor
from django_bob_payments.models import BillingInformation


class Command(BaseCommand):
    help = "Re-check unverified and stale VAT numbers at VIES and re-apply the reverse-charge decision."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            help="Re-check valid numbers confirmed more than this many days ago "
            "(default: BOB_PAYMENTS['VAT_REVALIDATE_DAYS']).",
        )

    def handle(self, *args: Any, days: int | None = None, **options: Any) -> None:
        days = bob_settings.VAT_REVALIDATE_DAYS if days is None else days
        if days < 0:
            raise CommandError("--days must be 0 or more.")
        cutoff = timezone.now() - datetime.timedelta(days=days)
        due = (
            BillingInformation.objects.exclude(vat_number="")
            .filter(
                Q(vat_status=BillingInformation.VatStatus.UNVERIFIED)
                | Q(vat_status=BillingInformation.VatStatus.VALID, vat_verified_at__lt=cutoff)
                | Q(vat_status=BillingInformation.VatStatus.VALID, vat_verified_at__isnull=True)
            )
            .order_by("pk")
        )
        interactor = get_payment_interactor()
        counts: dict[str, int] = {}
        for billing in due.iterator():
            outcome = interactor.revalidate_vat(billing)
            counts[outcome] = counts.get(outcome, 0) + 1
        if options["verbosity"]:
            summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items())) or "nothing to do"
            self.stdout.write(f"VAT numbers re-checked: {summary}.")
