"""Checkout, portal, subscription changes, orders and invoices: end to end through the emulator."""

import io

import pytest
from django.core.management import call_command
from django_countries import countries

from django_bob_payments.models import BillingInformation, Customer, Invoice, Order, Pricing, Product, Subscription
from django_bob_payments.services.vies import CircuitBreaker
from django_bob_payments.testing import build_event, post_event
from tests.shop import buy, checkout, deliver, remote_subscription

pytestmark = pytest.mark.django_db


def test_checkout_then_webhooks_make_an_active_subscription(api, shop, stripe_emulator, user):
    body, _ = buy(api, stripe_emulator, shop["pro_monthly"], quantity=3)
    assert body["url"].startswith("https://checkout.stripe.com/")
    session = stripe_emulator.all("checkout.session")[0]
    assert session["success_url"] == "https://shop.example/ok?session={CHECKOUT_SESSION_ID}"
    assert session["client_reference_id"] == str(body["order"])
    assert session["metadata"]["bob_payments_order_id"] == str(body["order"])
    assert session["tax_id_collection"] == {"enabled": True, "required": "never"}
    # The customer was pushed to Stripe first, once.
    assert stripe_emulator.count("POST", "/v1/customers") == 1
    customer = Customer.objects.get(user=user)
    subscription = Subscription.objects.get(customer=customer)
    assert (subscription.status, subscription.quantity) == ("active", 3)
    assert subscription.entitlements == {"limits": {"seats": 10}, "features": ["api"]}
    assert customer.has_feature("api") and not customer.has_feature("sso")
    assert customer.limit("seats") == 10
    order = Order.objects.get(pk=body["order"])
    assert (order.status, order.subscription) == ("paid", subscription)
    listed = api.get("/api/payment/subscriptions/").json()
    assert [(item["product"], item["status"], item["quantity"]) for item in listed] == [("pro", "active", 3)]


def test_cancel_then_resume_each_confirmed_by_webhook(api, shop, stripe_emulator):
    _, remote = buy(api, stripe_emulator, shop["pro_monthly"])
    subscription = Subscription.objects.get()
    response = api.post(f"/api/payment/subscriptions/{subscription.pk}/cancel/", {}, content_type="application/json")
    assert (response.status_code, response.json()["cancel_at_period_end"]) == (200, True)
    assert remote_subscription(stripe_emulator, remote["id"])["cancel_at_period_end"] is True
    deliver(api, "customer.subscription.updated", remote_subscription(stripe_emulator, remote["id"]))
    subscription.refresh_from_db()
    assert subscription.cancel_at_period_end and subscription.cancel_at == subscription.current_period_end

    response = api.post(f"/api/payment/subscriptions/{subscription.pk}/resume/")
    assert response.json()["cancel_at_period_end"] is False
    deliver(api, "customer.subscription.updated", remote_subscription(stripe_emulator, remote["id"]))
    subscription.refresh_from_db()
    assert (subscription.cancel_at_period_end, subscription.status) == (False, "active")
    assert api.post(f"/api/payment/subscriptions/{subscription.pk}/resume/").status_code == 409


def test_cancel_immediately(api, shop, stripe_emulator):
    _, remote = buy(api, stripe_emulator, shop["pro_monthly"])
    subscription = Subscription.objects.get()
    api.post(
        f"/api/payment/subscriptions/{subscription.pk}/cancel/", {"immediately": True}, content_type="application/json"
    )
    assert remote_subscription(stripe_emulator, remote["id"])["status"] == "canceled"
    deliver(api, "customer.subscription.deleted", remote_subscription(stripe_emulator, remote["id"]))
    subscription.refresh_from_db()
    assert subscription.status == "canceled"
    assert not Customer.objects.get(pk=subscription.customer_id).has_active_subscription()


def test_upgrade_changes_plan_and_entitlements(api, shop, stripe_emulator, settings):
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "PRORATION_BEHAVIOR": "always_invoice"}
    _, remote = buy(api, stripe_emulator, shop["pro_monthly"])
    subscription = Subscription.objects.get()
    response = api.post(
        f"/api/payment/subscriptions/{subscription.pk}/change-plan/",
        {"pricing": shop["team_monthly"].pk, "quantity": 12},
        content_type="application/json",
    )
    assert response.status_code == 200, response.json()
    item = remote_subscription(stripe_emulator, remote["id"])["items"]["data"][0]
    assert (item["price"]["unit_amount"], item["quantity"]) == (4900, 12)
    deliver(api, "customer.subscription.updated", remote_subscription(stripe_emulator, remote["id"]))
    subscription.refresh_from_db()
    assert (subscription.pricing, subscription.quantity) == (shop["team_monthly"], 12)
    assert Customer.objects.get(pk=subscription.customer_id).has_feature("sso")


