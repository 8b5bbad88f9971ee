"""Billing emails: their content, and each sent exactly once."""

import io
import json
import multiprocessing
import os

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from django_bob_payments.models import BillingEmail, BillingInformation, Customer, Subscription
from django_bob_payments.templatetags.bob_payments import money
from django_bob_payments.testing import build_event, post_event, stripe_objects
from tests.lifecycle import Lifecycle
from tests.webhook_worker import deliver as deliver_from_a_process

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer(user):
    customer = Customer.objects.get(user=user)
    BillingInformation.objects.create(
        customer=customer,
        name="Alice GmbH",
        email="billing@alice.example",
        country="DE",
        vat_number="DE136695976",
        vat_status="valid",
        tax_exempt="reverse",
    )
    return customer


@pytest.fixture
def lifecycle(customer, catalog):
    lifecycle = Lifecycle(customer, catalog)
    # The customer is reverse-charged: Stripe's invoice says so.
    lifecycle.invoice_paid["data"]["object"]["customer_tax_exempt"] = "reverse"
    return lifecycle


@pytest.fixture
def post(client, django_capture_on_commit_callbacks):
    """
    Post a signed event. Each test runs inside a transaction that never commits; here each
    delivery's transaction commits as the webhook view's does, so its on-commit work (the
    emails) runs.
    """

    def post(event):
        with django_capture_on_commit_callbacks(execute=True):
            return post_event(client, event)

    return post


@pytest.fixture
def deliver(post):
    """Deliver the named events of a Lifecycle, each answered 200."""

    def deliver(lifecycle, *names):
        for name in names:
            assert post(getattr(lifecycle, name)).status_code == 200

    return deliver


def test_money_is_formatted_from_minor_units():
    assert money(5700, "eur") == "57.00 EUR"
    assert money(5, "usd") == "0.05 USD"
    assert money(1200, "jpy") == "1200 JPY"
    assert money(None, "eur") == ""


def test_the_receipt_shows_amounts_reverse_charge_and_links(lifecycle, deliver):
    deliver(lifecycle, "customer_created", "subscription_created", "invoice_paid")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["billing@alice.example"]
    assert message.subject == f"Receipt for invoice LIFE-{lifecycle.customer.pk}-0: 57.00 EUR"
    assert "Total paid: 57.00 EUR" in message.body
    assert "Reverse charge (our VAT number FR40303265045, your VAT number DE136695976)" in message.body
    assert "https://invoice.stripe.com/i/acct_test/" in message.body
    assert "/pdf" in message.body
    html = message.alternatives[0][0]
    assert "Reverse charge" in html and 'href="https://invoice.stripe.com/i/acct_test/' in html
    assert "&amp;" not in message.body


def test_a_taxed_receipt_shows_the_vat_amount(customer, catalog, post):
    BillingInformation.objects.filter(customer=customer).update(tax_exempt="none", country="FR", vat_number="")
    lifecycle = Lifecycle(customer, catalog)
    invoice = stripe_objects.invoice(
        lifecycle.customer_id,
        subscription_id=lifecycle.subscription_id,
        total=2280,
        tax=380,
        subscription_metadata={"bob_payments_customer_id": str(customer.pk)},
    )
    post(build_event("invoice.paid", invoice))
    body = mail.outbox[0].body
    assert "Subtotal: 19.00 EUR" in body
    assert "VAT: 3.80 EUR" in body
    assert "Reverse charge" not in body


def test_payment_failed_links_to_paying_the_invoice(lifecycle, post):
    invoice = stripe_objects.invoice(
        lifecycle.customer_id,
        status="open",
        total=1900,
        id="in_failed",
        subscription_id=lifecycle.subscription_id,
        subscription_metadata={"bob_payments_customer_id": str(lifecycle.customer.pk)},
    )
    post(build_event("invoice.payment_failed", invoice))
    message = mail.outbox[0]
    assert message.subject == "Your payment of 19.00 EUR failed"
    assert "https://invoice.stripe.com/i/acct_test/in_failed" in message.body


def test_cancellation_and_trial_ending(lifecycle, deliver, post):
    deliver(lifecycle, "subscription_created")
    subscription = lifecycle.subscription_created["data"]["object"]
    trial = dict(subscription, status="trialing", trial_end=lifecycle.t0 + 3 * 86400)
    post(build_event("customer.subscription.trial_will_end", trial))
    deliver(lifecycle, "subscription_deleted")
    subjects = [message.subject for message in mail.outbox]
    assert subjects == ["Your Pro trial ends soon", "Your Pro subscription has ended"]


