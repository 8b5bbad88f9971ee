"""Subscriptions with several items: a plan and add-ons, in any order in ``items.data``."""

import pytest

from django_bob_payments.models import (
    Customer,
    ExternalCustomer,
    ExternalPricing,
    ExternalProduct,
    Pricing,
    Product,
    Subscription,
    SubscriptionItem,
)
from django_bob_payments.testing import build_event, post_event, stripe_objects

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(db):
    """A team plan with 5 seats per unit bought, and an add-on of 100 projects and an extra feature."""
    team = Product.objects.create(
        slug="team", name="Team", limits={"seats": 5, "projects": 10}, features=["api"], per_unit_limits=["seats"]
    )
    extra = Product.objects.create(
        slug="projects", name="More projects", limits={"projects": 100}, features=["export"], is_addon=True
    )
    team_monthly = Pricing.objects.create(product=team, amount=1000, currency="eur", interval="month")
    extra_monthly = Pricing.objects.create(product=extra, amount=500, currency="eur", interval="month")
    for product, pricing, suffix in ((team, team_monthly, "team"), (extra, extra_monthly, "extra")):
        ExternalProduct.objects.create(product=product, provider="stripe", external_id=f"prod_{suffix}")
        ExternalPricing.objects.create(pricing=pricing, provider="stripe", external_id=f"price_{suffix}")
    return team_monthly, extra_monthly


@pytest.fixture
def customer(user):
    customer = Customer.objects.get(user=user)
    ExternalCustomer.objects.create(customer=customer, provider="stripe", external_id="cus_items")
    return customer


def subscription_with(items, **fields):
    """A subscription whose items are (price ID, quantity, period end), listed in that order."""
    first = stripe_objects.price("prod_x", 1000, id=items[0][0])
    subscription = stripe_objects.subscription("cus_items", first, id="sub_items", **fields)
    subscription["items"]["data"] = [
        stripe_objects.subscription_item(
            stripe_objects.price("prod_x", 1000, id=price_id),
            "sub_items",
            quantity=quantity,
            current_period_start=1_800_000_000,
            current_period_end=period_end,
            id=f"si_{price_id}",
        )
        for price_id, quantity, period_end in items
    ]
    return subscription


def test_the_plan_is_the_item_whose_product_is_a_plan_whatever_the_order(client, shop, customer):
    team, extra = shop
    subscription = subscription_with([("price_extra", 2, 1_800_900_000), ("price_team", 3, 1_802_592_000)])
    assert post_event(client, build_event("customer.subscription.created", subscription)).status_code == 200
    recorded = Subscription.objects.get()
    assert (recorded.pricing, recorded.quantity) == (team, 3)
    # The period is the plan's item's.
    assert int(recorded.current_period_end.timestamp()) == 1_802_592_000
    assert sorted(recorded.items.values_list("external_id", "pricing_id", "quantity")) == [
        ("si_price_extra", extra.pk, 2),
        ("si_price_team", team.pk, 3),
    ]


def test_entitlements_add_up_across_items(client, shop, customer):
    subscription = subscription_with([("price_extra", 2, 1_800_900_000), ("price_team", 3, 1_802_592_000)])
    post_event(client, build_event("customer.subscription.created", subscription))
    entitlements = Subscription.objects.get().entitlements
    # Seats are per unit: 5 x 3. Projects are not: 10 from the plan + 100 from the add-on
    # (the add-on's quantity does not multiply a limit it does not grant per unit).
    assert entitlements["limits"] == {"seats": 15, "projects": 110}
    assert sorted(entitlements["features"]) == ["api", "export"]
    customer = Customer.objects.get(pk=customer.pk)
    assert customer.limit("seats") == 15 and customer.has_feature("export")


def test_items_follow_the_provider(client, shop, customer):
    created = subscription_with([("price_extra", 1, 1_800_900_000), ("price_team", 1, 1_802_592_000)])
    post_event(client, build_event("customer.subscription.created", created, created=1_800_000_000))
    # The add-on is removed and the plan gets 4 seats.
    updated = subscription_with([("price_team", 4, 1_802_592_000)])
    post_event(client, build_event("customer.subscription.updated", updated, created=1_800_000_100))
    assert list(SubscriptionItem.objects.values_list("external_id", "quantity")) == [("si_price_team", 4)]
    recorded = Subscription.objects.get()
    assert recorded.entitlements["limits"] == {"seats": 20, "projects": 10}
    assert recorded.entitlements["features"] == ["api"]


def test_an_add_on_missing_from_the_catalog_makes_the_event_wait(client, shop, customer):
    subscription = subscription_with([("price_unknown", 1, 1_800_900_000), ("price_team", 1, 1_802_592_000)])
    response = post_event(client, build_event("customer.subscription.created", subscription))
    assert response.json()["status"] == "waiting"
    assert not Subscription.objects.exists()