def test_change_plan_checks_the_new_products_limits(api, shop, stripe_emulator):
    buy(api, stripe_emulator, shop["pro_monthly"])
    subscription = Subscription.objects.get()
    response = api.post(
        f"/api/payment/subscriptions/{subscription.pk}/change-plan/", {"quantity": 11}, content_type="application/json"
    )
    assert (response.status_code, response.json()["detail"]) == (409, "Quantity must be between 1 and 10 for Pro.")
    response = api.post(
        f"/api/payment/subscriptions/{subscription.pk}/change-plan/", {}, content_type="application/json"
    )
    assert response.status_code == 400


def test_a_second_subscription_to_a_one_per_customer_product_is_refused(api, shop, stripe_emulator):
    buy(api, stripe_emulator, shop["pro_monthly"])
    response = checkout(api, shop["pro_yearly"])
    assert response.status_code == 409
    assert response.json()["detail"].startswith("This customer already has the maximum")
    assert checkout(api, shop["pro_monthly"], quantity=11).status_code == 409


def test_a_pricing_not_at_stripe_yet_is_pushed_at_checkout(api, shop, stripe_emulator):
    pricing = Pricing.objects.create(product=shop["pro_monthly"].product, amount=500, currency="eur", interval="week")
    response = checkout(api, pricing)
    assert response.status_code == 201, response.json()
    session = stripe_emulator.all("checkout.session")[-1]
    assert session["amount_total"] == 500 == Order.objects.get().amount_total


def test_checkout_charges_the_local_price_without_a_sync(api, shop, stripe_emulator):
    """A pricing changed locally after the last sync: the session charges the local amount."""
    pricing = shop["pro_monthly"]
    old_price = pricing.external_ids.get().external_id
    Pricing.objects.filter(pk=pricing.pk).update(amount=990)
    pricing.refresh_from_db()
    response = checkout(api, pricing, quantity=2)
    assert response.status_code == 201, response.json()
    order = Order.objects.get()
    session = stripe_emulator.all("checkout.session")[-1]
    assert session["amount_total"] == order.amount_total == 1980
    # A new price with the new amount; the old one is archived, as the sync would.
    new_price = pricing.external_ids.get().external_id
    assert new_price != old_price
    prices = {price["id"]: price for price in stripe_emulator.all("price")}
    assert (prices[new_price]["unit_amount"], prices[old_price]["active"]) == (990, False)
    # The link records the terms: the next checkout pushes nothing.
    stripe_emulator.calls.clear()
    assert checkout(api, pricing).status_code == 201
    assert stripe_emulator.count("GET", "/v1/prices") == stripe_emulator.count("POST", "/v1/prices") == 0


def test_a_pricing_whose_push_fails_is_a_409(api, shop, stripe_emulator, settings):
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "STRIPE_MAX_NETWORK_RETRIES": 0}
    pricing = shop["pro_monthly"]
    Pricing.objects.filter(pk=pricing.pk).update(amount=990)
    stripe_emulator.fail("POST", "/v1/prices", status=500)
    response = checkout(api, pricing)
    assert response.status_code == 409, response.json()
    assert response.json()["code"] == "pricing_not_synced"
    assert not Order.objects.exists()
    assert stripe_emulator.all("checkout.session") == []


def test_checkout_pushes_billing_whose_last_push_failed(
    api, shop, stripe_emulator, settings, vies, django_capture_on_commit_callbacks
):
    """Stripe still holds `reverse` from an earlier number: checkout pushes the current status first."""
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "STRIPE_MAX_NETWORK_RETRIES": 0, "SELLER_COUNTRY": "FR"}
    vies.register("DE136695976")
    billing = {"name": "Alice GmbH", "email": "billing@alice.example", "country": "DE", "vat_number": "DE136695976"}
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/api/payment/billing/", billing, content_type="application/json").status_code == 201
    assert stripe_emulator.all("customer")[-1]["tax_exempt"] == "reverse"
    stripe_emulator.fail("POST", "/v1/customers/:id", status=500)
    with django_capture_on_commit_callbacks(execute=True):
        api.patch("/api/payment/billing/", {"vat_number": ""}, content_type="application/json")
    assert api.get("/api/payment/billing/").json()["sync_status"] == "pending"
    assert stripe_emulator.all("customer")[-1]["tax_exempt"] == "reverse"
    assert checkout(api, shop["pro_monthly"]).status_code == 201
    assert stripe_emulator.all("customer")[-1]["tax_exempt"] == "none"
    assert api.get("/api/payment/billing/").json()["sync_status"] == "synced"


