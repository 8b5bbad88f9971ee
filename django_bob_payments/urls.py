"""
URLs of django-bob-payments. Include them under /api/payment/::

    path("api/payment/", include("django_bob_payments.urls"))
"""

app_name = "bob_payments"

urlpatterns: list = []
