"""
Signed, verified bodies that are odd: each is stored (and applied, or left waiting), or
refused with a JSON 4xx. None gets Django's HTML 500, and none is lost.
"""

import copy
import json

import pytest
from django.test import Client

from django_bob_payments.models import ExternalCustomer, WebhookEvent
from django_bob_payments.testing import build_event, sign_payload, stripe_objects
from tests.lifecycle import T0

pytestmark = [pytest.mark.django_db, pytest.mark.security]

URL = "/api/payment/stripe/webhook/"
SECRET = "whsec_tests"


def subscription_event():
    price = stripe_objects.price("prod_pro", 1900, id="price_pro_monthly")
    return build_event(
        "customer.subscription.updated",
        stripe_objects.subscription("cus_abuse", price, id="sub_abuse"),
        previous_attributes={"status": "incomplete"},
        created=T0,
        event_id="evt_abuse",
    )


def invoice_event():
    return build_event(
        "invoice.paid", stripe_objects.invoice("cus_abuse", id="in_abuse", total=1900), created=T0, event_id="evt_abuse"
    )


def customer_event():
    return build_event("customer.updated", stripe_objects.customer(id="cus_abuse"), created=T0, event_id="evt_abuse")


def changed(make, path, value):
    """The event ``make`` builds, with the value at ``path`` (keys and indexes) replaced."""
    event = make()
    target = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return event


def nested(depth):
    return "[" * depth + "]" * depth


SUB = ("data", "object")
ITEM = (*SUB, "items", "data", 0)

# name: the body (an event to encode, or the exact text), signed with the endpoint's secret.
CORPUS = {
    "created 10**20": changed(subscription_event, ("created",), 10**20),
    "created -1": changed(subscription_event, ("created",), -1),
    "created 2**63": changed(subscription_event, ("created",), 2**63),
    "created as a float": changed(subscription_event, ("created",), 1.5),
    "event ID of 304 characters": changed(subscription_event, ("id",), "evt_" + "x" * 300),
    "event ID with a NUL": changed(subscription_event, ("id",), "evt_\u0000"),
    "event ID with a lone surrogate": changed(subscription_event, ("id",), "evt_\ud800"),
    "event ID with spaces": changed(subscription_event, ("id",), "evt 1"),
    "type of 300 characters": changed(subscription_event, ("type",), "customer." + "x" * 291),
    "type with a NUL": changed(subscription_event, ("type",), "customer.\u0000"),
    "api_version with a NUL": changed(subscription_event, ("api_version",), "2026\u0000"),
    "api_version as a number": changed(subscription_event, ("api_version",), 2026),
    "livemode as text": changed(subscription_event, ("livemode",), "false"),
    "object ID as a number": changed(subscription_event, (*SUB, "id"), 7),
    "object ID of 300 characters": changed(subscription_event, (*SUB, "id"), "sub_" + "x" * 296),
    "NUL in a customer's name": changed(customer_event, (*SUB, "name"), "Ann\u0000"),
    "lone surrogate in a customer's email": changed(customer_event, (*SUB, "email"), "\udfffa@example.com"),
    "customer name of 100,000 characters": changed(customer_event, (*SUB, "name"), "n" * 100_000),
    "NUL in a subscription status": changed(subscription_event, (*SUB, "status"), "active\u0000"),
    "unknown subscription status": changed(subscription_event, (*SUB, "status"), "exploded"),
    "status as a list": changed(subscription_event, (*SUB, "status"), ["active"]),
    "lone surrogate in metadata": changed(
        subscription_event, (*SUB, "metadata"), {"bob_payments_customer_id": "\ud800"}
    ),
    "metadata as a string": changed(subscription_event, (*SUB, "metadata"), "bob_payments_customer_id=1"),
    "metadata as a list": changed(subscription_event, (*SUB, "metadata"), ["bob_payments_customer_id"]),
    "metadata value as a number": changed(subscription_event, (*SUB, "metadata"), {"bob_payments_customer_id": 1}),
    "metadata ID as a superscript digit": changed(
        subscription_event, (*SUB, "metadata"), {"bob_payments_customer_id": "²"}
    ),
    "items as a list": changed(subscription_event, (*SUB, "items"), []),
    "items.data as [null]": changed(subscription_event, (*SUB, "items", "data"), [None]),
    "items.data as an object": changed(subscription_event, (*SUB, "items", "data"), {"0": {}}),
    "item price as a number": changed(subscription_event, (*ITEM, "price"), 5),
    "item quantity as text": changed(subscription_event, (*ITEM, "quantity"), "3"),
    "item quantity 10**20": changed(subscription_event, (*ITEM, "quantity"), 10**20),
    "item quantity -5": changed(subscription_event, (*ITEM, "quantity"), -5),
    "period end 10**20": changed(subscription_event, (*ITEM, "current_period_end"), 10**20),
    "period end as text": changed(subscription_event, (*ITEM, "current_period_end"), "tomorrow"),
    "cancel_at_period_end as text": changed(subscription_event, (*SUB, "cancel_at_period_end"), "yes"),
    "customer as a list": changed(subscription_event, (*SUB, "customer"), ["cus_abuse"]),
    "customer ID of 300 characters": changed(subscription_event, (*SUB, "customer"), "cus_" + "x" * 296),
    "previous_attributes as a list": changed(subscription_event, ("data", "previous_attributes"), ["status"]),
    "previous items as text": changed(subscription_event, ("data", "previous_attributes"), {"items": "x"}),
    "invoice without a customer": changed(invoice_event, (*SUB, "customer"), None),
    "invoice total as text": changed(invoice_event, (*SUB, "total"), "19.00"),
    "invoice total 10**30": changed(invoice_event, (*SUB, "total"), 10**30),
    "invoice number of 500 characters": changed(invoice_event, (*SUB, "number"), "N" * 500),
    "invoice URL as a number": changed(invoice_event, (*SUB, "hosted_invoice_url"), 42),
    "unknown invoice status": changed(invoice_event, (*SUB, "status"), "stolen"),
    "invoice parent as text": changed(invoice_event, (*SUB, "parent"), "sub_abuse"),
    "invoice taxes as an object": changed(invoice_event, (*SUB, "total_taxes"), {"amount": 5}),
    "JSON nested 100,000 deep": '{"id": "evt_abuse", "data": ' + nested(100_000) + "}",
    "JSON nested 1,000 deep": '{"id": "evt_abuse", "data": ' + nested(1_000) + "}",
    "JSON nested 70 deep in the object": changed(subscription_event, (*SUB, "metadata"), json.loads(nested(70))),
    "duplicate keys": '{"id": "evt_abuse", "id": "evt_other", "type": "ping", "created": 1, "data": {"object": {}}}',
    "a NaN": '{"id": "evt_abuse", "type": "ping", "created": NaN, "data": {"object": {}}}',
    "an unknown type with odd content": changed(subscription_event, ("type",), "radar.early_fraud_warning.created"),
}