def test_checkout_refuses_when_the_billing_push_fails(
    api, shop, stripe_emulator, settings, vies, django_capture_on_commit_callbacks
):
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "STRIPE_MAX_NETWORK_RETRIES": 0}
    stripe_emulator.fail("POST", "/v1/customers", status=500)
    billing = {"name": "Alice", "email": "alice@example.com", "country": "FR"}
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/api/payment/billing/", billing, content_type="application/json").status_code == 201
    stripe_emulator.fail("POST", "/v1/customers", status=500)
    response = checkout(api, shop["pro_monthly"])
    assert response.status_code == 409, response.json()
    assert response.json()["code"] == "customer_not_synced"
    assert stripe_emulator.all("checkout.session") == []


def test_checkout_urls_must_stay_on_this_site(api, shop, stripe_emulator):
    response = checkout(api, shop["pro_monthly"], success_url="https://evil.example/steal")
    assert response.status_code == 400
    assert "success_url" in response.json()
    assert stripe_emulator.count("POST", "/v1/checkout/sessions") == 0


def test_checkout_of_an_unknown_pricing(api, shop):
    assert checkout(api, Pricing(pk=999999)).status_code == 400


def test_a_provider_outage_is_a_502_and_the_attempt_is_recorded(api, shop, stripe_emulator, settings):
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "STRIPE_MAX_NETWORK_RETRIES": 0}
    stripe_emulator.fail("POST", "/v1/checkout/sessions", status=500)
    response = checkout(api, shop["pro_monthly"])
    assert (response.status_code, response.json()["detail"]) == (
        502,
        "The payment provider failed (APIError); try again.",
    )
    order = Order.objects.get()
    assert (order.status, order.payment_attempts.get().status) == ("failed", "failed")


def test_portal_needs_a_stripe_customer(api, shop, stripe_emulator):
    response = api.post("/api/payment/portal/")
    assert response.status_code == 409
    buy(api, stripe_emulator, shop["pro_monthly"])
    response = api.post("/api/payment/portal/")
    assert response.status_code == 200
    assert response.json()["url"].startswith("https://billing.stripe.com/")
    assert stripe_emulator.all("billing_portal.session")[0]["return_url"] == "https://shop.example/account"


def test_orders_and_invoices_are_listed(api, shop, stripe_emulator):
    _, remote = buy(api, stripe_emulator, shop["pro_monthly"], quantity=2)
    from django_bob_payments.testing import stripe_objects

    invoice = stripe_objects.invoice(remote["customer"], subscription_id=remote["id"], total=3800, number="INV-1")
    deliver(api, "invoice.paid", invoice)
    # A draft, which Stripe finalizes later, is not the customer's to see yet.
    deliver(api, "invoice.created", stripe_objects.invoice(remote["customer"], status="draft", number=""))
    assert Invoice.objects.filter(status="draft").count() == 1
    orders = api.get("/api/payment/orders/").json()
    assert [(order["status"], order["amount_total"]) for order in orders] == [("paid", 3800)]
    assert [attempt["status"] for attempt in orders[0]["payment_attempts"]] == ["succeeded"]
    invoices = api.get("/api/payment/invoices/").json()
    assert [(inv["number"], inv["total"], inv["status"]) for inv in invoices] == [("INV-1", 3800, "paid")]
    assert invoices[0]["hosted_invoice_url"].startswith("https://invoice.stripe.com/")


def test_nobody_sees_or_changes_another_customers_billing(client, shop, stripe_emulator, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    client.force_login(alice)
    buy(client, stripe_emulator, shop["pro_monthly"])
    subscription = Subscription.objects.get()
    client.force_login(bob)
    for url in ("/api/payment/subscriptions/", "/api/payment/orders/", "/api/payment/invoices/"):
        assert client.get(url).json() == []
    for action in ("cancel", "resume", "change-plan"):
        response = client.post(f"/api/payment/subscriptions/{subscription.pk}/{action}/", {"quantity": 2})
        assert response.status_code == 404
    subscription.refresh_from_db()
    assert (subscription.cancel_at_period_end, subscription.quantity) == (False, 1)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("post", "/api/payment/checkout/"),
        ("post", "/api/payment/portal/"),
        ("get", "/api/payment/subscriptions/"),
        ("post", "/api/payment/subscriptions/1/cancel/"),
        ("get", "/api/payment/orders/"),
        ("get", "/api/payment/invoices/"),
        ("get", "/api/payment/billing/"),
    ],
)
def test_anonymous_calls_are_refused(client, method, url):
    assert getattr(client, method)(url).status_code in (401, 403)


