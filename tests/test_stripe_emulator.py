"""The Stripe emulator behaves like Stripe where the app depends on it, seen through the SDK."""

import pytest
import requests
import stripe


@pytest.fixture
def client(stripe_emulator):
    return stripe.StripeClient(
        "sk_test_emulator",
        base_addresses={"api": stripe_emulator.url},
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=5),
    )


@pytest.fixture
def monthly(client):
    product = client.v1.products.create({"name": "Pro"})
    return client.v1.prices.create(
        {"product": product.id, "unit_amount": 1900, "currency": "eur", "recurring": {"interval": "month"}}
    )


def test_unknown_parameters_are_refused_like_stripe(client):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.customers.create({"email": "a@example.com", "favourite_colour": "blue"})
    assert excinfo.value.http_status == 400
    assert excinfo.value.code == "parameter_unknown"
    assert excinfo.value.error.param == "favourite_colour"
    assert excinfo.value.request_id.startswith("req_")


@pytest.mark.parametrize(
    ("call", "param", "code"),
    [
        # A nested name the SDK's types do not know.
        (
            lambda c, p: c.v1.customers.create({"address": {"line1": "x", "floor": "3"}}),
            "address[floor]",
            "parameter_unknown",
        ),
        # An empty string where the type has no Literal[''].
        (
            lambda c, p: c.v1.customers.create({"address": {"line1": "x", "line2": ""}}),
            "address[line2]",
            "parameter_invalid_empty",
        ),
        (lambda c, p: c.v1.customers.create({"email": ""}), "email", "parameter_invalid_empty"),
        # An enum value outside the Literal.
        (
            lambda c, p: c.v1.checkout.sessions.create(
                {"mode": "rental", "line_items": [{"price": p.id, "quantity": 1}]}
            ),
            "mode",
            None,
        ),
        (
            lambda c, p: c.v1.customers.create({"tax_id_data": [{"type": "xx_vat", "value": "1"}]}),
            "tax_id_data[0][type]",
            None,
        ),
        # Numbers and booleans as Stripe reads them from the form.
        (
            lambda c, p: c.v1.checkout.sessions.create(
                {"mode": "subscription", "line_items": [{"price": p.id, "quantity": "many"}]}
            ),
            "line_items[0][quantity]",
            "parameter_invalid_integer",
        ),
        (lambda c, p: c.v1.prices.update(p.id, {"active": "maybe"}), "active", "parameter_invalid_boolean"),
    ],
)
def test_parameters_are_checked_against_the_sdks_types(client, monthly, call, param, code):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        call(client, monthly)
    assert excinfo.value.http_status == 400
    assert (excinfo.value.error.param, excinfo.value.code) == (param, code)


def test_values_the_types_allow_are_taken(client, monthly):
    customer = client.v1.customers.create(
        {"address": {"line1": "Main Street 1", "country": "DE"}, "preferred_locales": ["de"], "metadata": {"a": "1"}}
    )
    # The SDK's types allow "" for these: Stripe unsets them.
    updated = client.v1.customers.update(customer.id, {"address": "", "metadata": ""})
    assert updated.address is None
    # Not this one: a list with no Literal[''] cannot be unset.
    with pytest.raises(stripe.InvalidRequestError, match="preferred_locales"):
        client.v1.customers.update(customer.id, {"preferred_locales": ""})
    client.v1.prices.update(monthly.id, {"active": False})
    with pytest.raises(stripe.InvalidRequestError, match="nickname"):
        client.v1.prices.update(monthly.id, {"nickname": ""})


def test_prices_are_immutable(client, monthly):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.prices.update(monthly.id, {"unit_amount": 2900})
    assert excinfo.value.code == "parameter_unknown"


def test_checkout_refuses_payment_method_types_since_endive(client, monthly):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.checkout.sessions.create(
            {
                "mode": "subscription",
                "line_items": [{"price": monthly.id, "quantity": 1}],
                "payment_method_types": ["card"],
            }
        )
    assert excinfo.value.error.param == "payment_method_types"


def test_checkout_customer_update_needs_a_customer(client, monthly):
    with pytest.raises(stripe.InvalidRequestError, match="customer_update"):
        client.v1.checkout.sessions.create(
            {
                "mode": "subscription",
                "line_items": [{"price": monthly.id, "quantity": 1}],
                "customer_update": {"address": "auto"},
            }
        )


def test_checkout_modes_must_match_the_price(client, monthly):
    with pytest.raises(stripe.InvalidRequestError, match="recurring price"):
        client.v1.checkout.sessions.create({"mode": "payment", "line_items": [{"price": monthly.id, "quantity": 1}]})


