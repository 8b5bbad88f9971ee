"""Provider data is data, never trusted markup; the API bounds what it parses."""

import json

import pytest
from django.core import mail

from django_bob_payments.models import BillingInformation, Customer, ExternalCustomer, Invoice, WebhookEvent
from django_bob_payments.testing import build_event, post_event, stripe_objects

pytestmark = [pytest.mark.django_db, pytest.mark.security]


@pytest.fixture
def linked(customer):
    ExternalCustomer.objects.create(customer=customer, provider="stripe", external_id="cus_sec")
    BillingInformation.objects.create(customer=customer, name="Ann", email="ann@example.com", country="FR")
    return customer


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)//https://invoice.stripe.com/",
        "http://invoice.stripe.com/i/acct_1/test",
        "https://evil.example/i/acct_1/test",
        "https://invoice.stripe.com.evil.example/i/",
        "data:text/html,<script>alert(1)</script>",
    ],
)
def test_an_untrusted_invoice_url_is_stored_empty_with_a_note(client, linked, url, django_capture_on_commit_callbacks):
    invoice = stripe_objects.invoice("cus_sec", id="in_sec", total=100, hosted_invoice_url=url, invoice_pdf=url)
    with django_capture_on_commit_callbacks(execute=True):
        assert post_event(client, build_event("invoice.paid", invoice)).status_code == 200
    stored = Invoice.objects.get()
    assert (stored.hosted_invoice_url, stored.invoice_pdf) == ("", "")
    assert "untrusted URL" in WebhookEvent.objects.get().outcome
    assert url not in mail.outbox[0].body and url not in mail.outbox[0].alternatives[0][0]


def test_stripes_own_urls_are_kept(client, linked):
    invoice = stripe_objects.invoice("cus_sec", id="in_ok", total=100)
    post_event(client, build_event("invoice.paid", invoice))
    assert Invoice.objects.get().hosted_invoice_url.startswith("https://invoice.stripe.com/")


@pytest.mark.parametrize(("method", "url"), [("post", "/api/payment/checkout/"), ("post", "/api/payment/billing/")])
def test_deeply_nested_json_is_a_400(client, user, method, url):
    client.force_login(user)
    body = '{"pricing": ' + "[" * 20_000 + "]" * 20_000 + "}"
    response = getattr(client, method)(url, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert not Customer.objects.get(user=user).orders.exists()


@pytest.mark.parametrize(("method", "url"), [("post", "/api/payment/checkout/"), ("put", "/api/payment/billing/")])
def test_an_oversized_body_is_a_400_read_no_further(client, user, method, url):
    client.force_login(user)
    body = json.dumps({"pricing": 1, "name": "x" * 5_000_000})
    response = getattr(client, method)(url, body, content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (400, "body_too_large")


def test_json_within_the_depth_is_parsed(client, user):
    client.force_login(user)
    response = client.post("/api/payment/checkout/", json.dumps({"pricing": 99}), content_type="application/json")
    assert response.status_code == 400 and "pricing" in response.json()


def test_an_error_report_holds_no_secret_and_no_payload(customer, settings, monkeypatch):
    """An exception inside verification: the admins' error mail shows neither secrets nor the body."""
    import logging

    import stripe
    from django.test import Client
    from django.utils.log import AdminEmailHandler

    from django_bob_payments.testing import sign_payload

    settings.ADMINS = [("Ops", "ops@example.com")]
    handler = AdminEmailHandler(include_html=True)
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)

    def explode(*args, **kwargs):
        raise RuntimeError("verification exploded")

    monkeypatch.setattr(stripe.WebhookSignature, "verify_header", explode)
    event = build_event("customer.created", stripe_objects.customer(id="cus_leak", email="secret-person@example.com"))
    body = json.dumps(event)
    signature = sign_payload(body, "whsec_tests")
    try:
        response = Client(raise_request_exception=False).post(
            "/api/payment/stripe/webhook/", body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
        )
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 500
    everything = "".join(
        message.body + "".join(content for content, _ in message.alternatives) for message in mail.outbox
    )
    # The HTML report lists the frames' variables, the verification's among them.
    assert "failed unexpectedly (RuntimeError)" in everything
    assert "verify_webhook" in everything and "signature_header" in everything
    for secret in ("whsec_tests", signature.split("v1=")[1], "secret-person@example.com", "sk_test"):
        assert secret not in everything, secret


@pytest.mark.security
@pytest.mark.parametrize("method", ["post", "put"])
def test_an_unexpected_error_in_the_billing_api_reports_no_customer_data(
    settings, monkeypatch, make_user, vies, method
):
    """The error mail lists every frame's variables: none of the app's shows the billing data."""
    import functools
    import logging

    from django.test import Client
    from django.utils.log import AdminEmailHandler

    from django_bob_payments.services.billing import BillingService

    settings.ADMINS = [("Ops", "ops@example.com")]
    vies.register("DE136695976")
    user = make_user("victim")
    client = Client(raise_request_exception=False)
    client.force_login(user)
    if method == "put":
        data = {"name": "First", "email": "first@example.com", "country": "FR"}
        assert client.post("/api/payment/billing/", data, content_type="application/json").status_code == 201
    # A failure no input causes: dividing by zero, in C, with no frame of its own.
    monkeypatch.setattr(BillingService, "save", functools.partial(divmod, 1, 0))
    handler = AdminEmailHandler(include_html=True)
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    mail.outbox.clear()
    secret_data = {"name": "Hidden GmbH", "email": "hidden-person@example.com", "country": "DE"}
    try:
        response = getattr(client, method)(
            "/api/payment/billing/", {**secret_data, "vat_number": "DE136695976"}, content_type="application/json"
        )
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 500
    everything = "".join(
        message.body + "".join(content for content, _ in message.alternatives) for message in mail.outbox
    )
    assert "create_user_billing_info" in everything, "the report lists the app's frames"
    for value in ("hidden-person@example.com", "Hidden GmbH", "136695976"):
        assert value not in everything, value


def test_no_template_or_module_marks_text_safe():
    """Templates escape everything: no |safe, no mark_safe; only plain-text emails turn autoescape off."""
    from pathlib import Path

    import django_bob_payments

    package = Path(django_bob_payments.__file__).parent
    offenders = []
    for path in package.rglob("*"):
        if path.suffix not in (".py", ".html", ".txt") or "locale" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        if "|safe" in text or "mark_safe(" in text or "SafeString(" in text:
            offenders.append(str(path.relative_to(package)))
        if path.suffix == ".html" and "autoescape off" in text:
            offenders.append(str(path.relative_to(package)))
    assert offenders == []
