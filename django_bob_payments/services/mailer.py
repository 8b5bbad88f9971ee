"""Notification and invoice emails."""

from __future__ import annotations

from typing import Any

from django_bob_payments.models import Customer


class MailerService:
    """
    Sends the app's emails (receipts, failed payments, cancellations, trial endings).

    The messages, their templates and the exactly-once record are not built yet.
    """

    def send(self, kind: str, customer: Customer, context: dict[str, Any]) -> None:
        raise NotImplementedError("Billing emails are not available yet.")