def test_vat_number_found_invalid(customer, vies, django_capture_on_commit_callbacks):
    BillingInformation.objects.update(vat_verified_at="2020-01-01T00:00:00Z")
    with django_capture_on_commit_callbacks(execute=True):
        call_command("revalidatevat", stdout=io.StringIO())
    assert [message.subject for message in mail.outbox] == ["Your VAT number DE136695976 is no longer valid"]


def test_a_kind_can_be_switched_off(lifecycle, settings, deliver):
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "EMAILS_ENABLED": {"payment_receipt": False}}
    deliver(lifecycle, "subscription_created", "invoice_paid")
    assert mail.outbox == []
    assert not BillingEmail.objects.exists()


def test_recipients_sender_bcc_and_language(lifecycle, settings, customer, deliver):
    settings.BOB_PAYMENTS = {
        **settings.BOB_PAYMENTS,
        "EMAIL_FROM": "Billing <billing@shop.example>",
        "EMAIL_BCC": ["accounting@shop.example"],
    }
    BillingInformation.objects.filter(customer=customer).update(email="")
    Customer.objects.filter(pk=customer.pk).update(preferred_locale="fr")
    deliver(lifecycle, "subscription_created", "invoice_paid")
    message = mail.outbox[0]
    assert (message.from_email, message.to, message.bcc) == (
        "Billing <billing@shop.example>",
        ["alice@example.com"],
        ["accounting@shop.example"],
    )
    assert BillingEmail.objects.get().language == "fr"


def test_a_thousand_redeliveries_send_one_receipt(lifecycle, deliver, post):
    deliver(lifecycle, "subscription_created")
    for _ in range(1000):
        assert post(lifecycle.invoice_paid).status_code == 200
    assert len(mail.outbox) == 1
    assert BillingEmail.objects.get().status == "sent"


def test_replaying_the_event_sends_nothing_more(lifecycle, deliver):
    deliver(lifecycle, "subscription_created", "invoice_paid")
    from django_bob_payments.interactors import get_payment_interactor
    from django_bob_payments.models import Invoice

    get_payment_interactor().email_payment_receipt(Invoice.objects.get())
    assert len(mail.outbox) == 1


def test_an_smtp_failure_is_recorded_and_retried_once(lifecycle, settings, deliver):
    settings.EMAIL_BACKEND = "tests.failing_email_backend.DownEmailBackend"
    deliver(lifecycle, "subscription_created", "invoice_paid")
    record = BillingEmail.objects.get()
    assert (record.status, record.attempts) == ("failed", 1)
    assert "refused the connection" in record.last_error
    with pytest.raises(CommandError, match="1 email"):
        call_command("sendbillingemails", stdout=io.StringIO())
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    stdout = io.StringIO()
    call_command("sendbillingemails", stdout=stdout)
    assert "Sent 1 email(s)" in stdout.getvalue()
    assert len(mail.outbox) == 1
    call_command("sendbillingemails", stdout=io.StringIO())
    assert len(mail.outbox) == 1
    record.refresh_from_db()
    assert (record.status, record.attempts) == ("sent", 3)


def test_an_email_recorded_inside_a_transaction_waits_for_the_commit(
    customer,
    catalog,
    django_capture_on_commit_callbacks,
    monkeypatch,
):
    from django.db import transaction

    from django_bob_payments.interactors import get_payment_interactor

    subscription = Subscription.objects.create(customer=customer, pricing=catalog, status="canceled")
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        get_payment_interactor().email_subscription_canceled(subscription)
        assert mail.outbox == []
    for callback in callbacks:
        callback()
    assert len(mail.outbox) == 1


