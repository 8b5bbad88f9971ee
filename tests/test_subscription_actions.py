"""Subscription actions against Stripe's rules: limits, signals once, schedules, impossible actions."""

import pytest
from django.core import mail

from django_bob_payments import signals
from django_bob_payments.models import Product, Subscription
from tests.shop import buy, checkout, deliver, remote_subscription

pytestmark = pytest.mark.django_db


def action(api, subscription, name, **data):
    return api.post(f"/api/payment/subscriptions/{subscription.pk}/{name}/", data, content_type="application/json")


class Received:
    """A real receiver connected to a signal: what it was sent."""

    def __init__(self, signal):
        self.calls = []
        signal.connect(self.receive, weak=False)
        self.signal = signal

    def receive(self, sender, **kwargs):
        self.calls.append(kwargs)

    def close(self):
        self.signal.disconnect(self.receive)


@pytest.fixture
def canceled_signals():
    received = Received(signals.subscription_canceled)
    yield received
    received.close()


def test_an_immediate_cancel_sends_its_signal_and_email_once(
    api, shop, stripe_emulator, canceled_signals, django_capture_on_commit_callbacks
):
    _, remote = buy(api, stripe_emulator, shop["pro_monthly"])
    subscription = Subscription.objects.get()
    response = action(api, subscription, "cancel", immediately=True)
    assert response.status_code == 200, response.json()
    # The answer shows what Stripe confirmed; the row follows the webhook.
    assert response.json()["status"] == "canceled"
    with django_capture_on_commit_callbacks(execute=True):
        deliver(api, "customer.subscription.deleted", remote_subscription(stripe_emulator, remote["id"]))
        deliver(api, "customer.subscription.deleted", remote_subscription(stripe_emulator, remote["id"]))
    assert Subscription.objects.get().status == "canceled"
    assert len(canceled_signals.calls) == 1
    ended = [message for message in mail.outbox if "subscription has ended" in message.subject]
    assert len(ended) == 1


def test_change_plan_respects_the_subscriptions_per_customer_limit(api, shop, stripe_emulator):
    """Active Pro and Team; changing Team to Pro would give two Pro subscriptions."""
    buy(api, stripe_emulator, shop["pro_monthly"])
    buy(api, stripe_emulator, shop["team_monthly"])
    team = Subscription.objects.get(pricing=shop["team_monthly"])
    stripe_emulator.calls.clear()
    response = action(api, team, "change-plan", pricing=shop["pro_yearly"].pk)
    assert response.status_code == 409, response.json()
    assert response.json()["code"] == "subscription_limit_reached"
    assert sum(stripe_emulator.calls.values()) == 0
    # Within one product (monthly to yearly Pro), the subscription replaces itself.
    pro = Subscription.objects.get(pricing=shop["pro_monthly"])
    assert action(api, pro, "change-plan", pricing=shop["pro_yearly"].pk).status_code == 200


def test_the_limit_flag_is_cleared_when_the_other_subscription_ends(api, shop, stripe_emulator):
    Product.objects.filter(slug="pro").update(max_subscriptions_per_customer=None)
    _, first = buy(api, stripe_emulator, shop["pro_monthly"])
    Product.objects.filter(slug="pro").update(max_subscriptions_per_customer=1)
    _, second = buy_anyway(api, stripe_emulator, shop["pro_yearly"])
    flagged = Subscription.objects.get(external_ids__external_id=second["id"])
    assert flagged.exceeds_limit is True
    assert action(api, Subscription.objects.get(external_ids__external_id=first["id"]), "cancel", immediately=True)
    deliver(api, "customer.subscription.deleted", remote_subscription(stripe_emulator, first["id"]))
    flagged.refresh_from_db()
    assert flagged.exceeds_limit is False


