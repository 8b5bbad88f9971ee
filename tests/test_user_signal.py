"""The post_save receiver on the user model hands new users to the interactor, once."""

import pytest
from django.contrib.auth import get_user_model
from django.core import serializers
from django.db.models.signals import post_save
from django.test import override_settings

from django_bob_payments import signals
from django_bob_payments.interactors import PaymentInteractor
from django_bob_payments.models import Customer
from tests.testapp.interactors import RecordingPaymentInteractor

pytestmark = pytest.mark.django_db

RECORDING = {"PAYMENT_INTERACTOR_CLASS": "tests.testapp.interactors.RecordingPaymentInteractor"}


@pytest.fixture(autouse=True)
def clear_recording():
    RecordingPaymentInteractor.created_users.clear()


def test_creating_a_user_creates_its_customer(make_user):
    user = make_user()
    assert list(Customer.objects.filter(user=user)) == [user.payment_customers.get()]


def test_saving_a_user_again_does_not_create_another(make_user):
    with override_settings(BOB_PAYMENTS=RECORDING):
        user = make_user()
        user.first_name = "Alice"
        user.save()
        user.save()
    assert RecordingPaymentInteractor.created_users == [user.pk]
    assert Customer.objects.filter(user=user).count() == 1


def test_the_overriding_interactor_is_the_one_called(make_user):
    with override_settings(BOB_PAYMENTS=RECORDING):
        first = make_user()
        second = make_user()
    third = make_user()
    assert RecordingPaymentInteractor.created_users == [first.pk, second.pk]
    # The subclass still did the default work, and the default ran for the third user.
    assert Customer.objects.filter(user__in=[first, second, third]).count() == 3


def test_the_receiver_is_connected_once():
    receivers = post_save._live_receivers(get_user_model())
    sync_receivers = receivers[0] if isinstance(receivers, tuple) else receivers
    names = [receiver.__name__ for receiver in sync_receivers]
    assert names.count("custom_user_post_save") == 1


def test_customer_created_signal_carries_the_instances(make_user):
    received = []

    def handler(sender, customer, user, **kwargs):
        received.append((sender, customer, user))

    signals.customer_created.connect(handler)
    try:
        user = make_user()
    finally:
        signals.customer_created.disconnect(handler)
    assert received == [(PaymentInteractor, Customer.objects.get(user=user), user)]


def test_loading_a_fixture_creates_no_customer(make_user):
    user = make_user()
    data = serializers.serialize("json", [user])
    user.payment_customers.all().delete()
    get_user_model().objects.all().delete()
    for obj in serializers.deserialize("json", data):
        obj.save()
    assert get_user_model().objects.count() == 1
    assert not Customer.objects.exists()
