"""This installation's identity: the namespace of every idempotency key it sends."""

from __future__ import annotations

import secrets

from django.db import IntegrityError, models, transaction
from django.utils.translation import gettext_lazy as _


def new_site_key() -> str:
    return secrets.token_hex(8)


class PaymentsSite(models.Model):
    """
    One row, made on first use: a random key that tells this installation (this database)
    from any other using the same provider account. Idempotency keys start with it, so two
    environments sharing a Stripe test account, or one database reset and reused, never
    replay each other's requests.
    """

    key = models.CharField(_("key"), max_length=32, unique=True, default=new_site_key, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("payments site")
        verbose_name_plural = _("payments site")

    def __str__(self) -> str:
        return self.key

    @classmethod
    def current_key(cls) -> str:
        """The installation's key, made (once, whatever the concurrency) on first use."""
        key = cls.objects.filter(pk=1).values_list("key", flat=True).first()
        if key is not None:
            return key
        try:
            with transaction.atomic():
                return cls.objects.create(pk=1).key
        except IntegrityError:
            return cls.objects.values_list("key", flat=True).get(pk=1)