def buy_anyway(api, stripe_emulator, pricing):
    """A second subscription the limit would refuse at checkout, as the dashboard makes it."""
    product = pricing.product
    allowed = product.max_subscriptions_per_customer
    Product.objects.filter(pk=product.pk).update(max_subscriptions_per_customer=None)
    response = checkout(api, pricing)
    Product.objects.filter(pk=product.pk).update(max_subscriptions_per_customer=allowed)
    assert response.status_code == 201, response.json()
    session, subscription = stripe_emulator.complete_checkout(stripe_emulator.all("checkout.session")[-1]["id"])
    deliver(api, "checkout.session.completed", session)
    deliver(api, "customer.subscription.created", subscription)
    return response.json(), subscription


def test_resume_clears_a_cancellation_date(api, shop, stripe_emulator):
    """A cancellation set for a date (cancel_at, from the dashboard) is resumed too."""
    _, remote = buy(api, stripe_emulator, shop["pro_monthly"])
    obj = remote_subscription(stripe_emulator, remote["id"])
    obj["cancel_at"] = obj["items"]["data"][0]["current_period_end"] - 86400
    deliver(api, "customer.subscription.updated", obj)
    subscription = Subscription.objects.get()
    assert subscription.cancel_at is not None and not subscription.cancel_at_period_end
    response = action(api, subscription, "resume")
    assert response.status_code == 200, response.json()
    obj = remote_subscription(stripe_emulator, remote["id"])
    assert (obj["cancel_at"], obj["cancel_at_period_end"]) == (None, False)
    assert response.json()["cancel_at"] is None


def test_resume_of_a_subscription_not_set_to_cancel_is_a_409(api, shop, stripe_emulator):
    buy(api, stripe_emulator, shop["pro_monthly"])
    response = action(api, Subscription.objects.get(), "resume")
    assert (response.status_code, response.json()["code"]) == (409, "not_canceling")


def test_a_new_checkout_closes_the_open_ones_for_a_limited_product(api, shop, stripe_emulator):
    """Three checkouts for a one-per-customer product: only the newest session stays open."""
    for _ in range(3):
        assert checkout(api, shop["pro_monthly"]).status_code == 201
    sessions = stripe_emulator.all("checkout.session")
    assert sorted(session["status"] for session in sessions) == ["expired", "expired", "open"]
    from django_bob_payments.models import Order

    assert sorted(Order.objects.values_list("status", flat=True)) == ["expired", "expired", "pending"]
    # A session paid meanwhile is not closed: it counts, and the next checkout is refused.
    stripe_emulator.complete_checkout(next(s["id"] for s in sessions if s["status"] == "open"))
    response = checkout(api, shop["pro_yearly"])
    assert (response.status_code, response.json()["code"]) == (409, "subscription_limit_reached")


def downgrade_then(api, shop, stripe_emulator):
    """Team x5, and a downgrade to Pro x2 scheduled for the period end."""
    _, remote = buy(api, stripe_emulator, shop["team_monthly"], quantity=5)
    subscription = Subscription.objects.get()
    response = action(api, subscription, "change-plan", pricing=shop["pro_monthly"].pk, quantity=2, at_period_end=True)
    assert response.status_code == 200, response.json()
    schedule = stripe_emulator.all("subscription_schedule")[0]
    assert schedule["status"] == "active"
    return Subscription.objects.get(), remote, schedule


def test_an_upgrade_after_a_scheduled_downgrade_survives_the_period_end(api, shop, stripe_emulator):
    subscription, remote, schedule = downgrade_then(api, shop, stripe_emulator)
    response = action(api, subscription, "change-plan", pricing=shop["team_monthly"].pk, quantity=8)
    assert response.status_code == 200, response.json()
    assert stripe_emulator.get("subscription_schedule", schedule["id"])["status"] == "released"
    assert response.json()["scheduled_pricing"] is None
    renewed = stripe_emulator.end_period(remote["id"])
    item = renewed["items"]["data"][0]
    assert (item["price"]["id"], item["quantity"]) == (shop["team_monthly"].external_ids.get().external_id, 8)
    deliver(api, "customer.subscription.updated", renewed)
    subscription.refresh_from_db()
    assert (subscription.pricing, subscription.quantity) == (shop["team_monthly"], 8)