def body_of(case):
    value = CORPUS[case]
    return value if isinstance(value, str) else json.dumps(copy.deepcopy(value))


@pytest.fixture
def linked(customer, catalog, stripe_emulator):
    """The events' Stripe customer is the user's (no lookup), and Stripe is the emulator."""
    ExternalCustomer.objects.create(customer=customer, provider="stripe", external_id="cus_abuse")
    return customer


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 40


@pytest.mark.parametrize("case", list(CORPUS), ids=list(CORPUS))
def test_every_odd_body_is_stored_or_refused_with_json(case, linked):
    body = body_of(case)
    client = Client(raise_request_exception=False)
    response = client.post(
        URL, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign_payload(body, SECRET)
    )
    assert response["Content-Type"] == "application/json", response.content[:200]
    assert response.status_code < 500, response.json()
    stored = list(WebhookEvent.objects.all())
    if response.status_code >= 400:
        assert response.json()["code"] and response.json()["error"]
        assert stored == []
    else:
        assert len(stored) == 1
        assert bytes(stored[0].body) == body.encode()
        assert stored[0].status in ("processed", "waiting", "ignored")


def test_a_malformed_object_waits_with_its_reason(client, linked):
    body = body_of("item quantity as text")
    response = client.post(
        URL, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign_payload(body, SECRET)
    )
    assert response.json()["status"] == "waiting"
    assert "items.data[0].quantity is a str, not an integer" in WebhookEvent.objects.get().last_error


def test_an_odd_event_field_is_named_in_the_400(client):
    body = body_of("created 10**20")
    response = client.post(
        URL, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign_payload(body, SECRET)
    )
    assert response.status_code == 400
    assert "created" in response.json()["error"]
