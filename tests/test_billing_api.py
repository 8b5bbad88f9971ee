"""The billing API, the tax table, VIES outages and the sync to Stripe."""

import io

import pytest
from django.core.management import call_command

from django_bob_payments import signals
from django_bob_payments.models import BillingInformation, Customer, ExternalCustomer
from django_bob_payments.services.vies import CircuitBreaker

pytestmark = pytest.mark.django_db

URL = "/api/payment/billing/"
VAT_URL = "/api/payment/vat/validate/"

GERMAN = {
    "name": "Alice GmbH",
    "email": "billing@alice.example",
    "address_line1": "Hauptstr. 1",
    "postal_code": "10115",
    "city": "Berlin",
    "country": "DE",
    "vat_number": "DE 136 695 976",
}


@pytest.fixture
def api(client, user):
    client.force_login(user)
    return client


def create(api, data, **params):
    query = "?" + "&".join(f"{key}={value}" for key, value in params.items()) if params else ""
    return api.post(URL + query, data, content_type="application/json")


# The tax table, one row each (seller in France).


def test_eu_business_in_another_state_with_a_valid_number_is_reverse_charged(api, vies):
    vies.register("DE136695976", name="ALICE GMBH")
    response = create(api, GERMAN)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["vat_number"], body["vat_status"], body["tax_exempt"], body["is_from_eu"]) == (
        "DE136695976",
        "valid",
        "reverse",
        True,
    )
    assert body["vies_consultation_number"].startswith("WAPI")
    assert body["vat_verified_at"]
    assert body["sync_status"] == "pending"


def test_business_in_the_sellers_state_pays_domestic_vat(api, vies):
    vies.register("FR40303265045")
    body = create(api, {**GERMAN, "country": "FR", "vat_number": "FR40303265045"}).json()
    assert (body["vat_status"], body["tax_exempt"]) == ("valid", "none")


def test_eu_consumer_without_a_number_pays_vat(api, vies):
    body = create(api, {**GERMAN, "vat_number": ""}).json()
    assert (body["vat_status"], body["tax_exempt"]) == ("not_applicable", "none")
    assert vies.requests == []


@pytest.mark.parametrize(("setting", "expected"), [("exempt", "exempt"), ("none", "none")])
def test_outside_the_eu_follows_the_setting(api, vies, settings, setting, expected):
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "OUTSIDE_EU_TAX_EXEMPT": setting}
    body = create(api, {**GERMAN, "country": "US", "vat_number": ""}).json()
    assert (body["vat_status"], body["tax_exempt"], body["is_from_eu"]) == ("not_applicable", expected, False)


def test_while_vies_is_down_the_number_is_unverified_and_not_reverse_charged(api, vies, user):
    vies.register("DE136695976")
    vies.fail("DE", "MS_UNAVAILABLE")
    body = create(api, GERMAN).json()
    assert (body["vat_status"], body["tax_exempt"]) == ("unverified", "none")
    vies.recover("DE")
    CircuitBreaker().reset()  # the back-off has passed
    stdout = io.StringIO()
    call_command("revalidatevat", stdout=stdout)
    billing = BillingInformation.objects.get()
    assert (billing.vat_status, billing.tax_exempt) == ("valid", "reverse")
    assert "1 valid" in stdout.getvalue()


def test_greece_is_el_at_vies(api, vies):
    vies.register("EL094259216")
    body = create(api, {**GERMAN, "country": "GR", "vat_number": "094259216"}).json()
    assert (body["vat_number"], body["vat_status"], body["tax_exempt"]) == ("EL094259216", "valid", "reverse")
    assert vies.requests[0]["body"]["countryCode"] == "EL"


# Wrong numbers are 400s on the field.


@pytest.mark.parametrize(
    ("vat_number", "country", "message"),
    [
        ("DE123456789", "DE", "checksum"),
        ("FR40303265045", "DE", "starts with FR but the country is DE"),
        ("GR094259216", "GR", "Greece is EL at VIES"),
    ],
)
def test_wrong_numbers_are_field_errors_before_any_vies_call(api, vies, vat_number, country, message):
    response = create(api, {**GERMAN, "vat_number": vat_number, "country": country})
    assert response.status_code == 400
    assert list(response.json()) == ["vat_number"]
    assert message in response.json()["vat_number"][0]
    assert vies.requests == []
    assert not BillingInformation.objects.exists()


