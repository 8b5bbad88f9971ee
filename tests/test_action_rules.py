"""Subscription actions and commands refuse what cannot work, with a 4xx or a CommandError, never a 5xx."""

import io

import pytest
from django.core.management import CommandError, call_command

from django_bob_payments.models import Customer, ExternalSubscription, Subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def ended(user, catalog):
    subscription = Subscription.objects.create(
        customer=Customer.objects.get(user=user), pricing=catalog, status="canceled", cancel_at_period_end=True
    )
    ExternalSubscription.objects.create(subscription=subscription, provider="stripe", external_id="sub_ended")
    return subscription


@pytest.mark.parametrize("action", ["cancel", "resume", "change-plan"])
def test_an_ended_subscription_refuses_every_action_with_a_409(api, ended, catalog, stripe_emulator, action):
    body = {"quantity": 2} if action == "change-plan" else {}
    response = api.post(f"/api/payment/subscriptions/{ended.pk}/{action}/", body, content_type="application/json")
    assert (response.status_code, response.json().get("code")) == (409, "subscription_ended"), response.content
    assert stripe_emulator.count() == 0


@pytest.mark.parametrize("quantity", [2**31, 10**12])
def test_a_huge_quantity_is_a_400_before_any_provider_call(api, catalog, stripe_emulator, quantity):
    catalog.product.max_quantity = None  # no limit of the product's own
    catalog.product.save()
    response = api.post(
        "/api/payment/checkout/", {"pricing": catalog.pk, "quantity": quantity}, content_type="application/json"
    )
    assert response.status_code == 400
    assert "quantity" in response.json()
    assert stripe_emulator.count() == 0


@pytest.mark.parametrize(
    ("command", "args"),
    [("processwebhooks", ["--purge-days", "0"]), ("sendbillingemails", ["--minutes", "0"])],
)
def test_impossible_option_values_are_refused(db, command, args):
    with pytest.raises(CommandError):
        call_command(command, *args, stdout=io.StringIO())
