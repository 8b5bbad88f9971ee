"""The same flows on the fake provider, with no Stripe settings at all."""

import io

import pytest
from django.core import mail
from django.core.management import call_command

from django_bob_payments.checks import check_settings
from django_bob_payments.models import (
    BillingInformation,
    Customer,
    FakeProviderObject,
    Order,
    Pricing,
    Product,
    Subscription,
    WebhookEvent,
)

pytestmark = pytest.mark.django_db

FAKE = {
    "PROVIDER": "fake",
    "SELLER_COUNTRY": "FR",
    "CHECKOUT_SUCCESS_URL": "https://shop.example/ok?session={CHECKOUT_SESSION_ID}",
    "CHECKOUT_CANCEL_URL": "https://shop.example/cancel",
    "PORTAL_RETURN_URL": "https://shop.example/account",
    "FAKE_PROVIDER_ALLOWED": True,
    "ORGANIZATION_MODEL": "testapp.Organization",
}


@pytest.fixture
def shop(settings, db):
    settings.BOB_PAYMENTS = FAKE
    pro = Product.objects.create(slug="pro", name="Pro", limits={"seats": 10}, features=["api"], max_quantity=10)
    team = Product.objects.create(slug="team", name="Team", limits={"seats": 50}, features=["api", "sso"])
    prices = {
        "pro": Pricing.objects.create(product=pro, amount=1900, currency="eur", interval="month"),
        "team": Pricing.objects.create(product=team, amount=4900, currency="eur", interval="month"),
    }
    call_command("synchronizepayments", stdout=io.StringIO(), stderr=io.StringIO())
    return prices


@pytest.fixture
def api(client, user):
    client.force_login(user)
    return client


def pay(api, pricing, quantity=1):
    response = api.post(
        "/api/payment/checkout/", {"pricing": pricing.pk, "quantity": quantity}, content_type="application/json"
    )
    assert response.status_code == 201, response.json()
    url = response.json()["url"]
    # An absolute link, on the requesting site.
    assert url.startswith("http://testserver/api/payment/fake/checkout/fake_cs_")
    assert api.get(url).status_code == 200
    return api.post(url, {"action": "pay"})


def test_the_sync_works_on_the_fake_provider(shop):
    kinds = sorted(FakeProviderObject.objects.values_list("kind", flat=True))
    assert kinds == ["price", "price", "product", "product"]
    stdout = io.StringIO()
    call_command("synchronizepayments", "--only", "products", stdout=stdout, stderr=io.StringIO())
    assert stdout.getvalue().splitlines()[2].split() == ["products", "0", "0", "0", "2", "0"]