def test_an_unregistered_number_is_refused(api, vies):
    response = create(api, GERMAN)
    assert response.status_code == 400
    assert "VIES does not know" in response.json()["vat_number"][0]


def test_missing_and_malformed_fields(api, vies):
    response = create(api, {"email": "not-an-email", "country": "ZZ"})
    assert response.status_code == 400
    assert set(response.json()) == {"name", "email", "country"}


# Reading and changing.


def test_get_before_post_is_404_then_the_data(api, vies):
    assert api.get(URL).status_code == 404
    vies.register("DE136695976")
    create(api, GERMAN)
    body = api.get(URL).json()
    assert body["name"] == "Alice GmbH"


def test_post_twice_is_a_conflict(api, vies):
    create(api, {**GERMAN, "vat_number": ""})
    assert create(api, {**GERMAN, "vat_number": ""}).status_code == 409


def test_patch_without_a_vat_change_does_not_ask_vies(api, vies):
    vies.register("DE136695976")
    create(api, GERMAN)
    vies.requests.clear()
    response = api.patch(URL, {"city": "Hamburg"}, content_type="application/json")
    assert (response.status_code, response.json()["city"], response.json()["vat_status"]) == (200, "Hamburg", "valid")
    assert vies.requests == []


def test_put_replaces_and_rechecks(api, vies):
    vies.register("DE136695976")
    vies.register("FR40303265045")
    create(api, GERMAN)
    response = api.put(URL, {**GERMAN, "country": "FR", "vat_number": "FR40303265045"}, content_type="application/json")
    assert (response.json()["vat_number"], response.json()["tax_exempt"]) == ("FR40303265045", "none")
    assert api.put(URL, {"name": "x"}, content_type="application/json").status_code == 400


def test_read_only_fields_cannot_be_written(api, vies):
    response = create(api, {**GERMAN, "vat_number": "", "tax_exempt": "reverse", "vat_status": "valid"})
    assert response.status_code == 400
    assert {key: [error for error in errors] for key, errors in response.json().items()} == {
        "tax_exempt": ["This field is read-only."],
        "vat_status": ["This field is read-only."],
    }
    assert not BillingInformation.objects.exists()
    body = create(api, {**GERMAN, "vat_number": ""}).json()
    # What GET answers can be sent back whole: the read-only values are those held.
    assert api.put(URL, body, content_type="application/json").status_code == 200
    changed = api.patch(URL, {"tax_exempt": "exempt"}, content_type="application/json")
    assert (changed.status_code, changed.json()["tax_exempt"]) == (400, ["This field is read-only."])
    unknown = api.patch(URL, {"discount": 100}, content_type="application/json")
    assert (unknown.status_code, unknown.json()) == (400, {"discount": ["Unknown field."]})


# Who may see what.


