"""
The webhook inbox and the billing emails: what the app received from providers and what it
sends because of it.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from django_bob_payments.models.base import Provider
from django_bob_payments.models.customers import Customer


class WebhookEvent(models.Model):
    """
    The durable inbox of provider events: stored when verified, then applied once.

    ``body`` is the request body exactly as it was received and signed (the audit record;
    never re-encoded, so no database JSON type limits what it may hold). ``customer_key``
    is the provider's customer ID the event concerns (empty when none); events that share
    it are applied one at a time.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PROCESSED = "processed", _("Processed")
        FAILED = "failed", _("Failed")
        IGNORED = "ignored", _("Ignored (no handler)")
        WAITING = "waiting", _("Waiting (cannot be applied yet)")
        REJECTED = "rejected", _("Rejected (the other mode)")

    provider = models.CharField(_("provider"), max_length=32, choices=Provider.choices)
    event_id = models.CharField(_("event ID"), max_length=255)
    type = models.CharField(_("type"), max_length=128)
    api_version = models.CharField(_("API version"), max_length=64, blank=True)
    livemode = models.BooleanField(_("live mode"), default=False)
    created = models.BigIntegerField(_("created at the provider (Unix time)"))
    customer_key = models.CharField(_("customer"), max_length=255, blank=True, db_index=True)
    body = models.BinaryField(_("body as received"))
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    outcome = models.TextField(_("outcome"), blank=True, help_text=_("What applying the event did."))
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ["-received_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="bob_payments_webhookevent_unique_event"),
        ]
        indexes = [models.Index(fields=["status", "received_at"], name="bob_pay_event_status")]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"

    @property
    def payload(self) -> dict[str, Any]:
        """The body, parsed."""
        return json.loads(bytes(self.body))


class BillingEmail(models.Model):
    """
    One email the app sends, recorded before it is sent, so that it is sent once: ``key``
    names the message kind and the object it is about (``payment_receipt:in_123``).
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    key = models.CharField(_("key"), max_length=255, unique=True)
    kind = models.CharField(_("kind"), max_length=64)
    customer = models.ForeignKey(
        Customer, on_delete=models.SET_NULL, null=True, blank=True, related_name="emails", verbose_name=_("customer")
    )
    from_email = models.CharField(_("from"), max_length=255)
    recipients = models.JSONField(_("recipients"), default=list)
    subject = models.CharField(_("subject"), max_length=255)
    body_text = models.TextField(_("text body"))
    body_html = models.TextField(_("HTML body"), blank=True)
    language = models.CharField(_("language"), max_length=16, blank=True)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("billing email")
        verbose_name_plural = _("billing emails")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "created_at"], name="bob_pay_email_status")]

    def __str__(self) -> str:
        return f"{self.kind} to {', '.join(self.recipients)} ({self.status})"
