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
        from django.db.models.signals import post_save

        from django_bob_payments import checks as bob_checks
        from django_bob_payments.receivers import custom_user_post_save

        post_save.connect(
            custom_user_post_save,
            sender=settings.AUTH_USER_MODEL,
            dispatch_uid="bob_payments_custom_user_post_save",
        )
        checks.register(bob_checks.check_settings)