def test_cancel_after_a_scheduled_downgrade_releases_the_schedule(api, shop, stripe_emulator):
    subscription, remote, schedule = downgrade_then(api, shop, stripe_emulator)
    response = action(api, subscription, "cancel")
    assert response.status_code == 200, response.json()
    assert stripe_emulator.get("subscription_schedule", schedule["id"])["status"] == "released"
    assert remote_subscription(stripe_emulator, remote["id"])["cancel_at_period_end"] is True


def test_the_emulator_refuses_cancellation_changes_under_a_schedule(api, shop, stripe_emulator):
    """What Stripe refuses: cancel_at_period_end on a schedule-managed subscription."""
    import stripe

    _, remote, _ = downgrade_then(api, shop, stripe_emulator)
    client = stripe.StripeClient("sk_test_emulator", base_addresses={"api": stripe_emulator.url})
    with pytest.raises(stripe.InvalidRequestError, match="managed by the subscription schedule"):
        client.v1.subscriptions.update(remote["id"], {"cancel_at_period_end": True})


def test_a_downgrade_keeps_the_running_phase_whole(api, shop, stripe_emulator):
    """The schedule's first phase is over; the running one carries metadata and a tax rate."""
    subscription, _, schedule = downgrade_then(api, shop, stripe_emulator)
    stored = stripe_emulator.get("subscription_schedule", schedule["id"])
    running = stored["phases"][0]
    past = {**running, "start_date": running["start_date"] - 86400, "end_date": running["start_date"]}
    running.update(metadata={"deal": "spring"}, default_tax_rates=["txr_1"])
    running["items"][0]["metadata"] = {"seat": "team"}
    stored["phases"].insert(0, past)
    # Another downgrade rewrites the schedule from its current phase.
    response = action(api, subscription, "change-plan", pricing=shop["pro_monthly"].pk, quantity=1, at_period_end=True)
    assert response.status_code == 200, response.json()
    stored = stripe_emulator.get("subscription_schedule", schedule["id"])
    assert [phase["items"][0]["quantity"] for phase in stored["phases"]] == [5, 5, 1]
    kept = stored["phases"][1]
    assert kept["metadata"] == {"deal": "spring"} and kept["default_tax_rates"] == ["txr_1"]
    assert kept["items"][0]["metadata"] == {"seat": "team"}


def test_the_schedule_is_released_once_the_downgrade_has_happened(api, shop, stripe_emulator):
    subscription, remote, schedule = downgrade_then(api, shop, stripe_emulator)
    switched = stripe_emulator.end_period(remote["id"])
    deliver(api, "customer.subscription.updated", switched)
    subscription.refresh_from_db()
    assert (subscription.pricing, subscription.scheduled_pricing) == (shop["pro_monthly"], None)
    assert stripe_emulator.get("subscription_schedule", schedule["id"])["status"] == "released"
    # Now the customer (or the portal) may cancel directly.
    assert action(api, subscription, "cancel").status_code == 200


def test_another_installation_never_replays_this_ones_checkout(api, shop, stripe_emulator, monkeypatch):
    """A database reset (or a second environment on the same Stripe account) reuses attempt IDs."""
    from django_bob_payments.models import Order, PaymentAttempt, PaymentsSite
    from django_bob_payments.services.payments import PaymentService

    assert checkout(api, shop["pro_monthly"]).status_code == 201
    first = PaymentAttempt.objects.get()
    site = PaymentsSite.current_key()
    assert f"bob-payments-{site}-checkout-{first.pk}" in stripe_emulator.idempotency
    # The reset: the rows are gone, and the next attempt gets the same ID.
    Order.objects.all().delete()
    PaymentsSite.objects.all().delete()
    stripe_emulator.get("checkout.session", first.external_id)["status"] = "expired"
    original = PaymentService.start_attempt
    monkeypatch.setattr(
        PaymentService,
        "start_attempt",
        lambda self, order, provider: PaymentAttempt.objects.create(
            pk=first.pk, order=order, provider=provider, amount=order.amount_total, currency=order.currency
        ),
    )
    assert checkout(api, shop["team_monthly"]).status_code == 201
    monkeypatch.setattr(PaymentService, "start_attempt", original)
    second = PaymentAttempt.objects.get()
    assert second.pk == first.pk
    assert second.external_id != first.external_id, "Stripe replayed the other installation's session"
    assert len(stripe_emulator.all("checkout.session")) == 2