@pytest.mark.skipif(
    os.environ.get("BOB_TEST_DB", "sqlite") == "sqlite",
    reason="needs a database server shared by several processes (BOB_TEST_DB=postgres or mariadb)",
)
@pytest.mark.django_db(transaction=True)
def test_four_processes_delivering_invoice_paid_send_one_receipt(make_user, tmp_path, monkeypatch):
    from django_bob_payments.models import ExternalPricing, ExternalProduct, Pricing, Product

    product = Product.objects.create(slug="pro", name="Pro", max_quantity=10)
    pricing = Pricing.objects.create(product=product, amount=1900, currency="eur", interval="month")
    ExternalProduct.objects.create(product=product, provider="stripe", external_id="prod_pro")
    ExternalPricing.objects.create(pricing=pricing, provider="stripe", external_id="price_pro_monthly")
    customer = Customer.objects.get(user=make_user())
    lifecycle = Lifecycle(customer, pricing)
    monkeypatch.setenv("BOB_TEST_EMAIL_DIR", str(tmp_path))
    bodies = [json.dumps(lifecycle.subscription_created)] + [json.dumps(lifecycle.invoice_paid)] * 25
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [
        context.Process(target=deliver_from_a_process, args=(connection.settings_dict["NAME"], bodies, results))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    statuses = [status for _ in workers for status in results.get(timeout=300)]
    for worker in workers:
        worker.join(timeout=60)
    assert set(statuses) == {200}
    assert len(list(tmp_path.iterdir())) == 1
    assert BillingEmail.objects.get().status == "sent"


@pytest.mark.parametrize(
    ("locale", "subject", "phrase"),
    [
        ("fr", "Reçu pour la facture LIFE-{pk}-0 : 57,00 EUR", "Autoliquidation (notre numéro de TVA FR40303265045"),
        ("de", "Quittung für Rechnung LIFE-{pk}-0: 57,00 EUR", "Steuerschuldnerschaft des Leistungsempfängers"),
    ],
)
def test_the_receipt_speaks_the_customers_language(lifecycle, customer, locale, subject, phrase, deliver):
    Customer.objects.filter(pk=customer.pk).update(preferred_locale=locale)
    deliver(lifecycle, "subscription_created", "invoice_paid")
    message = mail.outbox[0]
    assert message.subject == subject.format(pk=customer.pk)
    assert phrase in message.body


# The outbox: the email is recorded in the event's transaction, delivered after the commit.


class ProcessDied(BaseException):
    """The worker is killed: nothing after this point runs."""


def test_the_email_is_recorded_in_the_events_transaction(
    lifecycle, client, django_capture_on_commit_callbacks, monkeypatch
):
    from django_bob_payments.services.webhooks import WebhookInbox

    post_event(client, lifecycle.customer_created)
    post_event(client, lifecycle.subscription_created)

    def die(self, context, row):
        raise ProcessDied

    # The process dies right after the event's commit, before anything that follows it runs.
    monkeypatch.setattr(WebhookInbox, "_send", die)
    with django_capture_on_commit_callbacks(execute=False), pytest.raises(ProcessDied):
        post_event(client, lifecycle.invoice_paid)
    monkeypatch.undo()
    assert mail.outbox == []
    record = BillingEmail.objects.get()
    assert record.status == "pending"
    # A redelivery of the event is a duplicate and records nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        assert post_event(client, lifecycle.invoice_paid).json()["duplicate"] is True
    assert BillingEmail.objects.count() == 1 and mail.outbox == []
    # The retry command sends what the dead process left, once.
    BillingEmail.objects.update(created_at=timezone.now() - timezone.timedelta(minutes=5))
    call_command("sendbillingemails", "--minutes", "1", stdout=io.StringIO())
    call_command("sendbillingemails", "--minutes", "1", stdout=io.StringIO())
    assert len(mail.outbox) == 1
    record.refresh_from_db()
    assert record.status == "sent"


def test_a_rolled_back_event_records_no_email(lifecycle, post, monkeypatch):
    from django_bob_payments.services.events import EventApplier

    post(lifecycle.customer_created)
    original = EventApplier.handle_invoice

    def crash_after_writing(self, context):
        original(self, context)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(EventApplier, "handle_invoice", crash_after_writing)
    assert post(lifecycle.invoice_paid).status_code == 500
    assert not BillingEmail.objects.exists() and mail.outbox == []


def test_a_mail_server_that_never_answers_does_not_hold_the_webhook(lifecycle, post, settings):
    import socket
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)  # accepts connections, never says a word
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", silent.getsockname()[1]
    settings.EMAIL_TIMEOUT = None
    settings.BOB_PAYMENTS = {**settings.BOB_PAYMENTS, "EMAIL_SEND_TIMEOUT": 1}
    try:
        post(lifecycle.customer_created)
        started = time.monotonic()
        response = post(lifecycle.invoice_paid)
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert response.status_code == 200
    assert elapsed < 2.5
    record = BillingEmail.objects.get()
    assert record.status == "failed" and "did not answer within 1 s" in record.last_error


def test_the_receipt_states_the_tax_as_the_invoice_does(customer, catalog, post):
    """The billing row says reverse charge, but this invoice was taxed: the receipt follows the invoice."""
    lifecycle = Lifecycle(customer, catalog)
    invoice = stripe_objects.invoice(
        lifecycle.customer_id,
        subscription_id=lifecycle.subscription_id,
        total=1190,
        tax=190,
        subscription_metadata={"bob_payments_customer_id": str(customer.pk)},
        customer_tax_exempt="none",
    )
    post(build_event("invoice.paid", invoice))
    body = mail.outbox[0].body
    assert "Reverse charge" not in body
    assert "VAT: 1.90 EUR" in body
