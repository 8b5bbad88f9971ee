"""The example site's home page: where to go, and what a checkout or the portal returned."""

from django.shortcuts import render
from django.urls import reverse

OUTCOMES = {
    ("checkout", "success"): "Payment done: the subscription is active once the provider confirms it.",
    ("checkout", "canceled"): "Checkout canceled: nothing was charged.",
    ("portal", "returned"): "Back from the customer portal.",
}


def home(request):
    """Links to the admin, the API and its schema, built on the host and port of this request."""
    outcome = next(
        (text for (key, value), text in OUTCOMES.items() if request.GET.get(key) == value),
        "",
    )
    links = [
        ("Admin (demo / demo)", reverse("admin:index")),
        ("Billing API", reverse("bob_payments:root")),
        ("Catalog", reverse("bob_payments:products")),
        ("Checkout (POST {\"pricing\": 1})", reverse("bob_payments:checkout")),
        ("OpenAPI schema", reverse("bob_payments:schema")),
    ]
    context = {"outcome": outcome, "links": [(label, request.build_absolute_uri(url)) for label, url in links]}
    return render(request, "demo/home.html", context)
