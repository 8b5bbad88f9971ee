"""
System checks for the BOB_PAYMENTS settings. They read settings only, never the database.

Errors (bob_payments.E0xx) stop ``runserver`` and ``migrate``; warnings (W0xx) point at
settings that will make a feature fail at run time.
"""

from __future__ import annotations

import difflib
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django_countries import countries

from django_bob_payments.conf import DEFAULTS, SETTING_NAME, bob_settings, import_from_string
from django_bob_payments.models import Provider
from django_bob_payments.providers import PROVIDER_CLASSES
from django_bob_payments.providers.stripe.client import sdk_logs_bodies


def _key(name: str) -> str:
    return f'{SETTING_NAME}["{name}"]'


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Run every settings check and return their messages."""
    raw = getattr(settings, SETTING_NAME, None)
    if raw is not None and not isinstance(raw, dict):
        return [
            checks.Error(
                f"The {SETTING_NAME} setting must be a dict.",
                hint=f'Write {SETTING_NAME} = {{"STRIPE_SECRET_KEY": ..., ...}} in your settings.',
                obj=SETTING_NAME,
                id="bob_payments.E010",
            )
        ]
    user_settings = raw or {}
    return [
        *_check_installed_apps(),
        *_check_unknown_keys(user_settings),
        *_check_interactor(user_settings),
        *_check_provider(),
        *_check_seller_country(),
        *_check_organization_model(),
        *_check_deployment(),
        *_check_webhook_processing(),
    ]


def _check_webhook_processing() -> list[checks.CheckMessage]:
    from django_bob_payments.interactors import ENQUEUE_MODES, WEBHOOK_MODES, missing_engine

    mode = bob_settings.WEBHOOK_PROCESSING
    if mode not in WEBHOOK_MODES:
        return [_unknown_choice("WEBHOOK_PROCESSING", mode, WEBHOOK_MODES, "bob_payments.E012")]
    missing = missing_engine(mode)
    if missing:
        return [
            checks.Error(missing, hint='Install the extra, or use "inline".', obj=SETTING_NAME, id="bob_payments.E013")
        ]
    enqueue = bob_settings.WEBHOOK_ENQUEUE
    if enqueue not in ENQUEUE_MODES:
        return [_unknown_choice("WEBHOOK_ENQUEUE", enqueue, ENQUEUE_MODES, "bob_payments.E014")]
    return []


def _unknown_choice(name: str, value: Any, choices: tuple[str, ...], check_id: str) -> checks.Error:
    return checks.Error(
        f"{_key(name)} is {value!r}.", hint=f"Use one of: {', '.join(choices)}.", obj=SETTING_NAME, id=check_id
    )


# Cache backends whose data lives in one process (or nowhere): a rate kept there is per process.
PROCESS_LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


def _check_deployment() -> list[checks.CheckMessage]:
    """What a production deployment (DEBUG off) gets wrong without noticing."""
    if settings.DEBUG:
        return []
    messages: list[checks.CheckMessage] = []
    wildcards = [host for host in settings.ALLOWED_HOSTS if host == "*" or host.startswith(".")]
    if wildcards and bob_settings.RETURN_URL_HOSTS is None:
        messages.append(
            checks.Warning(
                f"ALLOWED_HOSTS has the wildcard(s) {', '.join(wildcards)}: callers cannot send customers back "
                "to a host a Host header picks, and default return URLs work only on the exact hosts listed.",
                hint=f'Set {_key("RETURN_URL_HOSTS")} to the hosts customers come back to, e.g. ["app.example.com"].',
                obj=_key("RETURN_URL_HOSTS"),
                id="bob_payments.W006",
            )
        )
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if bob_settings.VAT_VALIDATION_RATE and backend in PROCESS_LOCAL_CACHES:
        messages.append(
            checks.Warning(
                f"{_key('VAT_VALIDATION_RATE')} is kept in the default cache, {backend.rsplit('.', 1)[-1]}, which "
                "each process holds for itself: with N workers a user gets N times the rate, and the VIES "
                "verdicts and circuit breaker are not shared either.",
                hint="Use a cache shared by every process (Redis, Memcached, the database cache) as CACHES['default'].",
                obj="CACHES",
                id="bob_payments.W007",
            )
        )
    if sdk_logs_bodies():
        messages.append(
            checks.Warning(
                "The stripe SDK logs every request and response body (names, emails, addresses, VAT numbers) "
                "at DEBUG and INFO, and its logger is enabled at that level with DEBUG off.",
                hint='Set the "stripe" logger to WARNING in LOGGING, and leave stripe.log and STRIPE_LOG unset.',
                obj="LOGGING",
                id="bob_payments.W008",
            )
        )
    database = settings.DATABASES.get("default", {})
    if database.get("ENGINE") == "django.db.backends.sqlite3":
        mode = str(database.get("OPTIONS", {}).get("transaction_mode") or "DEFERRED").upper()
        if mode == "DEFERRED":
            messages.append(
                checks.Warning(
                    "The default database is SQLite with deferred transactions: when two processes apply "
                    "webhook events at once, one is answered 500 'database is locked' at once instead of waiting.",
                    hint='Add to DATABASES["default"]["OPTIONS"]: "transaction_mode": "IMMEDIATE", "timeout": 20, '
                    '"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL" (or use PostgreSQL).',
                    obj="DATABASES",
                    id="bob_payments.W009",
                )
            )
    return messages


def _check_installed_apps() -> list[checks.CheckMessage]:
    errors = []
    for app, check_id in (("rest_framework", "E007"), ("django_countries", "E008")):
        if not apps.is_installed(app):
            errors.append(
                checks.Error(
                    f"django-bob-payments needs {app!r} in INSTALLED_APPS.",
                    hint=f'Add "{app}" to INSTALLED_APPS, before "django_bob_payments".',
                    obj="INSTALLED_APPS",
                    id=f"bob_payments.{check_id}",
                )
            )
    return errors


def _check_unknown_keys(user_settings: dict[str, Any]) -> list[checks.CheckMessage]:
    warnings = []
    for key in sorted(set(user_settings) - set(DEFAULTS)):
        close = difflib.get_close_matches(key, DEFAULTS, n=1)
        hint = f"Did you mean {close[0]!r}?" if close else "Remove it; see the README for the keys."
        warnings.append(
            checks.Warning(
                f"{_key(key)} is not a setting of django-bob-payments and is ignored.",
                hint=hint,
                obj=SETTING_NAME,
                id="bob_payments.W003",
            )
        )
    return warnings


def _check_interactor(user_settings: dict[str, Any]) -> list[checks.CheckMessage]:
    from django_bob_payments.interactors import PaymentInteractor

    path = user_settings.get("PAYMENT_INTERACTOR_CLASS", DEFAULTS["PAYMENT_INTERACTOR_CLASS"])
    obj = _key("PAYMENT_INTERACTOR_CLASS")
    if isinstance(path, str):
        try:
            value = import_from_string(path, "PAYMENT_INTERACTOR_CLASS")
        except ImproperlyConfigured as err:
            return [
                checks.Error(
                    str(err),
                    hint="Give the dotted path of a class, such as 'myproject.billing.MyPaymentInteractor'.",
                    obj=obj,
                    id="bob_payments.E001",
                )
            ]
    else:
        value = path
    if not (isinstance(value, type) and issubclass(value, PaymentInteractor)):
        return [
            checks.Error(
                f"{path!r} is not a subclass of PaymentInteractor.",
                hint="Subclass django_bob_payments.interactors.PaymentInteractor.",
                obj=obj,
                id="bob_payments.E002",
            )
        ]
    return []


def _check_provider() -> list[checks.CheckMessage]:
    provider = bob_settings.PROVIDER
    if provider not in PROVIDER_CLASSES:
        return [
            checks.Error(
                f"{_key('PROVIDER')} is {provider!r}, which is not a known provider.",
                hint=f"Use one of: {', '.join(PROVIDER_CLASSES)}.",
                obj=_key("PROVIDER"),
                id="bob_payments.E003",
            )
        ]
    if provider == "fake" and not settings.DEBUG and not bob_settings.FAKE_PROVIDER_ALLOWED:
        return [
            checks.Error(
                "The fake provider takes no payment, and DEBUG is False.",
                hint='Use "stripe" in production, or set BOB_PAYMENTS["FAKE_PROVIDER_ALLOWED"] = True '
                "if this deployment really is a demo.",
                obj=_key("PROVIDER"),
                id="bob_payments.E011",
            )
        ]
    if provider != Provider.STRIPE:
        return []
    messages: list[checks.CheckMessage] = []
    secret_key = bob_settings.STRIPE_SECRET_KEY
    if not secret_key:
        messages.append(
            checks.Warning(
                f"{_key('STRIPE_SECRET_KEY')} is not set: every call to Stripe will fail.",
                hint="Set it from your environment, e.g. os.environ['STRIPE_SECRET_KEY'] "
                "(sk_test_... or rk_test_... for a test account).",
                obj=_key("STRIPE_SECRET_KEY"),
                id="bob_payments.W001",
            )
        )
    elif not isinstance(secret_key, str) or not secret_key.startswith(("sk_", "rk_")):
        messages.append(
            checks.Error(
                f"{_key('STRIPE_SECRET_KEY')} does not look like a Stripe secret key.",
                hint="Use the secret (sk_...) or restricted (rk_...) key; the publishable key "
                f"(pk_...) belongs in {_key('STRIPE_PUBLISHABLE_KEY')}.",
                obj=_key("STRIPE_SECRET_KEY"),
                id="bob_payments.E004",
            )
        )
    webhook_secret = bob_settings.STRIPE_WEBHOOK_SECRET
    is_list = isinstance(webhook_secret, (list, tuple))
    if webhook_secret and not (
        isinstance(webhook_secret, str) or (is_list and all(isinstance(secret, str) for secret in webhook_secret))
    ):
        messages.append(
            checks.Error(
                f"{_key('STRIPE_WEBHOOK_SECRET')} must be a string or a list of strings.",
                hint="Give the endpoint's signing secret (whsec_...), or a list of them while rolling it.",
                obj=_key("STRIPE_WEBHOOK_SECRET"),
                id="bob_payments.E005",
            )
        )
    elif not bob_settings.webhook_secrets:
        messages.append(
            checks.Warning(
                f"{_key('STRIPE_WEBHOOK_SECRET')} is not set: every Stripe webhook will be refused.",
                hint="Copy the signing secret (whsec_...) of your endpoint from the Stripe "
                "dashboard, or from `stripe listen` in development.",
                obj=_key("STRIPE_WEBHOOK_SECRET"),
                id="bob_payments.W002",
            )
        )
    return messages


def _check_seller_country() -> list[checks.CheckMessage]:
    seller_country = bob_settings.SELLER_COUNTRY
    obj = _key("SELLER_COUNTRY")
    if not seller_country:
        return [
            checks.Warning(
                f"{obj} is not set, so reverse charge cannot be told from domestic VAT.",
                hint="Set it to the ISO 3166-1 alpha-2 code of the country you sell from, e.g. 'FR'.",
                obj=obj,
                id="bob_payments.W004",
            )
        ]
    if not isinstance(seller_country, str) or seller_country.upper() not in countries:
        return [
            checks.Error(
                f"{obj} is {seller_country!r}, which is not an ISO 3166-1 alpha-2 country code.",
                hint="Use a two-letter code such as 'DE' or 'GR' (not 'EL', VIES's code for Greece).",
                obj=obj,
                id="bob_payments.E006",
            )
        ]
    return []


def _check_organization_model() -> list[checks.CheckMessage]:
    from django_bob_payments.services.organizations import OrganizationService

    try:
        OrganizationService().get_model()
    except ImproperlyConfigured as err:
        return [
            checks.Error(
                str(err),
                hint="Name an installed model as 'app_label.ModelName', or leave it unset to bill users only.",
                obj=_key("ORGANIZATION_MODEL"),
                id="bob_payments.E009",
            )
        ]
    return []
