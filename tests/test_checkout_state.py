"""
``GET /api/payment/checkout/<session_id>/``: the success page's answer is never stale. The
customer paid at Stripe but no webhook has come: the endpoint reads the session once and
applies it through the inbox; the webhooks that come later change nothing and signal nothing.
"""

import time

import pytest
from django.test import Client

from django_bob_payments import signals
from django_bob_payments.models import Order, Subscription, WebhookEvent
from django_bob_payments.testing import build_event, post_event
from tests.shop import checkout, deliver

pytestmark = pytest.mark.django_db

URL = "/api/payment/checkout/{}/"


@pytest.fixture
def received():
    got = []

    def receive(sender, signal, **kwargs):
        got.append(signal)

    for signal in (signals.checkout_completed, signals.payment_succeeded, signals.subscription_created):
        signal.connect(receive, weak=False)
    yield got
    for signal in (signals.checkout_completed, signals.payment_succeeded, signals.subscription_created):
        signal.disconnect(receive)


def started(api, stripe_emulator, shop, quantity=2):
    assert checkout(api, shop["pro_monthly"], quantity).status_code == 201
    return stripe_emulator.all("checkout.session")[-1]["id"]


def test_the_success_page_turns_active_before_any_webhook(api, shop, stripe_emulator, received):
    session_id = started(api, stripe_emulator, shop)
    session, subscription = stripe_emulator.complete_checkout(session_id)
    stripe_emulator.calls.clear()

    read_at = int(time.time())
    answer = api.get(URL.format(session_id))
    assert answer.status_code == 200
    body = answer.json()
    assert body["state"] == "complete"
    assert body["order"]["status"] == "paid"
    assert body["order"]["payment_attempts"][0]["status"] == "succeeded"
    assert (body["subscription"]["status"], body["subscription"]["quantity"]) == ("active", 2)
    assert body["subscription"]["entitlements"]["features"] == ["api"]
    # One read of the session (its subscription expanded in it), nothing else.
    assert stripe_emulator.count() == 1
    assert stripe_emulator.count("GET", "/v1/checkout/sessions/:id") == 1
    assert received == [signals.checkout_completed, signals.payment_succeeded, signals.subscription_created]

    # Stripe's webhooks arrive: applied, and they change nothing.
    before = (
        list(Subscription.objects.values()),
        list(Order.objects.values("status", "subscription_id", "paid_at", "amount_total")),
    )
    # As Stripe sends them: created when the checkout completed, before the page read it.
    for event_type, obj in (("checkout.session.completed", session), ("customer.subscription.created", subscription)):
        assert post_event(api, build_event(event_type, obj, created=read_at - 1)).status_code == 200
    after = (
        list(Subscription.objects.values()),
        list(Order.objects.values("status", "subscription_id", "paid_at", "amount_total")),
    )
    assert after == before
    assert received == [signals.checkout_completed, signals.payment_succeeded, signals.subscription_created]
    assert WebhookEvent.objects.filter(status="processed").count() == 4  # 2 read, 2 delivered

    # Asked again: the provider is not.
    assert api.get(URL.format(session_id)).json()["state"] == "complete"
    assert stripe_emulator.count() == 1


def test_a_session_read_while_still_open_is_not_read_again(api, shop, stripe_emulator):
    session_id = started(api, stripe_emulator, shop)
    stripe_emulator.calls.clear()
    assert api.get(URL.format(session_id)).json()["state"] == "processing"
    stripe_emulator.complete_checkout(session_id)
    # At most one read per session: the page waits for the webhook now.
    for _ in range(3):
        body = api.get(URL.format(session_id)).json()
        assert (body["state"], body["subscription"]) == ("processing", None)
    assert stripe_emulator.count("GET", "/v1/checkout/sessions/:id") == 1


def test_a_settled_checkout_asks_nothing(api, shop, stripe_emulator):
    session_id = started(api, stripe_emulator, shop)
    session, subscription = stripe_emulator.complete_checkout(session_id)
    deliver(api, "checkout.session.completed", session)
    deliver(api, "customer.subscription.created", subscription)
    stripe_emulator.calls.clear()
    assert api.get(URL.format(session_id)).json()["state"] == "complete"
    assert stripe_emulator.count() == 0


