"""
Local customers and who owns them.

Owns the one-customer-per-owner rule (a user's own customer, an organization's customer,
each created on first use) and where the app writes to a customer: the billing email, else
the owning user's.
"""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models

from django_bob_payments.models import Customer


class CustomerService:
    """Creates and finds the local customer of a user or an organization."""

    def for_user(self, user: Any) -> Customer:
        """The user's own customer, created on first use."""
        customer, _ = Customer.objects.get_or_create(user=user, organization_type=None)
        return customer

    def for_organization(self, organization: models.Model) -> Customer:
        """The organization's customer, created on first use."""
        customer, _ = Customer.objects.get_or_create(
            organization_type=ContentType.objects.get_for_model(organization),
            organization_id=str(organization.pk),
        )
        return customer

    def contact_email(self, customer: Customer) -> str:
        """Where to write to the customer: the billing email, else the owning user's."""
        billing = getattr(customer, "billing_information", None)
        if billing is not None and billing.email:
            return billing.email
        if customer.user is not None:
            return getattr(customer.user, "email", "") or ""
        return ""
