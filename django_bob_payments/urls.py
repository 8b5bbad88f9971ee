"""
URLs of django-bob-payments. Include them under /api/payment/::

    path("api/payment/", include("django_bob_payments.urls"))
"""

from django.urls import path, re_path

from django_bob_payments import views

app_name = "bob_payments"

urlpatterns = [
    path("", views.ApiRootView.as_view(), name="root"),
    path("stripe/webhook/", views.stripe_webhook, name="stripe-webhook"),
    path("billing/", views.BillingInformationView.as_view(), name="billing"),
    path("vat/validate/", views.VatValidationView.as_view(), name="vat-validate"),
    path("products/", views.ProductListView.as_view(), name="products"),
    path("checkout/", views.CheckoutView.as_view(), name="checkout"),
    path("checkout/<str:session_id>/", views.CheckoutStateView.as_view(), name="checkout-state"),
    path("portal/", views.PortalView.as_view(), name="portal"),
    path("subscriptions/", views.SubscriptionListView.as_view(), name="subscriptions"),
    path("subscriptions/refresh/", views.SubscriptionRefreshView.as_view(), name="subscriptions-refresh"),
    path(
        "subscriptions/<int:pk>/cancel/",
        views.SubscriptionActionView.as_view(action="cancel"),
        name="subscription-cancel",
    ),
    path(
        "subscriptions/<int:pk>/resume/",
        views.SubscriptionActionView.as_view(action="resume"),
        name="subscription-resume",
    ),
    path(
        "subscriptions/<int:pk>/change-plan/",
        views.SubscriptionActionView.as_view(action="change-plan"),
        name="subscription-change-plan",
    ),
    path("orders/", views.OrderListView.as_view(), name="orders"),
    path("invoices/", views.InvoiceListView.as_view(), name="invoices"),
    path("schema/", views.OpenApiSchemaView.as_view(), name="schema"),
    path("fake/checkout/<str:session_id>/", views.FakeCheckoutView.as_view(), name="fake-checkout"),
    # Anything else under the app's prefix: a JSON 404, never the site's HTML page.
    re_path(r"^.*$", views.api_not_found, name="not-found"),
]
