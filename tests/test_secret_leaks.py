"""
A scan for secrets and other customers' data in everything the app emits while used and
abused: response bodies, log records of every level (the stripe SDK's own logger kept at
WARNING, as the README says), and the admins' error mails.
"""

import functools
import json
import logging

import pytest
from django.core import mail
from django.test import Client
from django.utils.log import AdminEmailHandler

from django_bob_payments.models import Subscription
from django_bob_payments.services.billing import BillingService
from django_bob_payments.testing import build_event, sign_payload, stripe_objects
from tests.shop import buy

pytestmark = [pytest.mark.django_db, pytest.mark.security]

VICTIM_VAT = "DE136695976"
VICTIM_EMAIL = "victim-billing@example.com"


class Everything(logging.Handler):
    """Every record, formatted with its arguments and traceback."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))


def test_no_secret_and_no_other_customers_data_anywhere(make_user, shop, stripe_emulator, vies, settings, monkeypatch):
    settings.ADMINS = [("Ops", "ops@example.com")]
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "SELLER_VAT_NUMBER": "FR40303265045"}
    vies.register(VICTIM_VAT)
    root = logging.getLogger()
    capture, admins = Everything(), AdminEmailHandler(include_html=True)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    logging.getLogger("stripe").setLevel(logging.WARNING)
    root.addHandler(capture)
    logging.getLogger("django.request").addHandler(admins)
    victim_responses, attacker_responses = [], []
    signatures = []
    try:
        victim = Client(raise_request_exception=False)
        victim.force_login(make_user("victim"))
        attacker = Client(raise_request_exception=False)
        attacker.force_login(make_user("attacker"))
        billing = {"name": "Victim GmbH", "email": VICTIM_EMAIL, "country": "DE", "vat_number": VICTIM_VAT}
        victim_responses.append(victim.post("/api/payment/billing/", billing, content_type="application/json"))
        buy(victim, stripe_emulator, shop["pro_monthly"])
        sub = Subscription.objects.get()
        # The attacker probes the victim's data.
        for method, path, data in [
            ("get", "/api/payment/billing/", None),
            ("get", "/api/payment/subscriptions/", None),
            ("get", "/api/payment/orders/", None),
            ("get", "/api/payment/invoices/", None),
            ("post", f"/api/payment/subscriptions/{sub.pk}/cancel/", {}),
            ("post", "/api/payment/vat/validate/", {"vat_number": "DE129273398", "country": "DE"}),
            ("patch", "/api/payment/billing/", {"vat_number": "nope"}),
        ]:
            kwargs = {"data": json.dumps(data), "content_type": "application/json"} if data is not None else {}
            attacker_responses.append(getattr(attacker, method)(path, **kwargs))
        # Webhooks: a good one, a forged one, a stale one, and one whose handler fails.
        event = build_event("customer.updated", stripe_objects.customer(id="cus_leak", email=VICTIM_EMAIL))
        body = json.dumps(event)
        for secret, timestamp in [("whsec_tests", None), ("whsec_forged", None), ("whsec_tests", 1)]:
            signature = sign_payload(body, secret, timestamp)
            signatures.append(signature.split("v1=")[1])
            attacker_responses.append(
                Client().post(
                    "/api/payment/stripe/webhook/",
                    body,
                    content_type="application/json",
                    HTTP_STRIPE_SIGNATURE=signature,
                )
            )
        # An unexpected error in the billing API: the admins get a report.
        monkeypatch.setattr(BillingService, "save", functools.partial(divmod, 1, 0))
        victim_responses.append(victim.put("/api/payment/billing/", billing, content_type="application/json"))
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)
        logging.getLogger("django.request").removeHandler(admins)
    assert victim_responses[-1].status_code == 500, "the error happened, and was reported"
    mails = [
        m.body + "".join(content for content, _ in m.alternatives) for m in mail.outbox if "ops@example.com" in m.to
    ]
    assert mails, "the admins got the report"
    secrets = ["sk_test_tests", "whsec_tests", "whsec_forged", *signatures]
    emitted = {
        "logs": "\n".join(capture.lines),
        "error mails": "\n".join(mails),
        "attacker's responses": "\n".join(r.content.decode() for r in attacker_responses),
        "victim's responses": "\n".join(r.content.decode() for r in victim_responses),
    }
    hits = [(where, secret) for where, text in emitted.items() for secret in secrets if secret in text]
    # The victim's data reaches nobody else, and no log or report.
    for where in ("logs", "error mails", "attacker's responses"):
        hits += [(where, value) for value in (VICTIM_VAT, "136695976", VICTIM_EMAIL) if value in emitted[where]]
    assert hits == []
    assert capture.lines, "the scan read the logs"
