"""get_payment_interactor() and the services behind the default interactor."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_bob_payments.exceptions import PurchaseNotAllowed
from django_bob_payments.interactors import PaymentInteractor, get_payment_interactor
from django_bob_payments.models import Customer, Order, PaymentAttempt, Pricing, Product, Subscription
from tests.testapp.interactors import RecordingPaymentInteractor


def test_the_default_interactor():
    assert type(get_payment_interactor()) is PaymentInteractor


def test_the_setting_is_resolved_on_every_call():
    with override_settings(
        BOB_PAYMENTS={"PAYMENT_INTERACTOR_CLASS": "tests.testapp.interactors.RecordingPaymentInteractor"}
    ):
        assert type(get_payment_interactor()) is RecordingPaymentInteractor
    assert type(get_payment_interactor()) is PaymentInteractor


def test_a_class_that_is_not_an_interactor_is_refused():
    with override_settings(BOB_PAYMENTS={"PAYMENT_INTERACTOR_CLASS": "tests.testapp.interactors.NotAnInteractor"}):
        with pytest.raises(ImproperlyConfigured, match="must name a subclass"):
            get_payment_interactor()


def test_a_class_can_be_given_directly():
    with override_settings(BOB_PAYMENTS={"PAYMENT_INTERACTOR_CLASS": RecordingPaymentInteractor}):
        assert type(get_payment_interactor()) is RecordingPaymentInteractor


@pytest.mark.django_db
class TestPurchaseLimits:
    @pytest.fixture
    def customer(self, user):
        return Customer.objects.get(user=user)

    def test_an_order_records_price_and_total(self, customer, monthly):
        order = get_payment_interactor().orders.create(customer, monthly, quantity=3)
        assert (order.status, order.amount_total, order.currency, order.quantity) == ("pending", 5700, "eur", 3)

    @pytest.mark.parametrize("quantity", [0, 6])
    def test_quantity_outside_the_product_range_is_refused(self, customer, monthly, quantity):
        with pytest.raises(PurchaseNotAllowed) as excinfo:
            get_payment_interactor().orders.create(customer, monthly, quantity=quantity)
        assert excinfo.value.code == "quantity_out_of_range"
        assert not Order.objects.exists()

    def test_a_second_active_subscription_is_refused(self, customer, monthly):
        Subscription.objects.create(customer=customer, pricing=monthly, status="active")
        with pytest.raises(PurchaseNotAllowed) as excinfo:
            get_payment_interactor().orders.create(customer, monthly)
        assert excinfo.value.code == "subscription_limit_reached"

    def test_a_canceled_subscription_does_not_count(self, customer, monthly):
        Subscription.objects.create(customer=customer, pricing=monthly, status="canceled")
        assert get_payment_interactor().orders.create(customer, monthly).pk

    def test_unlimited_products_allow_many(self, customer, monthly):
        Product.objects.filter(pk=monthly.product_id).update(max_subscriptions_per_customer=None)
        monthly.refresh_from_db()
        Subscription.objects.create(customer=customer, pricing=monthly, status="active")
        assert get_payment_interactor().orders.create(customer, monthly).pk

    def test_a_payment_attempt_takes_the_order_amount(self, customer, monthly):
        interactor = get_payment_interactor()
        order = interactor.orders.create(customer, monthly, quantity=2)
        attempt = interactor.payments.start_attempt(order, "stripe")
        assert (attempt.status, attempt.amount, attempt.currency, attempt.external_id) == ("created", 3800, "eur", None)
        assert list(order.payment_attempts.all()) == [attempt]
        assert PaymentAttempt.objects.count() == 1

    def test_entitlements_snapshot_the_product(self, monthly):
        assert get_payment_interactor().plans.entitlements_for(monthly.product) == {
            "limits": {"projects": 10, "seats": 5},
            "features": ["api"],
        }

    def test_contact_email_prefers_billing_email(self, customer):
        from django_bob_payments.models import BillingInformation

        interactor = get_payment_interactor()
        assert interactor.customers.contact_email(customer) == "alice@example.com"
        BillingInformation.objects.create(customer=customer, name="A", email="billing@example.com", country="DE")
        customer = Customer.objects.get(pk=customer.pk)
        assert interactor.customers.contact_email(customer) == "billing@example.com"


@pytest.mark.django_db
def test_the_catalog_takes_two_queries_whatever_its_size(django_assert_num_queries):
    for index in range(5):
        product = Product.objects.create(slug=f"p{index}", name=f"P{index}", is_active=index != 4)
        for amount in (100, 200):
            Pricing.objects.create(
                product=product, amount=amount, currency="eur", type="one_time", is_active=amount == 100
            )
    with django_assert_num_queries(2):
        catalog = list(get_payment_interactor().products.catalog())
        prices = [[pricing.amount for pricing in product.active_pricings] for product in catalog]
    assert [product.slug for product in catalog] == ["p0", "p1", "p2", "p3"]
    assert prices == [[100]] * 4


@pytest.mark.django_db
def test_an_inactive_pricing_cannot_be_bought(monthly):
    products = get_payment_interactor().products
    assert products.get_active_pricing(monthly.pk) == monthly
    Product.objects.filter(pk=monthly.product_id).update(is_active=False)
    assert products.get_active_pricing(monthly.pk) is None


@pytest.mark.parametrize(
    ("country", "vat_status", "seller", "expected"),
    [
        ("DE", "valid", "FR", "reverse"),
        ("FR", "valid", "FR", "none"),
        ("DE", "unverified", "FR", "none"),
        ("DE", "invalid", "FR", "none"),
        ("DE", "not_applicable", "FR", "none"),
        ("US", "not_applicable", "FR", "exempt"),
        ("CH", "valid", "FR", "exempt"),
    ],
)
def test_tax_decision_table(country, vat_status, seller, expected):
    with override_settings(BOB_PAYMENTS={"SELLER_COUNTRY": seller}):
        assert get_payment_interactor().billing.decide_tax_exempt(country, vat_status) == expected


def test_tax_outside_the_eu_follows_the_setting():
    with override_settings(BOB_PAYMENTS={"SELLER_COUNTRY": "FR", "OUTSIDE_EU_TAX_EXEMPT": "none"}):
        assert get_payment_interactor().billing.decide_tax_exempt("US", "not_applicable") == "none"
