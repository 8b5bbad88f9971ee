"""Money and tax at every step: strict billing input, VIES proof per customer, the tax table's edges."""

import pytest

from django_bob_payments.interactors import get_payment_interactor
from django_bob_payments.models import BillingInformation, Customer
from django_bob_payments.money import format_money
from django_bob_payments.services.billing import BillingService

pytestmark = pytest.mark.django_db

URL = "/api/payment/billing/"
GERMAN = {"name": "Alice GmbH", "email": "billing@alice.example", "country": "DE", "vat_number": "DE136695976"}


@pytest.fixture
def api(client, user):
    client.force_login(user)
    return client


@pytest.mark.parametrize("country", [{}, [], 0, "", None, "XX", "de ", "Germany", "\uff24\uff25", True, "D", "DEU"])
def test_a_country_that_is_not_a_known_code_is_a_400_and_changes_nothing(api, vies, country):
    vies.register("DE136695976")
    assert api.post(URL, GERMAN, content_type="application/json").status_code == 201
    before = BillingInformation.objects.values().get()
    response = api.patch(URL, {"country": country}, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "country" in response.json()
    assert BillingInformation.objects.values().get() == before


def test_an_empty_country_never_makes_a_customer_exempt():
    assert BillingService().decide_tax_exempt("", "not_applicable") == "none"


@pytest.mark.parametrize("seller", ["GB", "CH", "NO", "US"])
def test_a_seller_outside_the_eu_charges_tax_at_home(settings, seller):
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "SELLER_COUNTRY": seller}
    assert BillingService().decide_tax_exempt(seller, "not_applicable") == "none"
    assert BillingService().decide_tax_exempt("JP", "not_applicable") == "exempt"


def test_each_customer_gets_its_own_vies_proof(make_user, vies, client):
    vies.register("DE136695976")
    first, second = make_user("first"), make_user("second")
    for user in (first, second):
        client.force_login(user)
        assert client.post(URL, GERMAN, content_type="application/json").status_code == 201
    checks = [r for r in vies.requests if (r.get("body") or {}).get("vatNumber") == "136695976"]
    assert len(checks) == 2, "VIES is asked for the second customer too"
    numbers = [
        BillingInformation.objects.get(customer=Customer.objects.get(user=user)).vies_consultation_number
        for user in (first, second)
    ]
    assert all(numbers) and numbers[0] != numbers[1]


def test_a_new_number_vies_cannot_check_drops_the_old_proof(api, vies):
    vies.register("DE136695976")
    api.post(URL, GERMAN, content_type="application/json")
    vies.fail("DE", "MS_UNAVAILABLE")
    response = api.patch(URL, {"vat_number": "DE129273398"}, content_type="application/json")
    assert response.status_code == 200, response.content
    billing = BillingInformation.objects.get()
    assert (billing.vat_status, billing.vies_consultation_number, billing.vat_verified_at) == ("unverified", "", None)


def test_revalidation_writes_only_the_verdict(api, vies, user, monkeypatch):
    vies.register("DE136695976")
    api.post(URL, GERMAN, content_type="application/json")
    billing = BillingInformation.objects.get()
    interactor = get_payment_interactor()
    original = interactor.validate_vies

    def meanwhile_the_user_moves_to_france(*args, **kwargs):
        verdict = original(*args, **kwargs)
        BillingInformation.objects.filter(pk=billing.pk).update(country="FR", vat_number="", city="Paris")
        return verdict

    monkeypatch.setattr(interactor, "validate_vies", meanwhile_the_user_moves_to_france)
    interactor.revalidate_vat(billing)
    saved = BillingInformation.objects.get()
    assert (str(saved.country), saved.vat_number, saved.city) == ("FR", "", "Paris")


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [(1000, "kwd", "1.000 KWD"), (1000, "bhd", "1.000 BHD"), (1900, "eur", "19.00 EUR"), (1200, "jpy", "1200 JPY")],
)
def test_every_currency_is_shown_with_its_own_decimals(amount, currency, text):
    assert format_money(amount, currency) == text


def test_the_reverse_charge_receipt_never_prints_none(settings):
    from django.template.loader import render_to_string

    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "SELLER_VAT_NUMBER": None}
    context = {"reverse_charge": True, "seller_vat_number": None, "billing": {"vat_number": "DE136695976"}}
    for name in ("payment_receipt.txt", "payment_receipt.html"):
        text = render_to_string(f"django_bob_payments/email/{name}", {**context, "invoice": _Invoice()})
        assert "None" not in text and "DE136695976" in text


class _Invoice:
    number, currency, subtotal, tax, total, amount_paid = "INV-1", "eur", 1000, 0, 1000, 1000
    hosted_invoice_url = invoice_pdf = ""
