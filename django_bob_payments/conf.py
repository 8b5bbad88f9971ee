"""
Settings for django-bob-payments, all read from one dict in the project's settings::

    BOB_PAYMENTS = {
        "STRIPE_SECRET_KEY": env("STRIPE_SECRET_KEY"),
        "STRIPE_WEBHOOK_SECRET": env("STRIPE_WEBHOOK_SECRET"),
        "SELLER_COUNTRY": "FR",
    }

Missing keys take the defaults below. Code reads them through ``bob_settings``::

    from django_bob_payments.conf import bob_settings

    bob_settings.WEBHOOK_TOLERANCE

The object reloads when Django's ``setting_changed`` fires, so ``override_settings`` and
pytest-django's ``settings`` fixture work in tests.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

SETTING_NAME = "BOB_PAYMENTS"

DEFAULTS: dict[str, Any] = {
    # Which provider the app talks to: "stripe", or "fake" (in-database, for development).
    "PROVIDER": "stripe",
    # The fake provider is refused when DEBUG is False, unless this says it is wanted.
    "FAKE_PROVIDER_ALLOWED": False,
    # Stripe API keys. The secret key may be a restricted key (rk_...).
    "STRIPE_SECRET_KEY": "",
    "STRIPE_PUBLISHABLE_KEY": "",
    # The webhook endpoint's signing secret; a list of secrets while one is being rolled.
    "STRIPE_WEBHOOK_SECRET": "",
    # Where the SDK sends requests; point it at a local emulator in tests.
    "STRIPE_API_BASE": "https://api.stripe.com",
    # None means the API version the pinned stripe SDK speaks.
    "STRIPE_API_VERSION": None,
    # Hosts (and their subdomains) that links recorded from provider events may point at;
    # any other link, or one not on https, is stored empty.
    "TRUSTED_URL_HOSTS": ["stripe.com"],
    # Webhook API versions read besides every version of the pinned one's release (endive).
    "STRIPE_ACCEPTED_API_VERSIONS": [],
    # The SDK's StripeClient retries nothing unless told to.
    "STRIPE_MAX_NETWORK_RETRIES": 2,
    # Seconds before a Stripe request gives up.
    "STRIPE_TIMEOUT": 30,
    # Seconds all the provider calls of one API request may take together, retries included:
    # below a worker's timeout (gunicorn's default is 30), so the client gets a JSON 504, not
    # a killed worker. None or 0: no budget (commands have none).
    "STRIPE_REQUEST_BUDGET": 20,
    # Seconds a webhook's signed timestamp may be old before the event is refused.
    "WEBHOOK_TOLERANCE": 300,
    # Hosts a caller's success_url, cancel_url and return_url may point at, and the only
    # hosts a default return URL is built on. None: the hosts of the three URL settings
    # below and the exact names in ALLOWED_HOSTS (never "*" or a ".domain" wildcard).
    "RETURN_URL_HOSTS": None,
    # Where Checkout sends the customer back; {CHECKOUT_SESSION_ID} is filled in by Stripe.
    # A caller may pass its own URLs, accepted only on RETURN_URL_HOSTS.
    "CHECKOUT_SUCCESS_URL": None,
    "CHECKOUT_CANCEL_URL": None,
    # Checkout options: Stripe Tax, collecting tax IDs, promotion codes.
    "CHECKOUT_AUTOMATIC_TAX": False,
    "CHECKOUT_TAX_ID_COLLECTION": True,
    "CHECKOUT_ALLOW_PROMOTION_CODES": False,
    # Where the customer portal sends the customer back.
    "PORTAL_RETURN_URL": None,
    # How a plan change is prorated: create_prorations, always_invoice or none.
    "PRORATION_BEHAVIOR": "create_prorations",
    # Emails: which kinds are sent, from whom, and to whom besides the customer.
    # Kinds: payment_receipt, payment_failed, subscription_canceled, trial_ending, vat_invalid.
    "EMAILS_ENABLED": {
        "payment_receipt": True,
        "payment_failed": True,
        "subscription_canceled": True,
        "trial_ending": True,
        "vat_invalid": True,
    },
    # None means Django's DEFAULT_FROM_EMAIL.
    "EMAIL_FROM": None,
    # Addresses that receive a blind copy of every billing email (an accounting inbox).
    "EMAIL_BCC": [],
    # Seconds a billing email's delivery may hold the request that caused it (a webhook);
    # past it the message is left failed for sendbillingemails. None waits for the backend.
    "EMAIL_SEND_TIMEOUT": 5,
    # A page of your site where customers manage billing, linked from the emails.
    "BILLING_PAGE_URL": None,
    # Where verified webhook events are applied: "inline" (in the request that delivers
    # them), "celery" (a Celery worker; pip install django-bob-payments[celery]) or "tasks"
    # (Django's Tasks framework: django.tasks, or the django-tasks backport before Django 6).
    # Queued, the request only stores the event and answers; the inbox stays the truth.
    "WEBHOOK_PROCESSING": "inline",
    # The queue the webhook tasks are sent to; None: the engine's default queue.
    "WEBHOOK_QUEUE": None,
    # Queued: "request" sends each event's task before the answer; "background" hands it to
    # a thread of the web process that sends tasks in batches, so the answer never waits
    # for the broker (the web server must run Python threads: uWSGI needs enable-threads).
    "WEBHOOK_ENQUEUE": "request",
    # Minutes after which the sweeper hands an event still pending or failed to a worker
    # again (a crashed worker, a lost message).
    "WEBHOOK_SWEEP_AFTER": 10,
    # Largest webhook body accepted, in bytes; a larger one is refused with a 400.
    "WEBHOOK_MAX_BODY_SIZE": 1024 * 1024,
    # The interactor that holds the business logic; a project names its own subclass.
    "PAYMENT_INTERACTOR_CLASS": "django_bob_payments.interactors.PaymentInteractor",
    # The seller's member state (ISO 3166-1 alpha-2), which drives the reverse-charge decision.
    "SELLER_COUNTRY": None,
    # The seller's VAT number, sent to VIES as requester to obtain a consultation number.
    "SELLER_VAT_NUMBER": None,
    # tax_exempt for customers outside the EU: "exempt" when the project charges its own
    # tax rates (none may apply), "none" when Stripe Tax decides what is due.
    "OUTSIDE_EU_TAX_EXEMPT": "exempt",
    # Base URL of the EU VIES REST API.
    "VIES_API_URL": "https://ec.europa.eu/taxation_customs/vies/rest-api",
    # Seconds one VIES check may take in all, its retry included (requests wait on VIES
    # while a worker waits on them).
    "VIES_TIMEOUT": 4,
    # Seconds VIES is not asked about a member state after it timed out or said the state's
    # service is unavailable (all states after VIES itself failed): checks answer
    # "unverified" at once meanwhile. Kept in Django's cache, which must be shared.
    "VIES_BACKOFF": 300,
    # Days a VIES answer (valid or invalid) is reused from Django's cache.
    "VIES_CACHE_DAYS": 1,
    # DRF throttle rate of POST vat/validate/ per user.
    "VAT_VALIDATION_RATE": "30/hour",
    # Days after which revalidatevat checks a valid number again.
    "VAT_REVALIDATE_DAYS": 30,
    # "app_label.ModelName" of the model that owns customers when a project bills teams.
    "ORGANIZATION_MODEL": None,
}

# Keys whose value is a dotted path to import on first use.
IMPORT_STRINGS = ("PAYMENT_INTERACTOR_CLASS",)


def import_from_string(value: str, setting_name: str) -> Any:
    """Import a dotted ``module.attribute`` path, naming the setting when it fails."""
    module_path, _, attribute = value.rpartition(".")
    try:
        return getattr(import_module(module_path), attribute)
    except (ImportError, AttributeError, ValueError) as err:
        raise ImproperlyConfigured(f"Could not import {value!r} for {SETTING_NAME}[{setting_name!r}]: {err}") from err


class BobPaymentsSettings:
    """
    Lazy view over ``settings.BOB_PAYMENTS``: each key falls back to its default, and
    dotted paths in IMPORT_STRINGS are imported when first read.
    """

    def __init__(self, defaults: dict[str, Any] | None = None) -> None:
        self.defaults = defaults or DEFAULTS
        self._cached: set[str] = set()
        self._user_settings: dict[str, Any] | None = None

    @property
    def user_settings(self) -> dict[str, Any]:
        if self._user_settings is None:
            value = getattr(settings, SETTING_NAME, None) or {}
            if not isinstance(value, dict):
                raise ImproperlyConfigured(f"The {SETTING_NAME} setting must be a dict.")
            self._user_settings = value
        return self._user_settings

    def __getattr__(self, attr: str) -> Any:
        if attr not in self.defaults:
            raise AttributeError(f"Invalid {SETTING_NAME} setting: {attr!r}")
        value = self.user_settings.get(attr, self.defaults[attr])
        if attr in IMPORT_STRINGS and isinstance(value, str):
            value = import_from_string(value, attr)
        self._cached.add(attr)
        setattr(self, attr, value)
        return value

    def reload(self) -> None:
        """Forget cached values so the next read sees the current settings."""
        for attr in self._cached:
            delattr(self, attr)
        self._cached.clear()
        self._user_settings = None

    @property
    def webhook_secrets(self) -> list[str]:
        """STRIPE_WEBHOOK_SECRET as a list, whether one secret or several are configured."""
        value = self.STRIPE_WEBHOOK_SECRET
        if not value:
            return []
        if isinstance(value, str):
            return [value]
        return [secret for secret in value if secret]


bob_settings = BobPaymentsSettings()


def _reload_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        bob_settings.reload()


setting_changed.connect(_reload_on_change, dispatch_uid="bob_payments_reload_settings")
