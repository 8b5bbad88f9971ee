"""The settings object: defaults, user values, dotted imports, and reload on change."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_bob_payments.conf import DEFAULTS, BobPaymentsSettings, bob_settings
from django_bob_payments.interactors import PaymentInteractor
from tests.testapp.interactors import RecordingPaymentInteractor


def test_missing_keys_take_their_defaults():
    assert bob_settings.WEBHOOK_TOLERANCE == 300
    assert bob_settings.VIES_API_URL == "https://ec.europa.eu/taxation_customs/vies/rest-api"
    assert bob_settings.STRIPE_API_BASE == "https://api.stripe.com"
    assert bob_settings.STRIPE_API_VERSION is None


def test_user_values_win():
    assert bob_settings.SELLER_COUNTRY == "FR"
    assert bob_settings.STRIPE_SECRET_KEY == "sk_test_tests"


def test_every_contract_key_has_a_default():
    contract = {
        "STRIPE_SECRET_KEY",
        "STRIPE_PUBLISHABLE_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "STRIPE_API_BASE",
        "STRIPE_API_VERSION",
        "WEBHOOK_TOLERANCE",
        "PAYMENT_INTERACTOR_CLASS",
        "SELLER_COUNTRY",
        "SELLER_VAT_NUMBER",
        "VIES_API_URL",
        "VIES_TIMEOUT",
    }
    assert contract <= set(DEFAULTS)


def test_dotted_paths_are_imported():
    assert bob_settings.PAYMENT_INTERACTOR_CLASS is PaymentInteractor


def test_override_settings_is_seen_at_once():
    assert bob_settings.WEBHOOK_TOLERANCE == 300
    with override_settings(
        BOB_PAYMENTS={
            "WEBHOOK_TOLERANCE": 60,
            "PAYMENT_INTERACTOR_CLASS": "tests.testapp.interactors.RecordingPaymentInteractor",
        }
    ):
        assert bob_settings.WEBHOOK_TOLERANCE == 60
        assert bob_settings.PAYMENT_INTERACTOR_CLASS is RecordingPaymentInteractor
        assert bob_settings.SELLER_COUNTRY is None
    assert bob_settings.WEBHOOK_TOLERANCE == 300
    assert bob_settings.PAYMENT_INTERACTOR_CLASS is PaymentInteractor


def test_pytest_settings_fixture_works(settings):
    settings.BOB_PAYMENTS = {"VIES_TIMEOUT": 3}
    assert bob_settings.VIES_TIMEOUT == 3


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", []),
        ("whsec_a", ["whsec_a"]),
        (["whsec_a", "whsec_b"], ["whsec_a", "whsec_b"]),
        (["", "whsec_b"], ["whsec_b"]),
    ],
)
def test_webhook_secrets_is_always_a_list(value, expected):
    with override_settings(BOB_PAYMENTS={"STRIPE_WEBHOOK_SECRET": value}):
        assert bob_settings.webhook_secrets == expected


def test_an_unknown_attribute_is_an_error():
    with pytest.raises(AttributeError, match="STRIPE_SECRET"):
        getattr(bob_settings, "STRIPE_SECRET")  # noqa: B009


def test_a_bad_dotted_path_names_the_key():
    with override_settings(BOB_PAYMENTS={"PAYMENT_INTERACTOR_CLASS": "nowhere.Nothing"}):
        with pytest.raises(ImproperlyConfigured, match=r"BOB_PAYMENTS\['PAYMENT_INTERACTOR_CLASS'\]"):
            getattr(bob_settings, "PAYMENT_INTERACTOR_CLASS")  # noqa: B009


def test_a_setting_that_is_not_a_dict_is_an_error():
    with override_settings(BOB_PAYMENTS=["STRIPE_SECRET_KEY"]):
        with pytest.raises(ImproperlyConfigured, match="must be a dict"):
            getattr(BobPaymentsSettings(), "WEBHOOK_TOLERANCE")  # noqa: B009
