"""
The example site in Stripe mode, against the local Stripe emulator: the customer pays on
Stripe's page and comes back before any webhook. The success page reads the session at
Stripe once and turns active by itself; Stripe's webhooks, delivered afterwards, change
nothing.
"""

import re

import pytest
from django.test import Client
from playwright.sync_api import expect

from django_bob_payments.models import Order, Subscription
from django_bob_payments.testing import build_event, post_event

STRIPE_PAGE = "<!doctype html><title>Stripe Checkout</title><h1>Stripe Checkout (emulated)</h1>"


@pytest.fixture
def stripe(settings):
    from tests.stripe_emulator import StripeEmulator

    emulator = StripeEmulator()
    url = emulator.start()
    settings.BOB_PAYMENTS = {
        **settings.BOB_PAYMENTS,
        "PROVIDER": "stripe",
        "STRIPE_SECRET_KEY": "sk_test_example",
        "STRIPE_WEBHOOK_SECRET": "whsec_example",
        "STRIPE_API_BASE": url,
        "STRIPE_MAX_NETWORK_RETRIES": 0,
    }
    yield emulator
    emulator.stop()


def test_the_success_page_turns_active_before_stripe_webhooks(stripe, site, page, shot):
    page.goto(site + "/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("alice")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Pricing").click()
    # Stripe's hosted page is not reachable here: the browser gets a stand-in for it.
    page.route(
        "https://checkout.stripe.com/**", lambda route: route.fulfill(body=STRIPE_PAGE, content_type="text/html")
    )
    page.get_by_role("button", name="Choose Starter").click()
    expect(page).to_have_url(re.compile(r"^https://checkout\.stripe\.com/c/pay/cs_"))
    session_id = page.url.rsplit("/", 1)[1]

    # The customer pays at Stripe; no webhook is delivered.
    session, subscription = stripe.complete_checkout(session_id)
    stripe.calls.clear()
    page.goto(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id))
    state = page.locator("#checkout-state")
    expect(state).to_have_attribute("data-state", "complete")
    expect(state).to_contain_text("Your Starter plan is active.")
    shot("stripe-success")
    assert stripe.count() == 1
    assert stripe.count("GET", "/v1/checkout/sessions/:id") == 1

    # Reloading asks Stripe nothing more.
    page.reload()
    expect(state).to_have_attribute("data-state", "complete")
    assert stripe.count() == 1

    # Stripe's webhooks arrive later and change nothing.
    before = (list(Subscription.objects.values()), list(Order.objects.values()))
    client = Client()
    for event_type, obj in (("checkout.session.completed", session), ("customer.subscription.created", subscription)):
        assert post_event(client, build_event(event_type, obj, created=int(session["created"]))).status_code == 200
    assert (list(Subscription.objects.values()), list(Order.objects.values())) == before
    page.get_by_role("link", name="Go to your account").click()
    expect(page.get_by_role("heading", name=re.compile("Starter plan"))).to_be_visible()