def test_checkout_on_the_hosted_page_starts_the_subscription(api, shop, user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = pay(api, shop["pro"], quantity=2)
    assert response.status_code == 302
    assert response["Location"].startswith("https://shop.example/ok?session=fake_cs_")
    customer = Customer.objects.get(user=user)
    subscription = Subscription.objects.get(customer=customer)
    assert (subscription.status, subscription.quantity) == ("active", 2)
    assert customer.has_feature("api")
    order = Order.objects.get()
    assert (order.status, order.subscription) == ("paid", subscription)
    assert customer.invoices.get().total == 3800
    # The same inbox and handlers as Stripe's.
    assert set(WebhookEvent.objects.values_list("provider", "status")) == {("fake", "processed")}
    assert [message.subject.split(":")[0] for message in mail.outbox] == [
        f"Receipt for invoice {customer.invoices.get().number}"
    ]


def test_leaving_the_page_expires_the_order(api, shop):
    response = api.post("/api/payment/checkout/", {"pricing": shop["pro"].pk}, content_type="application/json")
    page = response.json()["url"]
    assert api.post(page, {"action": "cancel"})["Location"] == "https://shop.example/cancel"
    assert Order.objects.get().status == "expired"
    assert not Subscription.objects.exists()


def test_cancel_resume_and_change_plan(api, shop):
    pay(api, shop["pro"])
    subscription = Subscription.objects.get()
    url = f"/api/payment/subscriptions/{subscription.pk}"
    api.post(f"{url}/cancel/")
    subscription.refresh_from_db()
    assert subscription.cancel_at_period_end and subscription.cancel_at == subscription.current_period_end
    api.post(f"{url}/resume/")
    subscription.refresh_from_db()
    assert not subscription.cancel_at_period_end
    api.post(f"{url}/change-plan/", {"pricing": shop["team"].pk, "quantity": 5}, content_type="application/json")
    subscription.refresh_from_db()
    assert (subscription.pricing, subscription.quantity) == (shop["team"], 5)
    assert subscription.customer.has_feature("sso")
    api.post(f"{url}/cancel/", {"immediately": True}, content_type="application/json")
    subscription.refresh_from_db()
    assert subscription.status == "canceled"


def test_limits_portal_and_lists(shop, api):
    assert api.post("/api/payment/portal/").status_code == 409
    pay(api, shop["pro"])
    again = api.post("/api/payment/checkout/", {"pricing": shop["pro"].pk}, content_type="application/json")
    assert again.status_code == 409
    assert api.post("/api/payment/portal/").json()["url"] == "https://shop.example/account"
    assert [order["status"] for order in api.get("/api/payment/orders/").json()] == ["paid"]
    assert len(api.get("/api/payment/invoices/").json()) == 1


def test_billing_information_syncs_to_the_fake_provider(api, shop, vies, django_capture_on_commit_callbacks):
    vies.register("DE136695976")
    with django_capture_on_commit_callbacks(execute=True):
        api.post(
            "/api/payment/billing/",
            {"name": "Alice GmbH", "email": "a@example.com", "country": "DE", "vat_number": "DE136695976"},
            content_type="application/json",
        )
    assert BillingInformation.objects.get().sync_status == "synced"
    remote = FakeProviderObject.objects.get(
        kind="customer", data__local_id=str(Customer.objects.get(user__username="alice").pk)
    )
    assert (remote.data["fields"]["tax_exempt"], remote.data["fields"]["tax_id"]) == ("reverse", "DE136695976")


def test_the_checkout_page_exists_only_with_the_fake_provider(client, settings):
    settings.BOB_PAYMENTS = {**FAKE, "PROVIDER": "stripe"}
    assert client.get("/api/payment/fake/checkout/fake_cs_x/").status_code == 404
    settings.BOB_PAYMENTS = FAKE
    assert client.get("/api/payment/fake/checkout/fake_cs_x/").status_code == 404


def test_the_fake_provider_is_refused_in_production(settings):
    settings.DEBUG = False
    settings.BOB_PAYMENTS = {**FAKE, "FAKE_PROVIDER_ALLOWED": False}
    assert [message.id for message in check_settings()] == ["bob_payments.E011"]
    settings.DEBUG = True
    assert check_settings() == []


def test_a_downgrade_at_period_end_is_recorded(api, shop):
    pay(api, shop["team"], quantity=3)
    subscription = Subscription.objects.get()
    response = api.post(
        f"/api/payment/subscriptions/{subscription.pk}/change-plan/",
        {"pricing": shop["pro"].pk, "at_period_end": True},
        content_type="application/json",
    )
    assert response.json()["scheduled_pricing"] == shop["pro"].pk
    subscription.refresh_from_db()
    assert (subscription.pricing, subscription.scheduled_pricing, subscription.scheduled_quantity) == (
        shop["team"],
        shop["pro"],
        3,
    )
    remote = FakeProviderObject.objects.get(kind="subscription")
    assert remote.data["scheduled"]["quantity"] == 3


def test_the_checkout_state_is_complete_as_soon_as_the_fake_page_is_paid(api, shop, django_capture_on_commit_callbacks):
    response = api.post(
        "/api/payment/checkout/", {"pricing": shop["pro"].pk, "quantity": 1}, content_type="application/json"
    )
    session_id = response.json()["url"].rstrip("/").rsplit("/", 1)[1]
    state = api.get(f"/api/payment/checkout/{session_id}/").json()
    assert (state["state"], state["subscription"]) == ("processing", None)
    with django_capture_on_commit_callbacks(execute=True):
        api.post(response.json()["url"], {"action": "pay"})
    # The fake provider applies its events as the page is paid: no read, no wait.
    state = api.get(f"/api/payment/checkout/{session_id}/").json()
    assert (state["state"], state["subscription"]["status"]) == ("complete", "active")


@pytest.mark.parametrize(
    ("tax_exempt", "tax_line"),
    [
        ("reverse", "Reverse charge: the customer accounts for VAT."),
        ("exempt", "Exempt: outside the EU."),
        ("none", "The fake provider computes no tax."),
    ],
)
def test_the_hosted_page_shows_what_is_bought(api, shop, user, tax_exempt, tax_line):
    customer = Customer.objects.get(user=user)
    BillingInformation.objects.create(
        customer=customer, name="Buyer", email="buyer@example.com", country="DE", tax_exempt=tax_exempt
    )
    response = api.post(
        "/api/payment/checkout/", {"pricing": shop["pro"].pk, "quantity": 3}, content_type="application/json"
    )
    page = api.get(response.json()["url"])
    assert page.status_code == 200
    html = page.content.decode()
    assert "<h1>Pro</h1>" in html
    assert "19.00 EUR per month" in html
    assert '<th scope="row">Quantity</th><td>3</td>' in html
    assert tax_line in html
    assert "Total due today, then every month" in html
    assert "Pay 57.00 EUR" in html
    assert "Fake provider: no money moves." in html
    assert 'value="cancel"' in html


def test_a_yearly_price_starts_a_yearly_period(api, shop, user, settings):
    yearly = Pricing.objects.create(product=shop["team"].product, amount=49000, currency="eur", interval="year")
    call_command("synchronizepayments", stdout=io.StringIO(), stderr=io.StringIO())
    assert pay(api, yearly).status_code == 302
    subscription = Subscription.objects.get(customer__user=user)
    length = subscription.current_period_end - subscription.current_period_start
    assert length.days == 365
