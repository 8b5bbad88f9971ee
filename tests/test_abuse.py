"""
Hostile requests across the API and the webhook: IDOR, CSRF, mass assignment, redirects,
oversize, deep nesting, wrong types, unicode look-alikes and header tricks. Each one gets a
4xx JSON answer and changes nothing: the database and Stripe are compared before and after.
"""

import json
import re
import time

import pytest
from django.test import Client

from django_bob_payments import models
from django_bob_payments.testing import build_event, sign_payload, stripe_objects
from tests.shop import buy

pytestmark = [pytest.mark.django_db, pytest.mark.security]

WEBHOOK = "/api/payment/stripe/webhook/"
SECRET = "whsec_tests"
DEEP = '{"pricing": ' + "[" * 5_000 + "]" * 5_000 + "}"
OVERSIZE = json.dumps({"name": "x" * 200_000, "email": "a@example.com", "country": "FR"})


def signed(body, secret=SECRET, timestamp=None):
    return {"HTTP_STRIPE_SIGNATURE": sign_payload(body, secret, timestamp)}


def event_body():
    return json.dumps(build_event("customer.created", stripe_objects.customer(email="x@example.com")))


# (name, who, method, path, body or None, content type, extra headers). Paths may name
# {victim_sub}, {own_sub} and {org}; who is "attacker" (logged in), "victim" (logged in,
# acting on their own data), "csrf" (the victim's session, CSRF enforced) or "anon".
HOSTILE = [
    # IDOR: another customer's subscription, another organization's billing.
    ("idor cancel", "attacker", "post", "/api/payment/subscriptions/{victim_sub}/cancel/", {}, None, {}),
    (
        "idor cancel now",
        "attacker",
        "post",
        "/api/payment/subscriptions/{victim_sub}/cancel/",
        {"immediately": True},
        None,
        {},
    ),
    ("idor resume", "attacker", "post", "/api/payment/subscriptions/{victim_sub}/resume/", {}, None, {}),
    (
        "idor change plan",
        "attacker",
        "post",
        "/api/payment/subscriptions/{victim_sub}/change-plan/",
        {"quantity": 2},
        None,
        {},
    ),
    ("idor org billing", "attacker", "get", "/api/payment/billing/?organization={org}", None, None, {}),
    (
        "idor org billing patch",
        "attacker",
        "patch",
        "/api/payment/billing/?organization={org}",
        {"name": "Mine"},
        None,
        {},
    ),
    (
        "idor org checkout",
        "attacker",
        "post",
        "/api/payment/checkout/?organization={org}",
        {"pricing": "{pricing}"},
        None,
        {},
    ),
    ("idor org portal", "attacker", "post", "/api/payment/portal/?organization={org}", {}, None, {}),
    ("idor org subscriptions", "attacker", "get", "/api/payment/subscriptions/?organization={org}", None, None, {}),
    ("idor org orders", "attacker", "get", "/api/payment/orders/?organization={org}", None, None, {}),
    ("idor org invoices", "attacker", "get", "/api/payment/invoices/?organization={org}", None, None, {}),
    ("idor org not a number", "attacker", "get", "/api/payment/billing/?organization=1%20OR%201=1", None, None, {}),
    ("idor org unknown", "attacker", "get", "/api/payment/billing/?organization=999999", None, None, {}),
    # CSRF: the victim's session cookie without the token.
    (
        "csrf billing post",
        "csrf",
        "post",
        "/api/payment/billing/",
        {"name": "X", "email": "x@example.com", "country": "FR"},
        None,
        {},
    ),
    ("csrf billing patch", "csrf", "patch", "/api/payment/billing/", {"name": "X"}, None, {}),
    (
        "csrf billing put",
        "csrf",
        "put",
        "/api/payment/billing/",
        {"name": "X", "email": "x@example.com", "country": "FR"},
        None,
        {},
    ),
    ("csrf checkout", "csrf", "post", "/api/payment/checkout/", {"pricing": "{pricing}"}, None, {}),
    ("csrf portal", "csrf", "post", "/api/payment/portal/", {}, None, {}),
    ("csrf cancel", "csrf", "post", "/api/payment/subscriptions/{own_sub}/cancel/", {"immediately": True}, None, {}),
    (
        "csrf vat check",
        "csrf",
        "post",
        "/api/payment/vat/validate/",
        {"vat_number": "DE136695976", "country": "DE"},
        None,
        {},
    ),
    # Mass assignment: fields the caller may not write.
    ("mass tax status", "victim", "patch", "/api/payment/billing/", {"tax_exempt": "exempt"}, None, {}),
    ("mass vat status", "victim", "patch", "/api/payment/billing/", {"vat_status": "valid"}, None, {}),
    ("mass vies proof", "victim", "patch", "/api/payment/billing/", {"vies_consultation_number": "FAKE"}, None, {}),
    ("mass sync status", "victim", "patch", "/api/payment/billing/", {"sync_status": "failed"}, None, {}),
    ("mass customer", "victim", "patch", "/api/payment/billing/", {"customer": 1}, None, {}),
    (
        "mass checkout amount",
        "victim",
        "post",
        "/api/payment/checkout/",
        {"pricing": "{pricing}", "amount": 1},
        None,
        {},
    ),
    (
        "mass checkout customer",
        "victim",
        "post",
        "/api/payment/checkout/",
        {"pricing": "{pricing}", "customer": 1},
        None,
        {},
    ),
    (
        "mass change plan price",
        "victim",
        "post",
        "/api/payment/subscriptions/{own_sub}/change-plan/",
        {"price": "price_x"},
        None,
        {},
    ),
    # Redirects.
    (
        "redirect success",
        "victim",
        "post",
        "/api/payment/checkout/",
        {"pricing": "{pricing}", "success_url": "https://evil.example/x"},
        None,
        {},
    ),
    (
        "redirect cancel js",
        "victim",
        "post",
        "/api/payment/checkout/",
        {"pricing": "{pricing}", "cancel_url": "javascript:alert(1)"},
        None,
        {},
    ),
    (
        "redirect scheme relative",
        "victim",
        "post",
        "/api/payment/checkout/",
        {"pricing": "{pricing}", "success_url": "//evil.example/x"},
        None,
        {},
    ),
    (
        "redirect userinfo",
        "victim",
        "post",
        "/api/payment/checkout/",
        {"pricing": "{pricing}", "success_url": "https://shop.example@evil.example/"},
        None,
        {},
    ),
    ("redirect portal", "victim", "post", "/api/payment/portal/", {"return_url": "https://evil.example/x"}, None, {}),
    # Oversize.
    ("oversize body", "victim", "put", "/api/payment/billing/", OVERSIZE, "application/json", {}),
    ("oversize name", "victim", "patch", "/api/payment/billing/", {"name": "x" * 256}, None, {}),
    (
        "oversize vat number",
        "victim",
        "post",
        "/api/payment/vat/validate/",
        {"vat_number": "DE" + "1" * 40, "country": "DE"},
        None,
        {},
    ),
    (
        "oversize url",
        "victim",
        "post",
        "/api/payment/checkout/",
        {"pricing": "{pricing}", "success_url": "https://shop.example/" + "a" * 3000},
        None,
        {},
    ),
    # Deep nesting.
    ("deep checkout", "victim", "post", "/api/payment/checkout/", DEEP, "application/json", {}),
    ("deep billing", "victim", "patch", "/api/payment/billing/", DEEP, "application/json", {}),
    ("deep vat", "victim", "post", "/api/payment/vat/validate/", DEEP, "application/json", {}),
    # Wrong types.
    ("type pricing list", "victim", "post", "/api/payment/checkout/", {"pricing": [1]}, None, {}),
    (
        "type quantity negative",
        "victim",
        "post",
        "/api/payment/checkout/",
        {"pricing": "{pricing}", "quantity": -1},
        None,
        {},
    ),
    (
        "type quantity huge",
        "victim",
        "post",
        "/api/payment/checkout/",
        {"pricing": "{pricing}", "quantity": 2**40},
        None,
        {},
    ),
    (
        "type quantity bool",
        "victim",
        "post",
        "/api/payment/checkout/",
        {"pricing": "{pricing}", "quantity": True},
        None,
        {},
    ),
    (
        "type immediately",
        "victim",
        "post",
        "/api/payment/subscriptions/{own_sub}/cancel/",
        {"immediately": "maybe"},
        None,
        {},
    ),
    ("type body list", "victim", "patch", "/api/payment/billing/", [], None, {}),
    ("type body string", "victim", "post", "/api/payment/checkout/", "just text", None, {}),
    ("type country object", "victim", "patch", "/api/payment/billing/", {"country": {}}, None, {}),
    ("type name number", "victim", "patch", "/api/payment/billing/", {"name": 12}, None, {}),
    ("type broken json", "victim", "patch", "/api/payment/billing/", '{"name": ', "application/json", {}),
    # Unicode look-alikes.
    ("unicode country", "victim", "patch", "/api/payment/billing/", {"country": "D\u0415"}, None, {}),
    (
        "unicode vat digits",
        "victim",
        "patch",
        "/api/payment/billing/",
        {"vat_number": "DE\uff11\uff13\uff16\uff16\uff19\uff15\uff19\uff17\uff16"},
        None,
        {},
    ),
    ("unicode email", "victim", "patch", "/api/payment/billing/", {"email": "alice\uff20example.com"}, None, {}),
    (
        "unicode vat country",
        "victim",
        "post",
        "/api/payment/vat/validate/",
        {"vat_number": "DE136695976", "country": "\uff24\uff25"},
        None,
        {},
    ),
    # Header tricks.
    ("header text plain", "victim", "patch", "/api/payment/billing/", "name=X", "text/plain", {}),
    ("header xml", "victim", "post", "/api/payment/checkout/", "<pricing>1</pricing>", "application/xml", {}),
    (
        "header host with url",
        "victim",
        "post",
        "/api/payment/checkout/",
        {"pricing": "{pricing}", "success_url": "https://testserver.evil.example/"},
        None,
        {},
    ),
    ("header method delete", "victim", "delete", "/api/payment/billing/", None, None, {}),
    ("header unknown path", "victim", "get", "/api/payment/../admin/", None, None, {}),
    ("header id not a number", "victim", "post", "/api/payment/subscriptions/abc/cancel/", {}, None, {}),
    ("anonymous billing", "anon", "get", "/api/payment/billing/", None, None, {}),
    ("anonymous checkout", "anon", "post", "/api/payment/checkout/", {"pricing": "{pricing}"}, None, {}),
    # The webhook.
    ("webhook unsigned", "anon", "post", WEBHOOK, "EVENT", "application/json", {}),
    (
        "webhook bad signature",
        "anon",
        "post",
        WEBHOOK,
        "EVENT",
        "application/json",
        {"HTTP_STRIPE_SIGNATURE": "t=1,v1=00"},
    ),
    ("webhook other secret", "anon", "post", WEBHOOK, "EVENT", "application/json", "SIGNED:whsec_other"),
    ("webhook old timestamp", "anon", "post", WEBHOOK, "EVENT", "application/json", "SIGNED_OLD"),
    ("webhook not json", "anon", "post", WEBHOOK, "not json at all", "application/json", "SIGNED"),
    ("webhook deep", "anon", "post", WEBHOOK, "[" * 20_000 + "]" * 20_000, "application/json", "SIGNED"),
    ("webhook not an event", "anon", "post", WEBHOOK, '{"hello": "world"}', "application/json", "SIGNED"),
    ("webhook get", "anon", "get", WEBHOOK, None, None, {}),
]