def test_an_expired_session(api, shop, stripe_emulator):
    session_id = started(api, stripe_emulator, shop)
    stripe_emulator.expire_checkout(session_id)
    body = api.get(URL.format(session_id)).json()
    assert (body["state"], body["order"]["status"]) == ("expired", "expired")


@pytest.mark.security
def test_another_customers_session_is_a_404(api, shop, stripe_emulator, client, make_user):
    session_id = started(api, stripe_emulator, shop)
    client.force_login(make_user())
    stripe_emulator.calls.clear()
    response = client.get(URL.format(session_id))
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_checkout"
    assert api.get(URL.format("cs_test_nothing")).status_code == 404
    assert stripe_emulator.count() == 0


def test_stripe_down_is_a_502_and_the_webhook_still_applies(api, shop, stripe_emulator):
    session_id = started(api, stripe_emulator, shop)
    session, _ = stripe_emulator.complete_checkout(session_id)
    stripe_emulator.fail("GET", "/v1/checkout/sessions/:id", status=500, times=10)
    assert api.get(URL.format(session_id)).status_code == 502
    deliver(api, "checkout.session.completed", session)
    assert api.get(URL.format(session_id)).json()["state"] == "complete"


def test_anonymous_callers_are_refused(client):
    assert client.get(URL.format("cs_test_x")).status_code in (401, 403)


REFRESH = "/api/payment/subscriptions/refresh/"


def test_the_portal_return_refreshes_subscriptions_once_a_minute(api, shop, stripe_emulator, client, make_user):
    from tests.shop import buy

    _, remote = buy(api, stripe_emulator, shop["pro_monthly"], quantity=2)
    other = Client()
    other.force_login(make_user())
    _, theirs = buy(other, stripe_emulator, shop["team_monthly"])
    # Canceled in the portal at the period end; the webhook has not come.
    stripe_emulator.get("subscription", remote["id"])["cancel_at_period_end"] = True
    stripe_emulator.get("subscription", theirs["id"])["cancel_at_period_end"] = True
    stripe_emulator.calls.clear()

    body = api.post(REFRESH).json()
    assert body["refreshed"] is True
    assert [(sub["cancel_at_period_end"], sub["quantity"]) for sub in body["subscriptions"]] == [(True, 2)]
    # One request, for this customer's subscriptions only; the other customer is untouched.
    assert stripe_emulator.count() == 1
    assert stripe_emulator.count("GET", "/v1/subscriptions") == 1
    assert Subscription.objects.get(pricing=shop["team_monthly"]).cancel_at_period_end is False

    # Within the minute: the local state, no request.
    assert api.post(REFRESH).json()["refreshed"] is False
    assert stripe_emulator.count() == 1


def test_a_customer_not_at_stripe_has_nothing_to_refresh(api, shop, stripe_emulator):
    assert api.post(REFRESH).json() == {"refreshed": False, "subscriptions": []}
    assert stripe_emulator.count() == 0


def test_webhooks_of_the_read_second_write_no_row(api, shop, stripe_emulator):
    """Stripe's webhooks often come in the same second as the page's read: they write nothing, updated_at included."""
    session_id = started(api, stripe_emulator, shop)
    session, subscription = stripe_emulator.complete_checkout(session_id)
    assert api.get(URL.format(session_id)).json()["state"] == "complete"
    before = (list(Subscription.objects.values()), list(Order.objects.values()))
    updated = []

    def receive(sender, **kwargs):
        updated.append(kwargs["subscription"].pk)

    signals.subscription_updated.connect(receive, weak=False)
    try:
        for event_type, obj in (
            ("checkout.session.completed", session),
            ("customer.subscription.created", subscription),
            ("customer.subscription.updated", subscription),
        ):
            assert post_event(api, build_event(event_type, obj, created=int(time.time()))).status_code == 200
    finally:
        signals.subscription_updated.disconnect(receive)
    assert (list(Subscription.objects.values()), list(Order.objects.values())) == before
    assert updated == []
    outcomes = list(
        WebhookEvent.objects.filter(type__startswith="customer.subscription").values_list("outcome", flat=True)
    )
    assert any("unchanged" in outcome for outcome in outcomes), outcomes
