"""The Stripe objects the tests and users' tests build have the fields of the pinned SDK."""

import pytest
import stripe

from django_bob_payments.testing import build_event, stripe_objects

# Fields Stripe leaves out unless asked (expand), or sends only on deleted objects.
NOT_SENT_BY_DEFAULT = {
    "customer": {"cash_balance", "invoice_credit_balance", "sources", "subscriptions", "tax", "tax_ids", "deleted"},
    "checkout.session": {"line_items"},
    "invoice": {"payments", "deleted"},
    "price": {"tiers", "deleted"},
}


def sdk_fields(cls):
    return {name for name in cls.__annotations__ if not name.startswith("_") and name != "OBJECT_NAME"}


@pytest.mark.parametrize(
    ("built", "cls"),
    [
        (stripe_objects.customer(), stripe.Customer),
        (stripe_objects.tax_id("cus_1", "DE123456789"), stripe.TaxId),
        (stripe_objects.product(), stripe.Product),
        (stripe_objects.price("prod_1", 100), stripe.Price),
        (stripe_objects.subscription("cus_1", stripe_objects.price("prod_1", 100)), stripe.Subscription),
        (
            stripe_objects.subscription_item(stripe_objects.price("prod_1", 100), "sub_1"),
            stripe.SubscriptionItem,
        ),
        (stripe_objects.checkout_session(), stripe.checkout.Session),
        (stripe_objects.billing_portal_session("cus_1"), stripe.billing_portal.Session),
        (stripe_objects.invoice("cus_1", subscription_id="sub_1"), stripe.Invoice),
        (build_event("customer.created", stripe_objects.customer()), stripe.Event),
        (
            stripe_objects.subscription_schedule(
                stripe_objects.subscription("cus_1", stripe_objects.price("prod_1", 100)),
                [stripe_objects.schedule_phase(stripe_objects.price("prod_1", 100), 1, 1, 2)],
            ),
            stripe.SubscriptionSchedule,
        ),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else "",
)
def test_builders_have_the_sdk_fields(built, cls):
    expected = sdk_fields(cls) - NOT_SENT_BY_DEFAULT.get(built["object"], {"deleted"})
    assert set(built) == expected
    assert built["object"] == cls.OBJECT_NAME


def test_built_objects_parse_with_the_sdk():
    sub = stripe.Subscription.construct_from(
        stripe_objects.subscription("cus_1", stripe_objects.price("prod_1", 990), quantity=3), "sk_test"
    )
    assert sub["items"].data[0].quantity == 3
    assert sub["items"].data[0].current_period_end > sub["items"].data[0].current_period_start
    invoice = stripe.Invoice.construct_from(stripe_objects.invoice("cus_1", subscription_id="sub_9"), "sk_test")
    assert invoice.parent.subscription_details.subscription == "sub_9"


def test_checkout_customer_details_have_the_sdk_fields():
    details = stripe_objects.checkout_customer_details(address={"country": "DE"}, tax_ids=[("eu_vat", "DE1")])
    assert set(details) == sdk_fields(stripe.checkout.Session.CustomerDetails)
    assert set(details["address"]) == sdk_fields(stripe.checkout.Session.CustomerDetails.Address)
    assert set(details["tax_ids"][0]) == sdk_fields(stripe.checkout.Session.CustomerDetails.TaxId)


def test_schedule_phases_have_the_sdk_fields():
    phase = stripe_objects.schedule_phase(stripe_objects.price("prod_1", 100), 1, 1, 2)
    assert set(phase) == sdk_fields(stripe.SubscriptionSchedule.Phase)