def test_nobody_reads_another_customers_billing(client, vies, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    client.force_login(alice)
    create(client, {**GERMAN, "vat_number": ""})
    client.force_login(bob)
    assert client.get(URL).status_code == 404
    create(client, {**GERMAN, "name": "Bob Ltd", "vat_number": ""})
    client.force_login(alice)
    assert client.get(URL).json()["name"] == "Alice GmbH"


def test_anonymous_callers_are_refused(client, vies):
    assert client.get(URL).status_code in (401, 403)
    assert client.post(VAT_URL, {"vat_number": "DE136695976", "country": "DE"}).status_code in (401, 403)


@pytest.mark.parametrize("role", ["owner", "billing"])
def test_billing_managers_act_for_the_organization(api, vies, user, organization, make_member, role):
    make_member(user, role)
    response = create(api, {**GERMAN, "name": "Acme", "vat_number": ""}, organization=organization.pk)
    assert response.status_code == 201
    assert api.get(f"{URL}?organization={organization.pk}").json()["name"] == "Acme"
    # The user's own billing is another thing.
    assert api.get(URL).status_code == 404
    org_customer = Customer.objects.get(organization_id=str(organization.pk))
    assert org_customer.billing_information.name == "Acme"


def test_members_without_the_role_and_outsiders_are_refused(client, vies, make_user, organization, make_member):
    member, outsider = make_user("member"), make_user("outsider")
    make_member(member, "member")
    for user in (member, outsider):
        client.force_login(user)
        response = client.get(f"{URL}?organization={organization.pk}")
        assert response.status_code == 403
        assert create(client, GERMAN, organization=organization.pk).status_code == 403
    assert not BillingInformation.objects.exists()


def test_an_organization_of_another_project_model_cannot_be_reached(api, vies):
    assert api.get(f"{URL}?organization=999999").status_code == 403
    assert api.get(f"{URL}?organization=abc").status_code == 403


# Query counts do not grow with data.


def test_reading_billing_takes_a_fixed_number_of_queries(api, vies, make_user, django_assert_num_queries, user):
    create(api, {**GERMAN, "vat_number": ""})
    for _ in range(5):
        other = make_user()
        BillingInformation.objects.create(customer=other.payment_customers.get(), name="x", email="x@x.x", country="FR")
    # session, user, customer, billing information
    with django_assert_num_queries(4):
        assert api.get(URL).status_code == 200


def test_reading_organization_billing_takes_a_fixed_number_of_queries(
    api, vies, user, organization, make_member, django_assert_num_queries
):
    make_member(user, "billing")
    create(api, {**GERMAN, "vat_number": ""}, organization=organization.pk)
    # session, user, organization, membership, content type is cached, customer, billing
    with django_assert_num_queries(6):
        assert api.get(f"{URL}?organization={organization.pk}").status_code == 200


# The sync to Stripe after commit.


def test_saving_pushes_the_customer_to_stripe_after_commit(
    api, vies, stripe_emulator, django_capture_on_commit_callbacks
):
    vies.register("DE136695976")
    with django_capture_on_commit_callbacks(execute=True):
        create(api, GERMAN)
    billing = BillingInformation.objects.get()
    assert billing.sync_status == "synced"
    remote = stripe_emulator.all("customer")[0]
    assert (remote["name"], remote["tax_exempt"], remote["address"]["city"]) == ("Alice GmbH", "reverse", "Berlin")
    assert [tax["value"] for tax in stripe_emulator.all("tax_id")] == ["DE136695976"]
    # A change is pushed as an update of only what changed.
    stripe_emulator.calls.clear()
    with django_capture_on_commit_callbacks(execute=True):
        api.patch(URL, {"city": "Hamburg"}, content_type="application/json")
    assert stripe_emulator.count("POST", "/v1/customers/:id") == 1
    assert stripe_emulator.count("POST", "/v1/customers") == 0


def test_a_stripe_outage_keeps_the_data_pending_until_the_next_sync(
    api, vies, stripe_emulator, settings, django_capture_on_commit_callbacks
):
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "STRIPE_MAX_NETWORK_RETRIES": 0}
    stripe_emulator.fail("POST", "/v1/customers", status=503)
    with django_capture_on_commit_callbacks(execute=True):
        response = create(api, {**GERMAN, "vat_number": ""})
    assert response.status_code == 201
    assert BillingInformation.objects.get().sync_status == "pending"
    call_command("synchronizepayments", "--only", "customers", stdout=io.StringIO(), stderr=io.StringIO())
    assert BillingInformation.objects.get().sync_status == "synced"
    assert ExternalCustomer.objects.count() == 1


# Re-validation.


def test_revalidation_finds_a_number_gone_invalid(api, vies, user):
    vies.register("DE136695976")
    create(api, GERMAN)
    BillingInformation.objects.update(vat_verified_at="2020-01-01T00:00:00Z")
    vies.reset()
    received = []

    def receiver(sender, billing_information, **kwargs):
        received.append(billing_information)

    signals.vat_number_invalidated.connect(receiver)
    try:
        call_command("revalidatevat", stdout=io.StringIO())
    finally:
        signals.vat_number_invalidated.disconnect(receiver)
    billing = BillingInformation.objects.get()
    assert (billing.vat_status, billing.tax_exempt) == ("invalid", "none")
    assert received == [billing]


