from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BobPaymentsConfig(AppConfig):
    """Connects the user signal and registers the system checks."""

    name = "django_bob_payments"
    label = "bob_payments"
    verbose_name = _("Payments")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings
        from django.core import checks
        from django.db.models.signals import post_save, pre_delete

        from django_bob_payments import checks as bob_checks
        from django_bob_payments.models import Customer, Pricing, Product
        from django_bob_payments.receivers import (
            check_collected_billing,
            custom_user_post_save,
            release_applied_schedule,
            remove_remote_objects,
        )

        post_save.connect(
            custom_user_post_save,
            sender=settings.AUTH_USER_MODEL,
            dispatch_uid="bob_payments_custom_user_post_save",
        )
        for model in (Customer, Product, Pricing):
            pre_delete.connect(
                remove_remote_objects, sender=model, dispatch_uid=f"bob_payments_remove_remote_{model._meta.model_name}"
            )
        from django_bob_payments import signals
        from django_bob_payments.receivers import EMAIL_RECEIVERS

        signals.billing_details_collected.connect(
            check_collected_billing, dispatch_uid="bob_payments_check_collected_billing"
        )
        signals.scheduled_change_applied.connect(
            release_applied_schedule, dispatch_uid="bob_payments_release_applied_schedule"
        )

        for signal_name, receiver in EMAIL_RECEIVERS.items():
            getattr(signals, signal_name).connect(receiver, dispatch_uid=f"bob_payments_{receiver.__name__}")
        checks.register(bob_checks.check_settings)
