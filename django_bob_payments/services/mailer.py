"""
Billing emails, each sent exactly once.

A message is keyed by its kind and the object it is about (``payment_receipt:in_123``) and
recorded in ``BillingEmail`` under that unique key before it is sent; a second attempt to
record the same key (a redelivered webhook, a replay, another worker) finds it and sends
nothing. Sending happens outside any transaction, after the record is committed; a failed
send is recorded as failed and ``sendbillingemails`` sends it again, never touching those
that went out.

Templates live in ``templates/django_bob_payments/email/``: ``<kind>_subject.txt``,
``<kind>.txt`` and ``<kind>.html``; override them the normal Django way.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone, translation

from django_bob_payments.conf import bob_settings
from django_bob_payments.models import BillingEmail, Customer
from django_bob_payments.prepared import send_held_writes
from django_bob_payments.reports import hide_locals, loggable
from django_bob_payments.services.customers import CustomerService

logger = logging.getLogger("django_bob_payments.emails")

KINDS = ("payment_receipt", "payment_failed", "subscription_canceled", "trial_ending", "vat_invalid")


@hide_locals
class MailerService:
    """Renders, records and sends the app's emails."""

    def __init__(self, customers: CustomerService | None = None) -> None:
        self.customers = customers or CustomerService()

    def recipients(self, customer: Customer) -> list[str]:
        """The billing email, else the owning user's email."""
        email = self.customers.contact_email(customer)
        return [email] if email else []

    def language(self, customer: Customer) -> str:
        return customer.preferred_locale or settings.LANGUAGE_CODE

    def enabled(self, kind: str) -> bool:
        return bool((bob_settings.EMAILS_ENABLED or {}).get(kind, False))

    def send(self, kind: str, key: str, customer: Customer, context: dict[str, Any]) -> BillingEmail | None:
        """
        Record the message ``kind`` about ``key`` and send it, once. Returns the record, or
        None when the kind is switched off, the customer has no address, or it was recorded
        before (and so is sent, or will be by ``sendbillingemails``).
        """
        if kind not in KINDS:
            raise ValueError(f"Unknown email kind {kind!r}; kinds: {', '.join(KINDS)}.")
        if not self.enabled(kind):
            return None
        recipients = self.recipients(customer)
        if not recipients:
            logger.warning("No address to send %s to customer %s.", kind, customer.pk)
            return None
        language = self.language(customer)
        context = {
            **context,
            "customer": customer,
            "billing": getattr(customer, "billing_information", None),
            "seller_vat_number": bob_settings.SELLER_VAT_NUMBER,
            "billing_page_url": bob_settings.BILLING_PAGE_URL,
        }
        with translation.override(language):
            subject = " ".join(render_to_string(f"django_bob_payments/email/{kind}_subject.txt", context).split())
            body_text = render_to_string(f"django_bob_payments/email/{kind}.txt", context)
            body_html = render_to_string(f"django_bob_payments/email/{kind}.html", context)
        # A write held back in this transaction goes first: its error is not this one's.
        send_held_writes()
        try:
            with transaction.atomic():
                message = BillingEmail.objects.create(
                    key=f"{kind}:{key}"[:255],
                    kind=kind,
                    customer=customer,
                    from_email=bob_settings.EMAIL_FROM or settings.DEFAULT_FROM_EMAIL,
                    recipients=recipients,
                    subject=subject[:255],
                    body_text=body_text,
                    body_html=body_html,
                    language=language,
                )
        except IntegrityError:
            return None
        if transaction.get_connection().in_atomic_block:
            # Inside someone's transaction: send once it commits, so a rollback sends nothing.
            transaction.on_commit(lambda: self.deliver(message))
        else:
            self.deliver(message)
        return message

    def deliver(self, message: BillingEmail) -> bool:
        """Send a recorded message and record the outcome (and its attempt). Returns whether it went out."""
        email = EmailMultiAlternatives(
            subject=message.subject,
            body=message.body_text,
            from_email=message.from_email,
            to=message.recipients,
            bcc=list(bob_settings.EMAIL_BCC or []),
        )
        if message.body_html:
            email.attach_alternative(message.body_html, "text/html")
        message.attempts += 1
        try:
            self._send_within(email, bob_settings.EMAIL_SEND_TIMEOUT)
        except Exception as err:
            message.status = BillingEmail.Status.FAILED
            message.last_error = f"{type(err).__name__}: {err}"[:2000]
            message.save(update_fields=["status", "attempts", "last_error"])
            # The error's text may quote an address: it is recorded, not logged.
            logger.warning("Sending %s failed: %s", message.key, loggable(err))
            return False
        message.status = BillingEmail.Status.SENT
        message.sent_at = timezone.now()
        message.last_error = ""
        message.save(update_fields=["status", "attempts", "last_error", "sent_at"])
        return True

    @staticmethod
    def _send_within(email: EmailMultiAlternatives, timeout: float | None) -> None:
        """
        Send through the configured backend, giving up waiting after ``timeout`` seconds
        (TimeoutError), whatever the backend: the send runs in a thread of its own, which
        touches no database. A send that answers after the timeout may still go out; the
        message is then recorded failed and may be sent again by ``sendbillingemails``.
        """
        if not timeout:
            email.send()
            return
        outcome: dict[str, BaseException | None] = {}

        def send() -> None:
            try:
                email.send()
            except BaseException as err:
                outcome["error"] = err
            else:
                outcome["error"] = None

        worker = threading.Thread(target=send, name="bob-payments-email", daemon=True)
        worker.start()
        worker.join(timeout)
        if "error" not in outcome:
            raise TimeoutError(f"the mail server did not answer within {timeout:g} s")
        if outcome["error"] is not None:
            raise outcome["error"]

    def retry(self, older_than_minutes: int = 10) -> tuple[int, int]:
        """
        Send again the failed messages, and the pending ones older than the given minutes
        (their process died before sending). Each is claimed first with a conditional update
        of its attempt count, so two runs never send one twice and no transaction stays
        open while the mail server is talked to. Returns (sent, failed).
        """
        cutoff = timezone.now() - timezone.timedelta(minutes=older_than_minutes)
        due = BillingEmail.objects.filter(
            Q(status=BillingEmail.Status.FAILED) | Q(status=BillingEmail.Status.PENDING, created_at__lt=cutoff)
        )
        sent = failed = 0
        for message in due.order_by("pk").iterator():
            claimed = (
                BillingEmail.objects.filter(pk=message.pk, attempts=message.attempts)
                .exclude(status=BillingEmail.Status.SENT)
                .update(attempts=F("attempts") + 1)
            )
            if not claimed:
                continue
            # The claim counted this attempt; deliver() records the same count.
            if self.deliver(message):
                sent += 1
            else:
                failed += 1
        return sent, failed