def test_revalidation_keeps_a_confirmed_number_while_vies_is_down(api, vies):
    vies.register("DE136695976")
    create(api, GERMAN)
    BillingInformation.objects.update(vat_verified_at="2020-01-01T00:00:00Z")
    vies.fail("DE", "MS_UNAVAILABLE")
    stdout = io.StringIO()
    call_command("revalidatevat", stdout=stdout)
    assert BillingInformation.objects.get().vat_status == "valid"
    assert "1 still unverified" in stdout.getvalue()


def test_recent_valid_numbers_are_not_rechecked(api, vies):
    vies.register("DE136695976")
    create(api, GERMAN)
    vies.requests.clear()
    call_command("revalidatevat", stdout=io.StringIO())
    assert vies.requests == []


# The check endpoint.


def test_vat_validate_answers_the_verdict(api, vies):
    vies.register("DE136695976", name="ALICE GMBH", address="Berlin")
    body = api.post(VAT_URL, {"vat_number": "DE136695976", "country": "DE"}).json()
    assert (body["status"], body["vat_number"], body["name"]) == ("valid", "DE136695976", "ALICE GMBH")
    body = api.post(VAT_URL, {"vat_number": "DE123456789", "country": "DE"}).json()
    assert (body["status"], body["code"]) == ("invalid", "invalid_checksum")
    vies.fail("DE", "TIMEOUT")
    body = api.post(VAT_URL, {"vat_number": "DE129273398", "country": "DE"}).json()
    assert (body["status"], body["code"]) == ("unverified", "TIMEOUT")
    assert not BillingInformation.objects.exists()


def test_vat_validate_needs_both_fields(api, vies):
    response = api.post(VAT_URL, {"vat_number": "DE136695976"})
    assert response.status_code == 400
    assert "country" in response.json()


def test_vat_validate_is_throttled_per_user(api, vies, settings):
    from django.core.cache import cache

    cache.clear()
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "VAT_VALIDATION_RATE": "2/minute"}
    for _ in range(2):
        assert api.post(VAT_URL, {"vat_number": "DE123456789", "country": "DE"}).status_code == 200
    response = api.post(VAT_URL, {"vat_number": "DE123456789", "country": "DE"})
    assert response.status_code == 429


def test_a_manager_of_one_organization_cannot_reach_another(client, vies, make_user, organization, make_member):
    from tests.testapp.models import Membership, Organization

    other_org = Organization.objects.create(name="Globex")
    alice, bob = make_user("alice"), make_user("bob")
    make_member(alice, "owner")
    Membership.objects.create(organization=other_org, user=bob, role="owner")
    client.force_login(bob)
    create(client, {**GERMAN, "name": "Globex", "vat_number": ""}, organization=other_org.pk)
    client.force_login(alice)
    assert client.get(f"{URL}?organization={other_org.pk}").status_code == 403
    patch = client.patch(f"{URL}?organization={other_org.pk}", {"name": "Hijacked"}, content_type="application/json")
    assert patch.status_code == 403
    assert BillingInformation.objects.get().name == "Globex"


@pytest.mark.django_db(transaction=True)
def test_the_answer_says_whether_the_push_went_through(client, make_user, vies, stripe_emulator, settings):
    """Outside a test transaction the push runs on commit, before the answer: it says synced."""
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "STRIPE_MAX_NETWORK_RETRIES": 0}
    client.force_login(make_user("committed"))
    response = create(client, {**GERMAN, "vat_number": ""})
    assert response.json()["sync_status"] == "synced"
    stripe_emulator.fail("POST", "/v1/customers/:id", status=500, times=5)
    response = client.patch(URL, {"city": "Hamburg"}, content_type="application/json")
    assert stripe_emulator.count("POST", "/v1/customers/:id") >= 1, dict(stripe_emulator.calls)
    assert response.json()["sync_status"] == "pending"