@pytest.fixture
def world(make_user, shop, stripe_emulator, organization, make_member, vies):
    """A victim with billing information, a subscription and an organization; an attacker; a subscription of each."""
    victim, attacker = make_user("victim"), make_user("attacker")
    make_member(victim, "owner")
    victim_client = Client()
    victim_client.force_login(victim)
    billing = {"name": "Victim GmbH", "email": "victim@example.com", "country": "FR"}
    assert victim_client.post("/api/payment/billing/", billing, content_type="application/json").status_code == 201
    buy(victim_client, stripe_emulator, shop["pro_monthly"])
    attacker_client = Client()
    attacker_client.force_login(attacker)
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(victim)
    sub = models.Subscription.objects.get(customer__user=victim)
    return {
        "clients": {"victim": victim_client, "attacker": attacker_client, "csrf": csrf_client, "anon": Client()},
        "names": {"victim_sub": sub.pk, "own_sub": sub.pk, "org": organization.pk, "pricing": shop["pro_monthly"].pk},
    }


def snapshot():
    """Every row the API or the webhook could change."""
    tables = (
        models.BillingInformation,
        models.Customer,
        models.Subscription,
        models.Order,
        models.PaymentAttempt,
        models.WebhookEvent,
        models.ExternalCustomer,
        models.Invoice,
    )
    return {model.__name__: sorted(map(repr, model.objects.values())) for model in tables}


