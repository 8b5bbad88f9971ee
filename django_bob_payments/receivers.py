"""Receivers the app connects to Django's signals in ``AppConfig.ready()``."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from django_bob_payments.interactors import get_payment_interactor


def custom_user_post_save(sender: Any, instance: Any, created: bool, raw: bool = False, **kwargs: Any) -> None:
    """Hand each newly created user to the interactor's ``post_user_created``, once."""
    # raw is True while fixtures load: the fixture carries its own customers.
    if created and not raw:
        get_payment_interactor().post_user_created(instance)


def remove_remote_objects(sender: Any, instance: Any, **kwargs: Any) -> None:
    """
    When a customer, product or pricing is deleted, remove its provider objects after the
    transaction commits: customers are deleted, products and prices archived (Stripe keeps
    them for the invoices that name them). The links themselves go with the row.
    """
    links = list(instance.external_ids.values_list("provider", "external_id"))
    if links:
        kind = sender._meta.model_name
        transaction.on_commit(
            lambda: get_payment_interactor().remove_remote_objects(kind, links), using=kwargs.get("using")
        )


def check_collected_billing(sender: Any, billing_information: Any, **kwargs: Any) -> None:
    """A VAT number typed in the provider's checkout: checked at VIES now, after the event's commit."""
    get_payment_interactor().check_collected_billing(billing_information)


def release_applied_schedule(sender: Any, subscription: Any, schedule_external_id: str = "", **kwargs: Any) -> None:
    """A scheduled plan change has happened: release the schedule at the provider (one call)."""
    if schedule_external_id:
        get_payment_interactor().release_subscription_schedule(subscription)


# Billing emails of webhook events are recorded by the inbox itself, in the event's
# transaction (PaymentInteractor.record_side_effects); this one follows revalidatevat.


def email_vat_invalid(sender: Any, billing_information: Any, **kwargs: Any) -> None:
    get_payment_interactor().email_vat_invalid(billing_information)


EMAIL_RECEIVERS = {"vat_number_invalidated": email_vat_invalid}
