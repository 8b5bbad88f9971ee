"""System checks, compared as whole lists the way Django tests its own."""

import pytest
from django.core import checks
from django.test import override_settings

from django_bob_payments.checks import check_settings

GOOD = {
    "STRIPE_SECRET_KEY": "sk_test_x",
    "STRIPE_WEBHOOK_SECRET": "whsec_x",
    "SELLER_COUNTRY": "FR",
}


def run(**bob_payments):
    with override_settings(BOB_PAYMENTS=bob_payments):
        return check_settings()


def ids(messages):
    return [message.id for message in messages]


def test_good_settings_pass():
    assert run(**GOOD) == []


def test_the_project_settings_pass():
    assert check_settings() == []


def test_checks_are_registered():
    assert check_settings in checks.registry.registry.get_checks()


def test_interactor_that_cannot_be_imported():
    messages = run(**GOOD, PAYMENT_INTERACTOR_CLASS="nowhere.Interactor")
    assert ids(messages) == ["bob_payments.E001"]
    assert messages[0].obj == 'BOB_PAYMENTS["PAYMENT_INTERACTOR_CLASS"]'
    assert messages[0].hint


def test_interactor_that_is_not_a_payment_interactor():
    messages = run(**GOOD, PAYMENT_INTERACTOR_CLASS="tests.testapp.interactors.NotAnInteractor")
    assert messages == [
        checks.Error(
            "'tests.testapp.interactors.NotAnInteractor' is not a subclass of PaymentInteractor.",
            hint="Subclass django_bob_payments.interactors.PaymentInteractor.",
            obj='BOB_PAYMENTS["PAYMENT_INTERACTOR_CLASS"]',
            id="bob_payments.E002",
        )
    ]


def test_a_subclass_is_accepted():
    assert run(**GOOD, PAYMENT_INTERACTOR_CLASS="tests.testapp.interactors.RecordingPaymentInteractor") == []


def test_unknown_provider():
    assert ids(run(**GOOD, PROVIDER="paypal")) == ["bob_payments.E003"]


def test_stripe_without_secret_key_or_webhook_secret():
    messages = run(SELLER_COUNTRY="FR")
    assert messages == [
        checks.Warning(
            'BOB_PAYMENTS["STRIPE_SECRET_KEY"] is not set: every call to Stripe will fail.',
            hint="Set it from your environment, e.g. os.environ['STRIPE_SECRET_KEY'] "
            "(sk_test_... or rk_test_... for a test account).",
            obj='BOB_PAYMENTS["STRIPE_SECRET_KEY"]',
            id="bob_payments.W001",
        ),
        checks.Warning(
            'BOB_PAYMENTS["STRIPE_WEBHOOK_SECRET"] is not set: every Stripe webhook will be refused.',
            hint="Copy the signing secret (whsec_...) of your endpoint from the Stripe "
            "dashboard, or from `stripe listen` in development.",
            obj='BOB_PAYMENTS["STRIPE_WEBHOOK_SECRET"]',
            id="bob_payments.W002",
        ),
    ]


@pytest.mark.parametrize("key", ["pk_test_x", "whsec_x", 42])
def test_secret_key_that_is_not_a_secret_key(key):
    assert ids(run(**{**GOOD, "STRIPE_SECRET_KEY": key})) == ["bob_payments.E004"]


def test_restricted_key_is_accepted():
    assert run(**{**GOOD, "STRIPE_SECRET_KEY": "rk_live_x"}) == []


@pytest.mark.parametrize("secret", [["whsec_old", "whsec_new"], ("whsec_a",)])
def test_several_webhook_secrets_are_accepted(secret):
    assert run(**{**GOOD, "STRIPE_WEBHOOK_SECRET": secret}) == []


@pytest.mark.parametrize("secret", [42, ["whsec_a", 7], {"a": "whsec_a"}])
def test_webhook_secret_of_the_wrong_type(secret):
    assert ids(run(**{**GOOD, "STRIPE_WEBHOOK_SECRET": secret})) == ["bob_payments.E005"]


@pytest.mark.parametrize("country", ["EL", "XX", "France", 33])
def test_seller_country_that_is_not_iso(country):
    assert ids(run(**{**GOOD, "SELLER_COUNTRY": country})) == ["bob_payments.E006"]


