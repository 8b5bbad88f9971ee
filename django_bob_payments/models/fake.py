"""
The fake provider's objects: its whole state, kept in the database.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class FakeProviderObject(models.Model):
    """An object "at" the fake provider, which keeps its state in the database."""

    kind = models.CharField(_("kind"), max_length=32)
    external_id = models.CharField(_("external ID"), max_length=255, unique=True)
    data = models.JSONField(_("data"), default=dict)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("fake provider object")
        verbose_name_plural = _("fake provider objects")
        ordering = ["pk"]
        indexes = [models.Index(fields=["kind"], name="bob_pay_fake_kind")]

    def __str__(self) -> str:
        return self.external_id
