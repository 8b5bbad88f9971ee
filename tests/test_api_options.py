"""The API describes itself as DRF users expect: OPTIONS lists what each endpoint accepts."""

import pytest

from django_bob_payments import serializers as app_serializers
from django_bob_payments.models import BillingInformation, Customer, Pricing, Product, Subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def subscription(user):
    product = Product.objects.create(slug="pro", name="Pro")
    pricing = Pricing.objects.create(product=product, amount=900, currency="eur", interval="month")
    return Subscription.objects.create(customer=Customer.objects.get(user=user), pricing=pricing, status="active")


def fields_of(serializer_class):
    return set(serializer_class().fields)


def options(api, url):
    response = api.options(url)
    assert response.status_code == 200, response.content
    return response.json()


def test_every_writable_endpoint_lists_its_fields(api, subscription):
    base = f"/api/payment/subscriptions/{subscription.pk}"
    expected = {
        "/api/payment/billing/": {"POST": fields_of(app_serializers.BillingInformationSerializer)},
        "/api/payment/vat/validate/": {"POST": fields_of(app_serializers.VatValidationSerializer)},
        "/api/payment/checkout/": {"POST": fields_of(app_serializers.CheckoutSerializer)},
        "/api/payment/portal/": {"POST": fields_of(app_serializers.ReturnUrlSerializer)},
        f"{base}/cancel/": {"POST": fields_of(app_serializers.CancelSerializer)},
        f"{base}/resume/": {"POST": set()},
        f"{base}/change-plan/": {"POST": fields_of(app_serializers.ChangePlanSerializer)},
    }
    for url, actions in expected.items():
        described = options(api, url)
        assert {method: set(fields) for method, fields in described["actions"].items()} == actions, url
        assert described["name"] and "``" not in described["description"], url


@pytest.mark.parametrize(
    "url", ["/api/payment/subscriptions/", "/api/payment/orders/", "/api/payment/invoices/", "/api/payment/products/"]
)
def test_read_only_endpoints_list_no_actions(api, url):
    assert "actions" not in options(api, url)


def test_billing_offers_post_until_it_exists_then_put(api, user):
    assert set(options(api, "/api/payment/billing/")["actions"]) == {"POST"}
    BillingInformation.objects.create(
        customer=Customer.objects.get(user=user), name="Ann", email="ann@example.com", country="FR"
    )
    described = options(api, "/api/payment/billing/")
    assert set(described["actions"]) == {"PUT"}
    assert described["actions"]["PUT"]["country"]["type"] == "choice"


def test_the_browsable_api_prefills_the_billing_form_and_hides_post(api, user):
    before = api.get("/api/payment/billing/", HTTP_ACCEPT="text/html").content.decode()
    assert 'method="POST"' in before.replace('name="_method"', "")
    BillingInformation.objects.create(
        customer=Customer.objects.get(user=user), name="Ann Example", email="ann@example.com", country="FR"
    )
    page = api.get("/api/payment/billing/", HTTP_ACCEPT="text/html").content.decode()
    assert 'value="Ann Example"' in page
    assert 'data-method="PUT"' in page
    assert 'method="POST"' not in page.replace('name="_method"', "")


def test_the_api_root_lists_the_endpoints_with_absolute_urls(client):
    listed = client.get("/api/payment/").json()
    assert listed["checkout"] == "http://testserver/api/payment/checkout/"
    assert set(listed) == {
        "billing",
        "vat-validate",
        "products",
        "checkout",
        "portal",
        "subscriptions",
        "orders",
        "invoices",
        "schema",
    }


def test_the_country_field_preselects_no_country(api):
    page = api.get("/api/payment/billing/", HTTP_ACCEPT="text/html").content.decode()
    assert '<option value="" disabled selected>Choose a country</option>' in page
    assert '<option value="AF" >' in page or '<option value="AF">' in page
    assert '<option value="AF" selected' not in page
