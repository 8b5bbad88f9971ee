"""Customers belong to a user, or to an organization whose billing managers act for it."""

import pytest
from django.test import override_settings

from django_bob_payments.exceptions import BillingPermissionDenied
from django_bob_payments.interactors import PaymentInteractor, get_payment_interactor
from django_bob_payments.models import Customer
from tests.testapp.models import Organization

pytestmark = [pytest.mark.django_db, pytest.mark.security]


@pytest.fixture
def interactor():
    return get_payment_interactor()


def test_a_user_acts_for_their_own_customer(interactor, user):
    customer = interactor.get_customer(user)
    assert customer.user == user
    assert not customer.is_organization
    assert interactor.get_customer(user, organization_id="") == customer


@pytest.mark.parametrize("role", ["owner", "billing"])
def test_billing_managers_act_for_the_organization(interactor, user, organization, make_member, role):
    make_member(user, role)
    customer = interactor.get_customer(user, organization_id=organization.pk)
    assert customer.organization == organization
    assert customer.user is None
    assert customer.is_organization
    # The same customer every time, and one per organization.
    assert interactor.get_customer(user, organization_id=str(organization.pk)) == customer
    assert Customer.objects.filter(organization_id=str(organization.pk)).count() == 1


def test_two_managers_share_the_organization_customer(interactor, make_user, organization, make_member):
    alice, bob = make_user(), make_user()
    make_member(alice, "owner")
    make_member(bob, "billing")
    assert interactor.get_customer(alice, organization.pk) == interactor.get_customer(bob, organization.pk)


def test_plain_members_are_refused(interactor, user, organization, make_member):
    make_member(user, "member")
    with pytest.raises(BillingPermissionDenied) as excinfo:
        interactor.get_customer(user, organization_id=organization.pk)
    assert excinfo.value.code == "billing_permission_denied"
    assert not Customer.objects.filter(organization_id=str(organization.pk)).exists()


def test_outsiders_and_unknown_organizations_look_the_same(interactor, user, organization):
    with pytest.raises(BillingPermissionDenied) as outsider:
        interactor.get_customer(user, organization_id=organization.pk)
    with pytest.raises(BillingPermissionDenied) as unknown:
        interactor.get_customer(user, organization_id=organization.pk + 1000)
    with pytest.raises(BillingPermissionDenied) as garbage:
        interactor.get_customer(user, organization_id="not-a-number")
    assert str(outsider.value) == str(unknown.value) == str(garbage.value)


def test_anonymous_users_manage_nothing(interactor, organization):
    from django.contrib.auth.models import AnonymousUser

    assert not interactor.can_manage_billing(AnonymousUser(), organization)


def test_projects_that_bill_users_only_refuse_organizations(interactor, user, organization, make_member):
    make_member(user, "owner")
    with override_settings(BOB_PAYMENTS={"SELLER_COUNTRY": "FR"}):
        with pytest.raises(BillingPermissionDenied) as excinfo:
            interactor.get_customer(user, organization_id=organization.pk)
    assert excinfo.value.code == "organizations_disabled"


def test_an_organization_without_a_rule_lets_nobody_in(interactor, user):
    class Team:
        pk = 1

    assert not interactor.can_manage_billing(user, Team())


def test_the_interactor_decides_in_the_end(user, organization):
    class EveryoneManages(PaymentInteractor):
        def can_manage_billing(self, user, organization):
            return True

    customer = EveryoneManages().get_customer(user, organization.pk)
    assert customer.organization == organization


def test_organization_customer_survives_as_generic_relation(interactor, user, organization, make_member):
    make_member(user, "owner")
    customer = interactor.get_customer(user, organization.pk)
    fetched = Customer.objects.get(pk=customer.pk)
    assert isinstance(fetched.organization, Organization)
    assert str(fetched) == f"organization {organization.pk}"
