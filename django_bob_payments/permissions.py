"""
Access by subscription, computed from local data only (no API call): DRF permission classes
and decorators for plain Django views.

    class ReportViewSet(ViewSet):
        permission_classes = [IsAuthenticated, HasActiveSubscription]

    class ExportView(APIView):
        permission_classes = [IsAuthenticated, HasFeature("export")]

    @feature_required("export")
    def export(request): ...

The customer is the request user's own, or the organization's named by ``?organization=``
when the user manages its billing.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

from django_bob_payments.exceptions import BillingPermissionDenied
from django_bob_payments.interactors import get_payment_interactor
from django_bob_payments.models import Customer


def customer_for(request: Any) -> Customer | None:
    """
    The customer a request acts for, or None (anonymous, or not allowed); looked up once per
    request, however many permissions ask.
    """
    if hasattr(request, "_bob_payments_customer"):
        return request._bob_payments_customer
    user = getattr(request, "user", None)
    customer = None
    if user is not None and user.is_authenticated:
        organization = getattr(request, "query_params", request.GET).get("organization")
        try:
            customer = get_payment_interactor().get_customer(user, organization)
        except BillingPermissionDenied:
            customer = None
    request._bob_payments_customer = customer
    return customer


class HasActiveSubscription(BasePermission):
    """Allows customers with a trialing, active or past-due subscription."""

    message = "An active subscription is required."
    code = "subscription_required"

    def has_permission(self, request: Any, view: Any) -> bool:
        customer = customer_for(request)
        return customer is not None and customer.has_active_subscription()


class HasFeature(BasePermission):
    """``HasFeature("name")``: allows customers whose current plan grants the feature."""

    code = "feature_required"

    def __init__(self, feature: str) -> None:
        self.feature = feature
        self.message = f"Your plan does not include {feature}."

    def __call__(self) -> HasFeature:
        # DRF instantiates each entry of permission_classes; an instance stands for itself.
        return self

    def has_permission(self, request: Any, view: Any) -> bool:
        customer = customer_for(request)
        return customer is not None and customer.has_feature(self.feature)


def _requiring(check: Callable[[Customer], bool], message: str) -> Callable:
    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request: Any, *args: Any, **kwargs: Any) -> Any:
            customer = customer_for(request)
            if customer is None or not check(customer):
                raise PermissionDenied(message)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def subscription_required(view: Callable) -> Callable:
    """Decorator for a Django view: 403 unless the customer has an active subscription."""
    return _requiring(Customer.has_active_subscription, HasActiveSubscription.message)(view)


def feature_required(feature: str) -> Callable:
    """Decorator for a Django view: 403 unless the customer's plan grants ``feature``."""
    return _requiring(lambda customer: customer.has_feature(feature), f"Your plan does not include {feature}.")
