"""
A synced shop at the emulated Stripe, and the buyer's steps through the API: a pytest plugin
(``conftest.pytest_plugins``) for the tests of checkout and subscription actions.
"""

import io

import pytest
from django.core.management import call_command

from django_bob_payments.models import Pricing, Product
from django_bob_payments.testing import build_event, post_event


@pytest.fixture
def shop(stripe_emulator, settings, db):
    """A synced catalog: Pro (one per customer, seats 1-10) monthly and yearly, Team monthly."""
    settings.BOB_PAYMENTS = {
        **settings.BOB_PAYMENTS,
        "CHECKOUT_SUCCESS_URL": "https://shop.example/ok?session={CHECKOUT_SESSION_ID}",
        "CHECKOUT_CANCEL_URL": "https://shop.example/cancel",
        "PORTAL_RETURN_URL": "https://shop.example/account",
    }
    pro = Product.objects.create(slug="pro", name="Pro", limits={"seats": 10}, features=["api"], max_quantity=10)
    team = Product.objects.create(slug="team", name="Team", limits={"seats": 50}, features=["api", "sso"])
    prices = {
        "pro_monthly": Pricing.objects.create(product=pro, amount=1900, currency="eur", interval="month"),
        "pro_yearly": Pricing.objects.create(product=pro, amount=19000, currency="eur", interval="year"),
        "team_monthly": Pricing.objects.create(product=team, amount=4900, currency="eur", interval="month"),
    }
    call_command("synchronizepayments", "--only", "products", "--only", "prices", stdout=io.StringIO())
    stripe_emulator.calls.clear()
    return prices


@pytest.fixture
def api(client, user):
    client.force_login(user)
    return client


def checkout(api, pricing, quantity=1, **extra):
    return api.post(
        "/api/payment/checkout/",
        {"pricing": pricing.pk, "quantity": quantity, **extra},
        content_type="application/json",
    )


def deliver(client, event_type, obj):
    response = post_event(client, build_event(event_type, obj))
    assert response.status_code == 200, response.content
    return response


def buy(api, stripe_emulator, pricing, quantity=1):
    """Checkout, pay on the emulated hosted page, and deliver Stripe's webhooks."""
    response = checkout(api, pricing, quantity)
    assert response.status_code == 201, response.json()
    session_id = stripe_emulator.all("checkout.session")[-1]["id"]
    session, subscription = stripe_emulator.complete_checkout(session_id)
    deliver(api, "checkout.session.completed", session)
    deliver(api, "customer.subscription.created", subscription)
    return response.json(), subscription


def remote_subscription(stripe_emulator, subscription_id):
    return next(obj for obj in stripe_emulator.all("subscription") if obj["id"] == subscription_id)