def test_the_catalog_is_public_cacheable_and_constant_in_queries(client, shop, django_assert_num_queries):
    with django_assert_num_queries(2):
        response = client.get("/api/payment/products/")
    assert response["Cache-Control"] == "public, max-age=300"
    assert [(p["slug"], [price["amount"] for price in p["pricings"]]) for p in response.json()] == [
        ("pro", [1900, 19000]),
        ("team", [4900]),
    ]
    for index in range(10):
        product = Product.objects.create(slug=f"extra{index}", name="Extra")
        Pricing.objects.create(product=product, amount=100, currency="eur", interval="month")
    with django_assert_num_queries(2):
        assert len(client.get("/api/payment/products/").json()) == 12


def test_lists_take_a_fixed_number_of_queries(api, shop, stripe_emulator, django_assert_num_queries):
    buy(api, stripe_emulator, shop["pro_monthly"])
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = {}
    for url in ("/api/payment/subscriptions/", "/api/payment/orders/", "/api/payment/invoices/"):
        with CaptureQueriesContext(connection) as captured:
            api.get(url)
        counts[url] = len(captured)
    # session, user, customer, then one list query (and one more for the orders' attempts)
    assert list(counts.values()) == [4, 5, 4]
    customer = Subscription.objects.get().customer
    for _ in range(5):
        order = Order.objects.create(customer=customer, pricing=shop["pro_monthly"], currency="eur")
        order.payment_attempts.create(provider="stripe", currency="eur")
        Subscription.objects.create(customer=customer, pricing=shop["team_monthly"], status="canceled")
    for url, expected in counts.items():
        with django_assert_num_queries(expected):
            api.get(url)


def test_entitlement_permissions_and_decorators(api, shop, stripe_emulator, client):
    assert api.get("/premium/api/").status_code == 403
    assert api.get("/premium/sso/").status_code == 403
    assert api.get("/premium/view/").status_code == 403
    buy(api, stripe_emulator, shop["pro_monthly"])
    assert api.get("/premium/api/").status_code == 200
    assert api.get("/premium/view/").status_code == 200
    assert api.get("/premium/sso/").status_code == 403
    client.logout()
    assert client.get("/premium/view/").status_code == 403


def test_a_downgrade_at_period_end_goes_through_a_schedule(api, shop, stripe_emulator):
    _, remote = buy(api, stripe_emulator, shop["team_monthly"], quantity=5)
    subscription = Subscription.objects.get()
    response = api.post(
        f"/api/payment/subscriptions/{subscription.pk}/change-plan/",
        {"pricing": shop["pro_monthly"].pk, "quantity": 2, "at_period_end": True},
        content_type="application/json",
    )
    assert response.status_code == 200, response.json()
    assert (response.json()["scheduled_pricing"], response.json()["scheduled_quantity"]) == (shop["pro_monthly"].pk, 2)
    # Nothing changes now: the plan, its entitlements and the Stripe item stay.
    subscription.refresh_from_db()
    assert (subscription.pricing, subscription.quantity) == (shop["team_monthly"], 5)
    item = remote_subscription(stripe_emulator, remote["id"])["items"]["data"][0]
    assert (item["price"]["unit_amount"], item["quantity"]) == (4900, 5)
    schedule = stripe_emulator.all("subscription_schedule")[0]
    assert [phase["items"][0]["quantity"] for phase in schedule["phases"]] == [5, 2]
    assert schedule["phases"][0]["end_date"] == item["current_period_end"]
    # The period ends: Stripe switches the plan and says so.
    switched = stripe_emulator.advance_schedule(schedule["id"])
    deliver(api, "customer.subscription.updated", switched)
    subscription.refresh_from_db()
    assert (subscription.pricing, subscription.quantity) == (shop["pro_monthly"], 2)
    assert (subscription.scheduled_pricing, subscription.scheduled_quantity) == (None, None)
    assert not Customer.objects.get(pk=subscription.customer_id).has_feature("sso")


