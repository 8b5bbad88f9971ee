"""The OpenAPI schema: served, valid, complete, and no generated request makes a 5xx."""

import base64
import json

import hypothesis
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.validation import validate_schema
from hypothesis import HealthCheck
from schemathesis import checks

from django_bob_payments.models import BillingInformation, Pricing, Product

pytestmark = pytest.mark.django_db

SCHEMA_URL = "/api/payment/schema/"
# What every answer must satisfy: no server error, and a status code, content type and
# body the schema lists.
RESPONSE_CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
ENDPOINTS = {
    "/api/payment/billing/": {"get", "post", "put", "patch"},
    "/api/payment/vat/validate/": {"post"},
    "/api/payment/products/": {"get"},
    "/api/payment/checkout/": {"post"},
    "/api/payment/checkout/{session_id}/": {"get"},
    "/api/payment/subscriptions/refresh/": {"post"},
    "/api/payment/portal/": {"post"},
    "/api/payment/subscriptions/": {"get"},
    "/api/payment/subscriptions/{id}/cancel/": {"post"},
    "/api/payment/subscriptions/{id}/resume/": {"post"},
    "/api/payment/subscriptions/{id}/change-plan/": {"post"},
    "/api/payment/orders/": {"get"},
    "/api/payment/invoices/": {"get"},
}


@pytest.mark.parametrize("schema_class", [None, "rest_framework.schemas.openapi.AutoSchema"])
def test_the_schema_needs_no_global_setting(client, settings, schema_class):
    """Served whatever the host's DEFAULT_SCHEMA_CLASS is: unset, or DRF's own."""
    settings.REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": schema_class} if schema_class else {}
    schema = load(client)
    assert set(schema["paths"]) == set(ENDPOINTS)
    validate_schema(schema)


def load(client):
    response = client.get(SCHEMA_URL, HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return json.loads(response.content)


def test_the_schema_is_valid_and_lists_every_endpoint(client):
    schema = load(client)
    validate_schema(schema)
    assert {path: set(methods) - {"parameters"} for path, methods in schema["paths"].items()} == ENDPOINTS
    billing = schema["components"]["schemas"]["BillingInformation"]
    assert "vat_status" in billing["properties"] and billing["properties"]["vat_status"]["readOnly"]


@pytest.mark.security
def test_no_generated_request_makes_a_server_error_or_contradicts_the_schema(client, make_user, vies, stripe_emulator):
    """Schemathesis over every operation, in process, a bounded number of examples each, answers checked."""
    product = Product.objects.create(slug="pro", name="Pro")
    Pricing.objects.create(product=product, amount=900, currency="eur", interval="month")
    make_user("fuzz")
    auth = {"Authorization": "Basic " + base64.b64encode(b"fuzz:pw").decode()}
    app = get_wsgi_application()
    # As Django's test client does: requests must not close the test's database connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        _fuzz(app, auth)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _fuzz(app, auth):
    schema = schemathesis.openapi.from_wsgi(SCHEMA_URL, app, headers={"Accept": "application/vnd.oai.openapi+json"})
    failures, statuses = [], set()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(methods) for methods in ENDPOINTS.values())
    for operation in operations:

        @hypothesis.given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck), derandomize=True
        )
        def run(case):
            response = case.call(headers=auth)
            statuses.add(response.status_code)
            try:
                case.validate_response(response, checks=RESPONSE_CHECKS)
            except Exception as err:  # every kind of check failure is collected
                failures.append(
                    (
                        case.operation.label,
                        response.status_code,
                        case.body,
                        case.query,
                        case.path_parameters,
                        str(err)[:500],
                    )
                )

        run()
    assert failures == []
    # The requests went through authentication to the views: successes and refusals both.
    assert {200, 400} <= statuses


BILLING_OPERATIONS = ("/api/payment/billing/", "/api/payment/vat/validate/")


@pytest.mark.parametrize(
    "with_billing", [False, True, "legacy"], ids=["new customer", "with billing", "legacy row without country"]
)
def test_billing_responses_follow_the_schema(client, make_user, vies, stripe_emulator, with_billing):
    """
    Schemathesis on the billing endpoints, checking each answer against the schema: status
    codes it lists, its content types, and bodies that validate (enums included).
    """
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    user = make_user("fuzz")
    vies.register("DE136695976")
    if with_billing:
        client.force_login(user)
        data = {"name": "Fuzz GmbH", "email": "fuzz@example.com", "country": "DE", "vat_number": "DE136695976"}
        assert client.post("/api/payment/billing/", data, content_type="application/json").status_code == 201
        if with_billing == "legacy":
            # A row saved before countries were checked, with none.
            BillingInformation.objects.update(country="")
    auth = {"Authorization": "Basic " + base64.b64encode(b"fuzz:pw").decode()}
    app = get_wsgi_application()
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    failures = []
    try:
        schema = schemathesis.openapi.from_wsgi(SCHEMA_URL, app, headers={"Accept": "application/vnd.oai.openapi+json"})
        operations = [result.ok() for result in schema.get_all_operations()]
        operations = [op for op in operations if op.path in BILLING_OPERATIONS]
        assert len(operations) == 5
        for operation in operations:

            @hypothesis.given(case=operation.as_strategy())
            @hypothesis.settings(
                max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck), derandomize=True
            )
            def run(case):
                response = case.call(headers=auth)
                try:
                    case.validate_response(
                        response,
                        checks=[
                            not_a_server_error,
                            status_code_conformance,
                            content_type_conformance,
                            response_schema_conformance,
                        ],
                    )
                except Exception as err:  # every kind of check failure is collected
                    failures.append((case.operation.label, response.status_code, str(err)[:400]))

            run()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    assert failures == []
