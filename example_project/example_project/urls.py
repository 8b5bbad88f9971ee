from demo.views import home
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("api/payment/", include("django_bob_payments.urls")),
]