def test_actions_take_the_same_number_of_queries_whatever_the_data(api, shop, stripe_emulator, user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count(method, url, data=None):
        with CaptureQueriesContext(connection) as captured:
            response = getattr(api, method)(url, data or {}, content_type="application/json")
        assert response.status_code < 300, response.content
        return len(captured)

    _, remote = buy(api, stripe_emulator, shop["pro_monthly"])
    subscription = Subscription.objects.get()
    base = f"/api/payment/subscriptions/{subscription.pk}"

    def cancel_then_resume():
        canceled = count("post", f"{base}/cancel/")
        # The row follows Stripe's webhook: resume needs the cancellation recorded.
        deliver(api, "customer.subscription.updated", remote_subscription(stripe_emulator, remote["id"]))
        return canceled, count("post", f"{base}/resume/")

    first = dict(zip(("cancel", "resume"), cancel_then_resume(), strict=True))
    deliver(api, "customer.subscription.updated", remote_subscription(stripe_emulator, remote["id"]))
    first = {
        **first,
        "portal": count("post", "/api/payment/portal/"),
        "checkout": count("post", "/api/payment/checkout/", {"pricing": shop["team_monthly"].pk}),
    }
    # The Team session left open expires (its webhook arrives), as the next one would close it.
    open_session = next(obj for obj in stripe_emulator.all("checkout.session") if obj["status"] == "open")
    session = stripe_emulator.expire_checkout(open_session["id"])
    deliver(api, "checkout.session.expired", session)
    customer = subscription.customer
    for _ in range(10):
        order = Order.objects.create(customer=customer, pricing=shop["pro_monthly"], currency="eur")
        order.payment_attempts.create(provider="stripe", currency="eur")
        Subscription.objects.create(customer=customer, pricing=shop["pro_yearly"], status="canceled")
    again = dict(zip(("cancel", "resume"), cancel_then_resume(), strict=True))
    again = {
        **again,
        "portal": count("post", "/api/payment/portal/"),
        "checkout": count("post", "/api/payment/checkout/", {"pricing": shop["team_monthly"].pk, "quantity": 2}),
    }
    assert again == first


def test_permissions_look_the_customer_up_once(api, shop, stripe_emulator, django_assert_num_queries):
    buy(api, stripe_emulator, shop["pro_monthly"])
    # session, user, customer, its entitled subscriptions; not once per permission class
    with django_assert_num_queries(4):
        assert api.get("/premium/both/").status_code == 200


def test_without_url_settings_checkout_and_the_portal_return_to_the_requesting_site(
    api, shop, stripe_emulator, settings
):
    settings.BOB_PAYMENTS = {
        key: value
        for key, value in settings.BOB_PAYMENTS.items()
        if key not in ("CHECKOUT_SUCCESS_URL", "CHECKOUT_CANCEL_URL", "PORTAL_RETURN_URL")
    }
    settings.ALLOWED_HOSTS = ["billing.example.org"]
    response = api.post(
        "/api/payment/checkout/",
        {"pricing": shop["pro_monthly"].pk},
        content_type="application/json",
        HTTP_HOST="billing.example.org",
    )
    assert response.status_code == 201, response.content
    session = stripe_emulator.all("checkout.session")[0]
    assert session["success_url"] == "http://billing.example.org/?checkout=success&session_id={CHECKOUT_SESSION_ID}"
    assert session["cancel_url"] == "http://billing.example.org/?checkout=canceled"
    response = api.post("/api/payment/portal/", HTTP_HOST="billing.example.org")
    assert response.status_code == 200, response.content
    assert (
        stripe_emulator.all("billing_portal.session")[0]["return_url"] == "http://billing.example.org/?portal=returned"
    )


def test_the_admin_shows_prices_as_people_read_them(shop):
    assert str(shop["pro_monthly"]) == "Pro: 19.00 EUR / month"
    yen = Pricing.objects.create(product=shop["pro_monthly"].product, amount=1200, currency="jpy", type="one_time")
    assert str(yen) == "Pro: 1200 JPY"


def buy_with_details(api, stripe_emulator, pricing, on_commit, **details):
    """Checkout; the buyer types ``details`` (address, name, tax_ids) on the hosted page; webhooks delivered."""
    assert checkout(api, pricing).status_code == 201
    session_id = stripe_emulator.all("checkout.session")[-1]["id"]
    session, _ = stripe_emulator.complete_checkout(session_id, **details)
    with on_commit(execute=True):
        deliver(api, "checkout.session.completed", session)
    return session


def test_a_vat_number_typed_in_checkout_is_checked_and_kept(
    api, shop, stripe_emulator, vies, settings, django_capture_on_commit_callbacks
):
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "SELLER_VAT_NUMBER": "FR40303265045"}
    vies.register("DE136695976")
    billing = {"name": "Alice GmbH", "email": "billing@alice.example", "country": "DE"}
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/api/payment/billing/", billing, content_type="application/json").status_code == 201
    assert api.get("/api/payment/billing/").json()["tax_exempt"] == "none"
    buy_with_details(
        api,
        stripe_emulator,
        shop["pro_monthly"],
        django_capture_on_commit_callbacks,
        tax_ids=[("eu_vat", "DE136695976")],
    )
    saved = api.get("/api/payment/billing/").json()
    assert (saved["vat_number"], saved["vat_status"], saved["tax_exempt"]) == ("DE136695976", "valid", "reverse")
    assert saved["vies_consultation_number"]
    assert [r["body"]["vatNumber"] for r in vies.requests if r.get("body")] == ["136695976"]
    remote = stripe_emulator.all("customer")[-1]
    assert remote["tax_exempt"] == "reverse"
    # The sync keeps the number the buyer entered.
    call_command("synchronizepayments", stdout=io.StringIO())
    assert [tax["value"] for tax in stripe_emulator.all("tax_id") if not tax.get("deleted")] == ["DE136695976"]


