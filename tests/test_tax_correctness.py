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
    [
        (1000, "kwd", "1.000 KWD"),
        (1000, "bhd", "1.000 BHD"),
        (1900, "eur", "19.00 EUR"),
        (1200, "jpy", "1200 JPY"),
        # Stripe counts ISK and HUF in hundredths; people read them without decimals (CLDR).
        (50000, "isk", "500 ISK"),
        (50050, "isk", "500.50 ISK"),
        (99900, "huf", "999 HUF"),
        (1900, "usd", "19.00 USD"),
    ],
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


# The tax decision table, as the README lists it: (seller, customer) -> tax_exempt.
# Customers: billing country, VAT number, and whether VIES is down for it.
TAX_CUSTOMERS = {
    "domestic B2B": (None, None),  # the seller's own country, with its own number
    "other EU B2B, valid": ("other", "valid"),
    "other EU B2B, unverified": ("other", "unverified"),
    "EU consumer": ("other", None),
    "GB business": ("GB", "GB980780684"),
    "XI business": ("GB", "XI980780684"),
    "CH": ("CH", None),
    "US": ("US", None),
}
DOMESTIC_NUMBERS = {"FR": "FR40303265045", "DE": "DE136695976", "GB": "GB980780684", "US": ""}
OTHER_EU = {"FR": ("DE", "DE136695976"), "DE": ("FR", "FR40303265045")}
TAX_TABLE = {
    #          domestic, EU valid, EU unverified, EU consumer, GB, XI, CH, US
    "FR": ["none", "reverse", "none", "none", "exempt", "exempt", "exempt", "exempt"],
    "DE": ["none", "reverse", "none", "none", "exempt", "exempt", "exempt", "exempt"],
    "GB": ["none", "reverse", "none", "none", "none", "none", "exempt", "exempt"],
    "US": ["none", "reverse", "none", "none", "exempt", "exempt", "exempt", "none"],
}


@pytest.mark.parametrize("seller", sorted(TAX_TABLE))
@pytest.mark.parametrize("kind", list(TAX_CUSTOMERS))
def test_the_tax_decision_table(api, vies, settings, seller, kind):
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "SELLER_COUNTRY": seller}
    expected = TAX_TABLE[seller][list(TAX_CUSTOMERS).index(kind)]
    for number in ("FR40303265045", "DE136695976", "XI980780684"):
        vies.register(number)
    country, number = TAX_CUSTOMERS[kind]
    if country is None:
        country, number = seller, DOMESTIC_NUMBERS[seller]
    elif country == "other":
        country, vat = OTHER_EU.get(seller, ("DE", "DE136695976"))
        if number == "unverified":
            vies.fail(vat[:2], "MS_UNAVAILABLE")
        number = vat if number else ""
    data = {"name": "Buyer", "email": "buyer@example.com", "country": country, "vat_number": number or ""}
    response = api.post(URL, data, content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["tax_exempt"] == expected
    if kind == "XI business":
        # Checked at VIES and kept, though a service to Northern Ireland is outside the EU VAT area.
        assert response.json()["vat_status"] == "valid"
        assert response.json()["vat_number"] == "XI980780684"
    if kind == "GB business":
        # Checked offline by python-stdnum; VIES never sees a GB number.
        assert response.json()["vat_number"] == "GB980780684"
        assert not [r for r in vies.requests if (r.get("body") or {}).get("countryCode") == "GB"]


@pytest.mark.parametrize("number", ["GB123456789", "GB12345", "XI123", "DE136695976"])
def test_a_uk_address_refuses_a_wrong_number(api, vies, number):
    data = {"name": "Buyer", "email": "buyer@example.com", "country": "GB", "vat_number": number}
    response = api.post(URL, data, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "vat_number" in response.json()


# Malformed billing input: each is a 400 that names the field, and changes nothing.
MALFORMED_BILLING = [
    ("name", None),
    ("name", ""),
    ("name", {}),
    ("name", ["Alice"]),
    ("name", True),
    ("name", "A" * 256),
    ("name", "Ali\x00ce"),
    ("name", "Ali\ud800ce"),
    ("email", "not-an-email"),
    ("email", ""),
    ("email", {"address": "a@example.com"}),
    ("email", "a@" + "x" * 250 + ".example"),
    ("address_line1", "x" * 256),
    ("address_line1", []),
    ("address_line2", "x\x00"),
    ("postal_code", "1" * 33),
    ("city", "x" * 129),
    ("state", {"name": "Bavaria"}),
    ("vat_number", {}),
    ("vat_number", "DE" + "1" * 40),
    ("vat_number", "DE\uff11\uff13\uff16\uff16\uff19\uff15\uff19\uff17\uff16"),  # full-width digits
    ("vat_number", "FR40303265045"),  # another country's number
    ("vat_number", "DE136695977"),  # wrong checksum
    ("vat_number", 136695976),
    ("country", "\u0414\u0415"),  # Cyrillic look-alikes of DE
]


@pytest.mark.parametrize(("field", "value"), MALFORMED_BILLING)
def test_malformed_billing_input_is_a_400_naming_the_field(api, vies, field, value):
    vies.register("DE136695976")
    assert api.post(URL, GERMAN, content_type="application/json").status_code == 201
    before = BillingInformation.objects.values().get()
    response = api.patch(URL, {field: value}, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert field in response.json(), response.json()
    assert BillingInformation.objects.values().get() == before
