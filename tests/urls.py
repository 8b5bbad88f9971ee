from django.contrib import admin
from django.urls import include, path

from tests.testapp import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/payment/", include("django_bob_payments.urls")),
    path("premium/api/", views.SubscribersOnly.as_view()),
    path("premium/sso/", views.SsoOnly.as_view()),
    path("premium/view/", views.api_feature_view),
    path("premium/both/", views.SubscribersWithApi.as_view()),
]