def test_seller_country_lower_case_is_accepted():
    assert run(**{**GOOD, "SELLER_COUNTRY": "gr"}) == []


def test_missing_seller_country():
    assert ids(run(STRIPE_SECRET_KEY="sk_test_x", STRIPE_WEBHOOK_SECRET="whsec_x")) == ["bob_payments.W004"]


def test_required_apps_missing():
    with override_settings(
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django_bob_payments",
            "tests.testapp",
        ]
    ):
        messages = run(**GOOD)
    assert messages == [
        checks.Error(
            "django-bob-payments needs 'rest_framework' in INSTALLED_APPS.",
            hint='Add "rest_framework" to INSTALLED_APPS, before "django_bob_payments".',
            obj="INSTALLED_APPS",
            id="bob_payments.E007",
        ),
        checks.Error(
            "django-bob-payments needs 'django_countries' in INSTALLED_APPS.",
            hint='Add "django_countries" to INSTALLED_APPS, before "django_bob_payments".',
            obj="INSTALLED_APPS",
            id="bob_payments.E008",
        ),
    ]


@pytest.mark.parametrize("label", ["testapp.Team", "nope.Organization", "Organization"])
def test_organization_model_that_is_not_installed(label):
    assert ids(run(**GOOD, ORGANIZATION_MODEL=label)) == ["bob_payments.E009"]


def test_setting_that_is_not_a_dict():
    with override_settings(BOB_PAYMENTS="sk_test_x"):
        assert ids(check_settings()) == ["bob_payments.E010"]


def test_misspelt_key_gets_a_suggestion():
    messages = run(**GOOD, STRIPE_WEBHOOK_SECRETS="whsec_y")
    assert messages == [
        checks.Warning(
            'BOB_PAYMENTS["STRIPE_WEBHOOK_SECRETS"] is not a setting of django-bob-payments and is ignored.',
            hint="Did you mean 'STRIPE_WEBHOOK_SECRET'?",
            obj="BOB_PAYMENTS",
            id="bob_payments.W003",
        )
    ]


def test_checks_make_no_query(django_assert_num_queries, db):
    with django_assert_num_queries(0):
        check_settings()


@pytest.mark.security
@pytest.mark.parametrize("hosts", [["*"], [".example.com"], ["app.example.com", "*"]])
def test_wildcard_allowed_hosts_without_return_url_hosts(settings, hosts):
    settings.ALLOWED_HOSTS = hosts
    assert ids(run(**GOOD)) == ["bob_payments.W006"]
    assert run(**GOOD, RETURN_URL_HOSTS=["app.example.com"]) == []


@pytest.mark.security
@pytest.mark.parametrize(
    "backend", ["django.core.cache.backends.locmem.LocMemCache", "django.core.cache.backends.dummy.DummyCache"]
)
def test_a_throttle_in_a_process_local_cache(settings, backend):
    settings.CACHES = {"default": {"BACKEND": backend}}
    assert ids(run(**GOOD)) == ["bob_payments.W007"]
    assert run(**GOOD, VAT_VALIDATION_RATE=None) == []
    settings.DEBUG = True
    assert run(**GOOD) == []


@pytest.mark.security
def test_the_stripe_sdk_logging_bodies_in_production():
    import logging

    logger = logging.getLogger("stripe")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        assert ids(run(**GOOD)) == ["bob_payments.W008"]
    finally:
        logger.setLevel(level)
    assert run(**GOOD) == []


# Only the check reads the overridden DATABASES; no connection is made with it.
@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
@pytest.mark.parametrize("mode", [None, "DEFERRED", "deferred"])
def test_sqlite_with_deferred_transactions_in_production(settings, mode):
    database = {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}
    settings.DATABASES = {"default": {**database, "OPTIONS": {"transaction_mode": mode} if mode else {}}}
    (message,) = run(**GOOD)
    assert message.id == "bob_payments.W009"
    assert '"transaction_mode": "IMMEDIATE"' in message.hint
    settings.DATABASES = {"default": {**database, "OPTIONS": {"transaction_mode": "IMMEDIATE"}}}
    assert run(**GOOD) == []
    settings.DATABASES = {"default": database}
    settings.DEBUG = True
    assert run(**GOOD) == []
