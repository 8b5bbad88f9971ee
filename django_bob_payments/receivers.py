"""Receivers the app connects to Django's signals in ``AppConfig.ready()``."""

from __future__ import annotations

from typing import Any

from django_bob_payments.interactors import get_payment_interactor


def custom_user_post_save(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    """Hand each newly created user to the interactor's ``post_user_created``, once."""
    # raw is True while fixtures load: the fixture carries its own customers.
    if created and not raw:
        get_payment_interactor().post_user_created(instance)