def test_checkout_completes_into_a_subscription(client, stripe_emulator, monthly):
    customer = client.v1.customers.create({"email": "a@example.com"})
    session = client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": monthly.id, "quantity": 3}],
            "client_reference_id": "order-7",
            "subscription_data": {"metadata": {"bob_payments_id": "7"}, "trial_period_days": 14},
            "success_url": "https://example.com/ok",
        }
    )
    assert (session.status, session.payment_status, session.amount_total) == ("open", "unpaid", 5700)
    assert session.url.startswith("https://checkout.stripe.com/")
    completed, subscription = stripe_emulator.complete_checkout(session.id)
    assert completed["status"] == "complete"
    assert completed["subscription"] == subscription["id"]
    fetched = client.v1.subscriptions.retrieve(subscription["id"])
    assert fetched.status == "trialing"
    assert fetched["items"].data[0].quantity == 3
    assert fetched["items"].data[0].current_period_end > fetched["items"].data[0].current_period_start
    assert fetched.metadata["bob_payments_id"] == "7"


def test_subscription_changes(client, stripe_emulator, monthly):
    customer = client.v1.customers.create({})
    session = client.v1.checkout.sessions.create(
        {"mode": "subscription", "customer": customer.id, "line_items": [{"price": monthly.id, "quantity": 1}]}
    )
    _, subscription = stripe_emulator.complete_checkout(session.id)
    item_id = subscription["items"]["data"][0]["id"]
    updated = client.v1.subscriptions.update(subscription["id"], {"cancel_at_period_end": True})
    assert updated.cancel_at == updated["items"].data[0].current_period_end
    updated = client.v1.subscriptions.update(
        subscription["id"],
        {
            "cancel_at_period_end": False,
            "items": [{"id": item_id, "quantity": 4}],
            "proration_behavior": "always_invoice",
            "billing_cycle_anchor": {"type": "unchanged"},
        },
    )
    assert (updated.cancel_at, updated["items"].data[0].quantity) == (None, 4)
    with pytest.raises(stripe.InvalidRequestError, match="billing_cycle_anchor"):
        client.v1.subscriptions.update(subscription["id"], {"billing_cycle_anchor": "now"})
    canceled = client.v1.subscriptions.cancel(subscription["id"])
    assert canceled.status == "canceled"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.resume(subscription["id"])


def test_portal_sessions_need_an_existing_customer(client):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.billing_portal.sessions.create({"customer": "cus_missing"})
    assert (excinfo.value.http_status, excinfo.value.code) == (404, "resource_missing")
    customer = client.v1.customers.create({})
    session = client.v1.billing_portal.sessions.create({"customer": customer.id, "return_url": "https://example.com"})
    assert session.url.startswith("https://billing.stripe.com/")
    assert session.return_url == "https://example.com"


def test_idempotency_keys_replay_and_refuse_other_parameters(client, stripe_emulator):
    first = client.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "k1"})
    again = client.v1.customers.create({"email": "a@example.com"}, {"idempotency_key": "k1"})
    assert first.id == again.id
    assert len(stripe_emulator.all("customer")) == 1
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create({"email": "b@example.com"}, {"idempotency_key": "k1"})


def test_lists_page_newest_first(client):
    ids = [client.v1.products.create({"name": f"P{index}"}).id for index in range(5)]
    page = client.v1.products.list({"limit": 2})
    assert [product.id for product in page.data] == ids[::-1][:2]
    assert page.has_more
    assert [product.id for product in page.auto_paging_iter()] == ids[::-1]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.products.list({"limit": 101})


def test_bad_keys_and_versions_are_refused(stripe_emulator):
    client = stripe.StripeClient("sk_live_nope", base_addresses={"api": stripe_emulator.url})
    with pytest.raises(stripe.AuthenticationError):
        client.v1.customers.list()
    response = requests.get(
        f"{stripe_emulator.url}/v1/customers",
        headers={"Authorization": "Bearer sk_test_x", "Stripe-Version": "2020-08-27"},
        timeout=5,
    )
    assert response.status_code == 400
    assert "2020-08-27" in response.json()["error"]["message"]


def test_faults_are_served_and_counted(client, stripe_emulator):
    stripe_emulator.fail("GET", "/v1/customers", status=503)
    with pytest.raises(stripe.APIError):
        client.v1.customers.list()
    stripe_emulator.fail("GET", "/v1/customers", drop="before")
    with pytest.raises(stripe.APIConnectionError):
        client.v1.customers.list()
    client.v1.customers.list()
    assert stripe_emulator.count("GET", "/v1/customers") == 3