def fill(value, names):
    """A body with its placeholders ("{pricing}" as a whole value) replaced by the world's IDs."""
    if isinstance(value, dict):
        return {key: fill(item, names) for key, item in value.items()}
    if isinstance(value, str) and re.fullmatch(r"\{(\w+)\}", value):
        return names[value[1:-1]]
    return value


def test_the_suite_has_at_least_sixty_requests():
    assert len(HOSTILE) >= 60
    assert len({name for name, *_ in HOSTILE}) == len(HOSTILE)


@pytest.mark.parametrize(
    ("name", "who", "method", "path", "body", "content_type", "headers"), HOSTILE, ids=[h[0] for h in HOSTILE]
)
def test_a_hostile_request_is_a_4xx_json_and_changes_nothing(
    world, stripe_emulator, settings, name, who, method, path, body, content_type, headers
):
    client = world["clients"][who]
    names = world["names"]
    if body == "EVENT":
        body = event_body()
    if isinstance(headers, str):
        secret = headers.split(":", 1)[1] if ":" in headers else SECRET
        timestamp = int(time.time()) - 3600 if headers == "SIGNED_OLD" else None
        headers = signed(body, secret, timestamp)
    path = path.format(**names)
    kwargs = dict(headers)
    if body is not None:
        data = fill(body, names)
        kwargs["data"] = data if isinstance(data, str) else json.dumps(data)
        kwargs["content_type"] = content_type or "application/json"
    before, writes = snapshot(), stripe_emulator.write_calls
    response = getattr(client, method)(path, **kwargs)
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    assert isinstance(response.json(), dict)
    assert snapshot() == before
    assert stripe_emulator.write_calls == writes
