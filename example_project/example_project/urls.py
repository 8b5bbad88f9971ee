from demo import views
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.signup, name="signup"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("pricing/", views.pricing, name="pricing"),
    path("billing/", views.billing, name="billing"),
    path("checkout/success/", views.checkout_success, name="checkout-success"),
    path("account/", views.account, name="account"),
    path("account/projects/", views.create_project, name="create-project"),
    path("orders/", views.orders, name="orders"),
    path("invoices/<int:pk>/", views.invoice, name="invoice"),
    path("teams/switch/", views.switch_team, name="switch-team"),
    path("admin/", admin.site.urls),
    path("api/payment/", include("django_bob_payments.urls")),
]
