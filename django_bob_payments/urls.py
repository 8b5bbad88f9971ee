"""
URLs of django-bob-payments. Include them under /api/payment/::

    path("api/payment/", include("django_bob_payments.urls"))
"""

from django.urls import path

from django_bob_payments import views

app_name = "bob_payments"

urlpatterns = [
    path("stripe/webhook/", views.stripe_webhook, name="stripe-webhook"),
    path("billing/", views.BillingInformationView.as_view(), name="billing"),
    path("vat/validate/", views.VatValidationView.as_view(), name="vat-validate"),
]
