"""
``python manage.py synchronizepayments``: push the local catalog and customers to the
payment provider, which mirrors them.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_bob_payments.exceptions import BobPaymentsImproperlyConfigured, ProviderAuthenticationError
from django_bob_payments.interactors import get_payment_interactor
from django_bob_payments.services.sync import KINDS, SyncFailure, SyncObserver, SyncReport

COLUMNS = ("created", "updated", "archived", "unchanged", "failed")


class CommandObserver(SyncObserver):
    """Prints the plan to stdout and progress and failures to stderr, by verbosity."""

    def __init__(self, command: BaseCommand, verbosity: int, dry_run: bool) -> None:
        self.command = command
        self.verbosity = verbosity
        self.dry_run = dry_run
        self._last_percent: dict[str, int] = {}

    def planned(self, kind: str, action: str, description: str) -> None:
        if self.dry_run or self.verbosity >= 2:
            prefix = "would " if self.dry_run else ""
            self.command.stdout.write(f"{prefix}{action} {kind[:-1]} {description}")

    def progress(self, kind: str, done: int, total: int) -> None:
        if self.verbosity < 1 or total == 0:
            return
        percent = done * 100 // total
        # Every page at verbosity 2 and more, every tenth at 1.
        if self.verbosity >= 2 or percent // 10 > self._last_percent.get(kind, -1) // 10:
            self._last_percent[kind] = percent
            self.command.stderr.write(f"{kind}: {done}/{total} ({percent}%)")

    def failed(self, failure: SyncFailure) -> None:
        error = failure.error
        details = ", ".join(
            f"{name} {value}"
            for name, value in (("code", error.code), ("status", error.http_status), ("request", error.request_id))
            if value
        )
        what = f"{failure.kind[:-1]} {failure.local_id}" if failure.local_id else f"listing {failure.kind}"
        self.command.stderr.write(self.command.style.ERROR(f"{what} failed: {error.args[0]} ({details})"))


class Command(BaseCommand):
    help = (
        "Push local products, prices and customers to the payment provider: create what is "
        "missing, update what differs, archive what was removed locally."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List what would be created, updated and archived, and make no write call.",
        )
        parser.add_argument(
            "--only",
            action="append",
            choices=KINDS,
            help="Sync only this kind; repeat for several. Default: all, in the order products, prices, customers.",
        )

    def handle(self, *args: Any, dry_run: bool = False, only: list[str] | None = None, **options: Any) -> None:
        verbosity = options["verbosity"]
        kinds = tuple(only) if only else KINDS
        interactor = get_payment_interactor()
        observer = CommandObserver(self, verbosity, dry_run)
        try:
            report = interactor.synchronize(kinds=kinds, dry_run=dry_run, observer=observer)
        except ProviderAuthenticationError as err:
            raise CommandError(
                f'The payment provider refused our credentials: {err.args[0]} Check BOB_PAYMENTS["STRIPE_SECRET_KEY"].'
            ) from err
        except BobPaymentsImproperlyConfigured as err:
            raise CommandError(str(err)) from err
        if verbosity >= 1:
            self.stdout.write(self.render_summary(report, kinds, dry_run))
        if not report.ok:
            raise CommandError(f"{len(report.failures)} object(s) could not be synced; see the errors above.")

    def render_summary(self, report: SyncReport, kinds: tuple[str, ...], dry_run: bool) -> str:
        """The counts per kind, as an aligned table."""
        rows = [("kind", *COLUMNS)]
        for kind in KINDS:
            if kind in kinds:
                counts = report.kinds[kind]
                rows.append((kind, *(str(getattr(counts, column)) for column in COLUMNS)))
        widths = [max(len(row[index]) for row in rows) for index in range(len(rows[0]))]
        lines = [
            "  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row))
            for row in rows
        ]
        title = "Dry run: nothing was written." if dry_run else "Synchronized."
        orphaned = report.kinds["customers"].orphaned
        footer = (
            [f"{orphaned} customer(s) at the provider have no local row any more; they were left as they are."]
            if orphaned
            else []
        )
        return "\n".join([title, *lines, *footer])