def test_a_checkout_number_vies_cannot_check_stays_unverified_and_taxed(
    api, shop, stripe_emulator, vies, django_capture_on_commit_callbacks
):
    vies.fail("DE", "MS_UNAVAILABLE")
    buy_with_details(
        api,
        stripe_emulator,
        shop["pro_monthly"],
        django_capture_on_commit_callbacks,
        address={"line1": "Hauptstr. 1", "postal_code": "10115", "city": "Berlin", "country": "DE"},
        name="Alice GmbH",
        tax_ids=[("eu_vat", "DE136695976")],
    )
    # No billing information before: it is made from what the buyer typed.
    saved = api.get("/api/payment/billing/").json()
    assert (saved["country"], saved["city"], saved["name"]) == ("DE", "Berlin", "Alice GmbH")
    assert (saved["vat_number"], saved["vat_status"], saved["tax_exempt"]) == ("DE136695976", "unverified", "none")
    # VIES answers later: revalidatevat confirms it.
    vies.recover("DE")
    vies.register("DE136695976")
    CircuitBreaker().reset()  # the back-off has passed
    with django_capture_on_commit_callbacks(execute=True):
        call_command("revalidatevat", stdout=io.StringIO())
    assert api.get("/api/payment/billing/").json()["tax_exempt"] == "reverse"


def test_billing_changed_after_the_checkout_keeps_its_number(api, shop, stripe_emulator, vies):
    billing = {"name": "Alice", "email": "alice@example.com", "country": "FR"}
    assert api.post("/api/payment/billing/", billing, content_type="application/json").status_code == 201
    assert checkout(api, shop["pro_monthly"]).status_code == 201
    session_id = stripe_emulator.all("checkout.session")[-1]["id"]
    session, _ = stripe_emulator.complete_checkout(session_id, tax_ids=[("eu_vat", "DE136695976")])
    event = build_event("checkout.session.completed", session)
    event["created"] -= 3600  # the buyer edited the billing information since
    assert post_event(api, event).status_code == 200
    saved = api.get("/api/payment/billing/").json()
    assert (saved["vat_number"], saved["vat_status"]) == ("", "not_applicable")


def test_checkout_details_are_checked_against_the_country_codes_without_listing_them(
    api, shop, stripe_emulator, vies, monkeypatch, django_capture_on_commit_callbacks
):
    # Listing the countries sorts their translated names (about 0.1 ms): a webhook only
    # asks whether the code is one.
    def listed(self):
        raise AssertionError("the country list was built")

    for country, recorded in (("ZZ", False), ("DE", True)):
        assert checkout(api, shop["pro_monthly"]).status_code == 201
        session_id = stripe_emulator.all("checkout.session")[-1]["id"]
        address = {"line1": "Hauptstr. 1", "postal_code": "10115", "city": "Berlin", "country": country}
        session, _ = stripe_emulator.complete_checkout(session_id, address=address, name="Alice GmbH")
        with monkeypatch.context() as patched, django_capture_on_commit_callbacks(execute=True):
            patched.setattr(type(countries), "__iter__", listed)
            deliver(api, "checkout.session.completed", session)
        assert BillingInformation.objects.filter(country=country).exists() is recorded