# Faults: the provider hangs, fails, limits, or drops the answer after the write.


@pytest.fixture
def fast(settings):
    """A one-second budget for the provider calls of one request, and no SDK retries."""
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "STRIPE_REQUEST_BUDGET": 1, "STRIPE_MAX_NETWORK_RETRIES": 0}


def test_a_hanging_checkout_is_a_json_504_and_the_clean_up_expires_its_session(api, shop, stripe_emulator, fast):
    import io

    from django.core.management import call_command
    from django.utils import timezone

    from django_bob_payments.models import Order, PaymentAttempt

    assert api.post("/api/payment/portal/").status_code == 409  # no customer at Stripe yet
    stripe_emulator.fail("POST", "/v1/checkout/sessions", drop="after", hang=3)
    response = checkout(api, shop["pro_monthly"])
    assert response.status_code == 504
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "provider_timeout"
    attempt = PaymentAttempt.objects.get()
    assert (attempt.status, attempt.failure_code, attempt.external_id) == ("created", "provider_timeout", None)
    # Stripe made the session all the same; the clean-up finds it by its order and closes it.
    [session] = stripe_emulator.all("checkout.session")
    assert session["status"] == "open"
    PaymentAttempt.objects.update(created_at=timezone.now() - timezone.timedelta(minutes=30))
    stdout = io.StringIO()
    call_command("expirecheckouts", stdout=stdout)
    assert "Expired 1" in stdout.getvalue()
    assert stripe_emulator.get("checkout.session", session["id"])["status"] == "expired"
    attempt.refresh_from_db()
    assert (attempt.status, attempt.external_id) == ("expired", session["id"])
    assert Order.objects.get().status == "expired"


def test_a_checkout_the_provider_never_made_is_failed_by_the_clean_up(api, shop, stripe_emulator, fast):
    import io

    from django.core.management import call_command
    from django.utils import timezone

    from django_bob_payments.models import Order, PaymentAttempt

    stripe_emulator.fail("POST", "/v1/checkout/sessions", drop="before", hang=3)
    assert checkout(api, shop["pro_monthly"]).status_code == 504
    PaymentAttempt.objects.update(created_at=timezone.now() - timezone.timedelta(minutes=30))
    call_command("expirecheckouts", stdout=io.StringIO())
    assert PaymentAttempt.objects.get().status == "failed"
    assert Order.objects.get().status == "failed"


def test_expirecheckouts_refuses_impossible_minutes():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="--minutes"):
        call_command("expirecheckouts", minutes=0)


ACTION_CALLS = {
    "cancel now": ("cancel", {"immediately": True}),
    "cancel at period end": ("cancel", {}),
    "resume": ("resume", {}),
    "change plan now": ("change-plan", {"quantity": 3}),
    "change plan at period end": ("change-plan", {"quantity": 2, "at_period_end": True}),
}


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500},
        {"status": 429},
        {"drop": "after"},
        {"drop": "before", "hang": 3},
    ],
    ids=["500", "429", "dropped after the write", "hang"],
)
@pytest.mark.parametrize("name", list(ACTION_CALLS))
def test_a_failing_provider_during_an_action_is_json_and_changes_nothing(api, shop, stripe_emulator, fast, fault, name):
    _, remote = buy(api, stripe_emulator, shop["pro_monthly"], quantity=4)
    if name == "resume":
        action(api, Subscription.objects.get(), "cancel")
        deliver(api, "customer.subscription.updated", remote_subscription(stripe_emulator, remote["id"]))
    before = Subscription.objects.values().get()
    path, data = ACTION_CALLS[name]
    routes = {
        "cancel now": ("DELETE", "/v1/subscriptions/:id"),
        "change plan at period end": ("POST", "/v1/subscription_schedules"),
    }
    method, route = routes.get(name, ("POST", "/v1/subscriptions/:id"))
    stripe_emulator.fail(method, route, times=5, **fault)
    response = action(api, Subscription.objects.get(), path, **data)
    assert response.status_code in (502, 504), response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] in ("provider_error", "provider_timeout")
    # Nothing half-done here: the row changes only with Stripe's webhook.
    assert Subscription.objects.values().get() == before


