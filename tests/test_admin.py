"""Every model has an admin whose list, search and change pages work."""

import pytest
from django.contrib import admin
from django.urls import reverse

from django_bob_payments import models

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, make_user):
    superuser = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(superuser)
    return client


@pytest.fixture
def data(user, monthly):
    customer = models.Customer.objects.get(user=user)
    models.BillingInformation.objects.create(customer=customer, name="Alice", email="bill@example.com", country="DE")
    models.ExternalCustomer.objects.create(customer=customer, provider="stripe", external_id="cus_admin")
    models.ExternalProduct.objects.create(product=monthly.product, provider="stripe", external_id="prod_admin")
    models.ExternalPricing.objects.create(pricing=monthly, provider="stripe", external_id="price_admin")
    subscription = models.Subscription.objects.create(customer=customer, pricing=monthly, status="active")
    models.ExternalSubscription.objects.create(subscription=subscription, provider="stripe", external_id="sub_admin")
    models.SubscriptionItem.objects.create(
        subscription=subscription, pricing=monthly, quantity=2, provider="stripe", external_id="si_admin"
    )
    order = models.Order.objects.create(customer=customer, pricing=monthly, currency="eur", amount_total=1900)
    models.PaymentAttempt.objects.create(order=order, provider="stripe", currency="eur", external_id="cs_admin")
    models.Invoice.objects.create(
        customer=customer, provider="stripe", external_id="in_admin", status="paid", currency="eur", number="A-1"
    )
    models.FakeProviderObject.objects.create(kind="customer", external_id="fake_cus_admin", data={})
    models.PaymentsSite.current_key()
    models.BillingEmail.objects.create(
        key="payment_receipt:stripe:in_admin",
        kind="payment_receipt",
        customer=customer,
        from_email="billing@example.com",
        recipients=["bill@example.com"],
        subject="Receipt",
        body_text="Thanks",
    )
    models.WebhookEvent.objects.create(
        provider="stripe", event_id="evt_admin", type="invoice.paid", created=1, body=b'{"id": "evt_admin"}'
    )


def app_models():
    return [model for model in admin.site._registry if model._meta.app_label == "bob_payments"]


def test_every_model_is_registered():
    from django.apps import apps

    concrete = {model for model in apps.get_app_config("bob_payments").get_models()}
    assert set(app_models()) == concrete


@pytest.mark.parametrize("model", app_models(), ids=lambda model: model._meta.model_name)
def test_changelist_search_and_change_pages(staff_client, data, model):
    opts = model._meta
    changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    response = staff_client.get(changelist)
    assert response.status_code == 200
    assert response.context["cl"].result_count == model.objects.count() >= 1
    response = staff_client.get(changelist, {"q": "admin"})
    assert response.status_code == 200
    obj = model.objects.first()
    response = staff_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
    assert response.status_code == 200


def test_search_finds_a_customer_by_external_id_and_email(staff_client, data):
    url = reverse("admin:bob_payments_customer_changelist")
    assert staff_client.get(url, {"q": "cus_admin"}).context["cl"].result_count == 1
    assert staff_client.get(url, {"q": "bill@example.com"}).context["cl"].result_count == 1
    assert staff_client.get(url, {"q": "cus_nobody"}).context["cl"].result_count == 0


def test_provider_ids_are_read_only(staff_client, data):
    link = models.ExternalCustomer.objects.get()
    url = reverse("admin:bob_payments_externalcustomer_change", args=[link.pk])
    staff_client.post(url, {"provider": "fake", "external_id": "cus_changed", "customer": link.customer_id})
    link.refresh_from_db()
    assert (link.provider, link.external_id) == ("stripe", "cus_admin")


def test_webhook_events_are_not_added_by_hand(staff_client):
    assert staff_client.get(reverse("admin:bob_payments_webhookevent_add")).status_code == 403
