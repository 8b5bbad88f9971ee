"""The data model: constraints are enforced by the database itself."""

import pytest
from django.db import IntegrityError, transaction

from django_bob_payments.models import (
    BillingInformation,
    Customer,
    ExternalCustomer,
    ExternalPricing,
    ExternalProduct,
    ExternalSubscription,
    Invoice,
    Order,
    PaymentAttempt,
    Pricing,
    Product,
    Subscription,
    WebhookEvent,
)

pytestmark = pytest.mark.django_db


def assert_rejected(create):
    with pytest.raises(IntegrityError), transaction.atomic():
        create()


@pytest.fixture
def customer(user):
    return Customer.objects.get(user=user)


@pytest.fixture
def subscription(customer, monthly):
    return Subscription.objects.create(customer=customer, pricing=monthly, status="active")


def test_duplicate_external_customer_id_is_rejected(customer, make_user):
    other = Customer.objects.get(user=make_user())
    ExternalCustomer.objects.create(customer=customer, provider="stripe", external_id="cus_1")
    assert_rejected(lambda: ExternalCustomer.objects.create(customer=other, provider="stripe", external_id="cus_1"))
    # The same ID at another provider is another object.
    ExternalCustomer.objects.create(customer=other, provider="fake", external_id="cus_1")


@pytest.mark.parametrize("kind", ["product", "pricing", "subscription"])
def test_every_link_model_enforces_both_constraints(kind, customer, monthly):
    basic = Product.objects.create(slug="basic", name="Basic")
    one_off = Pricing.objects.create(product=basic, amount=500, currency="eur", type="one_time")
    model, first, second = {
        "product": (ExternalProduct, monthly.product, basic),
        "pricing": (ExternalPricing, monthly, one_off),
        "subscription": (
            ExternalSubscription,
            Subscription.objects.create(customer=customer, pricing=monthly),
            Subscription.objects.create(customer=customer, pricing=one_off),
        ),
    }[kind]
    model.objects.create(provider="stripe", external_id="x_1", **{kind: first})
    # Another row cannot claim the same provider ID ...
    assert_rejected(lambda: model.objects.create(provider="stripe", external_id="x_1", **{kind: second}))
    # ... and a row cannot have two IDs at one provider.
    assert_rejected(lambda: model.objects.create(provider="stripe", external_id="x_2", **{kind: first}))
    model.objects.create(provider="stripe", external_id="x_2", **{kind: second})
    assert model.objects.count() == 2


def test_one_external_link_per_customer_and_provider(customer):
    ExternalCustomer.objects.create(customer=customer, provider="stripe", external_id="cus_1")
    assert_rejected(lambda: ExternalCustomer.objects.create(customer=customer, provider="stripe", external_id="cus_2"))
    ExternalCustomer.objects.create(customer=customer, provider="fake", external_id="fake_1")
    assert customer.external_ids.count() == 2


def test_one_billing_information_per_customer(customer):
    BillingInformation.objects.create(customer=customer, name="A", email="a@example.com", country="DE")
    assert_rejected(
        lambda: BillingInformation.objects.create(customer=customer, name="B", email="b@example.com", country="DE")
    )


def test_one_customer_per_user(user):
    assert_rejected(lambda: Customer.objects.create(user=user))


def test_organization_link_must_be_complete(db):
    from django.contrib.contenttypes.models import ContentType

    from tests.testapp.models import Organization

    assert_rejected(lambda: Customer.objects.create(organization_id="7"))
    assert_rejected(lambda: Customer.objects.create(organization_type=ContentType.objects.get_for_model(Organization)))


def test_pricing_interval_must_match_its_type(product):
    assert_rejected(lambda: Pricing.objects.create(product=product, amount=100, currency="eur", type="recurring"))
    assert_rejected(
        lambda: Pricing.objects.create(product=product, amount=100, currency="eur", type="one_time", interval="month")
    )
    assert_rejected(
        lambda: Pricing.objects.create(
            product=product, amount=100, currency="eur", type="recurring", interval="month", interval_count=0
        )
    )
    Pricing.objects.create(product=product, amount=100, currency="eur", type="one_time")


def test_product_quantity_range_is_checked(db):
    assert_rejected(lambda: Product.objects.create(slug="bad", name="Bad", min_quantity=5, max_quantity=2))


def test_currency_must_be_lower_case_iso(product):
    from django.core.exceptions import ValidationError

    pricing = Pricing(product=product, amount=100, currency="EUR", type="one_time")
    with pytest.raises(ValidationError) as excinfo:
        pricing.full_clean()
    assert excinfo.value.error_dict["currency"][0].code == "currency"


def test_payment_attempt_external_id_is_unique_once_set(customer, monthly):
    order = Order.objects.create(customer=customer, pricing=monthly, currency="eur")
    # Attempts not yet known to the provider do not collide.
    PaymentAttempt.objects.create(order=order, provider="stripe", currency="eur")
    PaymentAttempt.objects.create(order=order, provider="stripe", currency="eur")
    PaymentAttempt.objects.create(order=order, provider="stripe", currency="eur", external_id="cs_1")
    assert_rejected(
        lambda: PaymentAttempt.objects.create(order=order, provider="stripe", currency="eur", external_id="cs_1")
    )


def test_duplicate_webhook_event_is_rejected(db):
    fields = {"provider": "stripe", "event_id": "evt_1", "type": "customer.created", "created": 1, "body": b"{}"}
    WebhookEvent.objects.create(**fields)
    assert_rejected(lambda: WebhookEvent.objects.create(**fields))


def test_duplicate_invoice_is_rejected(customer):
    fields = {"customer": customer, "provider": "stripe", "external_id": "in_1", "status": "paid", "currency": "eur"}
    Invoice.objects.create(**fields)
    assert_rejected(lambda: Invoice.objects.create(**fields))


@pytest.mark.parametrize(("country", "in_eu"), [("DE", True), ("GR", True), ("CH", False), ("US", False)])
def test_billing_information_knows_whether_it_is_in_the_eu(customer, country, in_eu):
    billing = BillingInformation.objects.create(customer=customer, name="A", email="a@example.com", country=country)
    billing.refresh_from_db()
    assert billing.is_from_eu is in_eu


def test_is_from_eu_follows_a_partial_country_update(customer):
    billing = BillingInformation.objects.create(customer=customer, name="A", email="a@example.com", country="US")
    billing.country = "IT"
    billing.save(update_fields=["country"])
    billing.refresh_from_db()
    assert billing.is_from_eu is True


def test_deleting_a_user_keeps_the_customer_and_its_history(user, customer, monthly):
    Order.objects.create(customer=customer, pricing=monthly, currency="eur")
    user.delete()
    customer.refresh_from_db()
    assert customer.user is None
    assert customer.orders.count() == 1


def test_deleting_a_local_row_deletes_its_external_links(monthly):
    ExternalPricing.objects.create(pricing=monthly, provider="stripe", external_id="price_1")
    monthly.delete()
    assert not ExternalPricing.objects.exists()


def test_string_forms(customer, monthly, subscription):
    assert str(monthly) == "Pro: 19.00 EUR / month"
    yearly = Pricing(
        product=monthly.product, amount=100, currency="usd", type="recurring", interval="month", interval_count=3
    )
    assert str(yearly) == "Pro: 1.00 USD / 3 months"
    assert str(customer) == "alice"
    assert str(subscription) == "alice - Pro (active)"
    assert subscription.is_entitled