# Every action against every state: a documented success, or a 409 with a code. Never a 5xx.
OK = 200
MATRIX = {
    #                 cancel now, cancel at end, resume, change now, change at end
    "trialing": [OK, OK, "not_canceling", OK, OK],
    "active": [OK, OK, "not_canceling", OK, OK],
    "past_due": [OK, OK, "not_canceling", OK, OK],
    "canceled": ["subscription_ended"] * 5,
    "incomplete": [OK, *["subscription_incomplete"] * 4],
    "scheduled downgrade": [OK, OK, "not_canceling", OK, OK],
}


def put_in_state(api, shop, stripe_emulator, state):
    _, remote = buy(api, stripe_emulator, shop["pro_monthly"], quantity=4)
    obj = stripe_emulator.get("subscription", remote["id"])
    if state == "scheduled downgrade":
        assert action(api, Subscription.objects.get(), "change-plan", quantity=1, at_period_end=True).status_code == 200
    elif state == "canceled":
        assert action(api, Subscription.objects.get(), "cancel", immediately=True).status_code == 200
        deliver(api, "customer.subscription.deleted", obj)
    elif state != "active":
        obj["status"] = state
        deliver(api, "customer.subscription.updated", obj)
    subscription = Subscription.objects.get()
    assert subscription.status == (
        "canceled" if state == "canceled" else state.replace("scheduled downgrade", "active")
    )
    return subscription


@pytest.mark.parametrize("state", list(MATRIX))
@pytest.mark.parametrize("index", range(5), ids=list(ACTION_CALLS))
def test_every_action_in_every_state(api, shop, stripe_emulator, state, index):
    subscription = put_in_state(api, shop, stripe_emulator, state)
    path, data = list(ACTION_CALLS.values())[index]
    calls_before = stripe_emulator.write_calls
    response = action(api, subscription, path, **data)
    expected = MATRIX[state][index]
    if expected == OK:
        assert response.status_code == 200, response.content
    else:
        assert (response.status_code, response.json()["code"]) == (409, expected)
        assert stripe_emulator.write_calls == calls_before, "a refused action calls nothing"


@pytest.mark.parametrize("name", ["cancel at period end", "change plan now", "resume"])
def test_each_action_sends_its_signal_once_whatever_the_redeliveries(api, shop, stripe_emulator, name):
    from django_bob_payments.testing import build_event, post_event

    _, remote = buy(api, stripe_emulator, shop["pro_monthly"], quantity=4)
    if name == "resume":
        action(api, Subscription.objects.get(), "cancel")
        deliver(api, "customer.subscription.updated", remote_subscription(stripe_emulator, remote["id"]))
    updated = Received(signals.subscription_updated)
    try:
        path, data = ACTION_CALLS[name]
        assert action(api, Subscription.objects.get(), path, **data).status_code == 200
        assert updated.calls == [], "the action itself sends nothing: the webhook does"
        event = build_event("customer.subscription.updated", remote_subscription(stripe_emulator, remote["id"]))
        for _ in range(3):
            assert post_event(api, event).status_code == 200
    finally:
        updated.close()
    assert len(updated.calls) == 1
    subscription = Subscription.objects.get()
    if name == "change plan now":
        assert subscription.quantity == 3
    else:
        assert subscription.cancel_at_period_end is (name == "cancel at period end")
